#include "tally/collector/prometheus_parser.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <span>

#include "tally/common/names.h"

// Speed (issue 8): a scrape is read in two passes. The first tokenizes each line into views of
// the text and gathers the lines of each series; nothing is allocated per line (label values
// with escapes aside). The second turns each series into samples, allocating only what the
// samples own. Series identities live in one buffer indexed by an open-addressing table, and
// the start times kept between scrapes are updated in place, so a steady scrape allocates no
// identity strings.
namespace tally::collector {
namespace {

enum class Kind { kUntyped, kCounter, kGauge, kHistogram, kSummary };

// Which part of its family a sample line is: the family's own name, or a suffixed series.
enum class Part { kNone, kBucket, kSum, kCount, kCreated, kTotal, kGcount, kGsum };

constexpr std::pair<std::string_view, Part> kSuffixes[] = {
    {"_bucket", Part::kBucket}, {"_sum", Part::kSum},       {"_count", Part::kCount},
    {"_created", Part::kCreated}, {"_total", Part::kTotal}, {"_gcount", Part::kGcount},
    {"_gsum", Part::kGsum}};

// Views into the scrape text, or into the unescaped copies kept for the parse.
using Label = std::pair<std::string_view, std::string_view>;

// One sample line: name{labels} value [timestamp].
struct Line {
  std::string_view name;
  std::vector<Label> labels;  // reused from line to line
  double value = 0;
  std::optional<Timestamp> timestamp;
};

// The lines of one series of one family, gathered before they become samples.
struct Series {
  std::string_view family;
  Kind kind = Kind::kUntyped;
  std::size_t labels_begin = 0;  // without le/quantile, in the parse's label store
  std::size_t labels_count = 0;
  std::optional<Timestamp> timestamp;
  std::optional<double> value;    // counter/gauge/untyped
  std::optional<double> created;  // seconds since the epoch
  std::optional<double> sum;
  std::optional<double> count;
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
  std::vector<std::pair<std::string_view, double>> quantiles;
};

Status too_many_samples(std::size_t max_samples) {
  return Status::error("more than " + std::to_string(max_samples) + " samples", "too_many_samples");
}

Status error_at(std::size_t line_no, const std::string& message) {
  return Status::error("line " + std::to_string(line_no) + ": " + message, "decode");
}

// Character classes by table: the tokenizer looks at every byte of the scrape.
enum CharClass : uint8_t { kLabelStart = 1, kLabelChar = 2, kColon = 4 };
constexpr std::array<uint8_t, 256> kCharClasses = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (letter) t[c] = kLabelStart | kLabelChar;
    if (c >= '0' && c <= '9') t[c] = kLabelChar;
    if (c == ':') t[c] = kColon;
  }
  return t;
}();
uint8_t char_class(char c) { return kCharClasses[static_cast<unsigned char>(c)]; }
bool name_start(char c) { return char_class(c) & (kLabelStart | kColon); }
bool name_char(char c) { return char_class(c) & (kLabelChar | kColon); }
bool label_char(char c) { return char_class(c) & kLabelChar; }

// Equality of the short strings a scrape is made of, eight bytes at a time and without a call
// to memcmp per pair.
bool same_text(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  const char* x = a.data();
  const char* y = b.data();
  std::size_t n = a.size();
  for (; n >= 8; n -= 8, x += 8, y += 8) {
    uint64_t u;
    uint64_t v;
    std::memcpy(&u, x, 8);
    std::memcpy(&v, y, 8);
    if (u != v) return false;
  }
  for (; n > 0; --n, ++x, ++y) {
    if (*x != *y) return false;
  }
  return true;
}

