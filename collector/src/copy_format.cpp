#include "copy_format.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <type_traits>

#include "tally/common/pg.h"
#include "tally/schema/measurement_tables.h"
#include "tally/schema/schema_json.h"

namespace tally::collector {
namespace {

constexpr std::string_view kNull = "\\N";

void append_digits(std::string& out, unsigned value, int width) {
  char buf[8];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.append(buf, static_cast<std::size_t>(width));
}

template <class T>
void append_integer(std::string& out, T v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// Integers as decimal (bigint or numeric columns), floats through double: an f32 widens to
// double exactly, so its shortest double text reads back to the same float.
template <class T>
void append_number(std::string& out, T v) {
  if constexpr (std::is_floating_point_v<T>) {
    append_copy_double(out, static_cast<double>(v));
  } else {
    append_integer(out, v);
  }
}

void append_bytes(std::string& out, const Bytes& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\\\x";  // COPY unescapes "\\x" to bytea's hex prefix "\x"
  for (uint8_t b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
}

template <class T>
void append_histogram(std::string& out, const Histogram<T>& h) {
  out += '{';
  for (std::size_t i = 0; i < h.bins.size(); ++i) {
    if (i > 0) out += ',';
    if (h.bins[i].lower) {
      append_number(out, *h.bins[i].lower);
    } else {
      out += "NULL";
    }
  }
  out += "}\t{";
  for (std::size_t i = 0; i < h.bins.size(); ++i) {
    if (i > 0) out += ',';
    append_integer(out, h.bins[i].count);
  }
  out += "}\t";
  append_integer(out, h.n_samples);
  out += '\t';
  append_number(out, h.min);
  out += '\t';
  append_number(out, h.max);
  out += '\t';
  append_number(out, h.sum_of_samples);
  out += '\t';
  append_copy_double(out, h.squared_mean);
}

// Appends the datum columns (and start_time before them where the table has it).
void append_datum(std::string& out, const Datum& d) {
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          out += x ? 't' : 'f';
        } else if constexpr (std::is_arithmetic_v<T>) {
          append_number(out, x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          pg::append_copy_text(out, x);
        } else if constexpr (std::is_same_v<T, Bytes>) {
          append_bytes(out, x);
        } else if constexpr (std::is_same_v<T, Missing>) {
          const auto table = schema::measurement_table(x.datum_type);
          if (schema::has_start_time(table)) {
            append_copy_timestamp(out, *x.start_time);
            out += '\t';
          }
          for (int i = 0; i < schema::datum_column_count(table); ++i) {
            if (i > 0) out += '\t';
            out += kNull;
          }
        } else if constexpr (requires { x.bins; }) {
          append_copy_timestamp(out, x.start_time);
          out += '\t';
          append_histogram(out, x);
        } else {  // Cumulative<T>
          append_copy_timestamp(out, x.start_time);
          out += '\t';
          append_number(out, x.value);
        }
      },
      d);
}

}  // namespace

void append_copy_timestamp(std::string& out, Timestamp t) {
  using namespace std::chrono;
  const sys_days day = floor<days>(t);
  const year_month_day ymd(day);
  const int64_t us_of_day = (t - day).count();
  const auto sec_of_day = static_cast<unsigned>(us_of_day / 1'000'000);
  append_digits(out, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
  out += '-';
  append_digits(out, static_cast<unsigned>(ymd.month()), 2);
  out += '-';
  append_digits(out, static_cast<unsigned>(ymd.day()), 2);
  out += ' ';
  append_digits(out, sec_of_day / 3600, 2);
  out += ':';
  append_digits(out, sec_of_day / 60 % 60, 2);
  out += ':';
  append_digits(out, sec_of_day % 60, 2);
  out += '.';
  append_digits(out, static_cast<unsigned>(us_of_day % 1'000'000), 6);
  out += "+00";
}

void append_copy_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "Infinity" : "-Infinity";
  } else {
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
  }
}

void append_measurement_row(std::string& out, int64_t key, const Sample& s) {
  append_integer(out, key);
  out += '\t';
  append_copy_timestamp(out, s.timestamp);
  out += '\t';
  append_datum(out, s.datum);
  out += '\n';
}

void append_series_row(std::string& out, int64_t key, const Sample& s) {
  append_integer(out, key);
  out += '\t';
  out += s.target.name;  // names match [a-z0-9_]: nothing to escape
  out += ':';
  out += s.metric.name;
  out += '\t';
  append_integer(out, s.timeseries_version);
  out += '\t';
  std::string json;
  schema::append_series_fields_json(json, s.target.fields, s.metric.fields);
  pg::append_copy_text(out, json);
  out += '\n';
}

}  // namespace tally::collector
