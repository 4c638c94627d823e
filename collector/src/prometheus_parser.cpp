#include "tally/collector/prometheus_parser.h"

#include <xxhash.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <span>

#include "tally/common/names.h"

// Speed (issue 8): a scrape is read in two passes. The first reads each sample line and gathers
// the lines of each series; the second turns each series into samples, allocating only what the
// samples own. Between scrapes the parser keeps a series cache, as Prometheus does: a line whose
// `name{labels}` text was read before is looked up by that text and reuses the series it
// belongs to (identity, type, le or quantile, and, once built, the metric name and fields and
// the validation of their names, and the timeseries key), so a steady scrape reads no labels:
// per line it compares the start of the line with the series text of the line expected next
// (the cache keeps the last scrape's order), and only when that fails finds the end of the
// series text and looks it up by hash; then it reads the value. Start times live in the cached
// series.
namespace tally::collector {
namespace {

enum class Kind { kUntyped, kCounter, kGauge, kHistogram, kSummary };

// Which part of its family a sample line is: the family's own name, or a suffixed series.
enum class Part { kNone, kBucket, kSum, kCount, kCreated, kTotal, kGcount, kGsum };

constexpr std::pair<std::string_view, Part> kSuffixes[] = {
    {"_bucket", Part::kBucket},   {"_sum", Part::kSum},     {"_count", Part::kCount},
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

// A series start time between scrapes: the one of the last successful parse, and the one the
// parse in progress found (kept only if that parse succeeds).
struct SeriesStart {
  Timestamp start_time;
  double last_value = 0;
  Timestamp next_start;
  double next_value = 0;
  uint64_t next_parse = 0;  // the parse that set next_*
  bool committed = false;   // start_time/last_value are set
};

// The values one parse read for one series, gathered before they become samples.
struct Series {
  uint32_t cached = 0;  // the series in the parser's cache
  std::optional<Timestamp> timestamp;
  std::optional<double> value;    // counter/gauge/untyped
  std::optional<double> created;  // seconds since the epoch
  std::optional<double> sum;
  std::optional<double> count;
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
  std::vector<std::pair<std::string, double>> quantiles;

  // Empties it for another series, keeping the vectors' memory.
  void reset(uint32_t cached_series) {
    cached = cached_series;
    timestamp.reset();
    value.reset();
    created.reset();
    sum.reset();
    count.reset();
    buckets.clear();
    quantiles.clear();
  }
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
  // Bucket counts, counters and many gauges are whole numbers (most lines of a scrape): up to 15
  // digits are below 2^53, so they are read exactly by hand, without from_chars.
  if (!text.empty() && text.size() <= 15) {
    uint64_t n = 0;
    std::size_t i = 0;
    for (; i < text.size(); ++i) {
      const unsigned digit = static_cast<unsigned char>(text[i]) - unsigned{'0'};
      if (digit > 9) break;
      n = n * 10 + digit;
    }
    if (i == text.size()) return static_cast<double>(n);
  }
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
    while (pos_ < s_.size() && name_char(s_[pos_])) ++pos_;
    if (pos_ == 0 || !name_start(s_[0])) return error_at(line_no_, "expected a metric name");
    line.name = s_.substr(0, pos_);
    skip_blanks();
    if (peek() == '{') {
      ++pos_;
      if (!read_labels(line.labels)) return error_;
    }
    return read_rest(line);
  }

  // The value and timestamp after the series text that ends at `from`: a line whose series
  // text the cache knows is read from there (line.name must be set, for the messages).
  Status read_rest(Line& line, std::size_t from) {
    pos_ = from;
    return read_rest(line);
  }

 private:
  Status read_rest(Line& line) {
    line.timestamp.reset();
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
      if (!line.timestamp)
        return error_at(line_no_, "'" + std::string(ts) + "' is not a timestamp");
      skip_blanks();
      const std::string_view rest = word();
      // OpenMetrics exemplars follow " # "; anything else is junk.
      if (!rest.empty() && !same_text(rest, "#"))
        return error_at(line_no_, "unexpected text after the timestamp");
    }
    return {};
  }

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

// The position of the '}' that closes labels starting at `pos` (just after the '{'), skipping
// quoted values and their escapes; npos when there is none. Every sample line goes through
// here, so the bytes are searched 16 at a time for the three that matter ('"', '\\', '}'), and
// only those are looked at one by one.
std::size_t labels_end(std::string_view raw, std::size_t pos) {
  bool quoted = false;
  std::size_t escaped_until = pos;        // bytes before this are escaped ones (or read already)
  const auto step = [&](std::size_t i) {  // true at the closing '}'
    if (i < escaped_until) return false;
    const char c = raw[i];
    if (quoted) {
      if (c == '\\') {
        escaped_until = i + 2;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '}') {
      return true;
    }
    return false;
  };
#ifdef __SSE2__
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i brace = _mm_set1_epi8('}');
  for (; pos + 16 <= raw.size(); pos += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(raw.data() + pos));
    auto mask = static_cast<uint32_t>(_mm_movemask_epi8(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                     _mm_cmpeq_epi8(v, brace))));
    for (; mask != 0; mask &= mask - 1) {
      const std::size_t i = pos + static_cast<std::size_t>(std::countr_zero(mask));
      if (step(i)) return i;
    }
  }
#endif
  for (; pos < raw.size(); ++pos) {
    if (step(pos)) return pos;
  }
  return std::string_view::npos;
}

// The series text a sample line starts with: `name` or `name{labels}` as written (a '}' inside
// a quoted value does not end it), and the length of the name. Empty when the line does not
// start with a well-formed one; LineReader then says what is wrong.
struct SeriesText {
  std::string_view text;
  std::size_t name_length = 0;
};

SeriesText series_text(std::string_view raw) {
  std::size_t pos = 0;
  while (pos < raw.size() && name_char(raw[pos])) ++pos;
  if (pos == 0 || !name_start(raw[0])) return {};
  const std::size_t name_length = pos;
  while (pos < raw.size() && (raw[pos] == ' ' || raw[pos] == '\t')) ++pos;
  if (pos == raw.size() || raw[pos] != '{') return {raw.substr(0, name_length), name_length};
  const std::size_t end = labels_end(raw, pos + 1);
  if (end == std::string_view::npos) return {};
  return {raw.substr(0, end + 1), name_length};
}

// Open addressing over the indices of a vector (slot = 1 + index, 0 = empty), at most half
// full. The vector's elements know their hash and compare themselves with a key.
class SlotTable {
 public:
  // The slot holding the index for which `same(index)` holds, or the empty slot where it
  // belongs. reserve() must have made room first.
  template <class Same>
  uint32_t& find(uint64_t hash, Same same) {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      uint32_t& slot = slots_[i];
      if (slot == 0 || same(slot - 1)) return slot;
    }
  }