std::optional<double> parse_value(std::string_view text) {
  double v = 0;
  // Most values are plain numbers: the named ones start with a letter or a sign.
  if (!text.empty() && text[0] >= '0' && text[0] <= '9') {
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
    return v;
  }
  if (text == "+Inf" || text == "Inf" || text == "+inf") return INFINITY;
  if (text == "-Inf" || text == "-inf") return -INFINITY;
  if (text == "NaN" || text == "nan") return NAN;
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
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
  // Label values with escapes are unescaped into `unescaped`, whose elements never move.
  LineReader(std::string_view text, std::size_t line_no, bool openmetrics,
             std::deque<std::string>& unescaped)
      : s_(text), line_no_(line_no), openmetrics_(openmetrics), unescaped_(unescaped) {}

  Status read(Line& line) {
    line.labels.clear();
    line.timestamp.reset();
    while (pos_ < s_.size() && name_char(s_[pos_])) ++pos_;
    if (pos_ == 0 || !name_start(s_[0])) return error_at(line_no_, "expected a metric name");
    line.name = s_.substr(0, pos_);
    skip_blanks();
    if (peek() == '{') {
      ++pos_;
      if (!read_labels(line.labels)) return error_;
    }
    skip_blanks();
    const std::string_view value = word();
    if (value.empty()) {
      return error_at(line_no_, "expected a value after '" + std::string(line.name) + "'");
    }
    auto v = parse_value(value);
    if (!v) return error_at(line_no_, "'" + std::string(value) + "' is not a number");
    line.value = *v;
    skip_blanks();
    const std::string_view ts = word();
    if (!ts.empty() && !same_text(ts, "#")) {
      line.timestamp = parse_timestamp(ts, openmetrics_);
      if (!line.timestamp) return error_at(line_no_, "'" + std::string(ts) + "' is not a timestamp");
      skip_blanks();
      const std::string_view rest = word();
      // OpenMetrics exemplars follow " # "; anything else is junk.
      if (!rest.empty() && !same_text(rest, "#")) return error_at(line_no_, "unexpected text after the timestamp");
    }
    return {};
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

  bool read_labels(std::vector<Label>& labels) {
    while (true) {
      skip_blanks();
      if (peek() == '}') {
        ++pos_;
        return true;
      }
      const std::size_t start = pos_;
      while (pos_ < s_.size() && label_char(s_[pos_])) ++pos_;
      if (pos_ == start) return fail("expected a label name");
      const std::string_view name = s_.substr(start, pos_ - start);
      skip_blanks();
      if (peek() != '=') return fail("expected '=' after label '" + std::string(name) + "'");
      ++pos_;
      skip_blanks();
      if (peek() != '"') {
        return fail("expected '\"' to open the value of '" + std::string(name) + "'");
      }
      ++pos_;
      std::string_view value;
      if (!read_value(name, value)) return false;
      for (const auto& existing : labels) {
        if (same_text(existing.first, name)) {
          return fail("label '" + std::string(name) + "' given twice");
        }
      }
      labels.emplace_back(name, value);
      skip_blanks();
      if (peek() == ',') ++pos_;
    }
  }

  // The value after its opening quote: a view of the text unless it holds escapes.
  bool read_value(std::string_view name, std::string_view& value) {
    const std::size_t start = pos_;
    const std::size_t quote = s_.find('"', pos_);
    const std::size_t escape = s_.substr(0, quote).find('\\', pos_);
    if (quote != std::string_view::npos && escape == std::string_view::npos) {
      value = s_.substr(start, quote - start);
      pos_ = quote + 1;
      return true;
    }
    pos_ = std::min(escape, s_.size());
    std::string& out = unescaped_.emplace_back(s_.substr(start, pos_ - start));
    while (true) {
      if (pos_ >= s_.size()) {
        return fail("unterminated value of label '" + std::string(name) + "'");
      }
      const char c = s_[pos_++];
      if (c == '"') break;
      if (c != '\\') {
        out += c;
        continue;
      }
      const char e = peek();
      ++pos_;
      if (e == 'n') {
        out += '\n';
      } else if (e == '\\' || e == '"') {
        out += e;
      } else {
        return fail("bad escape in the value of label '" + std::string(name) + "'");
      }
    }
    value = out;
    return true;
  }

  // Records the error of the line for read(); the success path builds no Status.
  bool fail(const std::string& message) {
    error_ = error_at(line_no_, message);
    return false;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  Status error_;
  std::size_t line_no_;
  bool openmetrics_;
  std::deque<std::string>& unescaped_;
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

// Builds series identities: the family, then the labels sorted by name (unique within a line),
// each as "\x1fname=value". The lines of a family mostly list the same names in the same order,
// so the order found for the last names is reused while they match.
class SeriesIdBuilder {
 public:
  void build(std::string& out, std::string_view family, std::span<const Label> labels) {
    if (!same_names(labels)) {
      names_.clear();
      order_.clear();
      for (std::size_t i = 0; i < labels.size(); ++i) {
        names_.push_back(labels[i].first);
        order_.push_back(i);
      }
      std::sort(order_.begin(), order_.end(),
                [&](std::size_t a, std::size_t b) { return names_[a] < names_[b]; });
    }
    out += family;
    for (const std::size_t i : order_) {
      out += '\x1f';
      out += labels[i].first;
      out += '=';
      out += labels[i].second;
    }
  }

 private:
  bool same_names(std::span<const Label> labels) const {
    if (labels.size() != names_.size()) return false;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (!same_text(labels[i].first, names_[i])) return false;
    }
    return true;
  }

  std::vector<std::string_view> names_;  // views of the scrape text
  std::vector<std::size_t> order_;
};

// The series of one parse by identity: open addressing over identities kept back to back in
// one buffer.
class SeriesIndex {
 public:
  // The index of the series with identity `id`, inserting `next` if there is none.
  std::pair<std::size_t, bool> find_or_insert(std::string_view id, std::size_t next) {
    if (2 * (spans_.size() + 1) > slots_.size()) grow();
    const std::size_t h = std::hash<std::string_view>()(id);
    for (std::size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i] == 0) {
        slots_[i] = static_cast<uint32_t>(spans_.size() + 1);
        spans_.push_back({text_.size(), id.size(), h, next});
        text_ += id;
        return {next, true};
      }
      const Span& s = spans_[slots_[i] - 1];
      if (s.hash == h && this->id(slots_[i] - 1) == id) return {s.series, false};
    }
  }

  // Empties the index, keeping its memory.
  void clear() {
    text_.clear();
    spans_.clear();
    std::fill(slots_.begin(), slots_.end(), 0);
  }

  std::size_t capacity() const { return slots_.size(); }

  // The identity of the n-th series inserted (n is also its index in the parse's series).
  std::string_view id(std::size_t n) const {
    return std::string_view(text_).substr(spans_[n].offset, spans_[n].length);
  }

 private:
  struct Span {
    std::size_t offset;
    std::size_t length;
    std::size_t hash;
    std::size_t series;
  };

  void grow() {
    slots_.assign(std::max<std::size_t>(64, slots_.size() * 2), 0);
    for (std::size_t n = 0; n < spans_.size(); ++n) {
      std::size_t i = spans_[n].hash & (slots_.size() - 1);
      while (slots_[i] != 0) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = static_cast<uint32_t>(n + 1);
    }
  }

  std::string text_;
  std::vector<Span> spans_;
  std::vector<uint32_t> slots_;  // 1 + index into spans_, 0 = empty
};

