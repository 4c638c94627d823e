// The canonical scanner of collect responses (collect_json_decode_paths.h): one forward pass
// over the text, reading what producers write and refusing everything else.
//
// What it reads, it checks as strictly as JSON does (RFC 8259 grammar; strings without escapes
// or control characters) and as the general decoder does (the same types, ranges, duplicate
// keys, bin rules, validate_timeseries, validate_datum), so that whatever it accepts decodes the
// same way there. It accepts:
// - whitespace between tokens, members in any order, unknown members (their values checked and
//   skipped), a missing timeseries_version;
// - "ok" items only, whose "status" comes before "info", and datums whose "type" comes before
//   "datum" (oximeter's tagged enums write them so);
// - numbers as JSON writes them, except "-0" as an integer, exponents of more than 4 digits and
//   floats from_chars does not round (out of range, or subnormal f32): those take the general
//   path;
// - every datum type but the missing datum.
// A target's or metric's object is not read here: its text is found (strings and brackets
// matched) and hashed, and only when the producer's memo has no timeseries for it is it decoded,
// by the general decoder's code. Text met again is text decoded before: the memo keeps the
// hashes of texts that decoded.
#include <simdjson.h>

#include <array>
#include <charconv>
#include <limits>
#include <type_traits>
#include <utility>

#include "collect_json_decode_paths.h"

namespace tally::collect_json {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Known keys are short: compared inline, not by a call to memcmp.
bool same_key(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

bool valid_utf8(std::string_view text) { return simdjson::validate_utf8(text.data(), text.size()); }

// A forward reader of JSON tokens. It needs no padding: every read is bounds-checked.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool at_end() {
    skip_space();
    return p_ == end_;
  }
  bool eat(char c) {
    skip_space();
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  bool next_is(char c) {
    skip_space();
    return p_ != end_ && *p_ == c;
  }
  // The text from the next token to the end, and a step over `n` bytes of it.
  std::string_view rest() {
    skip_space();
    return std::string_view(p_, static_cast<std::size_t>(end_ - p_));
  }
  void skip(std::size_t n) { p_ += n; }

  bool word(std::string_view w) {
    skip_space();
    if (static_cast<std::size_t>(end_ - p_) < w.size() || std::string_view(p_, w.size()) != w) {
      return false;
    }
    p_ += w.size();
    return true;
  }

  // A string's text between its quotes, when it holds no escape and no control character. Its
  // UTF-8 is not checked: callers compare it with known text or check it (valid_utf8).
  bool string(std::string_view& out) {
    skip_space();
    if (p_ == end_ || *p_ != '"') return false;
    const char* begin = ++p_;
    for (; p_ != end_; ++p_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out = std::string_view(begin, static_cast<std::size_t>(p_++ - begin));
        return true;
      }
      if (c == '\\' || c < 0x20) return false;
    }
    return false;
  }

  // A number's text, checked against JSON's grammar.
  bool number(std::string_view& out) {
    skip_space();
    const char* begin = p_;
    if (p_ != end_ && *p_ == '-') ++p_;
    if (p_ == end_ || !is_digit(*p_)) return false;
    if (*p_ == '0') {
      ++p_;
    } else {
      skip_digits();
    }
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (!skip_digits()) return false;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      // simdjson refuses exponents of 20 digits or more; no float needs more than 4.
      const char* digits = p_;
      if (!skip_digits() || p_ - digits > kMaxExponentDigits) return false;
    }
    out = std::string_view(begin, static_cast<std::size_t>(p_ - begin));
    return true;
  }

  // The text of an object, its brackets and strings matched but nothing else checked.
  bool object_text(std::string_view& out) {
    skip_space();
    if (p_ == end_ || *p_ != '{') return false;
    const char* begin = p_;
    std::size_t depth = 0;
    while (p_ != end_) {
      const char c = *p_++;
      if (c == '"') {
        while (p_ != end_ && *p_ != '"') {
          if (*p_ == '\\' && ++p_ == end_) return false;  // an escape: its next byte is text
          ++p_;
        }
        if (p_ == end_) return false;
        ++p_;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        out = std::string_view(begin, static_cast<std::size_t>(p_ - begin));
        return true;
      }
    }
    return false;
  }

  // Any JSON value, checked and dropped (an unknown member's).
  bool skip_value(std::size_t depth = 0);

 private:
  static constexpr std::size_t kMaxSkipDepth = 64;
  static constexpr std::ptrdiff_t kMaxExponentDigits = 4;

  void skip_space() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool skip_digits() {
    const char* begin = p_;
    while (p_ != end_ && is_digit(*p_)) ++p_;
    return p_ != begin;
  }

  const char* p_;
  const char* end_;
};

