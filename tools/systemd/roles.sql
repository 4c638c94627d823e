-- Tally's database roles, least privilege (docs/operations.md). Step 1 of 3: run as a superuser
-- in the Tally database, before the first start:
--   psql -U postgres -d tally -v ON_ERROR_STOP=1 -f tools/systemd/roles.sql
-- Step 2: apply the migrations as tally_owner (docs/operations.md, "Migrations").
-- Step 3: tools/systemd/grants.sql, again after every upgrade that brings migrations.
--
-- No passwords here: give the login roles one with \password (or use peer/cert auth), and put
-- the URLs in the daemons' environment files, never in this repository.
--
--   tally_owner      owns the schemas tally and tally_ts and applies the migrations
--   tally_registry   tally-registry: reads and writes the producers and collectors, nothing else
--   tally_collector  tally-collector: writes samples and series; owns the measurement tables
--                    because it creates and drops their daily partitions, and the tally_ts views
--   tally_reader     Grafana, tallyctl query/schema: reads series and views (NOLOGIN; grant it
--                    to the login roles of people and dashboards)
--   tally_monitor    what the collector's postgres_monitoring connects as, on each monitored
--                    server (pg_monitor: the pg_stat views, no table data)
-- Idempotent: roles that exist are left as they are.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT * FROM (VALUES ('tally_owner', true), ('tally_registry', true),
                                 ('tally_collector', true), ('tally_reader', false),
                                 ('tally_monitor', true)) AS roles(name, login)
  LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r.name) THEN
      EXECUTE format('CREATE ROLE %I %s', r.name, CASE WHEN r.login THEN 'LOGIN' ELSE 'NOLOGIN' END);
    END IF;
  END LOOP;
END
$$;

GRANT pg_monitor TO tally_monitor;

-- The owner creates the schemas; everyone else only connects (and the collector stages new series
-- in a temporary table).
DO $$
BEGIN
  EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO tally_owner', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO tally_registry, tally_reader', current_database());
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO tally_collector', current_database());
END
$$;