  // Room for `n` indices, of which the first `present` (rehashed by `hash_of(index)` if the
  // table has to grow) are in the table.
  template <class HashOf>
  void reserve(std::size_t n, std::size_t present, HashOf hash_of) {
    if (2 * n <= slots_.size()) return;
    rebuild(n, present, hash_of);
  }

  // Sized for `n` indices (it may shrink), holding indices 0 … present-1.
  template <class HashOf>
  void rebuild(std::size_t n, std::size_t present, HashOf hash_of) {
    std::size_t size = 64;
    while (size < 2 * n) size *= 2;
    slots_.assign(size, 0);
    slots_.shrink_to_fit();
    const std::size_t mask = size - 1;
    for (std::size_t k = 0; k < present; ++k) {
      std::size_t i = hash_of(k) & mask;
      while (slots_[i] != 0) i = (i + 1) & mask;
      slots_[i] = static_cast<uint32_t>(k + 1);
    }
  }

 private:
  std::vector<uint32_t> slots_;
};

// Seeded per process, so that a producer cannot craft series texts that all collide.
uint64_t hash_seed() {
  static const uint64_t seed = [] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }();
  return seed;
}

uint64_t hash_text(std::string_view s) {
  return XXH3_64bits_withSeed(s.data(), s.size(), hash_seed());
}

