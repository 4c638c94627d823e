#include "tally/schema/measurement_reader.h"

#include <charconv>
#include <map>
#include <type_traits>
#include <utility>

#include "tally/schema/measurement_tables.h"
#include "tally/schema/schema_store.h"

namespace tally::schema {
namespace {

template <class T>
struct IsCumulative : std::false_type {};
template <class T>
struct IsCumulative<Cumulative<T>> : std::true_type {};
template <class T>
struct IsHistogram : std::false_type {};
template <class T>
struct IsHistogram<Histogram<T>> : std::true_type {
  using Value = T;
};

Status decode_error(std::string_view what, std::string_view text) {
  return Status::error("cannot read stored " + std::string(what) + " '" + std::string(text) + "'",
                       "decode");
}

// Integers must fit T exactly; f32 values were stored as the double of the float, so narrowing
// back is exact.
template <class T>
bool parse_value(std::string_view text, T& out) {
  if constexpr (std::is_floating_point_v<T>) {
    double d = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
    out = static_cast<T>(d);
    return ec == std::errc() && ptr == text.data() + text.size();
  } else {
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
  }
}

Timestamp micros_to_timestamp(std::string_view text, bool& ok) {
  int64_t us = 0;
  ok = parse_value(text, us);
  return Timestamp(std::chrono::microseconds(us));
}

// Splits a Postgres array literal of unquoted scalars ("{NULL,1,2.5}"); NULL → nullopt.
bool split_array(std::string_view text, std::vector<std::optional<std::string_view>>& out) {
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return false;
  text = text.substr(1, text.size() - 2);
  out.clear();
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    out.push_back(item == "NULL" ? std::nullopt : std::optional<std::string_view>(item));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return true;
}

bool parse_hex(std::string_view hex, Bytes& out) {
  if (hex.size() % 2 != 0) return false;
  out.resize(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto [ptr, ec] = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, out[i], 16);
    if (ec != std::errc() || ptr != hex.data() + 2 * i + 2) return false;
  }
  return true;
}

// One stored row: the datum columns start at `col`.
struct RowView {
  const pg::Rows& rows;
  int row;
  int col;
  std::optional<Timestamp> start_time;

  bool null(int i) const { return rows.is_null(row, col + i); }
  std::string_view text(int i) const { return rows.get(row, col + i); }
};

template <class T>
Result<Datum> decode_histogram(const RowView& r) {
  using Sum = HistogramSum<T>;
  Histogram<T> h;
  h.start_time = *r.start_time;
  // Column order (see select_sql): counts, bins, n_samples, min, max, sum, squared_mean.
  std::vector<std::optional<std::string_view>> counts, edges;
  if (!split_array(r.text(0), counts)) return decode_error("histogram counts", r.text(0));
  if (!split_array(r.text(1), edges) || counts.size() != edges.size()) {
    return decode_error("histogram bins", r.text(1));
  }
  h.bins.resize(edges.size());
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (edges[i]) {
      T lower{};
      if (!parse_value(*edges[i], lower)) return decode_error("histogram edge", *edges[i]);
      h.bins[i].lower = lower;
    }
    if (!counts[i] || !parse_value(*counts[i], h.bins[i].count)) {
      return decode_error("histogram counts", r.text(0));
    }
  }
  if (!parse_value(r.text(2), h.n_samples)) return decode_error("n_samples", r.text(2));
  if (!parse_value(r.text(3), h.min)) return decode_error("histogram min", r.text(3));
  if (!parse_value(r.text(4), h.max)) return decode_error("histogram max", r.text(4));
  Sum sum{};
  if (!parse_value(r.text(5), sum)) return decode_error("histogram sum", r.text(5));
  h.sum_of_samples = sum;
  if (!parse_value(r.text(6), h.squared_mean)) return decode_error("squared_mean", r.text(6));
  return Datum(std::move(h));
}

template <class T>
Result<Datum> decode_present(const RowView& r) {
  if constexpr (std::is_same_v<T, bool>) {
    return Datum(r.text(0) == "t");
  } else if constexpr (std::is_arithmetic_v<T>) {
    T value{};
    if (!parse_value(r.text(0), value)) return decode_error("datum", r.text(0));
    return Datum(value);
  } else if constexpr (std::is_same_v<T, std::string>) {
    return Datum(std::string(r.text(0)));
  } else if constexpr (std::is_same_v<T, Bytes>) {
    Bytes bytes;
    if (!parse_hex(r.text(0), bytes)) return decode_error("bytes", r.text(0));
    return Datum(std::move(bytes));
  } else if constexpr (IsCumulative<T>::value) {
    T c;
    c.start_time = *r.start_time;
    if (!parse_value(r.text(0), c.value)) return decode_error("cumulative", r.text(0));
    return Datum(c);
  } else if constexpr (IsHistogram<T>::value) {
    return decode_histogram<typename IsHistogram<T>::Value>(r);
  } else {
    return Status::error("not a stored datum type", "decode");
  }
}

template <std::size_t... I>
Result<Datum> decode_by_type(DatumType type, const RowView& r, std::index_sequence<I...>) {
  Result<Datum> out = Status::error("unknown datum type", "decode");
  (void)((static_cast<std::size_t>(type) == I
              ? (out = decode_present<std::variant_alternative_t<I, Datum>>(r), true)
              : false) ||
         ...);
  return out;
}

Result<Datum> decode_datum(DatumType type, const RowView& r) {
  // Every datum column is NULL for a missing datum; the first one tells.
  if (r.null(0)) return Datum(Missing{type, r.start_time});
  return decode_by_type(type, r, std::make_index_sequence<kDatumTypeCount>());
}

