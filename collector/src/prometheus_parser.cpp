#include "tally/collector/prometheus_parser.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>

namespace tally::collector {
namespace {

enum class Kind { kUntyped, kCounter, kGauge, kHistogram, kSummary };

using Labels = std::vector<std::pair<std::string, std::string>>;

// One sample line: name{labels} value [timestamp].
struct Line {
  std::string name;
  Labels labels;
  double value = 0;
  std::optional<Timestamp> timestamp;
};

// The lines of one series of one family, gathered before they become samples.
struct Series {
  std::string family;
  Kind kind = Kind::kUntyped;
  Labels labels;  // without le/quantile
  std::optional<Timestamp> timestamp;
  std::optional<double> value;    // counter/gauge/untyped
  std::optional<double> created;  // seconds since the epoch
  std::optional<double> sum;
  std::optional<double> count;
  std::vector<std::pair<double, double>> buckets;    // (le, cumulative count)
  std::vector<std::pair<std::string, double>> quantiles;
};

Status error_at(std::size_t line_no, const std::string& message) {
  return Status::error("line " + std::to_string(line_no) + ": " + message, "decode");
}

bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

std::optional<double> parse_value(std::string_view text) {
  if (text == "+Inf" || text == "Inf" || text == "+inf") return INFINITY;
  if (text == "-Inf" || text == "-inf") return -INFINITY;
  if (text == "NaN" || text == "nan") return NAN;
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// 0.0.4 timestamps are integer milliseconds; OpenMetrics ones are (often fractional) seconds.
std::optional<Timestamp> parse_timestamp(std::string_view text, bool openmetrics) {
  auto v = parse_value(text);
  if (!v || !std::isfinite(*v)) return std::nullopt;
  const double micros = openmetrics ? *v * 1e6 : *v * 1e3;
  // Beyond int64 microseconds (±292,000 years) the cast would be undefined (found by tools/fuzz).
  if (!(std::fabs(micros) < 9.2e18)) return std::nullopt;
  return Timestamp(std::chrono::microseconds(static_cast<int64_t>(micros)));
}

class LineReader {
 public:
  LineReader(std::string_view text, std::size_t line_no, bool openmetrics)
      : s_(text), line_no_(line_no), openmetrics_(openmetrics) {}

  Result<Line> read() {
    Line line;
    while (pos_ < s_.size() && name_char(s_[pos_])) ++pos_;
    if (pos_ == 0 || !name_start(s_[0])) return error_at(line_no_, "expected a metric name");
    line.name = std::string(s_.substr(0, pos_));
    skip_blanks();
    if (peek() == '{') {
      ++pos_;
      if (Status st = read_labels(line.labels); !st.ok()) return st;
    }
    skip_blanks();
    const std::string_view value = word();
    if (value.empty()) return error_at(line_no_, "expected a value after '" + line.name + "'");
    auto v = parse_value(value);
    if (!v) return error_at(line_no_, "'" + std::string(value) + "' is not a number");
    line.value = *v;
    skip_blanks();
    const std::string_view ts = word();
    if (!ts.empty() && ts != "#") {
      line.timestamp = parse_timestamp(ts, openmetrics_);
      if (!line.timestamp) return error_at(line_no_, "'" + std::string(ts) + "' is not a timestamp");
      skip_blanks();
      const std::string_view rest = word();
      // OpenMetrics exemplars follow " # "; anything else is junk.
      if (!rest.empty() && rest != "#") return error_at(line_no_, "unexpected text after the timestamp");
    }
    return line;
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_blanks() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  std::string_view word() {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != ' ' && s_[pos_] != '\t') ++pos_;
    return s_.substr(start, pos_ - start);
  }

  Status read_labels(Labels& labels) {
    while (true) {
      skip_blanks();
      if (peek() == '}') {
        ++pos_;
        return {};
      }
      const std::size_t start = pos_;
      while (pos_ < s_.size() && name_char(s_[pos_]) && s_[pos_] != ':') ++pos_;
      if (pos_ == start) return error_at(line_no_, "expected a label name");
      std::string name(s_.substr(start, pos_ - start));
      skip_blanks();
      if (peek() != '=') return error_at(line_no_, "expected '=' after label '" + name + "'");
      ++pos_;
      skip_blanks();
      if (peek() != '"') return error_at(line_no_, "expected '\"' to open the value of '" + name + "'");
      ++pos_;
      std::string value;
      while (true) {
        if (pos_ >= s_.size()) return error_at(line_no_, "unterminated value of label '" + name + "'");
        const char c = s_[pos_++];
        if (c == '"') break;
        if (c != '\\') {
          value += c;
          continue;
        }
        const char e = peek();
        ++pos_;
        if (e == 'n') {
          value += '\n';
        } else if (e == '\\' || e == '"') {
          value += e;
        } else {
          return error_at(line_no_, "bad escape in the value of label '" + name + "'");
        }
      }
      for (const auto& existing : labels) {
        if (existing.first == name) return error_at(line_no_, "label '" + name + "' given twice");
      }
      labels.emplace_back(std::move(name), std::move(value));
      skip_blanks();
      if (peek() == ',') ++pos_;
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::size_t line_no_;
  bool openmetrics_;
};

// OpenMetrics text must end with "# EOF"; the 0.0.4 format has no such line.
bool is_openmetrics(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  return text.size() >= 5 && text.substr(text.size() - 5) == "# EOF";
}

std::optional<Kind> parse_kind(std::string_view type) {
  if (type == "counter") return Kind::kCounter;
  if (type == "gauge") return Kind::kGauge;
  if (type == "histogram" || type == "gaugehistogram") return Kind::kHistogram;
  if (type == "summary") return Kind::kSummary;
  if (type == "untyped" || type == "unknown" || type == "info" || type == "stateset") {
    return Kind::kUntyped;
  }
  return std::nullopt;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string series_id(const std::string& family, const Labels& labels) {
  std::string id = family;
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  for (const auto& [k, v] : sorted) {
    id += '\x1f';
    id += k;
    id += '=';
    id += v;
  }
  return id;
}

Result<uint64_t> to_count(double v, const std::string& what) {
  if (!(v >= 0) || v != std::floor(v) || v > 1.8e19) {
    return Status::error(what + ": count " + std::to_string(v) + " is not a whole number >= 0",
                         "decode");
  }
  return static_cast<uint64_t>(v);
}

}  // namespace

std::string sanitize_prometheus_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    const bool ok = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9');
    if (!ok) lower = '_';
    if (lower == '_' && (out.empty() || out.back() == '_')) continue;
    out += lower;
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  // Names must start with a letter.
  while (!out.empty() && !(out[0] >= 'a' && out[0] <= 'z')) {
    out.erase(0, out[0] == '_' ? 1 : 0);
    if (!out.empty() && out[0] >= '0' && out[0] <= '9') out.insert(0, "m_");
  }
  return out;
}

Result<std::vector<Sample>> PrometheusParser::parse(std::string_view text, Timestamp scrape_time,
                                                    std::size_t max_samples) {
  std::map<std::string, Kind> kinds;  // declared families
  std::vector<Series> series;
  std::unordered_map<std::string, std::size_t> series_index;

  // Which family a sample line belongs to, and which part of it the line is.
  auto resolve = [&kinds](const std::string& name) -> std::pair<std::string, std::string> {
    if (kinds.count(name)) return {name, ""};
    for (std::string_view suffix : {"_bucket", "_sum", "_count", "_created", "_total", "_gcount", "_gsum"}) {
      if (ends_with(name, suffix)) {
        std::string base = name.substr(0, name.size() - suffix.size());
        if (kinds.count(base)) return {base, std::string(suffix)};
      }
    }
    return {name, ""};
  };

  const bool openmetrics = is_openmetrics(text);
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    while (!raw.empty() && (raw.front() == ' ' || raw.front() == '\t')) raw.remove_prefix(1);
    if (raw.empty()) continue;
    if (raw[0] == '#') {
      if (raw == "# EOF") break;
      if (raw.rfind("# TYPE ", 0) == 0) {
        std::string_view rest = raw.substr(7);
        const std::size_t space = rest.find(' ');
        if (space == std::string_view::npos) return error_at(line_no, "TYPE without a type");
        const std::string family(rest.substr(0, space));
        std::string_view type = rest.substr(space + 1);
        while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
        auto kind = parse_kind(type);
        if (!kind) return error_at(line_no, "unknown type '" + std::string(type) + "'");
        kinds[family] = *kind;
      }
      continue;  // HELP, UNIT and other comments
    }
    auto parsed = LineReader(raw, line_no, openmetrics).read();
    if (!parsed.ok()) return parsed.status();
    Line& line = *parsed;
    auto [family, part] = resolve(line.name);
    const Kind kind = kinds.count(family) ? kinds[family] : Kind::kUntyped;
    std::optional<std::string> le;
    std::optional<std::string> quantile;
    Labels labels;
    for (auto& [k, v] : line.labels) {
      if (kind == Kind::kHistogram && k == "le") {
        le = v;
      } else if (kind == Kind::kSummary && k == "quantile" && part.empty()) {
        quantile = v;
      } else {
        labels.emplace_back(k, v);
      }
    }
    const std::string id = series_id(family, labels);
    auto [it, inserted] = series_index.try_emplace(id, series.size());
    if (inserted) {
      Series fresh;
      fresh.family = family;
      fresh.kind = kind;
      fresh.labels = std::move(labels);
      series.push_back(std::move(fresh));
    }
    Series& s = series[it->second];
    if (line.timestamp && !s.timestamp) s.timestamp = line.timestamp;
    if (part == "_created") {
      s.created = line.value;
    } else if (part == "_sum" || part == "_gsum") {
      s.sum = line.value;
    } else if (part == "_count" || part == "_gcount") {
      s.count = line.value;
    } else if (kind == Kind::kHistogram && part == "_bucket") {
      if (!le) return error_at(line_no, "bucket of '" + family + "' without an le label");
      auto bound = parse_value(*le);
      if (!bound) return error_at(line_no, "le=\"" + *le + "\" is not a number");
      s.buckets.emplace_back(*bound, line.value);
    } else if (kind == Kind::kSummary && quantile) {
      s.quantiles.emplace_back(*quantile, line.value);
    } else {
      s.value = line.value;
    }
  }

  std::vector<Sample> out;
  std::unordered_map<std::string, SeriesStart> next_starts;
  const Fields target_fields = {{"producer_id", FieldValue(source_.producer_id)},
                                {"instance", FieldValue(source_.instance)}};

  auto start_for = [&](const std::string& id, std::optional<double> created, double value) {
    if (created && std::isfinite(*created)) {
      return Timestamp(std::chrono::microseconds(static_cast<int64_t>(*created * 1e6)));
    }
    auto prev = starts_.find(id);
    // A counter that went down was reset: it starts again now.
    Timestamp start = (prev == starts_.end() || value < prev->second.last_value)
                          ? scrape_time
                          : prev->second.start_time;
    next_starts[id] = SeriesStart{start, value};
    return start;
  };

  auto emit = [&](const Series& s, std::string metric_name, Fields fields, Datum datum) -> Status {
    if (out.size() >= max_samples) {
      return Status::error("more than " + std::to_string(max_samples) + " samples",
                           "too_many_samples");
    }
    Sample sample;
    sample.target = Target{source_.target_name, target_fields};
    sample.metric = Metric{std::move(metric_name), std::move(fields)};
    sample.timestamp = s.timestamp.value_or(scrape_time);
    sample.datum = std::move(datum);
    if (Status st = validate_sample(sample); !st.ok()) {
      return Status::error("series '" + s.family + "': " + st.message(), "decode");
    }
    out.push_back(std::move(sample));
    return {};
  };

  for (const Series& s : series) {
    const std::string metric = sanitize_prometheus_name(s.family);
    if (metric.empty()) {
      return Status::error("metric family '" + s.family + "' has no usable name", "decode");
    }
    Fields fields;
    for (const auto& [k, v] : s.labels) {
      std::string name = sanitize_prometheus_name(k);
      if (name == "producer_id" || name == "instance") name = "exported_" + name;
      if (name.empty()) return Status::error("label '" + k + "' has no usable name", "decode");
      fields.push_back({std::move(name), FieldValue(v)});
    }
    const std::string id = series_id(s.family, s.labels);
    Status st;
    switch (s.kind) {
      case Kind::kCounter: {
        if (!s.value) continue;  // only _created seen
        const Timestamp start = start_for(id, s.created, *s.value);
        st = emit(s, metric, fields, Cumulative<double>{start, *s.value});
        break;
      }
      case Kind::kGauge:
      case Kind::kUntyped:
        if (!s.value) continue;
        st = emit(s, metric, fields, *s.value);
        break;
      case Kind::kSummary: {
        for (const auto& [q, v] : s.quantiles) {
          Fields qf = fields;
          qf.push_back({"quantile", FieldValue(q)});
          if (st = emit(s, metric, std::move(qf), v); !st.ok()) break;
        }
        if (!st.ok()) break;
        const Timestamp start = start_for(id, s.created, s.count.value_or(0));
        if (s.sum) st = emit(s, metric + "_sum", fields, Cumulative<double>{start, *s.sum});
        if (st.ok() && s.count) {
          st = emit(s, metric + "_count", fields, Cumulative<double>{start, *s.count});
        }
        break;
      }
      case Kind::kHistogram: {
        std::vector<std::pair<double, double>> buckets = s.buckets;
        std::sort(buckets.begin(), buckets.end());
        Histogram<double> h;
        double previous = 0;
        for (std::size_t i = 0; i < buckets.size(); ++i) {
          const auto [bound, cumulative] = buckets[i];
          if (cumulative < previous) {
            return Status::error("histogram '" + s.family + "': bucket counts decrease at le=" +
                                     std::to_string(bound),
                                 "decode");
          }
          auto count = to_count(cumulative - previous, "histogram '" + s.family + "'");
          if (!count.ok()) return count.status();
          // Prometheus bucket i holds (le[i-1], le[i]]; Tally bin i+1 starts at le[i].
          if (i == 0) {
            h.bins.push_back({std::nullopt, *count});
          } else {
            h.bins.back().count = *count;
          }
          if (std::isinf(bound)) break;
          h.bins.push_back({bound, 0});
          previous = cumulative;
        }
        if (h.bins.size() < 2) {
          return Status::error("histogram '" + s.family + "' has no finite buckets", "decode");
        }
        const double total = s.count.value_or(buckets.empty() ? 0 : buckets.back().second);
        if (buckets.empty() || !std::isinf(buckets.back().first)) {
          // No +Inf bucket: what _count has beyond the last bound belongs to the last bin.
          auto rest = to_count(total - previous, "histogram '" + s.family + "'");
          if (!rest.ok()) return rest.status();
          h.bins.back().count = *rest;
        }
        auto n = to_count(total, "histogram '" + s.family + "'");
        if (!n.ok()) return n.status();
        h.n_samples = *n;
        h.sum_of_samples = s.sum.value_or(NAN);
        // The text format carries neither min, max nor the squared mean.
        h.min = NAN;
        h.max = NAN;
        h.squared_mean = NAN;
        h.start_time = start_for(id, s.created, total);
        st = emit(s, metric, fields, std::move(h));
        break;
      }
    }
    if (!st.ok()) return st;
  }
  starts_ = std::move(next_starts);
  return out;
}

}  // namespace tally::collector
