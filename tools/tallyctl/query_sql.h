// The SQL behind `tallyctl query` (docs/query.md): one statement, every user value bound as a
// parameter, that selects the series, buckets their samples by step and aggregates them in
// Postgres. The client only prints what comes back.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tally/common/pg.h"
#include "tally/common/result.h"
#include "tally/common/time.h"
#include "tally/schema/timeseries_schema.h"

namespace tally::ctl {

enum class Agg { kMean, kMin, kMax, kSum, kCount, kLast, kDelta, kRate, kP50, kP90, kP95, kP99 };

std::optional<Agg> parse_agg(std::string_view name);
std::string_view to_string(Agg agg);  // "mean", …, "p99"

// The aggregations a datum type allows, the first being its default: gauges mean (string and
// bytes: last), cumulative rate, histograms p50.
std::vector<Agg> aggs_for(DatumType type);

// range / 60 rounded up to 1s, 2s, 5s, 10s, 15s, 30s, 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h,
// 12h or a whole number of days.
std::chrono::microseconds default_step(std::chrono::microseconds range);

// The most steps (buckets) a query may span.
inline constexpr int64_t kMaxSteps = 10'000;

struct FieldFilter {
  std::string field;
  bool equal = true;  // "=", else "!="
  std::string value;  // as the user wrote it; typed by the schema
};

struct QuerySpec {
  schema::TimeseriesSchema schema;
  std::vector<FieldFilter> where;  // all must hold
  Timestamp from;                  // [from, to); buckets start at from + k·step
  Timestamp to;
  std::chrono::microseconds step{60'000'000};
  // nullopt: every series on its own. A list (possibly empty): the series sharing the values of
  // these fields are combined.
  std::optional<std::vector<std::string>> group_by;
  Agg agg = Agg::kMean;
};

struct BuiltQuery {
  std::string sql;
  pg::Params params;
  // The fields whose values start each row, in order (all fields, or the group-by fields).
  std::vector<schema::FieldSchema> columns;
};

// Rows: one text column per entry of `columns`, then the bucket start in microseconds since the
// epoch, then the value as text (NULL when there is none, e.g. a quantile of an empty bucket).
// Ordered by the columns (typed), then by time.
//
// Errors (code "usage") name the bad piece: an unknown field in --where or --group-by, a value
// that is not of its field's type, an aggregation the datum type does not allow.
Result<BuiltQuery> build_query(const QuerySpec& spec);

}  // namespace tally::ctl