// Calls member(key) for each member of an object, with the scanner at the member's value.
template <class Member>
bool read_members(Scanner& in, Member&& member) {
  if (!in.eat('{')) return false;
  if (in.eat('}')) return true;
  do {
    std::string_view key;
    if (!in.string(key) || !in.eat(':') || !member(key)) return false;
  } while (in.eat(','));
  return in.eat('}');
}

// Calls element() for each element of an array, with the scanner at the element.
template <class Element>
bool read_elements(Scanner& in, Element&& element) {
  if (!in.eat('[')) return false;
  if (in.eat(']')) return true;
  do {
    if (!element()) return false;
  } while (in.eat(','));
  return in.eat(']');
}

bool skip_member(Scanner& in, std::string_view key, std::size_t depth) {
  return valid_utf8(key) && in.skip_value(depth);
}

bool Scanner::skip_value(std::size_t depth) {
  skip_space();
  if (depth > kMaxSkipDepth || p_ == end_) return false;
  std::string_view text;
  switch (*p_) {
    case '{':
      return read_members(*this,
                          [&](std::string_view key) { return skip_member(*this, key, depth + 1); });
    case '[':
      return read_elements(*this, [&] { return skip_value(depth + 1); });
    case '"':
      return string(text) && valid_utf8(text);
    case 't':
      return word("true");
    case 'f':
      return word("false");
    case 'n':
      return word("null");
    default:
      return number(text);
  }
}

// An object's members named keys[k] are read by read(k); a duplicate, or a missing key whose
// bit is in `required`, refuses; other members are skipped.
template <std::size_t N, class Read>
bool read_object(Scanner& in, const std::array<std::string_view, N>& keys, unsigned required,
                 Read&& read) {
  static_assert(N <= 32);
  unsigned seen = 0;
  const bool ok = read_members(in, [&](std::string_view key) {
    for (std::size_t k = 0; k < N; ++k) {
      if (!same_key(key, keys[k])) continue;
      if (seen & (1u << k)) return false;
      seen |= 1u << k;
      return read(k);
    }
    return skip_member(in, key, 0);
  });
  return ok && (seen & required) == required;
}

template <class Int>
bool read_integer(Scanner& in, Int& out) {
  std::string_view token;
  if (!in.number(token)) return false;
  const bool negative = token.front() == '-';
  const std::string_view digits = token.substr(negative ? 1 : 0);
  if (negative && digits == "0") return false;  // left to the general decoder
  uint64_t magnitude = 0;
  for (const char c : digits) {
    if (!is_digit(c)) return false;  // a fraction or an exponent: not an integer
    if (__builtin_mul_overflow(magnitude, uint64_t{10}, &magnitude) ||
        __builtin_add_overflow(magnitude, static_cast<uint64_t>(c - '0'), &magnitude)) {
      return false;
    }
  }
  if (negative) {
    if constexpr (std::is_signed_v<Int>) {
      const auto limit = static_cast<uint64_t>(-(std::numeric_limits<Int>::min() + 1)) + 1;
      if (magnitude > limit) return false;
      out = static_cast<Int>(-static_cast<int64_t>(magnitude - 1) - 1);
      return true;
    } else {
      return false;
    }
  }
  if (magnitude > static_cast<uint64_t>(std::numeric_limits<Int>::max())) return false;
  out = static_cast<Int>(magnitude);
  return true;
}