std::string select_sql(MeasurementTable table, const TimeRange& range) {
  constexpr std::string_view kMicros = "(extract(epoch FROM %) * 1000000)::bigint";
  auto micros = [&](std::string_view column) {
    std::string s(kMicros);
    s.replace(s.find('%'), 1, column);
    return s;
  };
  std::string sql = "SELECT " + micros("\"timestamp\"");
  if (has_start_time(table)) sql += ", " + micros("start_time");
  switch (table) {
    case MeasurementTable::kBytes:
      sql += ", encode(datum, 'hex')";  // independent of the session's bytea_output
      break;
    case MeasurementTable::kHistogramI64:
    case MeasurementTable::kHistogramF64:
      // counts first: it is NULL exactly when the datum is missing.
      sql += ", counts, bins, n_samples, min, max, sum, squared_mean";
      break;
    default:
      sql += ", datum";
  }
  sql += " FROM " + table_name(table) + " WHERE timeseries_key = $1";
  int param = 2;
  if (range.from) sql += " AND \"timestamp\" >= $" + std::to_string(param++);
  if (range.to) sql += " AND \"timestamp\" < $" + std::to_string(param++);
  return sql + " ORDER BY \"timestamp\"";
}

}  // namespace

Result<std::vector<Measurement>> read_measurements(pg::Connection& conn, int64_t key,
                                                   DatumType type, const TimeRange& range) {
  const MeasurementTable table = measurement_table(type);
  pg::Params params{std::to_string(key)};
  if (range.from) params.push_back(format_rfc3339(*range.from));
  if (range.to) params.push_back(format_rfc3339(*range.to));
  auto rows = conn.exec(select_sql(table, range), params);
  if (!rows.ok()) return rows.status().with_context("reading " + table_name(table));
  const int datum_col = has_start_time(table) ? 2 : 1;
  std::vector<Measurement> out;
  out.reserve(static_cast<std::size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i) {
    bool ok = true;
    Measurement m;
    m.timestamp = micros_to_timestamp(rows->get(i, 0), ok);
    RowView view{*rows, i, datum_col, std::nullopt};
    if (has_start_time(table)) view.start_time = micros_to_timestamp(rows->get(i, 1), ok);
    if (!ok) return decode_error("timestamp", rows->get(i, 0));
    auto datum = decode_datum(type, view);
    if (!datum.ok()) return datum.status();
    m.datum = std::move(datum).value();
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::optional<StoredSeries>> read_series(pg::Connection& conn, int64_t key) {
  auto rows = conn.exec(
      "SELECT t.timeseries_name, t.version, f.key, f.value FROM tally.timeseries t "
      "LEFT JOIN LATERAL jsonb_each_text(t.fields) f ON true WHERE t.timeseries_key = $1",
      {std::to_string(key)});
  if (!rows.ok()) return rows.status().with_context("reading tally.timeseries");
  if (rows->size() == 0) return std::optional<StoredSeries>();
  const std::string name(rows->get(0, 0));
  uint32_t version = 0;
  if (!parse_value(rows->get(0, 1), version)) return decode_error("version", rows->get(0, 1));
  std::map<std::string_view, std::string_view> values;
  for (int i = 0; i < rows->size(); ++i) {
    if (!rows->is_null(i, 2)) values[rows->get(i, 2)] = rows->get(i, 3);
  }
  auto schema = load_schema(conn, name, version);
  if (!schema.ok()) return schema.status();
  if (!schema->has_value()) {
    return Status::error("series " + std::to_string(key) + ": no schema stored for '" + name +
                             "' v" + std::to_string(version),
                         "decode");
  }
  StoredSeries series;
  series.key = key;
  series.schema = std::move(**schema);
  series.target.name = series.schema.target_name;
  series.metric.name = series.schema.metric_name;
  if (values.size() != series.schema.fields.size()) {
    return Status::error("series " + std::to_string(key) + " has " + std::to_string(values.size()) +
                             " fields, its schema " + std::to_string(series.schema.fields.size()),
                         "decode");
  }
  for (const FieldSchema& f : series.schema.fields) {
    auto it = values.find(f.name);
    if (it == values.end()) {
      return Status::error("series " + std::to_string(key) + " lacks field '" + f.name + "'",
                           "decode");
    }
    auto value = parse_field_value(f.type, it->second);
    if (!value.ok()) return value.status().with_context("series field '" + f.name + "'");
    Fields& fields = f.source == FieldSource::kTarget ? series.target.fields : series.metric.fields;
    fields.push_back({f.name, std::move(value).value()});
  }
  return std::optional<StoredSeries>(std::move(series));
}

Result<std::vector<Sample>> read_samples(pg::Connection& conn, int64_t key,
                                         const TimeRange& range) {
  auto series = read_series(conn, key);
  if (!series.ok()) return series.status();
  std::vector<Sample> samples;
  if (!series->has_value()) return samples;
  const StoredSeries& s = **series;
  auto measurements = read_measurements(conn, key, s.schema.datum_type, range);
  if (!measurements.ok()) return measurements.status();
  samples.reserve(measurements->size());
  const TimeseriesRef timeseries = make_timeseries(s.target, s.metric, s.schema.version);
  for (Measurement& m : *measurements) {
    samples.push_back(Sample{timeseries, m.timestamp, std::move(m.datum)});
  }
  return samples;
}

}  // namespace tally::schema
