-- Run once by the postgres image's entrypoint on an empty data directory
-- (mounted into /docker-entrypoint-initdb.d by docker-compose.yml).
-- One database per service instance.
CREATE DATABASE intake;
CREATE DATABASE eligibility;
CREATE DATABASE transport;
CREATE DATABASE border_kaz_zhibek_zholy_exit;
CREATE DATABASE border_uzb_zhibek_zholy_entry;
CREATE DATABASE border_uzb_oybek_exit;
CREATE DATABASE border_tjk_oybek_entry;
