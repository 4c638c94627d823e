// tallyctl query NAME: a series' samples bucketed by step and aggregated, in Postgres
// (query_sql.cpp builds the statement). docs/query.md is the user's guide.
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>

#include "chart.h"
#include "cli.h"
#include "database.h"
#include "output.h"
#include "query_sql.h"
#include "tally/common/http_message.h"
#include "tally/common/names.h"
#include "tally/schema/schema_store.h"

namespace tally::ctl {
namespace {

using namespace std::chrono_literals;

constexpr const char* kUsage = R"(usage: tallyctl [--db URL] query NAME [options]

  --where FIELD=VALUE    keep the series whose field has this value (FIELD!=VALUE: other
                         values); repeatable, all must hold; VALUE is typed by the schema
  --since DURATION       the last DURATION up to now (default 1h)
  --from TIME --to TIME  [from, to): RFC 3339 (2026-11-22T10:00:00Z) or relative (2h, now-2h, now)
  --step DURATION        bucket width (default: the range / 60, rounded to 1s, 5s, 1m, 5m, …)
  --group-by F1,F2       combine the series sharing these fields' values (--group-by= : all)
  --agg AGG              gauges: mean (default), min, max, sum, count, last
                         cumulative: rate (default, per second), delta, count, last
                         histograms: p50 (default), p90, p95, p99, count
  --format FORMAT        table (default), csv, json or chart
)";

std::string duration_text(std::chrono::microseconds d) { return format_duration(d); }

// "2026-11-22T10:00:00Z", "now", "now-2h", "-2h" or "2h" (= 2h ago).
Timestamp parse_time(const std::string& option, const std::string& text, Timestamp now,
                     bool& relative) {
  std::string_view rest = text;
  if (rest == "now") {
    relative = true;
    return now;
  }
  if (rest.starts_with("now-"))
    rest.remove_prefix(4);
  else if (rest.starts_with("-"))
    rest.remove_prefix(1);
  if (auto d = parse_duration(rest); d.ok()) {
    relative = true;
    return now - *d;
  }
  auto t = parse_rfc3339(text);
  if (!t.ok()) {
    throw UsageError(option + ": '" + text +
                     "' is not a time; give RFC 3339 (2026-11-22T10:00:00Z) or a time relative to "
                     "now (2h, now-30m, now)");
  }
  return *t;
}

std::chrono::microseconds parse_positive_duration(const std::string& option,
                                                  const std::string& text) {
  auto d = parse_duration(text);
  if (!d.ok()) {
    throw UsageError(option + ": '" + text + "' is not a duration (e.g. 30s, 5m, 1h, 2d)");
  }
  if (d->count() <= 0) throw UsageError(option + ": '" + text + "' must be longer than zero");
  return *d;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    std::string part = text.substr(start, comma - start);
    if (part.empty()) throw UsageError("--group-by: empty field name in '" + text + "'");
    out.push_back(std::move(part));
    start = comma + 1;
  }
  return out;
}

FieldFilter parse_where(const std::string& text) {
  const std::size_t at = text.find_first_of("!=");
  if (at == std::string::npos || at == 0 || (text[at] == '!' && text.compare(at, 2, "!=") != 0)) {
    throw UsageError("--where '" + text + "': expected FIELD=VALUE or FIELD!=VALUE");
  }
  FieldFilter f;
  f.field = text.substr(0, at);
  f.equal = text[at] == '=';
  f.value = text.substr(at + (f.equal ? 1 : 2));
  return f;
}

struct Series {
  std::vector<std::string> labels;  // values of BuiltQuery::columns
  std::vector<std::pair<Timestamp, std::optional<std::string>>> points;
};

bool is_text_value(DatumType type, Agg agg) {
  return agg == Agg::kLast && (type == DatumType::kString || type == DatumType::kBytes);
}

void append_json_value(std::string& out, const std::optional<std::string>& value, bool text) {
  if (!value) {
    out += "null";
  } else if (text || *value == "NaN" || *value == "Infinity" || *value == "-Infinity") {
    append_json_string(out, *value);  // DESIGN.md §3.1: non-finite floats as strings
  } else {
    out += *value;
  }
}

void append_json_field(std::string& out, FieldType type, const std::string& value) {
  switch (type) {
    case FieldType::kString:
    case FieldType::kIpAddr:
    case FieldType::kUuid:
      append_json_string(out, value);
      return;
    default:  // integers and true/false
      out += value;
  }
}

