// Encoder of the collect response (DESIGN.md §3.1): oximeter's JSON shape, written straight
// into one std::string with no intermediate document.
//
// A sample is written in pieces that SampleJsonTemplate can render once and reuse: the series
// head (names, target, metric), the timestamp, the datum's opening (type, start time, and a
// histogram's opening up to its first bin), each bin's range, and the values. The generic path
// (append_sample_json) and the template path call the same functions for every piece, so the
// two cannot drift apart.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "tally/common/collect_json.h"
#include "tally/common/json_text.h"

namespace tally {
namespace {

// What encode_collect_response reserves: a sample with a few fields is 500 to 700 bytes, and a
// histogram bin 60 to 80 more. Reserving short meant copying the whole response once or twice
// as it grew (12 MB for 10,000 samples, half of them 17-bin histograms); reserving long costs
// only address space, since pages are not touched until written.
constexpr std::size_t kBytesPerSampleGuess = 700;
constexpr std::size_t kBytesPerBinGuess = 80;

// Room for any number write_number writes: 20 digits and a sign, the shortest float text, or
// "-Infinity" in quotes.
constexpr std::size_t kNumberRoom = kShortestRoom;

// Writes `text` at p and returns its end.
char* put(char* p, std::string_view text) {
  std::memcpy(p, text.data(), text.size());
  return p + text.size();
}

// Writes a number at p (kNumberRoom bytes) and returns its end. Floats: the shortest text that
// reads back as the same value of T; the non-finite values are strings, as oximeter writes them.
// Integers are widened so that int8_t/uint8_t print as numbers.
template <class T>
char* write_number(char* p, T value) {
  if constexpr (std::is_same_v<T, bool>) {
    return put(p, value ? "true" : "false");
  } else if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(value)) return put(p, "\"NaN\"");
    if (std::isinf(value)) return put(p, value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    return write_shortest(p, value);
  } else if constexpr (std::is_signed_v<T>) {
    if (value >= 0) return write_decimal(p, static_cast<uint64_t>(value));
    *p = '-';
    // 0 - (unsigned)value is |value|, INT64_MIN included.
    return write_decimal(p + 1, 0 - static_cast<uint64_t>(static_cast<int64_t>(value)));
  } else {
    return write_decimal(p, static_cast<uint64_t>(value));
  }
}

template <class T>
void append_number(std::string& out, T value) {
  char text[kNumberRoom];
  out.append(text, static_cast<std::size_t>(write_number(text, value) - text));
}

template <class T>
void append_integer(std::string& out, T value) {
  append_number(out, value);
}

// Writes a piece made of many short parts into `out` through a pointer: one append (or resize)
// instead of a capacity check and a call per part. `write(char* p)` writes at most `room` bytes
// at p and returns their end. A piece that fits goes through a buffer on the stack, which stays
// in the L1 cache; a larger one is written in place, into `room` bytes added to `out` (zeroed,
// the cost the stack buffer saves) and cut back to what was written.
template <class Write>
void append_written(std::string& out, std::size_t room, Write write) {
  constexpr std::size_t kStackRoom = 4096;
  if (room <= kStackRoom) {
    char text[kStackRoom];
    out.append(text, static_cast<std::size_t>(write(text) - text));
    return;
  }
  const std::size_t start = out.size();
  out.resize(start + room);
  out.resize(static_cast<std::size_t>(write(out.data() + start) - out.data()));
}

// append_rfc3339 goes through snprintf; a response's timestamps are mostly one or a few
// seconds, so the text up to the fraction is kept per thread and only the microseconds are
// written per timestamp.
void append_timestamp(std::string& out, Timestamp t) {
  struct SecondText {
    int64_t second = INT64_MIN;
    std::string prefix;  // "\"2026-11-22T10:00:00."
  };
  thread_local SecondText cache;
  const int64_t us = t.time_since_epoch().count();
  int64_t second = us / 1'000'000;
  int64_t micros = us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    second -= 1;
  }
  if (second != cache.second) {
    std::string text(1, '"');
    append_rfc3339(text, Timestamp(std::chrono::seconds(second)));
    text.resize(text.size() - 7);  // "000000Z": the fraction is written below
    cache.prefix = std::move(text);
    cache.second = second;
  }
  char tail[8] = {'0', '0', '0', '0', '0', '0', 'Z', '"'};
  for (int i = 5; i >= 0; --i, micros /= 10) tail[i] = static_cast<char>('0' + micros % 10);
  out += cache.prefix;
  out.append(tail, sizeof tail);
}