// A number token (JSON's grammar) as the nearest double. Most are decimals with few digits and
// no exponent: their digits as an integer below 2^53 and a power of ten up to 10^22 are both
// exact, so one division rounds correctly (Clinger's fast path); from_chars does the rest.
bool to_double(std::string_view token, double& out) {
  static constexpr std::array<double, 23> kPowersOfTen = {
      1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  const char* p = token.data();
  const char* end = p + token.size();
  const bool negative = *p == '-';
  if (negative) ++p;
  uint64_t mantissa = 0;
  std::size_t digits = 0;
  std::size_t fraction_digits = 0;
  for (; p != end && is_digit(*p); ++p, ++digits) {
    mantissa = mantissa * 10 + static_cast<uint64_t>(*p - '0');
  }
  if (p != end && *p == '.') {
    for (++p; p != end && is_digit(*p); ++p, ++digits, ++fraction_digits) {
      mantissa = mantissa * 10 + static_cast<uint64_t>(*p - '0');
    }
  }
  if (p == end && digits <= 19 && mantissa <= (uint64_t{1} << 53) &&
      fraction_digits < kPowersOfTen.size()) {
    const double d = static_cast<double>(mantissa) / kPowersOfTen[fraction_digits];
    out = negative ? -d : d;
    return true;
  }
  auto [ptr, ec] = std::from_chars(token.data(), end, out);
  return ec == std::errc() && ptr == end;
}

// A float as the general decoder reads it: a number, rounded once from its text, or one of the
// strings oximeter writes for the non-finite values.
template <class Float>
bool read_float(Scanner& in, Float& out) {
  if (in.next_is('"')) {
    std::string_view text;
    if (!in.string(text)) return false;
    if (text == "NaN") {
      out = std::numeric_limits<Float>::quiet_NaN();
    } else if (text == "Infinity") {
      out = std::numeric_limits<Float>::infinity();
    } else if (text == "-Infinity") {
      out = -std::numeric_limits<Float>::infinity();
    } else {
      return false;
    }
    return true;
  }
  std::string_view token;
  if (!in.number(token)) return false;
  if constexpr (std::is_same_v<Float, double>) {
    return to_double(token, out);
  } else {
    // The general decoder rounds a zero through double, which keeps its sign; any other value
    // straight from the text to float.
    double d = 0;
    if (!to_double(token, d)) return false;
    if (d == 0) {
      out = static_cast<float>(d);
      return true;
    }
    const char* end = token.data() + token.size();
    auto [ptr, ec] = std::from_chars(token.data(), end, out);
    return ec == std::errc() && ptr == end;
  }
}

bool read_value(Scanner& in, bool& out) {
  if (in.word("true")) {
    out = true;
    return true;
  }
  out = false;
  return in.word("false");
}

template <class T>
requires std::is_arithmetic_v<T>
bool read_value(Scanner& in, T& out) {
  if constexpr (std::is_floating_point_v<T>) {
    return read_float(in, out);
  } else {
    return read_integer(in, out);
  }
}

bool read_value(Scanner& in, Timestamp& out) {
  std::string_view text;
  if (!in.string(text)) return false;
  Result<Timestamp> t = parse_rfc3339(text);
  if (!t.ok()) return false;
  out = *t;
  return true;
}

bool read_value(Scanner& in, std::string& out) {
  std::string_view text;
  if (!in.string(text) || !valid_utf8(text)) return false;
  out.assign(text);
  return true;
}

bool read_value(Scanner& in, Bytes& out) {
  return read_elements(in, [&] {
    uint8_t byte = 0;
    if (!read_integer(in, byte)) return false;
    out.push_back(byte);
    return true;
  });
}

template <class T>
bool read_value(Scanner& in, Cumulative<T>& out) {
  static constexpr std::array<std::string_view, 2> kKeys = {"start_time", "value"};
  return read_object(in, kKeys, 3u, [&](std::size_t k) {
    return k == 0 ? read_value(in, out.start_time) : read_value(in, out.value);
  });
}

// {"type":"range","start":…,"end":…}, "range_to" without a start, "range_from" without an end.
template <class T>
bool read_range(Scanner& in, std::optional<T>& start, std::optional<T>& end) {
  static constexpr std::array<std::string_view, 3> kKeys = {"type", "start", "end"};
  std::string_view type;
  const bool ok = read_object(in, kKeys, 1u, [&](std::size_t k) {
    if (k == 0) return in.string(type);
    return read_value(in, k == 1 ? start.emplace() : end.emplace());
  });
  if (!ok) return false;
  if (type == "range") return start && end;
  if (type == "range_to") return !start && end;
  if (type == "range_from") return start && !end;
  return false;
}

// One bin: {"range":{…},"count":…}.
template <class T>
bool read_bin(Scanner& in, BinSequence<T>& sequence, Bin<T>& bin) {
  std::optional<T> start;
  std::optional<T> end;
  const bool ok = read_object(in, kBinKeys, 3u, [&](std::size_t k) {
    return k == 0 ? read_range(in, start, end) : read_value(in, bin.count);
  });
  if (!ok || sequence.add(start, end)) return false;
  bin.lower = start;
  return true;
}

template <class T>
bool read_bins(Scanner& in, std::vector<Bin<T>>& out) {
  return gather_bins(out, [&](std::vector<Bin<T>>& bins) {
    BinSequence<T> sequence;
    return read_elements(
               in,
               [&] { return !sequence.next() && read_bin(in, sequence, bins.emplace_back()); }) &&
           !sequence.finish();
  });
}

template <class T>
bool read_value(Scanner& in, Histogram<T>& out) {
  return read_object(in, kHistogramKeys, 0x7fu, [&](std::size_t k) {
    switch (k) {
      case 0:
        return read_value(in, out.start_time);
      case 1:
        return read_bins(in, out.bins);
      case 2:
        return read_value(in, out.n_samples);
      case 3:
        return read_value(in, out.min);
      case 4:
        return read_value(in, out.max);
      case 5:
        return read_value(in, out.sum_of_samples);
      default:
        return read_value(in, out.squared_mean);
    }
  });
}

// The datum of `type`: Datum's alternative I is the one DatumType(I) names. Missing, the last
// alternative, is not read here.
template <std::size_t I = 0>
bool read_datum_body(Scanner& in, DatumType type, Datum& out) {
  if constexpr (I + 1 < std::variant_size_v<Datum>) {
    if (static_cast<std::size_t>(type) != I) return read_datum_body<I + 1>(in, type, out);
    return read_value(in, out.emplace<I>());
  } else {
    return false;
  }
}

// {"type":"f64","datum":…}, its type first.
bool read_datum(Scanner& in, Datum& out) {
  static constexpr std::array<std::string_view, 2> kKeys = {"type", "datum"};
  std::optional<DatumType> type;
  return read_object(in, kKeys, 3u, [&](std::size_t k) {
    if (k == 1) return type && read_datum_body(in, *type, out);
    std::string_view text;
    return in.string(text) && (type = parse_datum_type(text)).has_value();
  });
}

bool read_measurement(Scanner& in, Sample& s) {
  static constexpr std::array<std::string_view, 2> kKeys = {"timestamp", "datum"};
  return read_object(in, kKeys, 3u, [&](std::size_t k) {
    return k == 0 ? read_value(in, s.timestamp) : read_datum(in, s.datum);
  });
}

class CanonicalDecoder {
 public:
  CanonicalDecoder(std::string_view json, const DecodeLimits& limits, CollectDecodeMemo& memo)
      : in_(json), limits_(limits), memo_(memo) {}

  bool decode(std::vector<CollectItem>& items) {
    return read_elements(in_, [&] { return read_item(items.emplace_back()); }) && in_.at_end();
  }

 private:
  // {"status":"ok","info":[…]}
  bool read_item(CollectItem& item) {
    bool has_status = false;
    bool has_info = false;
    const bool ok = read_members(in_, [&](std::string_view key) {
      std::string_view status;
      if (same_key(key, "status")) {
        if (has_status || !in_.string(status) || status != "ok") return false;
        has_status = true;
        return true;
      }
      if (same_key(key, "info")) {
        if (!has_status || has_info) return false;
        has_info = true;
        return read_samples(item.samples);
      }
      return skip_member(in_, key, 0);
    });
    return ok && has_info;
  }

  bool read_samples(std::vector<Sample>& samples) {
    // Producers serve the same series at every collection: the memo's count is a good guess.
    if (samples.empty() && memo_.next.size() < memo_.last.size()) {
      samples.reserve(memo_.last.size() - memo_.next.size());
    }
    return read_elements(in_, [&] {
      return ++n_samples_ <= limits_.max_samples && read_sample(samples.emplace_back());
    });
  }

  bool read_sample(Sample& s) {
    std::string_view name;
    uint32_t version = 1;
    std::string_view target_text;
    std::string_view metric_text;
    CollectDecodeMemo::TextHash metric_hash;
    const bool ok = read_object(in_, kSampleKeys, 0b11101u, [&](std::size_t k) {
      switch (k) {
        case 0:
          return in_.string(name);
        case 1:
          return read_integer(in_, version);
        case 2:
          return read_target_text(target_text);
        case 3:
          return read_metric_text(metric_text, metric_hash);
        default:
          return read_measurement(in_, s);
      }
    });
    return ok && resolve_series(s, target_text, metric_text, metric_hash, version) &&
           name_matches(name, *s.series) && validate_datum(s.datum).ok();
  }

  // Finding where an object ends takes a walk through its text. A target is most often the last
  // sample's (which, that sample accepted, is a whole object), and a metric most often the one
  // whose text the memo's entry for this sample hashed: text that starts with such an object is
  // that object.
  bool read_target_text(std::string_view& text) {
    const std::string_view rest = in_.rest();
    if (!target_text_.empty() && rest.starts_with(target_text_)) {
      text = rest.substr(0, target_text_.size());
      in_.skip(text.size());
      return true;
    }
    return in_.object_text(text);
  }

  bool read_metric_text(std::string_view& text, CollectDecodeMemo::TextHash& hash) {
    const std::size_t n = memo_.next.size();
    if (n < memo_.last.size()) {
      const CollectDecodeMemo::Entry& entry = memo_.last[n];
      const std::string_view rest = in_.rest();
      if (entry.metric_size <= rest.size() && rest.starts_with('{')) {
        const std::string_view candidate = rest.substr(0, entry.metric_size);
        hash = hash_text(candidate);
        if (hash == entry.metric) {
          text = candidate;
          in_.skip(text.size());
          return true;
        }
      }
    }
    if (!in_.object_text(text)) return false;
    hash = hash_text(text);
    return true;
  }

  // As the general decoder's resolve_series, except that a target is decoded only when a
  // timeseries is made from it.
  bool resolve_series(Sample& s, std::string_view target_text, std::string_view metric_text,
                      const CollectDecodeMemo::TextHash& metric_hash, uint32_t version) {
    if (target_text != target_text_) {
      target_text_ = target_text;
      target_hash_ = hash_text(target_text);
      target_.reset();
    }
    s.series = reuse_series(memo_, target_hash_, metric_hash, version);
    if (s.series) return true;
    if (!target_) {
      if (!decode_target_text(target_text_, target_.emplace())) {
        target_.reset();
        return false;
      }
    }
    Metric metric;
    if (!decode_metric_text(metric_text, metric)) return false;
    s.series = make_timeseries(*target_, std::move(metric), version);
    if (!validate_timeseries(*s.series).ok()) return false;
    memo_.next.push_back(
        {target_hash_, metric_hash, version, static_cast<uint32_t>(metric_text.size()), s.series});
    return true;
  }

  Scanner in_;
  const DecodeLimits& limits_;
  CollectDecodeMemo& memo_;
  std::size_t n_samples_ = 0;
  // The target text of the last sample, its hash, and its target once decoded.
  std::string_view target_text_;
  CollectDecodeMemo::TextHash target_hash_;
  std::optional<Target> target_;
};

// Puts back the entries reuse_series moved from memo.last to memo.next.
void restore(CollectDecodeMemo& memo) {
  for (std::size_t i = 0; i < memo.next.size() && i < memo.last.size(); ++i) {
    if (!memo.last[i].series) memo.last[i] = std::move(memo.next[i]);
  }
  memo.next.clear();
}

}  // namespace

std::optional<std::vector<CollectItem>> decode_canonical(std::string_view json,
                                                         const DecodeLimits& limits,
                                                         CollectDecodeMemo& memo) {
  std::vector<CollectItem> items;
  if (CanonicalDecoder(json, limits, memo).decode(items)) return items;
  restore(memo);
  return std::nullopt;
}

}  // namespace tally::collect_json