// A series some parse read, as the cache keeps it.
struct CachedSeries {
  std::string id;  // the family, then the labels sorted by name (SeriesIdBuilder)
  uint64_t id_hash = 0;
  std::string family;
  Kind kind = Kind::kUntyped;  // as the last parse that saw it found it
  // The labels without le/quantile, in line order, until the second pass builds from them:
  std::vector<std::pair<std::string, std::string>> labels;
  bool built = false;  // metric and fields are set (and labels dropped)
  std::string metric;
  Fields fields;
  // The timeseries of its samples, made and checked (validate_timeseries) at the first scrape
  // that emits one, and shared by the samples of every later scrape: counters, gauges and
  // histograms (a summary's quantiles, _sum and _count are series of their own, made each time).
  TimeseriesRef timeseries;
  SeriesStart start;
  uint64_t created_parse = 0;
  uint64_t last_parse = 0;  // the last parse that saw it
  std::size_t slot = 0;     // its index in that parse's series
};

// A sample line's series text some parse read, and what it means.
struct CachedLine {
  std::size_t key_offset = 0;  // the series text, in Cache::text
  std::size_t key_length = 0;
  std::size_t quantile_offset = 0;  // the summary quantile, in Cache::text
  std::size_t quantile_length = 0;
  uint64_t hash = 0;
  uint32_t series = 0;
  uint32_t name_length = 0;  // of the metric name the series text starts with
  // The family and part its name resolved to (checked again at each use: a TYPE line that
  // changed makes the line be read whole).
  uint32_t family_length = 0;
  Part part = Part::kNone;
  Kind kind = Kind::kUntyped;
  bool has_quantile = false;
  double le = 0;  // the bucket's bound (a histogram's bucket line)
  uint64_t created_parse = 0;
  uint64_t last_parse = 0;
};

// The buffers of one parse, kept by the thread between parses: a collector's decode thread
// then reuses their memory from scrape to scrape instead of faulting in fresh pages. After a
// scrape of more than kRetainedSeries series they are dropped, so that a rare huge one does
// not pin its memory.
struct Scratch {
  static constexpr std::size_t kRetainedSeries = 1 << 16;

  std::vector<Series> series;  // the first `used` are the parse's
  std::size_t used = 0;
  std::deque<std::string> unescaped;