// The buffers of one parse, kept by the thread between parses: a collector's decode thread
// then reuses their memory from scrape to scrape instead of faulting in fresh pages. After a
// scrape of more than kRetainedSeries series they are dropped, so that a rare huge one does
// not pin its memory.
struct Scratch {
  static constexpr std::size_t kRetainedSeries = 1 << 16;

  std::vector<Series> series;
  SeriesIndex index;
  std::vector<Label> label_store;  // the labels of every series, back to back
  std::deque<std::string> unescaped;

  void clear() {
    if (series.capacity() > kRetainedSeries) {
      *this = Scratch();
      return;
    }
    series.clear();
    index.clear();
    label_store.clear();
    unescaped.clear();
  }
};

// A bucket count of histogram `family` (the message is built only on error).
Result<uint64_t> to_count(double v, std::string_view family) {
  if (!(v >= 0) || v != std::floor(v) || v > 1.8e19) {
    return Status::error("histogram '" + std::string(family) + "': count " + std::to_string(v) +
                             " is not a whole number >= 0",
                         "decode");
  }
  return static_cast<uint64_t>(v);
}

// A name that already follows the rules of DESIGN.md §2 is its own sanitized form.
std::string tally_name(std::string_view name) {
  return matches_name_pattern(name) ? std::string(name) : sanitize_prometheus_name(name);
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
  ++parse_number_;
  std::vector<Sample> out;
  Status st = parse_into(text, scrape_time, max_samples, out);
  // The start times become those of this scrape only if it was read whole; either way,
  // identities first met in this parse and not kept leave the map.
  for (auto it = starts_.begin(); it != starts_.end();) {
    SeriesStart& s = it->second;
    const bool keep = st.ok() ? s.next_parse == parse_number_ : s.committed;
    if (!keep) {
      it = starts_.erase(it);
      continue;
    }
    if (st.ok()) s = {s.next_start, s.next_value, s.next_start, s.next_value, s.next_parse, true};
    ++it;
  }
  if (!st.ok()) return st;
  return out;
}