void append_field_json_value(std::string& out, const FieldValue& value) {
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          append_json_string(out, x);
        } else if constexpr (std::is_same_v<T, Uuid>) {
          out += '"';  // a UUID's text needs no escaping
          x.append_to(out);
          out += '"';
        } else if constexpr (std::is_same_v<T, IpAddr>) {
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

void append_owner(std::string& out, std::string_view name, const Fields& fields) {
  out += "{\"name\":";
  append_json_string(out, name);
  out += ",\"fields\":";
  append_fields(out, fields);
  out.push_back('}');
}

// ---- the pieces of a sample

// {"timeseries_name":"t:m","timeseries_version":1,"target":
void append_series_head(std::string& out, std::string_view target_name,
                        std::string_view metric_name, uint32_t version) {
  // Names are plain ASCII once validated, but escaping keeps unvalidated input well-formed.
  out += "{\"timeseries_name\":\"";
  append_json_escaped(out, target_name);
  out.push_back(':');
  append_json_escaped(out, metric_name);
  out += "\",\"timeseries_version\":";
  append_integer(out, version);
  out += ",\"target\":";
}

// ,"metric":{…},"measurement":{"timestamp":
void append_series_metric(std::string& out, const Metric& metric) {
  out += ",\"metric\":";
  append_owner(out, metric.name, metric.fields);
  out += ",\"measurement\":{\"timestamp\":";
}

// Bin i's text up to its count: {"range":{…},"count": with the comma before it. The model keeps
// lower edges; oximeter's ranges are rebuilt from each bin and the next. Writes at p, which has
// kBinOpenRoom bytes, and returns the end.
constexpr std::size_t kBinOpenRoom = 64 + 2 * kNumberRoom;
template <class T>
char* write_bin_open(char* p, const std::vector<Bin<T>>& bins, std::size_t i) {
  if (i > 0) *p++ = ',';
  const std::optional<T>& lower = bins[i].lower;
  const bool bounded_above = i + 1 < bins.size() && bins[i + 1].lower.has_value();
  p = put(p, "{\"range\":{\"type\":\"");
  if (!lower && bounded_above) {
    p = put(p, "range_to\",\"end\":");
    p = write_number(p, *bins[i + 1].lower);
  } else if (lower && bounded_above) {
    p = put(p, "range\",\"start\":");
    p = write_number(p, *lower);
    p = put(p, ",\"end\":");
    p = write_number(p, *bins[i + 1].lower);
  } else {
    // The last bin, or an invalid histogram (validate_datum rejects it) written as-is.
    p = put(p, "range_from\",\"start\":");
    p = lower ? write_number(p, *lower) : put(p, "null");
  }
  return put(p, "},\"count\":");
}

template <class T>
void append_bin_open(std::string& out, const std::vector<Bin<T>>& bins, std::size_t i) {
  append_written(out, kBinOpenRoom, [&](char* p) { return write_bin_open(p, bins, i); });
}

// ,"datum":{"type":"…","datum": and, for a cumulative or histogram datum, its object up to the
// first value: {"start_time":"…","value": or {"start_time":"…","bins":[
void append_datum_open(std::string& out, const Datum& d) {
  out += ",\"datum\":{\"type\":\"";
  out += is_missing(d) ? std::string_view("missing") : to_string(datum_type(d));
  out += "\",\"datum\":";
  std::visit(
      [&out](const auto& x) {
        if constexpr (requires { x.bins; }) {
          out += "{\"start_time\":";
          append_timestamp(out, x.start_time);
          out += ",\"bins\":[";
        } else if constexpr (requires { x.value; }) {
          out += "{\"start_time\":";
          append_timestamp(out, x.start_time);
          out += ",\"value\":";
        }
      },
      d);
}

}  // namespace