  void clear() {
    if (series.size() > kRetainedSeries) {
      *this = Scratch();
      return;
    }
    used = 0;
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

// The series cache: the series and sample lines of the last successful parse (and of the parse
// in progress), each line keyed by its series text.
struct PrometheusParser::Cache {
  Fields target_fields;
  std::vector<CachedSeries> series;
  SlotTable series_by_id;
  std::vector<CachedLine> lines;
  SlotTable lines_by_text;
  std::string text;     // the lines' series texts and quantiles, back to back
  std::string line_id;  // the identity of the line being read (its capacity is reused)
  // What the parse in progress saw and added.
  std::size_t series_seen = 0;
  std::size_t lines_seen = 0;
  std::size_t series_added = 0;
  std::size_t lines_added = 0;

  std::string_view key(const CachedLine& l) const {
    return std::string_view(text).substr(l.key_offset, l.key_length);
  }
  std::string_view quantile(const CachedLine& l) const {
    return std::string_view(text).substr(l.quantile_offset, l.quantile_length);
  }

  std::size_t next = 0;  // the line expected next (see next_line)

  void begin_parse() {
    series_seen = lines_seen = series_added = lines_added = 0;
    next = 0;
  }

  // The line expected next (see next_line), when `raw` starts with its series text and that
  // text has labels: series_text(raw) would find exactly that text (the same bytes up to the
  // first '}' outside quotes), so in a steady scrape a line's series text is found with one
  // comparison instead of being scanned for its end and then compared.
  CachedLine* expected_line(std::string_view raw) {
    if (next >= lines.size()) return nullptr;
    CachedLine& l = lines[next];
    const std::string_view k = key(l);
    if (k.empty() || k.back() != '}' || raw.size() < k.size() ||
        !same_text(raw.substr(0, k.size()), k)) {
      return nullptr;
    }
    ++next;
    return &l;
  }

  // The line after the one found last, if it has this series text: a target mostly writes its
  // lines in the same order at every scrape, and the cache keeps them in the order it first
  // read them, so this finds most lines without hashing and with memory read in sequence (a
  // lookup in the table costs a cache miss or three).
  CachedLine* next_line(std::string_view series_text) {
    if (next >= lines.size()) return nullptr;
    CachedLine& l = lines[next];
    if (l.key_length != series_text.size() || !same_text(key(l), series_text)) return nullptr;
    ++next;
    return &l;
  }

  CachedLine* find_line(std::string_view series_text, uint64_t hash) {
    lines_by_text.reserve(lines.size() + 1, lines.size(),
                          [this](std::size_t i) { return lines[i].hash; });
    const uint32_t slot = lines_by_text.find(hash, [&](uint32_t i) {
      return lines[i].hash == hash && same_text(key(lines[i]), series_text);
    });
    if (slot == 0) return nullptr;
    next = slot;
    return &lines[slot - 1];
  }

  void saw(CachedLine& line, uint64_t n) {
    if (line.last_parse == n) return;
    line.last_parse = n;
    ++lines_seen;
  }

  void set_quantile(CachedLine& line, std::optional<std::string_view> quantile_value) {
    line.has_quantile = quantile_value.has_value();
    if (!quantile_value) return;
    line.quantile_offset = text.size();
    line.quantile_length = quantile_value->size();
    text += *quantile_value;
  }

  // Gives a cached line the meaning `meaning` (series, family, part, le) and `quantile_value`
  // (not a view of `text`), seen by parse `n`.
  void update_line(CachedLine& line, const CachedLine& meaning,
                   std::optional<std::string_view> quantile_value, uint64_t n) {
    line.series = meaning.series;
    line.family_length = meaning.family_length;
    line.part = meaning.part;
    line.kind = meaning.kind;
    line.le = meaning.le;
    set_quantile(line, quantile_value);
    saw(line, n);
  }

  // Adds the line (its text not cached yet), seen by parse `n`.
  void add_line(std::string_view series_text, uint64_t hash, CachedLine line,
                std::optional<std::string_view> quantile_value, uint64_t n) {
    line.key_offset = text.size();
    line.key_length = series_text.size();
    text += series_text;
    set_quantile(line, quantile_value);
    line.hash = hash;
    line.created_parse = line.last_parse = n;
    lines_by_text.reserve(lines.size() + 1, lines.size(),
                          [this](std::size_t i) { return lines[i].hash; });
    uint32_t& slot = lines_by_text.find(hash, [](uint32_t) { return false; });
    lines.push_back(line);
    slot = static_cast<uint32_t>(lines.size());
    next = lines.size();
    ++lines_seen;
    ++lines_added;
  }

  // The series with identity `id`, added (by parse `n`) if there is none.
  uint32_t find_or_add_series(std::string_view id, std::string_view family, Kind kind,
                              std::span<const Label> labels, uint64_t n) {
    const uint64_t hash = hash_text(id);
    series_by_id.reserve(series.size() + 1, series.size(),
                         [this](std::size_t i) { return series[i].id_hash; });
    uint32_t& slot = series_by_id.find(
        hash, [&](uint32_t i) { return series[i].id_hash == hash && same_text(series[i].id, id); });
    if (slot != 0) return slot - 1;
    CachedSeries& s = series.emplace_back();
    s.id = id;
    s.id_hash = hash;
    s.family = family;
    s.kind = kind;
    s.labels.reserve(labels.size());
    for (const Label& l : labels) s.labels.emplace_back(l.first, l.second);
    s.created_parse = n;
    ++series_added;
    slot = static_cast<uint32_t>(series.size());
    return slot - 1;
  }

  // Parse `n` ended (`ok`: successfully). Its start times become those of the series it saw;
  // then what it did not see goes (or, when it failed, what it added).
  void end_parse(uint64_t n, bool ok) {
    if (ok) {
      for (CachedSeries& s : series) {
        SeriesStart& st = s.start;
        if (st.next_parse == n) {
          st = {st.next_start, st.next_value, st.next_start, st.next_value, st.next_parse, true};
        } else {
          st = SeriesStart{};
        }
      }
      if (series_seen == series.size() && lines_seen == lines.size()) return;
    } else if (series_added == 0 && lines_added == 0) {
      return;
    }
    const auto keep_series = [&](const CachedSeries& s) {
      return ok ? s.last_parse == n : s.created_parse != n;
    };
    const auto keep_line = [&](const CachedLine& l) {
      return ok ? l.last_parse == n : l.created_parse != n;
    };
    constexpr uint32_t kGone = std::numeric_limits<uint32_t>::max();
    std::vector<uint32_t> moved_to(series.size(), kGone);
    std::vector<CachedSeries> kept_series;
    for (std::size_t i = 0; i < series.size(); ++i) {
      if (!keep_series(series[i])) continue;
      moved_to[i] = static_cast<uint32_t>(kept_series.size());
      kept_series.push_back(std::move(series[i]));
    }
    series = std::move(kept_series);
    series_by_id.rebuild(series.size(), series.size(),
                         [this](std::size_t i) { return series[i].id_hash; });
    std::vector<CachedLine> kept_lines;
    std::string kept_text;
    for (const CachedLine& l : lines) {
      if (!keep_line(l) || moved_to[l.series] == kGone) continue;
      CachedLine& k = kept_lines.emplace_back(l);
      k.series = moved_to[l.series];
      k.key_offset = kept_text.size();
      kept_text += key(l);
      if (l.has_quantile) {
        k.quantile_offset = kept_text.size();
        kept_text += quantile(l);
      }
    }
    lines = std::move(kept_lines);
    text = std::move(kept_text);
    lines_by_text.rebuild(lines.size(), lines.size(),
                          [this](std::size_t i) { return lines[i].hash; });
  }
};

PrometheusParser::PrometheusParser(PrometheusSource source)
    : source_(std::move(source)), cache_(std::make_unique<Cache>()) {
  cache_->target_fields = {{"producer_id", FieldValue(source_.producer_id)},
                           {"instance", FieldValue(source_.instance)}};
}
PrometheusParser::~PrometheusParser() = default;
PrometheusParser::PrometheusParser(PrometheusParser&&) noexcept = default;
PrometheusParser& PrometheusParser::operator=(PrometheusParser&&) noexcept = default;

std::size_t PrometheusParser::cached_series() const { return cache_->series.size(); }
std::size_t PrometheusParser::cached_lines() const { return cache_->lines.size(); }

Result<std::vector<Sample>> PrometheusParser::parse(std::string_view text, Timestamp scrape_time,
                                                    std::size_t max_samples) {
  ++parse_number_;
  cache_->begin_parse();
  std::vector<Sample> out;
  Status st = parse_into(text, scrape_time, max_samples, out);
  cache_->end_parse(parse_number_, st.ok());
  if (!st.ok()) return st;
  return out;
}

Status PrometheusParser::parse_into(std::string_view text, Timestamp scrape_time,
                                    std::size_t max_samples, std::vector<Sample>& out) {
  Cache& cache = *cache_;
  std::map<std::string, Kind, std::less<>> kinds;  // declared families
  thread_local Scratch scratch;
  scratch.clear();
  std::vector<Series>& series = scratch.series;
  std::size_t& used = scratch.used;
  std::deque<std::string>& unescaped = scratch.unescaped;
  SeriesIdBuilder ids;

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

    LineReader reader(raw, line_no, openmetrics, unescaped);
    CachedLine* found = cache.expected_line(raw);
    const SeriesText series_text_of_line =
        found != nullptr ? SeriesText{raw.substr(0, found->key_length), found->name_length}
                         : series_text(raw);
    const std::string_view key = series_text_of_line.text;
    uint64_t hash = 0;
    if (found == nullptr && !key.empty()) found = cache.next_line(key);
    if (found == nullptr && !key.empty()) {
      hash = hash_text(key);
      found = cache.find_line(key, hash);
    }
    CachedLine* cached = nullptr;  // `found`, if it still means what it meant
    Resolved r;
    if (found != nullptr) {
      line.name = raw.substr(0, series_text_of_line.name_length);
      r = resolve(line.name);
      // A TYPE line that changed since makes the line be read whole (and its entry updated).
      if (r.family_length == found->family_length && r.part == found->part &&
          r.kind == found->kind) {
        cached = found;
        if (Status st = reader.read_rest(line, key.size()); !st.ok()) return st;
        cache.saw(*cached, parse_number_);
      }
    }

    // What the line says beyond its value, from the cache or from its labels.
    uint32_t series_index;
    std::optional<std::string_view> le;
    std::optional<std::string_view> quantile;
    if (cached != nullptr) {
      series_index = cached->series;
      if (cached->has_quantile) quantile = cache.quantile(*cached);
    } else {
      if (Status st = reader.read(line); !st.ok()) return st;
      r = resolve(line.name);
      labels.clear();
      for (const Label& label : line.labels) {
        if (r.kind == Kind::kHistogram && same_text(label.first, "le")) {
          le = label.second;
        } else if (r.kind == Kind::kSummary && same_text(label.first, "quantile") &&
                   r.part == Part::kNone) {
          quantile = label.second;
        } else {
          labels.push_back(label);
        }
      }
      const std::string_view family = line.name.substr(0, r.family_length);
      cache.line_id.clear();
      ids.build(cache.line_id, family, labels);
      series_index = cache.find_or_add_series(cache.line_id, family, r.kind, labels, parse_number_);
    }

    CachedSeries& cs = cache.series[series_index];
    if (cs.last_parse != parse_number_) {
      // Every series becomes at least one sample, so a response with too many series is
      // refused here, before a hostile one makes us hold millions of them.
      if (used >= max_samples) return too_many_samples(max_samples);
      cs.last_parse = parse_number_;
      cs.slot = used;
      if (cs.kind != r.kind) {
        cs.kind = r.kind;
        cs.timeseries.reset();
      }
      ++cache.series_seen;
      if (used == series.size()) series.emplace_back();
      series[used++].reset(series_index);
    }
    Series& s = series[cs.slot];

    double bound = 0;
    if (r.kind == Kind::kHistogram && r.part == Part::kBucket) {
      if (cached != nullptr) {
        bound = cached->le;
      } else {
        if (!le) {
          return error_at(line_no, "bucket of '" + cs.family + "' without an le label");
        }
        auto v = parse_value(*le);
        if (!v) return error_at(line_no, "le=\"" + std::string(*le) + "\" is not a number");
        bound = *v;
      }
    }
    if (cached == nullptr && !key.empty()) {
      CachedLine fresh;
      fresh.series = series_index;
      fresh.family_length = static_cast<uint32_t>(r.family_length);
      fresh.name_length = static_cast<uint32_t>(series_text_of_line.name_length);
      fresh.part = r.part;
      fresh.kind = r.kind;
      fresh.le = bound;
      if (found != nullptr) {
        cache.update_line(*found, fresh, quantile, parse_number_);
      } else {
        cache.add_line(key, hash, fresh, quantile, parse_number_);
      }
    }

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
      s.buckets.emplace_back(bound, line.value);
    } else if (r.kind == Kind::kSummary && quantile) {
      s.quantiles.emplace_back(std::string(*quantile), line.value);
    } else {
      s.value = line.value;
    }
  }