std::string series_title(const QuerySpec& spec, const BuiltQuery& q, const Series& s) {
  std::string title = spec.schema.timeseries_name + " " + std::string(to_string(spec.agg));
  for (std::size_t i = 0; i < q.columns.size(); ++i) {
    title += " " + q.columns[i].name + "=" + s.labels[i];
  }
  return title + " (step " + duration_text(spec.step) + ")";
}

int chart_width() {
  if (const char* columns = std::getenv("COLUMNS")) {
    const int n = std::atoi(columns);
    if (n > 0) return n;
  }
  return 80;
}

}  // namespace

int query_command(Context& ctx, const Args& args) {
  if (args.has("--help")) {
    ctx.out << kUsage;
    return kExitOk;
  }
  args.allow_only("query", {"--where", "--since", "--from", "--to", "--step", "--group-by", "--agg",
                            "--format"});
  args.expect_positionals("query", 1, 1, "a timeseries NAME (tallyctl schema list shows them)");
  const std::string name = args.positionals[1];
  if (Status s = validate_timeseries_name(name); !s.ok()) {
    throw UsageError("'" + name + "' is not a timeseries name: " + s.message());
  }
  const std::string format = args.get("--format").value_or("table");
  if (format != "table" && format != "csv" && format != "json" && format != "chart") {
    throw UsageError("--format must be table, csv, json or chart, got '" + format + "'");
  }

  // Everything that needs no database is checked first.
  QuerySpec spec;
  const Timestamp now = tally::now();
  bool relative = false;
  const auto since = args.get("--since");
  const auto from = args.get("--from");
  const auto to = args.get("--to");
  if (since && (from || to)) throw UsageError("give --since or --from/--to, not both");
  if (from || to) {
    bool to_relative = false;
    spec.to = to ? parse_time("--to", *to, now, to_relative) : now;
    spec.from = from ? parse_time("--from", *from, now, relative) : spec.to - 1h;
    if (!from) relative = to_relative;
  } else {
    spec.to = now;
    spec.from = now - (since ? parse_positive_duration("--since", *since) : 1h);
    relative = true;
  }
  if (spec.from >= spec.to) {
    throw UsageError("--from (" + format_rfc3339(spec.from) + ") must be before --to (" +
                     format_rfc3339(spec.to) + ")");
  }
  const auto range = spec.to - spec.from;
  if (auto step = args.get("--step")) {
    spec.step = parse_positive_duration("--step", *step);
    const int64_t steps = (range.count() + spec.step.count() - 1) / spec.step.count();
    if (steps > kMaxSteps) {
      throw UsageError("--step " + *step + " makes " + std::to_string(steps) + " steps over " +
                       duration_text(range) + "; at most " + std::to_string(kMaxSteps) +
                       " (use a larger --step)");
    }
  } else {
    spec.step = default_step(range);
  }
  // A start relative to now is moved back to a multiple of the step, so buckets fall on round
  // times; an absolute --from is kept as given.
  if (relative) {
    const int64_t us = spec.from.time_since_epoch().count();
    const int64_t into_step = ((us % spec.step.count()) + spec.step.count()) % spec.step.count();
    spec.from -= std::chrono::microseconds(into_step);
  }
  for (const std::string& w : args.get_all("--where")) spec.where.push_back(parse_where(w));
  if (args.has("--group-by")) {
    std::vector<std::string> fields;
    for (const std::string& g : args.get_all("--group-by")) {
      for (std::string& f : split_commas(g)) fields.push_back(std::move(f));
    }
    spec.group_by = std::move(fields);
  }
  std::optional<Agg> agg;
  if (auto a = args.get("--agg")) {
    agg = parse_agg(*a);
    if (!agg) {
      throw UsageError("--agg: unknown aggregation '" + *a +
                       "' (mean, min, max, sum, count, last, delta, rate, p50, p90, p95, p99)");
    }
  }

  auto conn = open_database(ctx, "query");
  if (!conn) return kExitFailure;
  auto latest = conn->exec(
      "SELECT max(version) FROM tally.timeseries_schema WHERE timeseries_name = $1", {name});
  if (!latest.ok()) {
    ctx.err << "tallyctl: " << latest.error() << "\n";
    return kExitFailure;
  }
  if (latest->is_null(0, 0)) {
    throw UsageError("unknown timeseries '" + name +
                     "' (tallyctl schema list shows the stored ones)");
  }
  auto schema = schema::load_schema(
      *conn, name, static_cast<uint32_t>(std::stoul(std::string(latest->get(0, 0)))));
  if (!schema.ok() || !schema->has_value()) {
    ctx.err << "tallyctl: " << (schema.ok() ? "schema vanished" : schema.error()) << "\n";
    return kExitFailure;
  }
  spec.schema = std::move(**schema);
  spec.agg = agg ? *agg : aggs_for(spec.schema.datum_type).front();
  auto query = build_query(spec);
  if (!query.ok()) throw UsageError(query.error());
  auto rows = conn->exec(query->sql, query->params);
  if (!rows.ok()) {
    ctx.err << "tallyctl: query failed: " << rows.error() << "\n";
    return kExitFailure;
  }

  // Rows come ordered by series, then time.
  const std::size_t n_columns = query->columns.size();
  std::vector<Series> series;
  for (int r = 0; r < rows->size(); ++r) {
    std::vector<std::string> labels;
    for (std::size_t c = 0; c < n_columns; ++c)
      labels.emplace_back(rows->get(r, static_cast<int>(c)));
    if (series.empty() || series.back().labels != labels) series.push_back({std::move(labels), {}});
    const int at = static_cast<int>(n_columns);
    const Timestamp t{std::chrono::microseconds(std::stoll(std::string(rows->get(r, at))))};
    std::optional<std::string> value;
    if (!rows->is_null(r, at + 1)) value = std::string(rows->get(r, at + 1));
    series.back().points.emplace_back(t, std::move(value));
  }
  if (series.empty()) {
    ctx.err << "no samples of '" << name << "' from " << format_rfc3339(spec.from) << " to "
            << format_rfc3339(spec.to) << "\n";
  }

  const bool text_value = is_text_value(spec.schema.datum_type, spec.agg);
  if (format == "json") {
    std::vector<std::string> items;
    for (const Series& s : series) {
      std::string item = "{\"timeseries_name\":";
      append_json_string(item, name);
      item += ",\"version\":" + std::to_string(spec.schema.version) + ",\"agg\":\"" +
              std::string(to_string(spec.agg)) + "\",\"step\":\"" + duration_text(spec.step) +
              "\",\"fields\":{";
      for (std::size_t c = 0; c < n_columns; ++c) {
        if (c > 0) item += ',';
        append_json_string(item, query->columns[c].name);
        item += ':';
        append_json_field(item, query->columns[c].type, s.labels[c]);
      }
      item += "},\"points\":[";
      for (std::size_t p = 0; p < s.points.size(); ++p) {
        if (p > 0) item += ',';
        item += "{\"timestamp\":\"" + format_rfc3339(s.points[p].first) + "\",\"value\":";
        append_json_value(item, s.points[p].second, text_value);
        item += '}';
      }
      item += "]}";
      items.push_back(std::move(item));
    }
    print_json_array(ctx.out, items);
    return kExitOk;
  }
  if (format == "chart") {
    if (text_value) {
      throw UsageError("--format chart draws numbers; --agg last of a " +
                       std::string(to_string(spec.schema.datum_type)) +
                       " series is text (use --format table)");
    }
    for (const Series& s : series) {
      std::vector<ChartPoint> points;
      for (const auto& [t, v] : s.points) {
        points.push_back({t, v ? std::strtod(v->c_str(), nullptr) : NAN});
      }
      draw_chart(ctx.out, series_title(spec, *query, s), points, spec.from, spec.to, spec.step,
                 {.width = chart_width()});
    }
    return kExitOk;
  }
  Table table;
  for (const auto& c : query->columns) table.columns.push_back(c.name);
  table.columns.emplace_back("timestamp");
  table.columns.emplace_back(to_string(spec.agg));
  for (const Series& s : series) {
    for (const auto& [t, v] : s.points) {
      std::vector<std::string> row = s.labels;
      row.push_back(format_rfc3339(t));
      row.push_back(v.value_or(""));
      table.rows.push_back(std::move(row));
    }
  }
  if (format == "csv") {
    print_csv(ctx.out, table);
  } else {
    print_table(ctx.out, table);
  }
  return kExitOk;
}

}  // namespace tally::ctl