// The bins of a histogram shape, rendered up to each count: bin i's text is
// text[ends[i-1], ends[i]). `shape` keeps the edges the text was rendered from.
struct SampleJsonTemplate::BinRanges {
  Datum shape;
  std::string text;
  std::vector<uint32_t> ends;

  // True when `bins` (of a histogram of the shape's alternative) have the shape's edges, bit for
  // bit: -0.0 and 0.0 are written differently.
  template <class T>
  bool same_edges(const std::vector<Bin<T>>& bins) const {
    const auto& edges = std::get<Histogram<T>>(shape).bins;
    if (bins.size() != edges.size()) return false;
    for (std::size_t i = 0; i < bins.size(); ++i) {
      const auto& a = bins[i].lower;
      const auto& b = edges[i].lower;
      if (a.has_value() != b.has_value()) return false;
      if (a && std::memcmp(&*a, &*b, sizeof *a) != 0) return false;
    }
    return true;
  }
  bool same_edges(const Datum& d) const {
    if (d.index() != shape.index()) return false;
    return std::visit(
        [this](const auto& x) {
          if constexpr (requires { x.bins; }) {
            return same_edges(x.bins);
          } else {
            return false;
          }
        },
        d);
  }
};

namespace {

// A histogram's bins and values after append_datum_open, and the '}' of its object. With
// `ranges` (the same edges as h), bin ranges are copied from it instead of formatted.
template <class T>
void append_histogram_rest(std::string& out, const Histogram<T>& h,
                           const SampleJsonTemplate::BinRanges* ranges) {
  const std::size_t n = h.bins.size();
  constexpr std::size_t kTailRoom = 100 + 5 * kNumberRoom;
  const std::size_t room = (ranges != nullptr ? ranges->text.size() : n * kBinOpenRoom) +
                           n * (kNumberRoom + 1) + kTailRoom;
  append_written(out, room, [&](char* p) {
    for (std::size_t i = 0; i < n; ++i) {
      if (ranges != nullptr) {
        const uint32_t begin = i == 0 ? 0 : ranges->ends[i - 1];
        p = put(p, std::string_view(ranges->text).substr(begin, ranges->ends[i] - begin));
      } else {
        p = write_bin_open(p, h.bins, i);
      }
      p = write_number(p, h.bins[i].count);
      *p++ = '}';
    }
    p = put(p, "],\"n_samples\":");
    p = write_number(p, h.n_samples);
    p = put(p, ",\"min\":");
    p = write_number(p, h.min);
    p = put(p, ",\"max\":");
    p = write_number(p, h.max);
    p = put(p, ",\"sum_of_samples\":");
    p = write_number(p, h.sum_of_samples);
    p = put(p, ",\"squared_mean\":");
    p = write_number(p, h.squared_mean);
    *p++ = '}';
    return p;
  });
}

// The rest of the datum after append_datum_open: the values and the closing brackets. With
// `ranges` (the same edges as d), bin ranges are copied from it instead of formatted.
void append_datum_rest(std::string& out, const Datum& d,
                       const SampleJsonTemplate::BinRanges* ranges) {
  std::visit(
      [&out, ranges](const auto& x) {
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
          out += "{\"datum_type\":\"";
          out += to_string(x.datum_type);
          out += "\",\"start_time\":";
          if (x.start_time) {
            append_timestamp(out, *x.start_time);
          } else {
            out += "null";
          }
          out.push_back('}');
        } else if constexpr (requires { x.bins; }) {
          append_histogram_rest(out, x, ranges);
        } else if constexpr (requires { x.value; }) {
          append_number(out, x.value);
          out.push_back('}');
        } else {
          append_number(out, x);
        }
      },
      d);
  out.push_back('}');
}