  out.reserve(used);
  const Fields& target_fields = cache.target_fields;

  // Records the series' start for the next scrape (committed by end_parse on success).
  auto start_for = [&](CachedSeries& cs, std::optional<double> created, double value) {
    // A _created beyond int64 microseconds (±292,000 years) is no time at all: the cast would be
    // undefined (found by tools/fuzz), so the series starts as if it had none.
    if (created && std::isfinite(*created) && std::fabs(*created * 1e6) < 9.2e18) {
      return Timestamp(std::chrono::microseconds(static_cast<int64_t>(*created * 1e6)));
    }
    SeriesStart& prev = cs.start;
    // A counter that went down was reset: it starts again now.
    const Timestamp start =
        (!prev.committed || value < prev.last_value) ? scrape_time : prev.start_time;
    prev.next_start = start;
    prev.next_value = value;
    prev.next_parse = parse_number_;
    return start;
  };

  const auto make_series = [&](const CachedSeries& cs, std::string metric_name,
                               Fields fields) -> Result<TimeseriesRef> {
    TimeseriesRef t = make_timeseries(Target{source_.target_name, target_fields},
                                      Metric{std::move(metric_name), std::move(fields)});
    if (Status st = validate_timeseries(*t); !st.ok()) {
      return Status::error("series '" + cs.family + "': " + st.message(), "decode");
    }
    return t;
  };
  const auto kept_series = [&](CachedSeries& cs) -> Result<TimeseriesRef> {
    if (!cs.timeseries) {
      auto made = make_series(cs, cs.metric, cs.fields);
      if (!made.ok()) return made.status();
      cs.timeseries = std::move(*made);
    }
    return cs.timeseries;
  };
  const auto emit = [&](const Series& s, const CachedSeries& cs, Result<TimeseriesRef> series,
                        Datum datum) -> Status {
    if (out.size() >= max_samples) return too_many_samples(max_samples);
    if (!series.ok()) return series.status();
    Status st = validate_datum(datum);
    out.push_back(Sample{std::move(*series), s.timestamp.value_or(scrape_time), std::move(datum)});
    if (!st.ok()) {
      return Status::error("series '" + cs.family + "': timeseries '" +
                               out.back().timeseries_name() + "': " + st.message(),
                           "decode");
    }
    return {};
  };

