#include "query_sql.h"

#include <algorithm>
#include <array>

#include "tally/common/field.h"
#include "tally/schema/measurement_tables.h"
#include "tally/schema/views.h"

namespace tally::ctl {
namespace {

using schema::FieldSchema;
using namespace std::chrono_literals;

constexpr std::array<std::pair<Agg, std::string_view>, 12> kAggNames = {{
    {Agg::kMean, "mean"},
    {Agg::kMin, "min"},
    {Agg::kMax, "max"},
    {Agg::kSum, "sum"},
    {Agg::kCount, "count"},
    {Agg::kLast, "last"},
    {Agg::kDelta, "delta"},
    {Agg::kRate, "rate"},
    {Agg::kP50, "p50"},
    {Agg::kP90, "p90"},
    {Agg::kP95, "p95"},
    {Agg::kP99, "p99"},
}};

std::string_view quantile_text(Agg a) {
  switch (a) {
    case Agg::kP50:
      return "0.5";
    case Agg::kP90:
      return "0.9";
    case Agg::kP95:
      return "0.95";
    default:
      return "0.99";
  }
}

// "a, b, " or "" — a column list followed by more columns.
std::string leading(const std::vector<std::string>& columns) {
  std::string out;
  for (const std::string& c : columns) out += c + ", ";
  return out;
}

std::string field_names(const schema::TimeseriesSchema& s) {
  std::string out;
  for (const FieldSchema& f : s.fields) out += (out.empty() ? "" : ", ") + f.name;
  return out.empty() ? "none" : out;
}

const FieldSchema* find_field(const schema::TimeseriesSchema& s, std::string_view name) {
  for (const FieldSchema& f : s.fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

Status usage(std::string message) { return Status::error(std::move(message), "usage"); }

// Builds the statement piece by piece; parameters are numbered in the order they are added.
class Builder {
 public:
  std::string param(std::string value) {
    params_.emplace_back(std::move(value));
    return "$" + std::to_string(params_.size());
  }
  pg::Params take_params() { return std::move(params_); }

 private:
  pg::Params params_;
};

}  // namespace

std::optional<Agg> parse_agg(std::string_view name) {
  for (const auto& [agg, text] : kAggNames) {
    if (text == name) return agg;
  }
  return std::nullopt;
}

std::string_view to_string(Agg agg) {
  for (const auto& [a, text] : kAggNames) {
    if (a == agg) return text;
  }
  return "?";
}

std::vector<Agg> aggs_for(DatumType type) {
  if (is_histogram(type)) return {Agg::kP50, Agg::kP90, Agg::kP95, Agg::kP99, Agg::kCount};
  if (is_cumulative(type)) return {Agg::kRate, Agg::kDelta, Agg::kCount, Agg::kLast};
  if (type == DatumType::kString || type == DatumType::kBytes) return {Agg::kLast, Agg::kCount};
  return {Agg::kMean, Agg::kMin, Agg::kMax, Agg::kSum, Agg::kCount, Agg::kLast};
}

std::chrono::microseconds default_step(std::chrono::microseconds range) {
  static constexpr std::array<std::chrono::seconds, 17> kNice = {
      1s, 2s, 5s, 10s, 15s, 30s, 1min, 2min, 5min, 10min, 15min, 30min, 1h, 2h, 3h, 6h, 12h};
  const std::chrono::microseconds wanted = range / 60;
  for (std::chrono::seconds nice : kNice) {
    if (nice >= wanted) return nice;
  }
  const std::chrono::microseconds day = 24h;
  return day * ((wanted.count() + day.count() - 1) / day.count());
}

Result<BuiltQuery> build_query(const QuerySpec& spec) {
  const schema::TimeseriesSchema& s = spec.schema;
  const DatumType type = s.datum_type;
  const std::vector<Agg> allowed = aggs_for(type);
  if (std::find(allowed.begin(), allowed.end(), spec.agg) == allowed.end()) {
    std::string names;
    for (Agg a : allowed) names += (names.empty() ? "" : ", ") + std::string(to_string(a));
    return usage("--agg " + std::string(to_string(spec.agg)) + " does not apply to '" +
                 s.timeseries_name + "' (" + std::string(to_string(type)) + "); use one of " +
                 names);
  }

  Builder b;
  BuiltQuery out;
  const std::string name = b.param(s.timeseries_name);
  const std::string version = b.param(std::to_string(s.version));
  const std::string from = b.param(format_rfc3339(spec.from)) + "::timestamptz";
  const std::string to = b.param(format_rfc3339(spec.to)) + "::timestamptz";
  const std::string step =
      b.param(std::to_string(spec.step.count()) + " microseconds") + "::interval";

  // Which series: the name, the version and every --where. Each value is checked against the
  // field's type, bound in its canonical form and compared as the field's SQL type (numbers as
  // numbers, addresses as inet, UUIDs as uuid).
  std::string series_where =
      "t.timeseries_name = " + name + " AND t.version = " + version + "::integer";
  for (const FieldFilter& f : spec.where) {
    const FieldSchema* field = find_field(s, f.field);
    if (field == nullptr) {
      return usage("--where: '" + s.timeseries_name + "' has no field '" + f.field +
                   "' (fields: " + field_names(s) + ")");
    }
    auto value = parse_field_value(field->type, f.value);
    if (!value.ok()) {
      return usage("--where " + f.field + (f.equal ? "=" : "!=") + f.value + ": '" + f.value +
                   "' is not a valid " + std::string(to_string(field->type)) + " (" +
                   value.error() + ")");
    }
    series_where += " AND " + schema::field_sql_expr("t", field->name, field->type) +
                    (f.equal ? " = " : " <> ") + b.param(format_field_value(*value)) +
                    "::" + std::string(schema::field_sql_type(field->type));
  }

  // The columns that identify a row of output: every field (each series on its own, keyed by
  // timeseries_key as well) or the group-by fields.
  const bool per_series = !spec.group_by.has_value();
  if (per_series) {
    out.columns = s.fields;
  } else {
    for (const std::string& g : *spec.group_by) {
      const FieldSchema* field = find_field(s, g);
      if (field == nullptr) {
        return usage("--group-by: '" + s.timeseries_name + "' has no field '" + g +
                     "' (fields: " + field_names(s) + ")");
      }
      const bool seen = std::any_of(out.columns.begin(), out.columns.end(),
                                    [&](const FieldSchema& c) { return c.name == g; });
      if (!seen) out.columns.push_back(*field);
    }
  }
  std::vector<std::string> g;  // g0, g1, …
  std::string series_cols = "t.timeseries_key AS key";
  for (std::size_t i = 0; i < out.columns.size(); ++i) {
    g.push_back("g" + std::to_string(i));
    series_cols += ", " + schema::field_sql_expr("t", out.columns[i].name, out.columns[i].type) +
                   " AS " + g.back();
  }
  std::vector<std::string> part = g;  // what GROUP BY and PARTITION BY use
  if (per_series) part.push_back("key");

  const std::string table = schema::table_name(schema::measurement_table(type));
  const bool counter = is_cumulative(type);
  const bool histogram = is_histogram(type);
  // Deltas need each series' sample before the first bucket: read one step further back.
  const bool needs_previous =
      histogram || (counter && (spec.agg == Agg::kDelta || spec.agg == Agg::kRate));
  const std::string lower = needs_previous ? "(" + from + " - " + step + ")" : from;
  const std::string bucket = "date_bin(" + step + ", ts, " + from + ") AS bucket";

  std::string sql = "WITH series AS (SELECT " + series_cols + " FROM tally.timeseries t WHERE " +
                    series_where + "),\n";
  const std::string in_range =
      "m.timeseries_key IN (SELECT key FROM series) AND m.\"timestamp\" >= " + lower +
      " AND m.\"timestamp\" < " + to;

  if (histogram) {
    // Histogram datums count since start_time: each snapshot minus the one before is what was
    // observed in between. A new start_time, other bins or a count that went down is a reset,
    // after which the snapshot itself is the increase. The first snapshot only counts when the
    // histogram started inside the range.
    sql +=
        "raw AS (SELECT m.timeseries_key AS key, m.\"timestamp\" AS ts, m.start_time AS st, "
        "m.bins, m.counts FROM " +
        table + " m WHERE " + in_range +
        " AND m.counts IS NOT NULL),\n"
        "lagged AS (SELECT *, lag(counts) OVER w AS pc, lag(bins) OVER w AS pb, "
        "lag(st) OVER w AS pst FROM raw WINDOW w AS (PARTITION BY key ORDER BY ts, st)),\n"
        "marked AS (SELECT key, ts, bins, counts, pc, CASE WHEN pc IS NULL THEN "
        "CASE WHEN st >= " +
        from +
        " THEN 1 ELSE 0 END "
        "WHEN st <> pst OR bins IS DISTINCT FROM pb OR cardinality(counts) <> cardinality(pc) "
        "OR EXISTS (SELECT 1 FROM unnest(counts, pc) AS d(c, p) WHERE c < p) THEN 1 ELSE 2 END "
        "AS mode FROM lagged WHERE ts >= " +
        from +
        "),\n"
        "binned AS (SELECT m.key, m.ts, u.lower, "
        "CASE WHEN m.mode = 1 THEN u.c ELSE u.c - u.p END AS n FROM marked m "
        "CROSS JOIN LATERAL unnest(m.bins, m.counts, m.pc) WITH ORDINALITY AS u(lower, c, p, i) "
        "WHERE m.mode > 0 AND u.i <= cardinality(m.counts)),\n";
    if (spec.agg == Agg::kCount) {
      sql += "result AS (SELECT " + leading(part) + bucket +
             ", sum(n) AS value FROM binned JOIN series USING (key) GROUP BY " + leading(part) +
             "bucket)\n";
    } else {
      // Bins are matched by their lower edge across snapshots, series and the step. The
      // quantile falls in the bin where the running count reaches q·total; it is interpolated
      // linearly between the bin's lower edge and the next bin's. The first bin, unbounded
      // below, gives its upper edge; the last, unbounded above, its lower edge.
      const std::string q = b.param(std::string(quantile_text(spec.agg))) + "::numeric";
      const std::string window = "PARTITION BY " + leading(part) + "bucket";
      const std::string edge = type == DatumType::kHistogramF32 || type == DatumType::kHistogramF64
                                   ? "float8"
                                   : "numeric";
      sql +=
          "summed AS (SELECT " + leading(part) + bucket +
          ", lower, sum(n) AS n FROM binned JOIN series USING (key) GROUP BY " + leading(part) +
          "bucket, lower),\n"
          "ranked AS (SELECT *, sum(n) OVER (" +
          window +
          " ORDER BY lower NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum, "
          "sum(n) OVER (" +
          window + ") AS total, lead(lower) OVER (" + window +
          " ORDER BY lower NULLS FIRST) AS upper FROM summed),\n"
          "result AS (SELECT " +
          leading(part) +
          "bucket, (CASE WHEN lower IS NULL THEN upper "
          "WHEN upper IS NULL THEN lower ELSE lower + (upper - lower) * ((" +
          q + " * total - (cum - n)) / n)::" + edge +
          " END)::float8 AS value FROM ranked "
          "WHERE n > 0 AND cum - n < " +
          q + " * total AND " + q + " * total <= cum)\n";
    }
  } else if (counter && (spec.agg == Agg::kDelta || spec.agg == Agg::kRate)) {
    // Per series, in time order: the increase since the previous sample; a decrease or a new
    // start_time is a reset, after which the value itself is the increase. The first sample
    // only counts when the counter started inside the range.
    sql +=
        "raw AS (SELECT m.timeseries_key AS key, m.\"timestamp\" AS ts, m.start_time AS st, "
        "m.datum AS v FROM " +
        table + " m WHERE " + in_range +
        " AND m.datum IS NOT NULL),\n"
        "lagged AS (SELECT *, lag(v) OVER w AS pv, lag(st) OVER w AS pst FROM raw "
        "WINDOW w AS (PARTITION BY key ORDER BY ts, st, v)),\n"
        "deltas AS (SELECT key, ts, CASE WHEN pv IS NULL THEN CASE WHEN st >= " +
        from +
        " THEN v END WHEN st <> pst OR v < pv THEN v ELSE v - pv END AS v FROM lagged "
        "WHERE ts >= " +
        from + "),\n";
    const std::string value = spec.agg == Agg::kRate
                                  ? "(sum(v)::float8 / extract(epoch FROM " + step + ")::float8)"
                                  : "sum(v)";
    sql += "result AS (SELECT " + leading(part) + bucket + ", " + value +
           " AS value FROM deltas JOIN series USING (key) WHERE v IS NOT NULL GROUP BY " +
           leading(part) + "bucket)\n";
  } else {
    // Gauges (and counters' count and last): the samples themselves. bool counts as 0/1, bytes
    // print as hex.
    std::string v = "m.datum";
    if (type == DatumType::kBool) v = "m.datum::integer";
    if (type == DatumType::kBytes) v = "encode(m.datum, 'hex')";
    sql += "raw AS (SELECT m.timeseries_key AS key, m.\"timestamp\" AS ts, " + v + " AS v FROM " +
           table + " m WHERE " + in_range + " AND m.datum IS NOT NULL),\n";
    if (spec.agg == Agg::kLast) {
      // Each series' last value in the step; a group adds them up (strings and bytes: the
      // latest of them).
      sql += "lasts AS (SELECT DISTINCT ON (key, bucket) key, " + bucket +
             ", ts, v FROM raw ORDER BY key, bucket, ts DESC, v),\n";
      if (type == DatumType::kString || type == DatumType::kBytes) {
        sql += "result AS (SELECT DISTINCT ON (" + leading(part) + "bucket) " + leading(part) +
               "bucket, v AS value FROM lasts JOIN series USING (key) ORDER BY " + leading(part) +
               "bucket, ts DESC, v)\n";
      } else {
        sql += "result AS (SELECT " + leading(part) +
               "bucket, sum(v) AS value FROM lasts JOIN series USING (key) GROUP BY " +
               leading(part) + "bucket)\n";
      }
    } else {
      std::string value;
      switch (spec.agg) {
        case Agg::kMean:
          value = "avg(v)::float8";
          break;
        case Agg::kMin:
          value = "min(v)";
          break;
        case Agg::kMax:
          value = "max(v)";
          break;
        case Agg::kSum:
          value = "sum(v)";
          break;
        default:
          value = "count(*)";
          break;
      }
      sql += "result AS (SELECT " + leading(part) + bucket + ", " + value +
             " AS value FROM raw JOIN series USING (key) GROUP BY " + leading(part) + "bucket)\n";
    }
  }

  // The typed columns order the rows; they are printed as text under other names, so that
  // ORDER BY sees the typed ones. host() prints an address without its /32 or /128.
  std::string select = "SELECT ";
  for (std::size_t i = 0; i < g.size(); ++i) {
    select += out.columns[i].type == FieldType::kIpAddr ? "host(" + g[i] + ")" : g[i] + "::text";
    select += " AS text_" + g[i] + ", ";
  }
  sql += select + "(extract(epoch FROM bucket) * 1000000)::bigint, value::text FROM result " +
         "ORDER BY " + leading(part) + "bucket";
  out.sql = std::move(sql);
  out.params = b.take_params();
  return out;
}

}  // namespace tally::ctl
