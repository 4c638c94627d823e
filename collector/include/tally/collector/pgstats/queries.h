// What the Postgres monitor asks each server and how the answers become samples (DESIGN.md §5
// "Postgres monitoring"). The SQL is data: a table of QuerySpecs, each a view (pg_stat_database,
// pg_stat_user_tables, …) with the fields and metrics read from it, every query and every metric
// valid for a range of server_version_num. build_sql() assembles the statement for one server;
// to_samples() turns its result into samples of target `postgres_instance`. docs/pgstats.md lists
// every metric.
//
//   for (const QuerySpec* q : select_queries(builtin_queries(), conn.server_version())) {
//     auto rows = conn.exec(build_sql(*q, version));
//     auto table = ResultTable::from(*rows, result_columns(*q, version));
//     auto samples = to_samples(*q, version, table, target, tally::now());
//   }
//
// Everything here is pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tally/common/pg.h"
#include "tally/common/result.h"
#include "tally/common/sample.h"
#include "tally/common/time.h"

namespace tally::collector::pgstats {

inline constexpr std::string_view kTargetName = "postgres_instance";
// The oldest server monitored: 10 brought the pg_monitor role, pg_wal_lsn_diff and replay_lag.
inline constexpr int kMinServerVersion = 100000;
// The column every query with counters returns: when its counters started (µs since the epoch).
inline constexpr std::string_view kStartTimeColumn = "start_time_us";

enum class ValueKind : uint8_t {
  kCounter,     // cumulative_u64, e.g. xact_commit
  kCounterF64,  // cumulative_f64, e.g. blk_read_time (milliseconds)
  kGaugeI64,    // i64, e.g. database_size_bytes
  kGaugeF64,    // f64, e.g. replication_lag_seconds
  kBool,        // bool, e.g. is_in_recovery
};
DatumType datum_type(ValueKind kind);

// One metric of a query: its value is the result column of the same name.
struct MetricSpec {
  std::string name;  // metric name, e.g. "xact_commit"
  ValueKind kind = ValueKind::kCounter;
  std::string expr;     // SQL expression; empty: the view's column called `name`
  int min_version = 0;  // present from this server_version_num on (0: always)
  int max_version = 0;  // absent from this one on (0: never)
};

// One field of a query's metrics (a string field), e.g. {"database", "datname"}.
struct FieldSpec {
  std::string name;
  std::string expr;  // SQL expression; NULL becomes ""
};

struct QuerySpec {
  std::string name;                     // the `query` label of the monitor's own metrics
  int min_version = kMinServerVersion;  // server_version_num range [min_version, max_version)
  int max_version = 0;                  // 0: no upper bound
  std::vector<FieldSpec> fields;
  // The timestamptz at which the counters of a row started (required when the query has
  // counters): the view's stats_reset, else the postmaster's start.
  std::string start_time;
  // Everything after the select list: "FROM … WHERE … GROUP BY … ORDER BY …" (may be empty).
  std::string from;
  std::vector<MetricSpec> metrics;

  bool applies_to(int version) const;
};

// The monitor's queries: pg_stat_database, pg_stat_user_tables, pg_statio_user_tables,
// pg_stat_bgwriter (pg_stat_checkpointer from 17), connections by database and state,
// replication (primary side), recovery (replica side), database sizes, wraparound age and a few
// instance-wide settings.
const std::vector<QuerySpec>& builtin_queries();

// The specs of `all` that apply to `version`, in order.
std::vector<const QuerySpec*> select_queries(const std::vector<QuerySpec>& all, int version);
// The metrics of `q` present on `version`.
std::vector<const MetricSpec*> metrics_for(const QuerySpec& q, int version);
// "SELECT <fields>, <metrics for version>[, <start time> AS start_time_us] <from>".
std::string build_sql(const QuerySpec& q, int version);

// A query result copied out of libpq: column names and text values (nullopt for NULL).
struct ResultTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;

  // Copies the columns called `wanted` (result_columns()) that `rows` has.
  static ResultTable from(const pg::Rows& rows, const std::vector<std::string>& wanted);
  int column(std::string_view name) const;  // -1 when absent
};
// The columns build_sql(q, version) returns: fields, metrics, then start_time_us if any.
std::vector<std::string> result_columns(const QuerySpec& q, int version);

// Identifies one monitored server in its samples: target postgres_instance{name, host, port}.
struct Instance {
  std::string name;  // the target's configured name
  std::string host;
  uint16_t port = 5432;
};
Target make_target(const Instance& instance);

// One sample per metric per row, timestamped `now`: counters carry the row's start time, NULL
// values are missing datums. Errors (code "decode") name the column: a column the spec needs is
// absent, or a value does not parse as its kind.
Result<std::vector<Sample>> to_samples(const QuerySpec& q, int version, const ResultTable& table,
                                       const Target& target, Timestamp now);

}  // namespace tally::collector::pgstats
