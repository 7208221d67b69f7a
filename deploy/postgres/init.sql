-- Run once by the postgres image's entrypoint (psql, as the superuser) on an empty data directory
-- (mounted into /docker-entrypoint-initdb.d by docker-compose.yml).
-- One database per service instance, owned by a role of that service's own: a service never
-- connects as the superuser and cannot connect to another service's database. Each role's
-- password is read from its compose secret, /run/secrets/<role>.password (deploy/docker/
-- make-secrets.sh writes them), and never appears in this file, the environment or the log: a
-- missing file fails pg_read_file, and ON_ERROR_STOP fails the whole init.
\set ON_ERROR_STOP on

CREATE FUNCTION pg_temp.create_login_role(role_name text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    secret text := btrim(pg_read_file('/run/secrets/' || role_name || '.password'), E' \r\n');
BEGIN
    IF length(secret) < 16 THEN
        RAISE EXCEPTION 'the password of role % is shorter than 16 characters', role_name;
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', role_name, secret);
END
$$;

-- CREATE ROLE intake LOGIN (password from /run/secrets/intake.password)
SELECT pg_temp.create_login_role('intake');
CREATE DATABASE intake OWNER intake;
REVOKE ALL ON DATABASE intake FROM PUBLIC;

-- CREATE ROLE eligibility LOGIN (password from /run/secrets/eligibility.password)
SELECT pg_temp.create_login_role('eligibility');
CREATE DATABASE eligibility OWNER eligibility;
REVOKE ALL ON DATABASE eligibility FROM PUBLIC;

-- CREATE ROLE transport LOGIN (password from /run/secrets/transport.password)
SELECT pg_temp.create_login_role('transport');
CREATE DATABASE transport OWNER transport;
REVOKE ALL ON DATABASE transport FROM PUBLIC;

-- CREATE ROLE reporting LOGIN (password from /run/secrets/reporting.password)
SELECT pg_temp.create_login_role('reporting');
CREATE DATABASE reporting OWNER reporting;
REVOKE ALL ON DATABASE reporting FROM PUBLIC;

-- CREATE ROLE border_kaz_zhibek_zholy_exit LOGIN (password from /run/secrets/border_kaz_zhibek_zholy_exit.password)
SELECT pg_temp.create_login_role('border_kaz_zhibek_zholy_exit');
CREATE DATABASE border_kaz_zhibek_zholy_exit OWNER border_kaz_zhibek_zholy_exit;
REVOKE ALL ON DATABASE border_kaz_zhibek_zholy_exit FROM PUBLIC;

-- CREATE ROLE border_uzb_zhibek_zholy_entry LOGIN (password from /run/secrets/border_uzb_zhibek_zholy_entry.password)
SELECT pg_temp.create_login_role('border_uzb_zhibek_zholy_entry');
CREATE DATABASE border_uzb_zhibek_zholy_entry OWNER border_uzb_zhibek_zholy_entry;
REVOKE ALL ON DATABASE border_uzb_zhibek_zholy_entry FROM PUBLIC;

-- CREATE ROLE border_uzb_oybek_exit LOGIN (password from /run/secrets/border_uzb_oybek_exit.password)
SELECT pg_temp.create_login_role('border_uzb_oybek_exit');
CREATE DATABASE border_uzb_oybek_exit OWNER border_uzb_oybek_exit;
REVOKE ALL ON DATABASE border_uzb_oybek_exit FROM PUBLIC;

-- CREATE ROLE border_tjk_oybek_entry LOGIN (password from /run/secrets/border_tjk_oybek_entry.password)
SELECT pg_temp.create_login_role('border_tjk_oybek_entry');
CREATE DATABASE border_tjk_oybek_entry OWNER border_tjk_oybek_entry;
REVOKE ALL ON DATABASE border_tjk_oybek_entry FROM PUBLIC;