  for (std::size_t n = 0; n < used; ++n) {
    Series& s = series[n];
    CachedSeries& cs = cache.series[s.cached];
    if (!cs.built) {
      std::string metric = tally_name(cs.family);
      if (metric.empty()) {
        return Status::error("metric family '" + cs.family + "' has no usable name", "decode");
      }
      Fields fields;
      fields.reserve(cs.labels.size());
      for (const auto& [k, v] : cs.labels) {
        std::string name = tally_name(k);
        if (name == "producer_id" || name == "instance") name = "exported_" + name;
        if (name.empty()) {
          return Status::error("label '" + k + "' has no usable name", "decode");
        }
        fields.push_back({std::move(name), FieldValue(v)});
      }
      cs.metric = std::move(metric);
      cs.fields = std::move(fields);
      cs.labels.clear();
      cs.labels.shrink_to_fit();
      cs.built = true;
    }
    Status st;
    switch (cs.kind) {
      case Kind::kCounter: {
        if (!s.value) continue;  // only _created seen
        const Timestamp start = start_for(cs, s.created, *s.value);
        st = emit(s, cs, kept_series(cs), Cumulative<double>{start, *s.value});
        break;
      }
      case Kind::kGauge:
      case Kind::kUntyped:
        if (!s.value) continue;
        st = emit(s, cs, kept_series(cs), *s.value);
        break;
      case Kind::kSummary: {
        for (const auto& [q, v] : s.quantiles) {
          Fields qf = cs.fields;
          qf.push_back({"quantile", FieldValue(q)});
          if (st = emit(s, cs, make_series(cs, cs.metric, std::move(qf)), v); !st.ok()) break;
        }
        if (!st.ok()) break;
        const Timestamp start = start_for(cs, s.created, s.count.value_or(0));
        if (s.sum) {
          st = emit(s, cs, make_series(cs, cs.metric + "_sum", cs.fields),
                    Cumulative<double>{start, *s.sum});
        }
        if (st.ok() && s.count) {
          st = emit(s, cs, make_series(cs, cs.metric + "_count", cs.fields),
                    Cumulative<double>{start, *s.count});
        }
        break;
      }
      case Kind::kHistogram: {
        std::vector<std::pair<double, double>>& buckets = s.buckets;
        if (!std::is_sorted(buckets.begin(), buckets.end())) {
          std::sort(buckets.begin(), buckets.end());
        }
        const std::string_view family = cs.family;
        Histogram<double> h;
        h.bins.reserve(buckets.size() + 1);
        double previous_count = 0;
        for (std::size_t i = 0; i < buckets.size(); ++i) {
          const auto [bound, cumulative] = buckets[i];
          if (cumulative < previous_count) {
            return Status::error("histogram '" + std::string(family) +
                                     "': bucket counts decrease at le=" + std::to_string(bound),
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
        h.start_time = start_for(cs, s.created, total);
        st = emit(s, cs, kept_series(cs), std::move(h));
        break;
      }
    }
    if (!st.ok()) return st;
  }
  return {};
}

}  // namespace tally::collector
