-- Tally's storage (DESIGN.md §6). Applied once, in one transaction, by apply_migrations.
--
-- Citus-ready (§11): the measurement tables and tally.timeseries can be distributed on
-- timeseries_key; nothing references them by foreign key and nothing on the write path uses
-- a sequence. Measurement tables have no primary key: a batch retried after an unknown commit
-- outcome may store a row twice, which readers tolerate.

CREATE SCHEMA IF NOT EXISTS tally;
CREATE SCHEMA IF NOT EXISTS tally_ts;

-- apply_migrations creates this before running any migration; kept here so the file alone
-- describes the whole schema.
CREATE TABLE IF NOT EXISTS tally.schema_migrations (
  version    int PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- The registry's state. The registry may extend these in later migrations.
CREATE TABLE tally.collectors (
  id         uuid PRIMARY KEY,
  address    text NOT NULL,
  first_seen timestamptz NOT NULL DEFAULT now(),
  last_seen  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tally.producers (
  id               uuid PRIMARY KEY,
  kind             text NOT NULL,
  address          text NOT NULL,
  route            text NOT NULL,
  interval_ms      int NOT NULL,
  format           text NOT NULL,
  target_name      text,
  collector_id     uuid,
  registered_at    timestamptz NOT NULL DEFAULT now(),
  renewed_at       timestamptz NOT NULL DEFAULT now(),
  lease_expires_at timestamptz NOT NULL
);
CREATE INDEX producers_collector_id_idx ON tally.producers (collector_id);

-- One row per (timeseries name, version). fields: [{"name","type","source"}] sorted by name.
CREATE TABLE tally.timeseries_schema (
  timeseries_name text NOT NULL,
  version         int NOT NULL CHECK (version >= 1),
  target_name     text NOT NULL,
  metric_name     text NOT NULL,
  fields          jsonb NOT NULL,
  datum_type      text NOT NULL,
  units           text NOT NULL DEFAULT '',
  description     text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (timeseries_name, version)
);

-- One row per series. fields: {"field_name": value}; integers as JSON numbers (jsonb keeps
-- u64 exact), uuid/ip_addr/string as strings, bool as JSON bool.
CREATE TABLE tally.timeseries (
  timeseries_key  bigint PRIMARY KEY,
  timeseries_name text NOT NULL,
  version         int NOT NULL,
  fields          jsonb NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX timeseries_name_idx ON tally.timeseries (timeseries_name, version);

-- Measurements: one table per storage type, one partition per UTC day
-- (tally.measurements_<type>_pYYYYMMDD, created by the writer). A NULL datum is a missing datum.

CREATE TABLE tally.measurements_bool (
  timeseries_key bigint NOT NULL,
  "timestamp"    timestamptz NOT NULL,
  datum          boolean
) PARTITION BY RANGE ("timestamp");

-- i8, u8, i16, u16, i32, u32, i64.
CREATE TABLE tally.measurements_i64 (
  timeseries_key bigint NOT NULL,
  "timestamp"    timestamptz NOT NULL,
  datum          bigint
) PARTITION BY RANGE ("timestamp");

CREATE TABLE tally.measurements_u64 (
  timeseries_key bigint NOT NULL,
  "timestamp"    timestamptz NOT NULL,
  datum          numeric
) PARTITION BY RANGE ("timestamp");

-- f32 and f64 (every f32 is exactly a double).
CREATE TABLE tally.measurements_f64 (
  timeseries_key bigint NOT NULL,
  "timestamp"    timestamptz NOT NULL,
  datum          double precision
) PARTITION BY RANGE ("timestamp");

CREATE TABLE tally.measurements_string (
  timeseries_key bigint NOT NULL,
  "timestamp"    timestamptz NOT NULL,
  datum          text
) PARTITION BY RANGE ("timestamp");

CREATE TABLE tally.measurements_bytes (
  timeseries_key bigint NOT NULL,
  "timestamp"    timestamptz NOT NULL,
  datum          bytea
) PARTITION BY RANGE ("timestamp");

CREATE TABLE tally.measurements_cumulative_i64 (
  timeseries_key bigint NOT NULL,
  "timestamp"    timestamptz NOT NULL,
  start_time     timestamptz NOT NULL,
  datum          bigint
) PARTITION BY RANGE ("timestamp");

CREATE TABLE tally.measurements_cumulative_u64 (
  timeseries_key bigint NOT NULL,
  "timestamp"    timestamptz NOT NULL,
  start_time     timestamptz NOT NULL,
  datum          numeric
) PARTITION BY RANGE ("timestamp");

-- cumulative_f32 and cumulative_f64.
CREATE TABLE tally.measurements_cumulative_f64 (
  timeseries_key bigint NOT NULL,
  "timestamp"    timestamptz NOT NULL,
  start_time     timestamptz NOT NULL,
  datum          double precision
) PARTITION BY RANGE ("timestamp");

-- histogram_{i8,u8,i16,u16,i32,u32,i64,u64}: numeric so u64 edges, min, max and sums above
-- 2^63 round-trip exactly. bins are the lower edges; the first is NULL when the first bin is
-- unbounded below. counts[i] belongs to bins[i]. All datum columns NULL = missing.
CREATE TABLE tally.measurements_histogram_i64 (
  timeseries_key bigint NOT NULL,
  "timestamp"    timestamptz NOT NULL,
  start_time     timestamptz NOT NULL,
  bins           numeric[],
  counts         bigint[],
  n_samples      bigint,
  min            numeric,
  max            numeric,
  sum            numeric,
  squared_mean   double precision
) PARTITION BY RANGE ("timestamp");

-- histogram_f32 and histogram_f64.
CREATE TABLE tally.measurements_histogram_f64 (
  timeseries_key bigint NOT NULL,
  "timestamp"    timestamptz NOT NULL,
  start_time     timestamptz NOT NULL,
  bins           double precision[],
  counts         bigint[],
  n_samples      bigint,
  min            double precision,
  max            double precision,
  sum            double precision,
  squared_mean   double precision
) PARTITION BY RANGE ("timestamp");

-- Indexes on the parents are created on every partition, present and future.
CREATE INDEX measurements_bool_key_ts_idx ON tally.measurements_bool (timeseries_key, "timestamp");
CREATE INDEX measurements_i64_key_ts_idx ON tally.measurements_i64 (timeseries_key, "timestamp");
CREATE INDEX measurements_u64_key_ts_idx ON tally.measurements_u64 (timeseries_key, "timestamp");
CREATE INDEX measurements_f64_key_ts_idx ON tally.measurements_f64 (timeseries_key, "timestamp");
CREATE INDEX measurements_string_key_ts_idx
  ON tally.measurements_string (timeseries_key, "timestamp");
CREATE INDEX measurements_bytes_key_ts_idx
  ON tally.measurements_bytes (timeseries_key, "timestamp");
CREATE INDEX measurements_cumulative_i64_key_ts_idx
  ON tally.measurements_cumulative_i64 (timeseries_key, "timestamp");
CREATE INDEX measurements_cumulative_u64_key_ts_idx
  ON tally.measurements_cumulative_u64 (timeseries_key, "timestamp");
CREATE INDEX measurements_cumulative_f64_key_ts_idx
  ON tally.measurements_cumulative_f64 (timeseries_key, "timestamp");
CREATE INDEX measurements_histogram_i64_key_ts_idx
  ON tally.measurements_histogram_i64 (timeseries_key, "timestamp");
CREATE INDEX measurements_histogram_f64_key_ts_idx
  ON tally.measurements_histogram_f64 (timeseries_key, "timestamp");