std::shared_ptr<const SampleJsonTemplate::BinRanges> render_bins(const Datum& shape) {
  return std::visit(
      [&shape](const auto& h) -> std::shared_ptr<const SampleJsonTemplate::BinRanges> {
        if constexpr (requires { h.bins; }) {
          auto ranges = std::make_shared<SampleJsonTemplate::BinRanges>();
          ranges->shape = shape;
          for (std::size_t i = 0; i < h.bins.size(); ++i) {
            append_bin_open(ranges->text, h.bins, i);
            ranges->ends.push_back(static_cast<uint32_t>(ranges->text.size()));
          }
          return ranges;
        } else {
          return nullptr;
        }
      },
      shape);
}

}  // namespace

void append_sample_json(std::string& out, const Sample& s) {
  append_series_head(out, s.target().name, s.metric().name, s.timeseries_version());
  append_owner(out, s.target().name, s.target().fields);
  append_series_metric(out, s.metric());
  append_timestamp(out, s.timestamp);
  append_datum_open(out, s.datum);
  append_datum_rest(out, s.datum, nullptr);
  out += "}}";
}

void append_collect_item_json(std::string& out, const CollectItem& item) {
  if (item.error) {
    out += "{\"status\":\"err\",\"info\":{\"type\":";
    append_json_string(out, item.error->type);
    out += ",\"content\":";
    append_json_string(out, item.error->content);
    out += "}}";
    return;
  }
  out += kOkItemJsonOpen;
  for (std::size_t i = 0; i < item.samples.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_sample_json(out, item.samples[i]);
  }
  out += kOkItemJsonClose;
}

std::string encode_collect_response(std::span<const CollectItem> items) {
  std::size_t guess = 16;
  for (const CollectItem& item : items) {
    for (const Sample& s : item.samples) {
      guess += kBytesPerSampleGuess;
      std::visit(
          [&guess](const auto& x) {
            if constexpr (requires { x.bins; }) guess += x.bins.size() * kBytesPerBinGuess;
          },
          s.datum);
    }
  }
  std::string out;
  out.reserve(guess);
  out.push_back('[');
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_collect_item_json(out, items[i]);
  }
  out.push_back(']');
  return out;
}

std::string timestamp_json(Timestamp t) {
  std::string out;
  append_timestamp(out, t);
  return out;
}

// ---- templates

TargetJson::TargetJson(const Target& target) : name_(target.name) {
  append_owner(json_, target.name, target.fields);
}

SampleJsonTemplate::SampleJsonTemplate(std::shared_ptr<const TargetJson> target,
                                       const Metric& metric, uint32_t version, const Datum& shape,
                                       const SampleJsonTemplate* same_bins)
    : target_(std::move(target)), index_(shape.index()), start_time_(start_time(shape)) {
  append_series_head(head_, target_->name_, metric.name, version);
  append_series_metric(metric_, metric);
  append_datum_open(datum_open_, shape);
  if (same_bins != nullptr && same_bins->bins_ && same_bins->index_ == index_ &&
      same_bins->bins_->same_edges(shape)) {
    bins_ = same_bins->bins_;
  } else {
    bins_ = render_bins(shape);
  }
}

void SampleJsonTemplate::append(std::string& out, std::string_view quoted_timestamp,
                                const Datum& datum) const {
  out += head_;
  out += target_->json_;
  out += metric_;
  out += quoted_timestamp;
  // One visit for the whole check: the shape's type, start time and edges.
  const bool same_shape = datum.index() == index_ &&
                          std::visit(
                              [this](const auto& x) {
                                using T = std::decay_t<decltype(x)>;
                                if constexpr (std::is_same_v<T, Missing>) {
                                  return x.start_time == start_time_;
                                } else if constexpr (requires { x.bins; }) {
                                  return start_time_ == x.start_time && bins_->same_edges(x.bins);
                                } else if constexpr (requires { x.start_time; }) {
                                  return start_time_ == x.start_time;
                                } else {
                                  return true;  // a gauge: its type alone
                                }
                              },
                              datum);
  if (same_shape) {
    out += datum_open_;
    append_datum_rest(out, datum, bins_.get());
  } else {
    append_datum_open(out, datum);
    append_datum_rest(out, datum, nullptr);
  }
  out += "}}";
}

}  // namespace tally