Status PrometheusParser::parse_into(std::string_view text, Timestamp scrape_time,
                                    std::size_t max_samples, std::vector<Sample>& out) {
  std::map<std::string, Kind, std::less<>> kinds;  // declared families
  thread_local Scratch scratch;
  scratch.clear();
  std::vector<Series>& series = scratch.series;
  SeriesIndex& index = scratch.index;
  SeriesIdBuilder ids;
  std::vector<Label>& label_store = scratch.label_store;
  std::deque<std::string>& unescaped = scratch.unescaped;

  // Which family a sample line belongs to, and which part of it the line is. Consecutive
  // lines mostly share a name, so the last answer is kept until a TYPE line changes the
  // families.
  struct Resolved {
    std::string_view name;
    std::size_t family_length = 0;
    Part part = Part::kNone;
    Kind kind = Kind::kUntyped;
  };
  std::optional<Resolved> last;
  auto resolve = [&](std::string_view name) -> Resolved {
    if (last && same_text(last->name, name)) return *last;
    Resolved r{name, name.size(), Part::kNone, Kind::kUntyped};
    if (auto it = kinds.find(name); it != kinds.end()) {
      r.kind = it->second;
    } else {
      for (const auto& [suffix, part] : kSuffixes) {
        if (!ends_with(name, suffix)) continue;
        const std::string_view base = name.substr(0, name.size() - suffix.size());
        if (auto b = kinds.find(base); b != kinds.end()) {
          r = {name, base.size(), part, b->second};
          break;
        }
      }
    }
    last = r;
    return r;
  };

  const bool openmetrics = is_openmetrics(text);
  Line line;
  std::vector<Label> labels;  // the line's labels without le/quantile
  std::size_t previous = 0;   // the series of the previous sample line, if any
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
      if (raw.starts_with("# TYPE ")) {
        std::string_view rest = raw.substr(7);
        const std::size_t space = rest.find(' ');
        if (space == std::string_view::npos) return error_at(line_no, "TYPE without a type");
        const std::string_view family = rest.substr(0, space);
        std::string_view type = rest.substr(space + 1);
        while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
        auto kind = parse_kind(type);
        if (!kind) return error_at(line_no, "unknown type '" + std::string(type) + "'");
        if (auto it = kinds.find(family); it != kinds.end()) {
          it->second = *kind;
        } else {
          kinds.emplace(family, *kind);
        }
        last.reset();
      }
      continue;  // HELP, UNIT and other comments
    }
    if (Status st = LineReader(raw, line_no, openmetrics, unescaped).read(line); !st.ok()) {
      return st;
    }
    const Resolved r = resolve(line.name);
    const std::string_view family = line.name.substr(0, r.family_length);
    std::optional<std::string_view> le;
    std::optional<std::string_view> quantile;
    labels.clear();
    for (const Label& label : line.labels) {
      if (r.kind == Kind::kHistogram && same_text(label.first, "le")) {
        le = label.second;
      } else if (r.kind == Kind::kSummary && same_text(label.first, "quantile") && r.part == Part::kNone) {
        quantile = label.second;
      } else {
        labels.push_back(label);
      }
    }
    // The lines of a series usually follow one another (histogram buckets): the same family
    // and labels in the same order are the same series, without building the identity.
    std::size_t n;
    if (!series.empty() && same_text(series[previous].family, family) &&
        std::equal(labels.begin(), labels.end(),
                   label_store.begin() + static_cast<std::ptrdiff_t>(series[previous].labels_begin),
                   label_store.begin() + static_cast<std::ptrdiff_t>(series[previous].labels_begin +
                                                                     series[previous].labels_count),
                   [](const Label& a, const Label& b) {
                     return same_text(a.first, b.first) && same_text(a.second, b.second);
                   })) {
      n = previous;
    } else {
      std::string& id = line_id_;
      id.clear();
      ids.build(id, family, labels);
      bool inserted;
      std::tie(n, inserted) = index.find_or_insert(id, series.size());
      if (inserted) {
        // Every series becomes at least one sample, so a response with too many series is
        // refused here, before a hostile one makes us hold millions of them.
        if (series.size() >= max_samples) return too_many_samples(max_samples);
        Series& fresh = series.emplace_back();
        fresh.family = family;
        fresh.kind = r.kind;
        fresh.labels_begin = label_store.size();
        fresh.labels_count = labels.size();
        label_store.insert(label_store.end(), labels.begin(), labels.end());
      }
    }
    previous = n;
    Series& s = series[n];
    if (line.timestamp && !s.timestamp) s.timestamp = line.timestamp;
    switch (r.part) {
      case Part::kCreated:
        s.created = line.value;
        continue;
      case Part::kSum:
      case Part::kGsum:
        s.sum = line.value;
        continue;
      case Part::kCount:
      case Part::kGcount:
        s.count = line.value;
        continue;
      default:
        break;
    }
    if (r.kind == Kind::kHistogram && r.part == Part::kBucket) {
      if (!le) {
        return error_at(line_no, "bucket of '" + std::string(family) + "' without an le label");
      }
      auto bound = parse_value(*le);
      if (!bound) return error_at(line_no, "le=\"" + std::string(*le) + "\" is not a number");
      s.buckets.emplace_back(*bound, line.value);
    } else if (r.kind == Kind::kSummary && quantile) {
      s.quantiles.emplace_back(*quantile, line.value);
    } else {
      s.value = line.value;
    }
  }

  out.reserve(series.size());
  const Fields target_fields = {{"producer_id", FieldValue(source_.producer_id)},
                                {"instance", FieldValue(source_.instance)}};

  // Records the series' start for the next scrape (committed by parse() on success).
  auto start_for = [&](std::string_view id, std::optional<double> created, double value) {
    if (created && std::isfinite(*created)) {
      return Timestamp(std::chrono::microseconds(static_cast<int64_t>(*created * 1e6)));
    }
    auto it = starts_.find(id);
    if (it == starts_.end()) it = starts_.emplace(std::string(id), SeriesStart{}).first;
    SeriesStart& prev = it->second;
    // A counter that went down was reset: it starts again now.
    const Timestamp start =
        (!prev.committed || value < prev.last_value) ? scrape_time : prev.start_time;
    prev.next_start = start;
    prev.next_value = value;
    prev.next_parse = parse_number_;
    return start;
  };

  auto emit = [&](const Series& s, std::string metric_name, Fields fields, Datum datum) -> Status {
    if (out.size() >= max_samples) return too_many_samples(max_samples);
    Sample& sample = out.emplace_back();
    sample.target = Target{source_.target_name, target_fields};
    sample.metric = Metric{std::move(metric_name), std::move(fields)};
    sample.timestamp = s.timestamp.value_or(scrape_time);
    sample.datum = std::move(datum);
    if (Status st = validate_sample(sample); !st.ok()) {
      return Status::error("series '" + std::string(s.family) + "': " + st.message(), "decode");
    }
    return {};
  };

  std::string_view metric_family;  // whose name `metric` is
  std::string metric;
  for (std::size_t n = 0; n < series.size(); ++n) {
    Series& s = series[n];
    if (s.family != metric_family || n == 0) {
      metric = tally_name(s.family);
      metric_family = s.family;
    }
    if (metric.empty()) {
      return Status::error("metric family '" + std::string(s.family) + "' has no usable name",
                           "decode");
    }
    Fields fields;
    fields.reserve(s.labels_count);
    for (std::size_t i = s.labels_begin; i < s.labels_begin + s.labels_count; ++i) {
      const auto& [k, v] = label_store[i];
      std::string name = tally_name(k);
      if (name == "producer_id" || name == "instance") name = "exported_" + name;
      if (name.empty()) {
        return Status::error("label '" + std::string(k) + "' has no usable name", "decode");
      }
      fields.push_back({std::move(name), FieldValue(std::string(v))});
    }
    const std::string_view id = index.id(n);
    Status st;
    switch (s.kind) {
      case Kind::kCounter: {
        if (!s.value) continue;  // only _created seen
        const Timestamp start = start_for(id, s.created, *s.value);
        st = emit(s, metric, std::move(fields), Cumulative<double>{start, *s.value});
        break;
      }
      case Kind::kGauge:
      case Kind::kUntyped:
        if (!s.value) continue;
        st = emit(s, metric, std::move(fields), *s.value);
        break;
      case Kind::kSummary: {
        for (const auto& [q, v] : s.quantiles) {
          Fields qf = fields;
          qf.push_back({"quantile", FieldValue(std::string(q))});
          if (st = emit(s, metric, std::move(qf), v); !st.ok()) break;
        }
        if (!st.ok()) break;
        const Timestamp start = start_for(id, s.created, s.count.value_or(0));
        if (s.sum) st = emit(s, metric + "_sum", fields, Cumulative<double>{start, *s.sum});
        if (st.ok() && s.count) {
          st = emit(s, metric + "_count", std::move(fields), Cumulative<double>{start, *s.count});
        }
        break;
      }
      case Kind::kHistogram: {
        std::vector<std::pair<double, double>>& buckets = s.buckets;
        if (!std::is_sorted(buckets.begin(), buckets.end())) {
          std::sort(buckets.begin(), buckets.end());
        }
        const std::string_view family = s.family;
        Histogram<double> h;
        h.bins.reserve(buckets.size() + 1);
        double previous_count = 0;
        for (std::size_t i = 0; i < buckets.size(); ++i) {
          const auto [bound, cumulative] = buckets[i];
          if (cumulative < previous_count) {
            return Status::error("histogram '" + std::string(family) +
                                     "': bucket counts decrease at le=" +
                                     std::to_string(bound),
                                 "decode");
          }
          auto count = to_count(cumulative - previous_count, family);
          if (!count.ok()) return count.status();
          // Prometheus bucket i holds (le[i-1], le[i]]; Tally bin i+1 starts at le[i].
          if (i == 0) {
            h.bins.push_back({std::nullopt, *count});
          } else {
            h.bins.back().count = *count;
          }
          if (std::isinf(bound)) break;
          h.bins.push_back({bound, 0});
          previous_count = cumulative;
        }
        if (h.bins.size() < 2) {
          return Status::error("histogram '" + std::string(family) + "' has no finite buckets",
                               "decode");
        }
        const double total = s.count.value_or(buckets.empty() ? 0 : buckets.back().second);
        if (buckets.empty() || !std::isinf(buckets.back().first)) {
          // No +Inf bucket: what _count has beyond the last bound belongs to the last bin.
          auto rest = to_count(total - previous_count, family);
          if (!rest.ok()) return rest.status();
          h.bins.back().count = *rest;
        }
        auto n_samples = to_count(total, family);
        if (!n_samples.ok()) return n_samples.status();
        h.n_samples = *n_samples;
        h.sum_of_samples = s.sum.value_or(NAN);
        // The text format carries neither min, max nor the squared mean.
        h.min = NAN;
        h.max = NAN;
        h.squared_mean = NAN;
        h.start_time = start_for(id, s.created, total);
        st = emit(s, metric, std::move(fields), std::move(h));
        break;
      }
    }
    if (!st.ok()) return st;
  }
  return {};
}

}  // namespace tally::collector
