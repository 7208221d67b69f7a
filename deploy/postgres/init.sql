-- Run once by the postgres image's entrypoint (psql) on an empty data directory
-- (mounted into /docker-entrypoint-initdb.d by docker-compose.yml).
-- One database per service instance, owned by a role of that service's own: a service never
-- connects as the superuser and cannot connect to another service's database. The passwords come
-- from the container's environment (docker-compose.yml requires each to be set); an unset one
-- leaves its psql variable undefined, and the statement using it fails the whole init.
\set ON_ERROR_STOP on

\getenv intake_password INTAKE_DB_PASSWORD
CREATE ROLE intake LOGIN PASSWORD :'intake_password';
CREATE DATABASE intake OWNER intake;
REVOKE ALL ON DATABASE intake FROM PUBLIC;

\getenv eligibility_password ELIGIBILITY_DB_PASSWORD
CREATE ROLE eligibility LOGIN PASSWORD :'eligibility_password';
CREATE DATABASE eligibility OWNER eligibility;
REVOKE ALL ON DATABASE eligibility FROM PUBLIC;

\getenv transport_password TRANSPORT_DB_PASSWORD
CREATE ROLE transport LOGIN PASSWORD :'transport_password';
CREATE DATABASE transport OWNER transport;
REVOKE ALL ON DATABASE transport FROM PUBLIC;

\getenv kaz_exit_password BORDER_KAZ_ZHIBEK_ZHOLY_EXIT_DB_PASSWORD
CREATE ROLE border_kaz_zhibek_zholy_exit LOGIN PASSWORD :'kaz_exit_password';
CREATE DATABASE border_kaz_zhibek_zholy_exit OWNER border_kaz_zhibek_zholy_exit;
REVOKE ALL ON DATABASE border_kaz_zhibek_zholy_exit FROM PUBLIC;

\getenv uzb_entry_password BORDER_UZB_ZHIBEK_ZHOLY_ENTRY_DB_PASSWORD
CREATE ROLE border_uzb_zhibek_zholy_entry LOGIN PASSWORD :'uzb_entry_password';
CREATE DATABASE border_uzb_zhibek_zholy_entry OWNER border_uzb_zhibek_zholy_entry;
REVOKE ALL ON DATABASE border_uzb_zhibek_zholy_entry FROM PUBLIC;

\getenv uzb_exit_password BORDER_UZB_OYBEK_EXIT_DB_PASSWORD
CREATE ROLE border_uzb_oybek_exit LOGIN PASSWORD :'uzb_exit_password';
CREATE DATABASE border_uzb_oybek_exit OWNER border_uzb_oybek_exit;
REVOKE ALL ON DATABASE border_uzb_oybek_exit FROM PUBLIC;

\getenv tjk_entry_password BORDER_TJK_OYBEK_ENTRY_DB_PASSWORD
CREATE ROLE border_tjk_oybek_entry LOGIN PASSWORD :'tjk_entry_password';
CREATE DATABASE border_tjk_oybek_entry OWNER border_tjk_oybek_entry;
REVOKE ALL ON DATABASE border_tjk_oybek_entry FROM PUBLIC;
