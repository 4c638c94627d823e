-- Tally's database roles, step 3 of 3 (roles.sql has the overview): the privileges of each role
-- on the objects the migrations made. Run as a superuser in the Tally database after the
-- migrations, and again after every upgrade that brings migrations:
--   psql -U postgres -d tally -v ON_ERROR_STOP=1 -f tools/systemd/grants.sql
-- Idempotent.

GRANT USAGE ON SCHEMA tally TO tally_registry, tally_collector, tally_reader;
-- The daemons check at start that the migrations are applied.
GRANT SELECT ON tally.schema_migrations TO tally_registry, tally_collector;

-- tally-registry: its own state, nothing of the samples.
GRANT SELECT, INSERT, UPDATE, DELETE ON tally.producers, tally.collectors TO tally_registry;

-- tally-collector: new schemas and series; the measurement tables and the views it owns, since
-- creating a partition (and dropping one for retention) is their owner's right only.
GRANT SELECT, INSERT ON tally.timeseries_schema, tally.timeseries TO tally_collector;
GRANT CREATE ON SCHEMA tally TO tally_collector;
GRANT USAGE, CREATE ON SCHEMA tally_ts TO tally_collector;
DO $$
DECLARE
  r record;
BEGIN
  -- The partitioned tables, the partitions made so far and the views made so far.
  FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
           WHERE (c.relnamespace = 'tally'::regnamespace AND c.relname LIKE 'measurements\_%'
                  AND c.relkind IN ('r', 'p'))
              OR (c.relnamespace = 'tally_ts'::regnamespace AND c.relkind = 'v')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO tally_collector',
                   CASE WHEN r.relkind = 'v' THEN 'VIEW' ELSE 'TABLE' END, r.name);
  END LOOP;
END
$$;

-- Readers: every view, the series and their schemas (tallyctl query reads the tables).
GRANT USAGE ON SCHEMA tally_ts TO tally_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA tally_ts TO tally_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE tally_collector IN SCHEMA tally_ts
  GRANT SELECT ON TABLES TO tally_reader;
GRANT SELECT ON tally.timeseries_schema, tally.timeseries TO tally_reader;
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS name FROM pg_class c
           WHERE c.relnamespace = 'tally'::regnamespace AND c.relname LIKE 'measurements\_%'
             AND c.relkind = 'p'
  LOOP
    EXECUTE format('GRANT SELECT ON %s TO tally_reader', r.name);
  END LOOP;
END
$$;
