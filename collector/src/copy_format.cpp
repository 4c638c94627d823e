#include "copy_format.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>
#include <type_traits>
#include <vector>

#include "tally/common/pg.h"
#include "tally/schema/measurement_tables.h"
#include "tally/schema/schema_json.h"

namespace tally::collector {
namespace {

constexpr std::string_view kNull = "\\N";

// Writes `value` as exactly `width` decimal digits at `at`.
void put_digits(char* at, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    at[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
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

// Equal bit for bit (for floats: -0 and 0 print differently, NaN never equals itself).
template <class T>
bool same_edge(const std::optional<T>& a, const std::optional<T>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  if constexpr (std::is_same_v<T, float>) {
    return std::bit_cast<uint32_t>(*a) == std::bit_cast<uint32_t>(*b);
  } else if constexpr (std::is_same_v<T, double>) {
    return std::bit_cast<uint64_t>(*a) == std::bit_cast<uint64_t>(*b);
  } else {
    return *a == *b;
  }
}

// The bins column: "{NULL,0.001,…}". Histograms repeat their layout (every scrape of a series,
// every series of a family), and formatting 20 floating-point edges costs more than the rest of
// the row, so the last layout formatted on this thread is kept with its text.
template <class T>
void append_bin_edges(std::string& out, const std::vector<Bin<T>>& bins) {
  struct Memo {
    std::vector<std::optional<T>> edges;
    std::string text;
  };
  thread_local Memo memo;
  const bool hit =
      memo.edges.size() == bins.size() &&
      std::equal(bins.begin(), bins.end(), memo.edges.begin(),
                 [](const Bin<T>& b, const std::optional<T>& e) { return same_edge(b.lower, e); });
  if (!hit) {
    memo.edges.clear();
    memo.text = "{";
    for (std::size_t i = 0; i < bins.size(); ++i) {
      if (i > 0) memo.text += ',';
      memo.edges.push_back(bins[i].lower);
      if (bins[i].lower) {
        append_number(memo.text, *bins[i].lower);
      } else {
        memo.text += "NULL";
      }
    }
    memo.text += '}';
  }
  out += memo.text;
}

template <class T>
void append_histogram(std::string& out, const Histogram<T>& h) {
  append_bin_edges(out, h.bins);
  out += "\t{";
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
  // Filled in place and appended once: two of these per row of most tables.
  char buf[] = "0000-00-00 00:00:00.000000+00";
  put_digits(buf, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
  put_digits(buf + 5, static_cast<unsigned>(ymd.month()), 2);
  put_digits(buf + 8, static_cast<unsigned>(ymd.day()), 2);
  put_digits(buf + 11, sec_of_day / 3600, 2);
  put_digits(buf + 14, sec_of_day / 60 % 60, 2);
  put_digits(buf + 17, sec_of_day % 60, 2);
  put_digits(buf + 20, static_cast<unsigned>(us_of_day % 1'000'000), 6);
  out.append(buf, sizeof buf - 1);
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
  out += s.target().name;  // names match [a-z0-9_]: nothing to escape
  out += ':';
  out += s.metric().name;
  out += '\t';
  append_integer(out, s.timeseries_version());
  out += '\t';
  std::string json;
  schema::append_series_fields_json(json, s.target().fields, s.metric().fields);
  pg::append_copy_text(out, json);
  out += '\n';
}

}  // namespace tally::collector
