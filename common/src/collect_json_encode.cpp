// Encoder of the collect response (DESIGN.md §3.1): oximeter's JSON shape, written straight
// into one std::string with no intermediate document.
#include <charconv>
#include <cmath>
#include <type_traits>

#include "tally/common/collect_json.h"
#include "tally/common/json_text.h"

namespace tally {
namespace {

constexpr std::size_t kBytesPerSampleGuess = 400;

template <class T>
void append_integer(std::string& out, T value) {
  char buf[24];
  // Widened so that int8_t/uint8_t print as numbers whatever the library does with char types.
  using Wide = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<Wide>(value));
  out.append(buf, ptr);
}

// Shortest text that reads back as the same value of T (float or double); the non-finite
// values are strings, as oximeter writes them.
template <class T>
void append_float(std::string& out, T value) {
  if (std::isnan(value)) {
    out += "\"NaN\"";
  } else if (std::isinf(value)) {
    out += value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    char buf[32];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, ptr);
  }
}

template <class T>
void append_number(std::string& out, T value) {
  if constexpr (std::is_same_v<T, bool>) {
    out += value ? "true" : "false";
  } else if constexpr (std::is_floating_point_v<T>) {
    append_float(out, value);
  } else {
    append_integer(out, value);
  }
}


void append_timestamp(std::string& out, Timestamp t) {
  out.push_back('"');
  append_rfc3339(out, t);
  out.push_back('"');
}

void append_field_json_value(std::string& out, const FieldValue& value) {
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          append_json_string(out, x);
        } else if constexpr (std::is_same_v<T, Uuid> || std::is_same_v<T, IpAddr>) {
          append_json_string(out, x.to_string());
        } else {
          append_number(out, x);
        }
      },
      value);
}

void append_fields(std::string& out, const Fields& fields) {
  out.push_back('{');
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const Field& f = fields[i];
    if (i > 0) out.push_back(',');
    append_json_string(out, f.name);
    out += ":{\"name\":";
    append_json_string(out, f.name);
    out += ",\"value\":{\"type\":\"";
    out += to_string(field_type(f.value));
    out += "\",\"value\":";
    append_field_json_value(out, f.value);
    out += "}}";
  }
  out.push_back('}');
}

template <class Owner>
void append_owner(std::string& out, const Owner& owner) {
  out += "{\"name\":";
  append_json_string(out, owner.name);
  out += ",\"fields\":";
  append_fields(out, owner.fields);
  out.push_back('}');
}

// The model keeps lower edges; oximeter's ranges are rebuilt from each bin and the next.
template <class T>
void append_bins(std::string& out, const std::vector<Bin<T>>& bins) {
  out.push_back('[');
  for (std::size_t i = 0; i < bins.size(); ++i) {
    if (i > 0) out.push_back(',');
    const std::optional<T>& lower = bins[i].lower;
    const bool bounded_above = i + 1 < bins.size() && bins[i + 1].lower.has_value();
    out += "{\"range\":{\"type\":\"";
    if (!lower && bounded_above) {
      out += "range_to\",\"end\":";
      append_number(out, *bins[i + 1].lower);
    } else if (lower && bounded_above) {
      out += "range\",\"start\":";
      append_number(out, *lower);
      out += ",\"end\":";
      append_number(out, *bins[i + 1].lower);
    } else {
      // The last bin, or an invalid histogram (validate_datum rejects it) written as-is.
      out += "range_from\",\"start\":";
      if (lower) {
        append_number(out, *lower);
      } else {
        out += "null";
      }
    }
    out += "},\"count\":";
    append_integer(out, bins[i].count);
    out.push_back('}');
  }
  out.push_back(']');
}

template <class T>
void append_histogram(std::string& out, const Histogram<T>& h) {
  out += "{\"start_time\":";
  append_timestamp(out, h.start_time);
  out += ",\"bins\":";
  append_bins(out, h.bins);
  out += ",\"n_samples\":";
  append_integer(out, h.n_samples);
  out += ",\"min\":";
  append_number(out, h.min);
  out += ",\"max\":";
  append_number(out, h.max);
  out += ",\"sum_of_samples\":";
  append_number(out, h.sum_of_samples);
  out += ",\"squared_mean\":";
  append_number(out, h.squared_mean);
  out.push_back('}');
}

void append_missing(std::string& out, const Missing& m) {
  out += "{\"datum_type\":\"";
  out += to_string(m.datum_type);
  out += "\",\"start_time\":";
  if (m.start_time) {
    append_timestamp(out, *m.start_time);
  } else {
    out += "null";
  }
  out.push_back('}');
}

// The "datum" member of a datum object: a scalar, an array of bytes or an object.
void append_datum_body(std::string& out, const Datum& d) {
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          append_json_string(out, x);
        } else if constexpr (std::is_same_v<T, Bytes>) {
          out.push_back('[');
          for (std::size_t i = 0; i < x.size(); ++i) {
            if (i > 0) out.push_back(',');
            append_integer(out, x[i]);
          }
          out.push_back(']');
        } else if constexpr (std::is_same_v<T, Missing>) {
          append_missing(out, x);
        } else if constexpr (requires { x.bins; }) {
          append_histogram(out, x);
        } else if constexpr (requires { x.value; }) {
          out += "{\"start_time\":";
          append_timestamp(out, x.start_time);
          out += ",\"value\":";
          append_number(out, x.value);
          out.push_back('}');
        } else {
          append_number(out, x);
        }
      },
      d);
}

void append_datum(std::string& out, const Datum& d) {
  out += "{\"type\":\"";
  out += is_missing(d) ? std::string_view("missing") : to_string(datum_type(d));
  out += "\",\"datum\":";
  append_datum_body(out, d);
  out.push_back('}');
}

void append_item(std::string& out, const CollectItem& item) {
  if (item.error) {
    out += "{\"status\":\"err\",\"info\":{\"type\":";
    append_json_string(out, item.error->type);
    out += ",\"content\":";
    append_json_string(out, item.error->content);
    out += "}}";
    return;
  }
  out += "{\"status\":\"ok\",\"info\":[";
  for (std::size_t i = 0; i < item.samples.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_sample_json(out, item.samples[i]);
  }
  out += "]}";
}

}  // namespace

void append_sample_json(std::string& out, const Sample& s) {
  // Names are plain ASCII once validated, but escaping keeps unvalidated input well-formed.
  out += "{\"timeseries_name\":\"";
  append_json_escaped(out, s.target.name);
  out.push_back(':');
  append_json_escaped(out, s.metric.name);
  out += "\",\"timeseries_version\":";
  append_integer(out, s.timeseries_version);
  out += ",\"target\":";
  append_owner(out, s.target);
  out += ",\"metric\":";
  append_owner(out, s.metric);
  out += ",\"measurement\":{\"timestamp\":";
  append_timestamp(out, s.timestamp);
  out += ",\"datum\":";
  append_datum(out, s.datum);
  out += "}}";
}

std::string encode_collect_response(std::span<const CollectItem> items) {
  std::size_t n_samples = 0;
  for (const CollectItem& item : items) n_samples += item.samples.size();
  std::string out;
  out.reserve(16 + n_samples * kBytesPerSampleGuess);
  out.push_back('[');
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_item(out, items[i]);
  }
  out.push_back(']');
  return out;
}

}  // namespace tally
