#include "tally/collector/pgstats/queries.h"

#include <charconv>
#include <chrono>

namespace tally::collector::pgstats {
namespace {

using K = ValueKind;

constexpr int kV12 = 120000;
constexpr int kV13 = 130000;
constexpr int kV14 = 140000;
constexpr int kV16 = 160000;
constexpr int kV17 = 170000;

// The counters of a pg_stat_* view with its own stats_reset. A NULL stats_reset (never reset)
// means the counters started with the server (see docs/pgstats.md on restarts).
constexpr const char* kOwnReset = "coalesce(stats_reset, pg_postmaster_start_time())";
// Table counters have no reset time of their own; resetting them (pg_stat_reset, or
// pg_stat_reset_single_table_counters) sets the database's, so that one bounds them all.
constexpr const char* kDatabaseReset =
    "coalesce((SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()), "
    "pg_postmaster_start_time())";
// Per-table queries return at most this many tables (the oldest by OID) so that a database with
// tens of thousands of partitions cannot flood the collector.
constexpr const char* kTableLimit = "LIMIT 1000";

MetricSpec m(std::string name, K kind, std::string expr = {}, int min_version = 0,
             int max_version = 0) {
  return MetricSpec{std::move(name), kind, std::move(expr), min_version, max_version};
}

std::vector<QuerySpec> make_builtin() {
  std::vector<QuerySpec> q;

  q.push_back(
      QuerySpec{.name = "stat_database",
                .fields = {{"database", "datname"}},
                .start_time = kOwnReset,
                .from = "FROM pg_stat_database WHERE datname IS NOT NULL ORDER BY datname",
                .metrics = {
                    m("numbackends", K::kGaugeI64),
                    m("xact_commit", K::kCounter),
                    m("xact_rollback", K::kCounter),
                    m("blks_read", K::kCounter),
                    m("blks_hit", K::kCounter),
                    m("tup_returned", K::kCounter),
                    m("tup_fetched", K::kCounter),
                    m("tup_inserted", K::kCounter),
                    m("tup_updated", K::kCounter),
                    m("tup_deleted", K::kCounter),
                    m("conflicts", K::kCounter),
                    m("temp_files", K::kCounter),
                    m("temp_bytes", K::kCounter),
                    m("deadlocks", K::kCounter),
                    m("blk_read_time", K::kCounterF64),
                    m("blk_write_time", K::kCounterF64),
                    // NULL while data checksums are off: no failure can have been seen.
                    m("checksum_failures", K::kCounter, "coalesce(checksum_failures, 0)", kV12),
                    m("sessions", K::kCounter, {}, kV14),
                    m("sessions_abandoned", K::kCounter, {}, kV14),
                    m("sessions_fatal", K::kCounter, {}, kV14),
                    m("sessions_killed", K::kCounter, {}, kV14),
                    m("session_time", K::kCounterF64, {}, kV14),
                    m("active_time", K::kCounterF64, {}, kV14),
                    m("idle_in_transaction_time", K::kCounterF64, {}, kV14),
                }});

  const std::vector<FieldSpec> table_fields = {
      {"database", "current_database()"}, {"schema", "schemaname"}, {"table", "relname"}};
  q.push_back(QuerySpec{
      .name = "stat_user_tables",
      .fields = table_fields,
      .start_time = kDatabaseReset,
      .from = std::string("FROM pg_stat_user_tables ORDER BY relid ") + kTableLimit,
      .metrics = {
          m("seq_scan", K::kCounter),
          m("seq_tup_read", K::kCounter),
          // NULL for a table without indexes.
          m("idx_scan", K::kCounter, "coalesce(idx_scan, 0)"),
          m("idx_tup_fetch", K::kCounter, "coalesce(idx_tup_fetch, 0)"),
          m("n_tup_ins", K::kCounter),
          m("n_tup_upd", K::kCounter),
          m("n_tup_del", K::kCounter),
          m("n_tup_hot_upd", K::kCounter),
          m("n_tup_newpage_upd", K::kCounter, {}, kV16),
          m("n_live_tup", K::kGaugeI64),
          m("n_dead_tup", K::kGaugeI64),
          m("n_mod_since_analyze", K::kGaugeI64),
          m("n_ins_since_vacuum", K::kGaugeI64, {}, kV13),
          m("vacuum_count", K::kCounter),
          m("autovacuum_count", K::kCounter),
          m("analyze_count", K::kCounter),
          m("autoanalyze_count", K::kCounter),
          m("seconds_since_last_vacuum", K::kGaugeF64,
            "extract(epoch FROM now() - greatest(last_vacuum, last_autovacuum))::float8"),
          m("seconds_since_last_analyze", K::kGaugeF64,
            "extract(epoch FROM now() - greatest(last_analyze, last_autoanalyze))::float8"),
      }});

  q.push_back(
      QuerySpec{.name = "statio_user_tables",
                .fields = table_fields,
                .start_time = kDatabaseReset,
                .from = std::string("FROM pg_statio_user_tables ORDER BY relid ") + kTableLimit,
                .metrics = {
                    m("heap_blks_read", K::kCounter),
                    m("heap_blks_hit", K::kCounter),
                    // NULL for a table without indexes / without a TOAST table.
                    m("idx_blks_read", K::kCounter, "coalesce(idx_blks_read, 0)"),
                    m("idx_blks_hit", K::kCounter, "coalesce(idx_blks_hit, 0)"),
                    m("toast_blks_read", K::kCounter, "coalesce(toast_blks_read, 0)"),
                    m("toast_blks_hit", K::kCounter, "coalesce(toast_blks_hit, 0)"),
                    m("tidx_blks_read", K::kCounter, "coalesce(tidx_blks_read, 0)"),
                    m("tidx_blks_hit", K::kCounter, "coalesce(tidx_blks_hit, 0)"),
                }});

  // 17 moved the checkpointer's counters to pg_stat_checkpointer (with a reset time of its own)
  // and the backends' writes to pg_stat_io; the metric names stay those of pg_stat_bgwriter.
  q.push_back(QuerySpec{.name = "stat_bgwriter",
                        .fields = {},
                        .start_time = kOwnReset,
                        .from = "FROM pg_stat_bgwriter",
                        .metrics = {
                            m("checkpoints_timed", K::kCounter, {}, 0, kV17),
                            m("checkpoints_req", K::kCounter, {}, 0, kV17),
                            m("checkpoint_write_time", K::kCounterF64, {}, 0, kV17),
                            m("checkpoint_sync_time", K::kCounterF64, {}, 0, kV17),
                            m("buffers_checkpoint", K::kCounter, {}, 0, kV17),
                            m("buffers_clean", K::kCounter),
                            m("maxwritten_clean", K::kCounter),
                            m("buffers_backend", K::kCounter, {}, 0, kV17),
                            m("buffers_backend_fsync", K::kCounter, {}, 0, kV17),
                            m("buffers_alloc", K::kCounter),
                        }});
  q.push_back(QuerySpec{.name = "stat_checkpointer",
                        .min_version = kV17,
                        .fields = {},
                        .start_time = kOwnReset,
                        .from = "FROM pg_stat_checkpointer",
                        .metrics = {
                            m("checkpoints_timed", K::kCounter, "num_timed"),
                            m("checkpoints_req", K::kCounter, "num_requested"),
                            m("checkpoint_write_time", K::kCounterF64, "write_time"),
                            m("checkpoint_sync_time", K::kCounterF64, "sync_time"),
                            m("buffers_checkpoint", K::kCounter, "buffers_written"),
                        }});

  // Client connections by database and state, with a row (0) for every state of the list in
  // every database that accepts connections, so that dashboards see zeros, not gaps.
  q.push_back(QuerySpec{
      .name = "connections",
      .fields = {{"database", "d.datname"}, {"state", "s.state"}},
      .from = "FROM pg_database d CROSS JOIN unnest(ARRAY['active', 'idle', "
              "'idle in transaction', 'idle in transaction (aborted)', "
              "'fastpath function call', 'disabled']) AS s(state) "
              "LEFT JOIN pg_stat_activity a ON a.datname = d.datname AND a.state = s.state "
              "AND a.backend_type = 'client backend' "
              "WHERE d.datallowconn GROUP BY d.datname, s.state ORDER BY d.datname, s.state",
      .metrics = {m("connections", K::kGaugeI64, "count(a.pid)")}});

  // Primary side: one row per connected standby. pg_current_wal_lsn() fails during recovery, so
  // a cascading standby reports its own lag (query "recovery") and not its standbys'. A standby
  // that has replayed everything shows no replay_lag after a while: its lag is 0 then.
  q.push_back(
      QuerySpec{.name = "replication",
                .fields = {{"replica", "coalesce(application_name, '')"},
                           {"client_addr", "coalesce(host(client_addr), '')"}},
                .from = "FROM pg_stat_replication WHERE NOT pg_is_in_recovery() "
                        "ORDER BY application_name, client_addr",
                .metrics = {
                    m("replication_lag_bytes", K::kGaugeI64,
                      "greatest(0, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::bigint"),
                    m("replication_lag_seconds", K::kGaugeF64,
                      "(CASE WHEN replay_lsn = pg_current_wal_lsn() THEN 0 "
                      "ELSE extract(epoch FROM replay_lag) END)::float8"),
                }});

  // Standby side: WAL received but not replayed yet, and how old the last replayed transaction
  // is (0 when everything received is replayed, so an idle primary does not look like lag).
  q.push_back(QuerySpec{
      .name = "recovery",
      .fields = {},
      .from = "WHERE pg_is_in_recovery()",
      .metrics = {
          m("recovery_lag_bytes", K::kGaugeI64,
            "greatest(0, pg_wal_lsn_diff(pg_last_wal_receive_lsn(), "
            "pg_last_wal_replay_lsn()))::bigint"),
          m("recovery_lag_seconds", K::kGaugeF64,
            "(CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
            "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END)::float8"),
      }});

  q.push_back(QuerySpec{
      .name = "instance",
      .fields = {},
      .from = "",
      .metrics = {
          m("is_in_recovery", K::kBool, "pg_is_in_recovery()"),
          m("max_connections", K::kGaugeI64, "current_setting('max_connections')::bigint"),
          m("autovacuum_freeze_max_age", K::kGaugeI64,
            "current_setting('autovacuum_freeze_max_age')::bigint"),
          m("server_version_num", K::kGaugeI64, "current_setting('server_version_num')::bigint"),
          m("postmaster_start_time_seconds", K::kGaugeF64,
            "extract(epoch FROM pg_postmaster_start_time())::float8"),
      }});

  q.push_back(
      QuerySpec{.name = "database_size",
                .fields = {{"database", "datname"}},
                .from = "FROM pg_database WHERE datallowconn ORDER BY datname",
                .metrics = {m("database_size_bytes", K::kGaugeI64, "pg_database_size(oid)")}});

  // Transaction-id and multixact-id wraparound: autovacuum must freeze a database before its
  // age reaches autovacuum_freeze_max_age, and the server stops at about 2^31.
  q.push_back(QuerySpec{.name = "wraparound",
                        .fields = {{"database", "datname"}},
                        .from = "FROM pg_database ORDER BY datname",
                        .metrics = {m("xid_age", K::kGaugeI64, "age(datfrozenxid)::bigint"),
                                    m("mxid_age", K::kGaugeI64, "mxid_age(datminmxid)::bigint")}});
  return q;
}

bool in_range(int version, int min_version, int max_version) {
  return version >= min_version && (max_version == 0 || version < max_version);
}

Status decode_error(const QuerySpec& q, std::string_view column, std::string_view what) {
  return Status::error(
      "query " + q.name + ": column " + std::string(column) + ": " + std::string(what), "decode");
}

template <class T>
bool parse_number(std::string_view text, T& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

// A Postgres integer that may be written as numeric ("12" or "12.0" never happens for bigint,
// but a sum() or a numeric column could end in ".0").
bool parse_integer(std::string_view text, int64_t& out) {
  if (parse_number(text, out)) return true;
  const std::size_t dot = text.find('.');
  if (dot == std::string_view::npos) return false;
  for (char c : text.substr(dot + 1)) {
    if (c != '0') return false;
  }
  return parse_number(text.substr(0, dot), out);
}

Result<Datum> parse_value(const QuerySpec& q, const MetricSpec& metric,
                          const std::optional<std::string>& text, std::optional<Timestamp> start) {
  const DatumType type = datum_type(metric.kind);
  if (!text) return Datum(Missing{type, start});
  const std::string_view v = *text;
  switch (metric.kind) {
    case K::kCounter: {
      int64_t n = 0;
      if (!parse_integer(v, n) || n < 0) {
        return decode_error(q, metric.name, "'" + *text + "' is not a count");
      }
      return Datum(Cumulative<uint64_t>{*start, static_cast<uint64_t>(n)});
    }
    case K::kCounterF64: {
      double d = 0;
      if (!parse_number(v, d))
        return decode_error(q, metric.name, "'" + *text + "' is not a number");
      return Datum(Cumulative<double>{*start, d});
    }
    case K::kGaugeI64: {
      int64_t n = 0;
      if (!parse_integer(v, n)) {
        return decode_error(q, metric.name, "'" + *text + "' is not an integer");
      }
      return Datum(n);
    }
    case K::kGaugeF64: {
      double d = 0;
      if (!parse_number(v, d))
        return decode_error(q, metric.name, "'" + *text + "' is not a number");
      return Datum(d);
    }
    case K::kBool:
      if (v == "t" || v == "true") return Datum(true);
      if (v == "f" || v == "false") return Datum(false);
      return decode_error(q, metric.name, "'" + *text + "' is not a boolean");
  }
  return decode_error(q, metric.name, "unknown kind");
}

}  // namespace

DatumType datum_type(ValueKind kind) {
  switch (kind) {
    case K::kCounter:
      return DatumType::kCumulativeU64;
    case K::kCounterF64:
      return DatumType::kCumulativeF64;
    case K::kGaugeI64:
      return DatumType::kI64;
    case K::kGaugeF64:
      return DatumType::kF64;
    case K::kBool:
      return DatumType::kBool;
  }
  return DatumType::kF64;
}

bool QuerySpec::applies_to(int version) const {
  return in_range(version, min_version, max_version);
}

const std::vector<QuerySpec>& builtin_queries() {
  static const std::vector<QuerySpec> queries = make_builtin();
  return queries;
}

std::vector<const QuerySpec*> select_queries(const std::vector<QuerySpec>& all, int version) {
  std::vector<const QuerySpec*> out;
  for (const QuerySpec& q : all) {
    if (q.applies_to(version)) out.push_back(&q);
  }
  return out;
}

std::vector<const MetricSpec*> metrics_for(const QuerySpec& q, int version) {
  std::vector<const MetricSpec*> out;
  for (const MetricSpec& metric : q.metrics) {
    if (in_range(version, metric.min_version, metric.max_version)) out.push_back(&metric);
  }
  return out;
}

std::string build_sql(const QuerySpec& q, int version) {
  std::string sql = "SELECT ";
  bool first = true;
  const auto column = [&](std::string_view expr, std::string_view name) {
    if (!first) sql += ", ";
    first = false;
    sql += expr;
    if (expr != name) {
      sql += " AS ";
      sql += name;
    }
  };
  for (const FieldSpec& f : q.fields) column(f.expr, f.name);
  bool counters = false;
  for (const MetricSpec* metric : metrics_for(q, version)) {
    column(metric->expr.empty() ? metric->name : metric->expr, metric->name);
    counters = counters || has_start_time(datum_type(metric->kind));
  }
  if (counters) {
    column("(extract(epoch FROM " + q.start_time + ") * 1000000)::bigint", kStartTimeColumn);
  }
  if (!q.from.empty()) {
    sql += ' ';
    sql += q.from;
  }
  return sql;
}

ResultTable ResultTable::from(const pg::Rows& rows, const std::vector<std::string>& wanted) {
  ResultTable t;
  // The adapter finds columns by name only; a wanted column the result lacks is left out, and
  // to_samples() names it.
  std::vector<int> source;
  for (const std::string& name : wanted) {
    const int c = rows.columns() > 0 ? rows.column(name) : -1;
    if (c < 0) continue;
    t.columns.push_back(name);
    source.push_back(c);
  }
  t.rows.resize(static_cast<std::size_t>(rows.size()));
  for (int r = 0; r < rows.size(); ++r) {
    auto& row = t.rows[static_cast<std::size_t>(r)];
    row.reserve(source.size());
    for (int c : source) {
      if (rows.is_null(r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(rows.get(r, c)));
      }
    }
  }
  return t;
}

std::vector<std::string> result_columns(const QuerySpec& q, int version) {
  std::vector<std::string> out;
  for (const FieldSpec& f : q.fields) out.push_back(f.name);
  bool counters = false;
  for (const MetricSpec* metric : metrics_for(q, version)) {
    out.push_back(metric->name);
    counters = counters || has_start_time(datum_type(metric->kind));
  }
  if (counters) out.emplace_back(kStartTimeColumn);
  return out;
}

int ResultTable::column(std::string_view name) const {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return static_cast<int>(i);
  }
  return -1;
}

Target make_target(const Instance& instance) {
  return Target{std::string(kTargetName),
                {{"name", instance.name}, {"host", instance.host}, {"port", instance.port}}};
}

Result<std::vector<Sample>> to_samples(const QuerySpec& q, int version, const ResultTable& table,
                                       const Target& target, Timestamp now) {
  const std::vector<const MetricSpec*> metrics = metrics_for(q, version);
  std::vector<int> field_columns;
  for (const FieldSpec& f : q.fields) {
    const int c = table.column(f.name);
    if (c < 0) return decode_error(q, f.name, "missing from the result");
    field_columns.push_back(c);
  }
  std::vector<int> metric_columns;
  bool counters = false;
  for (const MetricSpec* metric : metrics) {
    const int c = table.column(metric->name);
    if (c < 0) return decode_error(q, metric->name, "missing from the result");
    metric_columns.push_back(c);
    counters = counters || has_start_time(datum_type(metric->kind));
  }
  const int start_column = counters ? table.column(kStartTimeColumn) : -1;
  if (counters && start_column < 0) return decode_error(q, kStartTimeColumn, "missing");

  std::vector<Sample> out;
  out.reserve(table.rows.size() * metrics.size());
  for (const auto& row : table.rows) {
    std::optional<Timestamp> start;
    if (counters) {
      const auto& text = row[static_cast<std::size_t>(start_column)];
      int64_t us = 0;
      if (!text || !parse_integer(*text, us)) {
        return decode_error(q, kStartTimeColumn, "not a time in microseconds");
      }
      start = Timestamp(std::chrono::microseconds(us));
    }
    Fields fields;
    fields.reserve(q.fields.size());
    for (std::size_t i = 0; i < q.fields.size(); ++i) {
      const auto& text = row[static_cast<std::size_t>(field_columns[i])];
      fields.push_back(Field{q.fields[i].name, text.value_or(std::string())});
    }
    for (std::size_t i = 0; i < metrics.size(); ++i) {
      const MetricSpec& metric = *metrics[i];
      const std::optional<Timestamp> metric_start =
          has_start_time(datum_type(metric.kind)) ? start : std::nullopt;
      auto datum =
          parse_value(q, metric, row[static_cast<std::size_t>(metric_columns[i])], metric_start);
      if (!datum.ok()) return datum.status();
      out.push_back(
          Sample{make_timeseries(target, Metric{metric.name, fields}), now, std::move(*datum)});
    }
  }
  return out;
}

}  // namespace tally::collector::pgstats
