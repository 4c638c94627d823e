// Decoder of the collect response (DESIGN.md §3.1) on simdjson's On-Demand API.
//
// Conventions:
// - Every decode_* / read_* function returns false after recording the error in error_; the
//   message is built only then, from the path stack, so the success path never formats text.
// - Objects whose keys are known (tagged unions, cumulative, histogram, bins, target/metric)
//   are read with find_field_unordered in oximeter's key order: a single forward pass for
//   oximeter's output, still correct for any order, unknown keys skipped.
// - The sample object has an optional key (timeseries_version) that would cost a rescan when
//   absent, so it is iterated once with a key dispatch instead; so is the item object, so that
//   its syntax is checked up to its closing brace (decode_item).
// - The content of a tagged union ("value" of a field, "datum" of a datum) adds no path
//   segment: an error inside it is reported at the union, e.g. "….fields.id.value: 'zz' is
//   not a hyphenated UUID" or "….measurement.datum.bins[2]: …".
#include <simdjson.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "collect_json_decode_paths.h"
#include "tally/common/collect_json.h"
#include "tally/common/names.h"

namespace tally::collect_json {
namespace {

namespace od = simdjson::ondemand;

constexpr std::size_t kMaxQuotedLength = 64;

// One step of a JSON path: an object key or an array index.
struct PathSegment {
  std::string_view key;
  std::size_t index = 0;
  bool is_index = false;
};

template <class T>
constexpr std::string_view type_name() {
  if constexpr (std::is_same_v<T, bool>) return "bool";
  if constexpr (std::is_same_v<T, int8_t>) return "i8";
  if constexpr (std::is_same_v<T, uint8_t>) return "u8";
  if constexpr (std::is_same_v<T, int16_t>) return "i16";
  if constexpr (std::is_same_v<T, uint16_t>) return "u16";
  if constexpr (std::is_same_v<T, int32_t>) return "i32";
  if constexpr (std::is_same_v<T, uint32_t>) return "u32";
  if constexpr (std::is_same_v<T, int64_t>) return "i64";
  if constexpr (std::is_same_v<T, uint64_t>) return "u64";
  if constexpr (std::is_same_v<T, float>) return "f32";
  if constexpr (std::is_same_v<T, double>) return "f64";
}

std::string_view json_type_name(od::json_type t) {
  switch (t) {
    case od::json_type::array:
      return "an array";
    case od::json_type::object:
      return "an object";
    case od::json_type::number:
      return "a number";
    case od::json_type::string:
      return "a string";
    case od::json_type::boolean:
      return "a boolean";
    case od::json_type::null:
      return "null";
  }
  return "an unknown value";
}

// Input text for a message, cut short so that a hostile value cannot bloat the logs.
std::string clip(std::string_view text) {
  if (text.size() <= kMaxQuotedLength) return std::string(text);
  std::size_t cut = kMaxQuotedLength;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  std::string out(text.substr(0, cut));
  out.append("…");
  return out;
}

std::string quote(std::string_view text) { return "'" + clip(text) + "'"; }

std::string_view trim_token(std::string_view token) {
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t' || token.back() == '\n' ||
                            token.back() == '\r')) {
    token.remove_suffix(1);
  }
  return token;
}

bool is_integer_token(std::string_view token) {
  return token.find_first_of(".eE") == std::string_view::npos;
}

// Rounds a double to float the way a float parser would; false when it is beyond the float
// range (the cast would be undefined). Infinities pass: they are representable.
bool to_float(double d, float& out) {
  // Values below FLT_MAX + half an ulp round to FLT_MAX; at or above it they would overflow.
  constexpr double kFloatOverflow = 0x1.ffffffp+127;
  if (std::isfinite(d) && std::fabs(d) >= kFloatOverflow) return false;
  if (std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max()) {
    out = d < 0 ? std::numeric_limits<float>::lowest() : std::numeric_limits<float>::max();
    return true;
  }
  out = static_cast<float>(d);
  return true;
}

// The sample's keys as bits of the set of keys met: SampleKey bit k is kSampleKeys[k].
enum SampleKey : unsigned { kName = 1, kVersion = 2, kTarget = 4, kMetric = 8, kMeasurement = 16 };
constexpr std::array<std::string_view, 2> kOwnerKeys = {"name", "fields"};
constexpr std::array<std::string_view, 2> kErrorKeys = {"type", "content"};

// A parser holds several times the size of the largest document it has read. Buffers for
// documents up to kRetainedDocumentSize are always kept. Larger ones are kept while such
// documents keep coming (a collector polling big producers reuses them, which saves faulting
// in tens of MB per decode), and dropped after kShrinkAfter smaller documents in a row, so
// that a rare huge response does not pin its memory on the thread.
constexpr std::size_t kRetainedDocumentSize = 4 << 20;
constexpr std::size_t kShrinkAfter = 8;

// Per-thread parser state, reused across calls: the parser keeps its index buffers and the
// copy gives simdjson the padding it may read past the end of the text.
struct ParserBuffers {
  od::parser parser;
  od::parser part_parser;  // for a target's or metric's text, apart from the document
  std::string padded;
  std::size_t small_in_a_row = 0;  // documents since the last one over kRetainedDocumentSize

  void after_decode(std::size_t document_size) {
    if (document_size > kRetainedDocumentSize) {
      small_in_a_row = 0;
    } else if (padded.capacity() > kRetainedDocumentSize + simdjson::SIMDJSON_PADDING &&
               ++small_in_a_row >= kShrinkAfter) {
      parser = od::parser();
      std::string().swap(padded);
      small_in_a_row = 0;
    }
  }
};

ParserBuffers& thread_buffers() {
  thread_local ParserBuffers buffers;
  return buffers;
}

class Decoder {
 public:
  Decoder(const DecodeLimits& limits, ParserBuffers& buffers, CollectDecodeMemo& memo)
      : limits_(limits), buffers_(buffers), memo_(memo) {}

  Result<std::vector<CollectItem>> decode(std::string_view json);
  // A target's or metric's object from its text, which is followed by `capacity` - its size
  // readable bytes (simdjson's padding).
  template <class Owner>
  bool decode_owner_text(std::string_view text, std::size_t capacity, Owner& owner);

 private:
  // Pushes a path segment for the lifetime of the scope.
  class Scope {
   public:
    Scope(Decoder& d, std::string_view key) : d_(d) { d_.push({key, 0, false}); }
    Scope(Decoder& d, std::size_t index) : d_(d) { d_.push({{}, index, true}); }
    ~Scope() { --d_.depth_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Decoder& d_;
  };

  bool decode_items(od::array& items, std::vector<CollectItem>& out);
  bool decode_item(od::value v, CollectItem& item);
  bool decode_producer_error(od::value v, ProducerError& error);
  bool decode_samples(od::value v, std::vector<Sample>& out);
  bool decode_sample(od::value v, Sample& s);
  // The parts of a sample object other than its measurement, until the walk is done.
  struct SampleHead {
    std::string_view name;
    uint32_t version = 1;
    std::string_view metric_json;
  };
  bool decode_sample_key(SampleKey key, od::value v, Sample& s, SampleHead& head);
  bool resolve_series(Sample& s, const SampleHead& head);
  bool check_sample(const Sample& s, std::string_view name);
  bool decode_target(od::value v);
  bool raw_object(od::value v, std::string_view& text);
  // decode_owner_text for a text inside the document.
  template <class Owner>
  bool decode_owner_in_document(std::string_view text, Owner& owner);
  bool decode_fields(od::value v, Fields& out);
  bool decode_field(od::value v, std::string_view key, Field& field);
  bool decode_field_value(od::value v, FieldValue& out);
  bool decode_measurement(od::value v, Sample& s);
  bool decode_datum(od::value v, Datum& out);
  bool decode_datum_body(DatumType type, od::value& body, Datum& out);
  template <class T>
  bool decode_gauge(od::value& body, Datum& out);
  bool decode_bytes(od::value& body, Datum& out);
  template <class T>
  bool decode_cumulative(od::value& body, Datum& out);
  template <class T>
  bool decode_histogram(od::value& body, Datum& out);
  template <class T>
  bool decode_bins(od::value v, std::vector<Bin<T>>& out);
  template <class T>
  bool decode_bins_into(od::value v, std::vector<Bin<T>>& bins);
  template <class T>
  bool decode_bin(od::value v, BinSequence<T>& sequence, Bin<T>& bin);
  template <class T>
  bool decode_range(od::value v, BinSequence<T>& sequence, Bin<T>& bin);
  bool decode_missing(od::value& body, Datum& out);

  // Scalars and containers of the current value.
  bool get_object(od::value& v, od::object& out);
  bool get_array(od::value& v, od::array& out);
  bool find(od::object& obj, std::string_view key, od::value& out);
  bool read_string(od::value& v, std::string_view& out);
  bool read_key(od::field& field, std::string_view& out);
  bool read_string_at(od::object& obj, std::string_view key, std::string_view& out);
  template <class T>
  bool read_parsed(od::value& v, FieldValue& out);
  bool read_timestamp(od::value& v, Timestamp& out);
  bool read_timestamp_at(od::object& obj, std::string_view key, Timestamp& out);
  template <class T>
  bool read_number(od::value& v, T& out);
  template <class T>
  bool read_number_at(od::object& obj, std::string_view key, T& out);
  template <class Int>
  bool read_integer(od::value& v, Int& out);
  bool read_double(od::value& v, double& out, std::string_view type);
  bool fail_number(od::value& v, simdjson::error_code error, std::string_view type,
                   std::string_view expected);
  bool fail_type(od::value& v, std::string_view expected);

  // Walks an object member by member to its closing brace (which checks its syntax, unlike
  // lookups: see decode_histogram), calling read(k, value) for a member named keys[k]; other
  // members are skipped. A duplicate, or a missing key whose bit is in `required`, fails.
  template <std::size_t N, class Read>
  bool walk(od::object& obj, const std::array<std::string_view, N>& keys, unsigned required,
            Read&& read);

  bool fail(std::string_view problem, const char* code = "decode");
  bool fail_json(simdjson::error_code error);
  bool fail_too_many_samples();
  std::string path() const;

  const DecodeLimits& limits_;
  ParserBuffers& buffers_;
  CollectDecodeMemo& memo_;
  // The path is as deep as the format, never as deep as the input: a fixed array will do.
  static constexpr std::size_t kMaxDepth = 16;
  void push(PathSegment segment) {
    if (depth_ < kMaxDepth) path_[depth_] = segment;
    ++depth_;
  }
  std::array<PathSegment, kMaxDepth> path_;
  std::size_t depth_ = 0;
  std::size_t n_samples_ = 0;
  Status error_;
  // The target of the sample being decoded and its JSON text (a view of the document: see
  // decode_target).
  Target last_target_;
  std::string_view last_target_json_;
  CollectDecodeMemo::TextHash last_target_hash_;
};

Result<std::vector<CollectItem>> Decoder::decode(std::string_view json) {
  std::string& padded = buffers_.padded;
  padded.resize(json.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(padded.data(), json.data(), json.size());
  // On Demand may read the padding when it skips malformed text: zeros, not what an earlier
  // document left there, so that the same text always decodes the same way.
  std::memset(padded.data() + json.size(), 0, simdjson::SIMDJSON_PADDING);

  std::vector<CollectItem> items;
  od::document doc;
  if (auto e = buffers_.parser.iterate(padded.data(), json.size(), padded.size()).get(doc)) {
    fail_json(e);
    return error_;
  }
  od::array root;
  if (auto e = doc.get_array().get(root)) {
    if (e == simdjson::INCORRECT_TYPE) {
      fail("expected a JSON array of items");
    } else {
      fail_json(e);
    }
    return error_;
  }
  if (!decode_items(root, items)) return error_;
  // At the end of the document current_location() is out of bounds; anything else is trailing.
  if (!doc.current_location().error()) {
    fail("unexpected content after the array");
    return error_;
  }
  return items;
}

bool Decoder::decode_items(od::array& items, std::vector<CollectItem>& out) {
  std::size_t i = 0;
  for (auto element : items) {
    Scope scope(*this, i++);
    od::value v;
    if (auto e = element.get(v)) return fail_json(e);
    if (!decode_item(v, out.emplace_back())) return false;
  }
  return true;
}

// Walked member by member to its closing brace rather than read by lookups: On Demand does not
// check the syntax of what it skips, and an item whose "info" was followed by garbage instead of
// its closing brace (`…]y]`) was accepted (tools/fuzz, tests/fixtures/fuzz/collect_json/
// item_not_closed). "status" comes first in oximeter's output; an "info" met before it is read
// by a second lookup once the walk is done.
bool Decoder::decode_item(od::value v, CollectItem& item) {
  od::object obj;
  if (!get_object(v, obj)) return false;
  std::string_view status;
  bool has_status = false;
  bool info_read = false;
  bool info_before_status = false;
  const auto read_info = [&](od::value info) {
    Scope scope(*this, "info");
    info_read = true;
    return status == "ok" ? decode_samples(info, item.samples)
                          : decode_producer_error(info, item.error.emplace());
  };
  for (auto element : obj) {
    od::field field;
    if (auto e = std::move(element).get(field)) return fail_json(e);
    const od::raw_json_string key = field.key();
    if (key.unsafe_is_equal("status")) {
      if (has_status) return fail("duplicate key 'status'");
      has_status = true;
      od::value value = field.value();
      {
        Scope scope(*this, "status");
        if (!read_string(value, status)) return false;
      }
      if (status != "ok" && status != "err") {
        return fail("unknown status " + quote(status) + " (expected 'ok' or 'err')");
      }
    } else if (key.unsafe_is_equal("info")) {
      if (info_read || info_before_status) return fail("duplicate key 'info'");
      if (!has_status) {
        info_before_status = true;  // skipped now, its syntax checked by the lookup below
      } else if (!read_info(field.value())) {
        return false;
      }
    }
  }
  if (!has_status) return fail("missing key 'status'");
  if (info_read) return true;
  if (!info_before_status) return fail("missing key 'info'");
  od::value info;
  if (auto e = obj.reset().error()) return fail_json(e);
  return find(obj, "info", info) && read_info(info);
}

// oximeter's MetricsError is a tagged enum: most variants carry a string, some an object and
// some nothing. A non-string content is kept as its JSON text so that nothing is lost. Walked
// to its closing brace: read by lookups, an "info" whose content was followed by garbage
// (`"content":[::1]:80 {…`) was accepted, or refused, depending on what the last document had
// left in the padding (tools/fuzz, tests/fixtures/fuzz/collect_json/error_info_not_closed).
bool Decoder::decode_producer_error(od::value v, ProducerError& error) {
  od::object obj;
  if (!get_object(v, obj)) return false;
  const auto read = [&](std::size_t k, od::value value) {
    std::string_view text;
    if (k == 0) {
      if (!read_string(value, text)) return false;
      error.type.assign(text);
      return true;
    }
    od::json_type t;
    if (auto e = value.type().get(t)) return fail_json(e);
    if (t == od::json_type::string) {
      if (!read_string(value, text)) return false;
    } else if (t == od::json_type::object) {
      od::object o;
      if (!get_object(value, o)) return false;
      if (auto e = o.raw_json().get(text)) return fail_json(e);
    } else if (t == od::json_type::array) {
      od::array a;
      if (!get_array(value, a)) return false;
      if (auto e = a.raw_json().get(text)) return fail_json(e);
    } else {
      text = trim_token(value.raw_json_token());
    }
    error.content.assign(text);
    return true;
  };
  return walk(obj, kErrorKeys, 1u, read);
}

bool Decoder::decode_samples(od::value v, std::vector<Sample>& out) {
  od::array arr;
  if (!get_array(v, arr)) return false;
  // Counting first skims the structural index: it sizes the vector once, rejects an oversized
  // response before any sample is parsed, and checks the array's structure, which the lookups
  // inside a sample do not (tests/fixtures/fuzz/collect_json/sample_not_closed decodes without
  // it). Dropping it was +5-7 % decode speed; it stays.
  std::size_t count = 0;
  if (auto e = arr.count_elements().get(count)) return fail_json(e);
  if (count > limits_.max_samples - n_samples_) {
    Scope scope(*this, limits_.max_samples - n_samples_);
    return fail_too_many_samples();
  }
  out.reserve(count);
  std::size_t i = 0;
  for (auto element : arr) {
    Scope scope(*this, i++);
    od::value sample;
    if (auto e = element.get(sample)) return fail_json(e);
    if (++n_samples_ > limits_.max_samples) return fail_too_many_samples();
    if (!decode_sample(sample, out.emplace_back())) return false;
  }
  return true;
}

bool Decoder::decode_sample(od::value v, Sample& s) {
  od::object obj;
  if (!get_object(v, obj)) return false;
  SampleHead head;
  const auto read = [&](std::size_t k, od::value value) {
    return decode_sample_key(static_cast<SampleKey>(1u << k), value, s, head);
  };
  return walk(obj, kSampleKeys, ~unsigned{kVersion} & 31u, read) && resolve_series(s, head) &&
         check_sample(s, head.name);
}

bool Decoder::decode_sample_key(SampleKey key, od::value v, Sample& s, SampleHead& head) {
  switch (key) {
    case kName:
      return read_string(v, head.name);
    case kVersion:
      return read_number(v, head.version);
    case kTarget:
      return decode_target(v);
    case kMetric:
      return raw_object(v, head.metric_json);
    case kMeasurement:
      return decode_measurement(v, s);
  }
  return true;
}

// The n-th sample of a response takes the timeseries of the n-th sample of the producer's last
// response when its target text, metric text and version are the same: the same bytes decode
// to the same target and metric, already checked. The texts are compared by their XXH3-128
// hashes, which the memo keeps instead of the texts (a quarter of a series' memory, and each
// comparison was a cache miss): an accidental collision is a 2^-128 event, and a producer that
// crafted one could only give its own sample another of its own series, which it can do anyway.
// Otherwise the metric is decoded from its text (which the walk skipped, checking no syntax)
// by a second parser, walked to its closing brace, and the new timeseries is checked
// (validate_timeseries) and its key hashed once, here.
bool Decoder::resolve_series(Sample& s, const SampleHead& head) {
  const CollectDecodeMemo::TextHash metric_hash = hash_text(head.metric_json);
  s.series = reuse_series(memo_, last_target_hash_, metric_hash, head.version);
  if (s.series) return true;
  Metric metric;
  {
    Scope scope(*this, "metric");
    if (!decode_owner_in_document(head.metric_json, metric)) return false;
  }
  s.series = make_timeseries(last_target_, std::move(metric), head.version);
  if (Status st = validate_timeseries(*s.series); !st.ok()) return fail(st.message());
  memo_.next.push_back({last_target_hash_, metric_hash, head.version,
                        static_cast<uint32_t>(head.metric_json.size()), s.series});
  return true;
}

bool Decoder::check_sample(const Sample& s, std::string_view name) {
  if (!name_matches(name, *s.series)) {
    Scope scope(*this, "timeseries_name");
    return fail(quote(name) + " does not match the target and metric names " +
                quote(s.timeseries_name()));
  }
  if (Status st = validate_datum(s.datum); !st.ok()) {
    return fail(st.with_context("timeseries '" + s.timeseries_name() + "'").message());
  }
  return true;
}

// Producers repeat one target in every sample of a response, and it was decoded again for each
// (+5-7 % decode speed without: tools/benchmarks/decode_bench.cpp). The target object is skipped
// through the document (its text taken as it goes) and, when that text is byte for byte the one
// decoded last, the target decoded from it stays: the same bytes decode to the same target.
bool Decoder::decode_target(od::value v) {
  std::string_view text;
  if (!raw_object(v, text)) return false;
  if (text == last_target_json_) return true;
  Target target;
  if (!decode_owner_in_document(text, target)) return false;
  last_target_ = std::move(target);
  last_target_json_ = text;
  last_target_hash_ = hash_text(text);
  return true;
}

// The text of an object, skipped through the document, from its opening brace to its closing
// one (raw_json() runs on to the next token): the canonical scanner hashes the same text.
bool Decoder::raw_object(od::value v, std::string_view& text) {
  od::object obj;
  if (!get_object(v, obj)) return false;
  if (auto e = obj.raw_json().get(text)) return fail_json(e);
  text = trim_token(text);
  return true;
}

// Decodes a target's or metric's object from its text with a second parser, walked member by
// member to its closing brace, so the skip through the document (which checks no syntax) lets
// nothing malformed through.
template <class Owner>
bool Decoder::decode_owner_in_document(std::string_view text, Owner& owner) {
  // The text lies inside the document, so the document's padding follows it.
  const std::string& padded = buffers_.padded;
  const auto capacity = static_cast<std::size_t>(padded.data() + padded.size() - text.data());
  return decode_owner_text(text, capacity, owner);
}

template <class Owner>
bool Decoder::decode_owner_text(std::string_view text, std::size_t capacity, Owner& owner) {
  od::document doc;
  if (auto e = buffers_.part_parser.iterate(text.data(), text.size(), capacity).get(doc)) {
    return fail_json(e);
  }
  od::object obj;
  if (auto e = doc.get_object().get(obj)) return fail_json(e);
  const auto read = [&](std::size_t k, od::value value) {
    if (k == 1) return decode_fields(value, owner.fields);
    std::string_view name;
    if (!read_string(value, name)) return false;
    owner.name.assign(name);
    return true;
  };
  if (!walk(obj, kOwnerKeys, 3u, read)) return false;
  if (!doc.current_location().error()) return fail("unexpected content after the object");
  return true;
}

bool Decoder::decode_fields(od::value v, Fields& out) {
  od::object obj;
  if (!get_object(v, obj)) return false;
  for (auto element : obj) {
    od::field field;
    if (auto e = std::move(element).get(field)) return fail_json(e);
    std::string_view key;
    if (!read_key(field, key)) return false;
    Scope scope(*this, key);
    if (out.empty()) out.reserve(4);  // samples have a few fields; skip the 1, 2, 4 growth
    if (!decode_field(field.value(), key, out.emplace_back())) return false;
  }
  return true;
}

bool Decoder::decode_field(od::value v, std::string_view key, Field& field) {
  od::object obj;
  if (!get_object(v, obj)) return false;
  std::string_view name;
  if (!read_string_at(obj, "name", name)) return false;
  if (name != key) {
    return fail("the key " + quote(key) + " differs from the field's name " + quote(name));
  }
  field.name.assign(name);
  od::value value;
  if (!find(obj, "value", value)) return false;
  Scope scope(*this, "value");
  return decode_field_value(value, field.value);
}

bool Decoder::decode_field_value(od::value v, FieldValue& out) {
  od::object obj;
  if (!get_object(v, obj)) return false;
  std::string_view type_text;
  if (!read_string_at(obj, "type", type_text)) return false;
  const std::optional<FieldType> type = parse_field_type(type_text);
  if (!type) return fail("unknown field type " + quote(type_text));
  od::value value;
  if (!find(obj, "value", value)) return false;
  auto set_number = [&]<class T>(T x) {
    if (!read_number(value, x)) return false;
    out = x;
    return true;
  };
  switch (*type) {
    case FieldType::kString: {
      std::string_view text;
      if (!read_string(value, text)) return false;
      out.emplace<std::string>(text);
      return true;
    }
    case FieldType::kI8:
      return set_number(int8_t{});
    case FieldType::kU8:
      return set_number(uint8_t{});
    case FieldType::kI16:
      return set_number(int16_t{});
    case FieldType::kU16:
      return set_number(uint16_t{});
    case FieldType::kI32:
      return set_number(int32_t{});
    case FieldType::kU32:
      return set_number(uint32_t{});
    case FieldType::kI64:
      return set_number(int64_t{});
    case FieldType::kU64:
      return set_number(uint64_t{});
    case FieldType::kBool:
      return set_number(bool{});
    case FieldType::kIpAddr:
      return read_parsed<IpAddr>(value, out);
    case FieldType::kUuid:
      return read_parsed<Uuid>(value, out);
  }
  return fail("unknown field type " + quote(type_text));
}

bool Decoder::decode_measurement(od::value v, Sample& s) {
  od::object obj;
  if (!get_object(v, obj)) return false;
  if (!read_timestamp_at(obj, "timestamp", s.timestamp)) return false;
  od::value datum;
  if (!find(obj, "datum", datum)) return false;
  Scope scope(*this, "datum");
  return decode_datum(datum, s.datum);
}

bool Decoder::decode_datum(od::value v, Datum& out) {
  od::object obj;
  if (!get_object(v, obj)) return false;
  std::string_view type_text;
  if (!read_string_at(obj, "type", type_text)) return false;
  od::value body;
  if (type_text == "missing") {
    if (!find(obj, "datum", body)) return false;
    return decode_missing(body, out);
  }
  const std::optional<DatumType> type = parse_datum_type(type_text);
  if (!type) return fail("unknown type " + quote(type_text));
  if (!find(obj, "datum", body)) return false;
  return decode_datum_body(*type, body, out);
}

bool Decoder::decode_datum_body(DatumType type, od::value& body, Datum& out) {
  switch (type) {
    case DatumType::kBool:
      return decode_gauge<bool>(body, out);
    case DatumType::kI8:
      return decode_gauge<int8_t>(body, out);
    case DatumType::kU8:
      return decode_gauge<uint8_t>(body, out);
    case DatumType::kI16:
      return decode_gauge<int16_t>(body, out);
    case DatumType::kU16:
      return decode_gauge<uint16_t>(body, out);
    case DatumType::kI32:
      return decode_gauge<int32_t>(body, out);
    case DatumType::kU32:
      return decode_gauge<uint32_t>(body, out);
    case DatumType::kI64:
      return decode_gauge<int64_t>(body, out);
    case DatumType::kU64:
      return decode_gauge<uint64_t>(body, out);
    case DatumType::kF32:
      return decode_gauge<float>(body, out);
    case DatumType::kF64:
      return decode_gauge<double>(body, out);
    case DatumType::kString: {
      std::string_view text;
      if (!read_string(body, text)) return false;
      out.emplace<std::string>(text);
      return true;
    }
    case DatumType::kBytes:
      return decode_bytes(body, out);
    case DatumType::kCumulativeI64:
      return decode_cumulative<int64_t>(body, out);
    case DatumType::kCumulativeU64:
      return decode_cumulative<uint64_t>(body, out);
    case DatumType::kCumulativeF32:
      return decode_cumulative<float>(body, out);
    case DatumType::kCumulativeF64:
      return decode_cumulative<double>(body, out);
    case DatumType::kHistogramI8:
      return decode_histogram<int8_t>(body, out);
    case DatumType::kHistogramU8:
      return decode_histogram<uint8_t>(body, out);
    case DatumType::kHistogramI16:
      return decode_histogram<int16_t>(body, out);
    case DatumType::kHistogramU16:
      return decode_histogram<uint16_t>(body, out);
    case DatumType::kHistogramI32:
      return decode_histogram<int32_t>(body, out);
    case DatumType::kHistogramU32:
      return decode_histogram<uint32_t>(body, out);
    case DatumType::kHistogramI64:
      return decode_histogram<int64_t>(body, out);
    case DatumType::kHistogramU64:
      return decode_histogram<uint64_t>(body, out);
    case DatumType::kHistogramF32:
      return decode_histogram<float>(body, out);
    case DatumType::kHistogramF64:
      return decode_histogram<double>(body, out);
  }
  return fail("unknown type " + quote(to_string(type)));
}

template <class T>
bool Decoder::decode_gauge(od::value& body, Datum& out) {
  T value{};
  if (!read_number(body, value)) return false;
  out = value;
  return true;
}

bool Decoder::decode_bytes(od::value& body, Datum& out) {
  od::array arr;
  if (!get_array(body, arr)) return false;
  Bytes& bytes = out.emplace<Bytes>();
  std::size_t i = 0;
  for (auto element : arr) {
    Scope scope(*this, i++);
    od::value v;
    if (auto e = element.get(v)) return fail_json(e);
    uint8_t byte = 0;
    if (!read_number(v, byte)) return false;
    bytes.push_back(byte);
  }
  return true;
}

template <class T>
bool Decoder::decode_cumulative(od::value& body, Datum& out) {
  od::object obj;
  if (!get_object(body, obj)) return false;
  Cumulative<T>& c = out.emplace<Cumulative<T>>();
  return read_timestamp_at(obj, "start_time", c.start_time) &&
         read_number_at(obj, "value", c.value);
}

// The quantile estimates oximeter may add (p50, p90, p99) are not asked for, so they are skipped.
template <class T>
bool Decoder::decode_histogram(od::value& body, Datum& out) {
  od::object obj;
  if (!get_object(body, obj)) return false;
  Histogram<T>& h = out.emplace<Histogram<T>>();
  // Walked, not read by lookups: a lookup of "n_samples" after bins that were not closed
  // (`"count":23[{…`) tripped simdjson 3.0's On Demand (an assertion in the fuzz build, memory
  // corruption in Release: tools/fuzz, tests/fixtures/fuzz/collect_json/bins_not_closed).
  const auto read = [&](std::size_t k, od::value v) {
    switch (k) {
      case 0:
        return read_timestamp(v, h.start_time);
      case 1:
        return decode_bins(v, h.bins);
      case 2:
        return read_number(v, h.n_samples);
      case 3:
        return read_number(v, h.min);
      case 4:
        return read_number(v, h.max);
      case 5:
        return read_number(v, h.sum_of_samples);
      default:
        return read_number(v, h.squared_mean);
    }
  };
  return walk(obj, kHistogramKeys, 0x7f, read);
}

template <class T>
bool Decoder::decode_bins(od::value v, std::vector<Bin<T>>& out) {
  return gather_bins(out, [&](std::vector<Bin<T>>& bins) { return decode_bins_into(v, bins); });
}

template <class T>
bool Decoder::decode_bins_into(od::value v, std::vector<Bin<T>>& bins) {
  od::array arr;
  if (!get_array(v, arr)) return false;
  BinSequence<T> sequence;
  std::size_t i = 0;
  for (auto element : arr) {
    Scope scope(*this, i++);
    if (auto problem = sequence.next()) return fail(*problem);
    od::value bin;
    if (auto e = element.get(bin)) return fail_json(e);
    if (!decode_bin(bin, sequence, bins.emplace_back())) return false;
  }
  if (auto problem = sequence.finish()) return fail(*problem);
  return true;
}

// Turns one oximeter range into a lower edge, checking that it starts where the previous
// bin ended: the model keeps only lower edges, so a gap or overlap could not be represented.
template <class T>
bool Decoder::decode_bin(od::value v, BinSequence<T>& sequence, Bin<T>& bin) {
  od::object obj;
  if (!get_object(v, obj)) return false;
  // Walked, not read by lookups: a "count" lookup after a malformed range tripped simdjson 3.0's
  // On Demand even with the range walked (tools/fuzz, tests/fixtures/fuzz/collect_json/
  // range_not_closed).
  const auto read = [&](std::size_t k, od::value value) {
    return k == 0 ? decode_range(value, sequence, bin) : read_number(value, bin.count);
  };
  return walk(obj, kBinKeys, 3u, read);
}

template <class T>
bool Decoder::decode_range(od::value range_value, BinSequence<T>& sequence, Bin<T>& bin) {
  od::object range;
  if (!get_object(range_value, range)) return false;
  std::string_view kind;
  if (!read_string_at(range, "type", kind)) return false;
  T start{};
  T end{};
  const bool has_start = kind == "range" || kind == "range_from";
  const bool has_end = kind == "range" || kind == "range_to";
  if (!has_start && !has_end) {
    return fail("unknown range type " + quote(kind) + " (expected range_to, range or range_from)");
  }
  if (has_start && !read_number_at(range, "start", start)) return false;
  if (has_end && !read_number_at(range, "end", end)) return false;
  if (auto problem = sequence.add(has_start ? std::optional<T>(start) : std::nullopt,
                                  has_end ? std::optional<T>(end) : std::nullopt)) {
    return fail(*problem);
  }
  if (has_start) bin.lower = start;
  // Walk the range to its closing brace, which checks its syntax: left half read, a malformed
  // tail (`"end":0 x}`) made the "count" lookup below corrupt memory inside simdjson 3.0's
  // On Demand skipping (found by tools/fuzz, tests/fixtures/fuzz/collect_json).
  if (auto e = range.reset().error()) return fail_json(e);
  for (auto field : range) {
    if (auto e = field.error()) return fail_json(e);
  }
  return true;
}

// {"datum_type": "i64", "start_time": null | "…"}; an absent start_time reads as null.
bool Decoder::decode_missing(od::value& body, Datum& out) {
  od::object obj;
  if (!get_object(body, obj)) return false;
  Missing& missing = out.emplace<Missing>();
  std::string_view type_text;
  if (!read_string_at(obj, "datum_type", type_text)) return false;
  const std::optional<DatumType> type = parse_datum_type(type_text);
  if (!type) {
    Scope scope(*this, "datum_type");
    return fail("unknown datum type " + quote(type_text));
  }
  missing.datum_type = *type;
  od::value start;
  auto e = obj.find_field_unordered("start_time").get(start);
  if (e == simdjson::NO_SUCH_FIELD) return true;
  if (e) return fail_json(e);
  Scope scope(*this, "start_time");
  od::json_type t;
  if (auto te = start.type().get(t)) return fail_json(te);
  if (t == od::json_type::null) return true;
  return read_timestamp(start, missing.start_time.emplace());
}

bool Decoder::get_object(od::value& v, od::object& out) {
  if (auto e = v.get_object().get(out)) {
    return e == simdjson::INCORRECT_TYPE ? fail_type(v, "an object") : fail_json(e);
  }
  return true;
}

bool Decoder::get_array(od::value& v, od::array& out) {
  if (auto e = v.get_array().get(out)) {
    return e == simdjson::INCORRECT_TYPE ? fail_type(v, "an array") : fail_json(e);
  }
  return true;
}

template <std::size_t N, class Read>
bool Decoder::walk(od::object& obj, const std::array<std::string_view, N>& keys, unsigned required,
                   Read&& read) {
  static_assert(N <= 32);
  unsigned seen = 0;  // bit k: keys[k] met
  for (auto element : obj) {
    od::field field;
    if (auto e = std::move(element).get(field)) return fail_json(e);
    // Compared raw, as find_field_unordered does: a key spelled with escapes is an unknown key.
    const od::raw_json_string key = field.key();
    for (std::size_t k = 0; k < N; ++k) {
      if (!key.unsafe_is_equal(keys[k])) continue;
      if (seen & (1u << k)) return fail("duplicate key " + quote(keys[k]));
      seen |= 1u << k;
      Scope scope(*this, keys[k]);
      if (!read(k, field.value())) return false;
      break;
    }
  }
  for (std::size_t k = 0; k < N; ++k) {
    if ((required & (1u << k)) && !(seen & (1u << k))) return fail("missing key " + quote(keys[k]));
  }
  return true;
}

bool Decoder::find(od::object& obj, std::string_view key, od::value& out) {
  auto e = obj.find_field_unordered(key).get(out);
  if (e == simdjson::NO_SUCH_FIELD) return fail("missing key " + quote(key));
  if (e) return fail_json(e);
  return true;
}

// Most strings hold no escape: their text is then a view of the document itself, which saves
// simdjson's unescaping copy. The value is consumed either way, so that malformed JSON after it
// is reported as it would be after get_string.
bool Decoder::read_string(od::value& v, std::string_view& out) {
  const std::string_view token = trim_token(v.raw_json_token());
  if (token.size() >= 2 && token.front() == '"' && token.back() == '"' &&
      token.find('\\') == std::string_view::npos) {
    od::raw_json_string raw;
    if (auto e = v.get_raw_json_string().get(raw)) return fail_json(e);
    out = token.substr(1, token.size() - 2);
    return true;
  }
  if (auto e = v.get_string().get(out)) {
    return e == simdjson::INCORRECT_TYPE ? fail_type(v, "a string") : fail_json(e);
  }
  return true;
}

// A key, as a view of the document when it holds no escape (like read_string). The document
// passed stage 1, so the key's closing quote is there to be found.
bool Decoder::read_key(od::field& field, std::string_view& out) {
  const char* begin = field.key().raw();
  const char* end = begin;
  while (*end != '"' && *end != '\\') ++end;
  if (*end == '"') {
    out = std::string_view(begin, static_cast<std::size_t>(end - begin));
    return true;
  }
  if (auto e = field.unescaped_key().get(out)) return fail_json(e);
  return true;
}

bool Decoder::read_string_at(od::object& obj, std::string_view key, std::string_view& out) {
  od::value v;
  if (!find(obj, key, v)) return false;
  Scope scope(*this, key);
  return read_string(v, out);
}

// A value held as text in JSON and parsed by the model (T::parse): IpAddr, Uuid.
template <class T>
bool Decoder::read_parsed(od::value& v, FieldValue& out) {
  std::string_view text;
  if (!read_string(v, text)) return false;
  Result<T> parsed = T::parse(text);
  if (!parsed.ok()) return fail(parsed.error());
  out = *parsed;
  return true;
}

bool Decoder::read_timestamp(od::value& v, Timestamp& out) {
  std::string_view text;
  if (!read_string(v, text)) return false;
  Result<Timestamp> t = parse_rfc3339(text);
  if (!t.ok()) return fail(t.error());
  out = *t;
  return true;
}

bool Decoder::read_timestamp_at(od::object& obj, std::string_view key, Timestamp& out) {
  od::value v;
  if (!find(obj, key, v)) return false;
  Scope scope(*this, key);
  return read_timestamp(v, out);
}

template <class T>
bool Decoder::read_number(od::value& v, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (auto e = v.get_bool().get(out)) {
      return e == simdjson::INCORRECT_TYPE ? fail_type(v, "true or false") : fail_json(e);
    }
    return true;
  } else if constexpr (std::is_same_v<T, double>) {
    return read_double(v, out, "f64");
  } else if constexpr (std::is_same_v<T, float>) {
    double d = 0;
    if (!read_double(v, d, "f32")) return false;
    // Rounding the text straight to float avoids the rare double-rounding error of going
    // through double; from_chars refuses overflow and underflow, which to_float then handles.
    if (std::isfinite(d) && d != 0) {
      const std::string_view token = trim_token(v.raw_json_token());
      auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), out);
      if (ec == std::errc() && ptr == token.data() + token.size()) return true;
    }
    if (!to_float(d, out)) return fail(number_text(d) + " is out of range for f32");
    return true;
  } else {
    return read_integer(v, out);
  }
}

template <class T>
bool Decoder::read_number_at(od::object& obj, std::string_view key, T& out) {
  od::value v;
  if (!find(obj, key, v)) return false;
  Scope scope(*this, key);
  return read_number(v, out);
}

template <class Int>
bool Decoder::read_integer(od::value& v, Int& out) {
  constexpr std::string_view kType = type_name<Int>();
  if constexpr (std::is_signed_v<Int>) {
    int64_t x = 0;
    if (auto e = v.get_int64().get(x)) return fail_number(v, e, kType, "an integer");
    if (x < std::numeric_limits<Int>::min() || x > std::numeric_limits<Int>::max()) {
      return fail(number_text(x) + " is out of range for " + std::string(kType));
    }
    out = static_cast<Int>(x);
  } else {
    uint64_t x = 0;
    if (auto e = v.get_uint64().get(x)) return fail_number(v, e, kType, "an integer");
    if (x > std::numeric_limits<Int>::max()) {
      return fail(number_text(x) + " is out of range for " + std::string(kType));
    }
    out = static_cast<Int>(x);
  }
  return true;
}

// A float is a JSON number or one of the strings oximeter writes for the non-finite values.
bool Decoder::read_double(od::value& v, double& out, std::string_view type) {
  const simdjson::error_code e = v.get_double().get(out);
  if (!e) {
    // simdjson 3.0 misreads a number with 20 or more digits after "0." (simdjson issue 2093:
    // 0.95000000000000000000 read as 0.0277); such rare long numbers are read again by
    // from_chars, which rounds correctly, where it can.
    if (std::string_view token = v.raw_json_token(); token.size() > 20) {
      token = trim_token(token);
      double exact = 0;
      auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), exact);
      if (ec == std::errc() && ptr == token.data() + token.size()) out = exact;
    }
    return true;
  }
  od::json_type t;
  if (auto te = v.type().get(t)) return fail_json(te);
  if (t != od::json_type::string) return fail_number(v, e, type, "a number");
  std::string_view text;
  if (!read_string(v, text)) return false;
  if (text == "NaN") {
    out = std::numeric_limits<double>::quiet_NaN();
  } else if (text == "Infinity") {
    out = std::numeric_limits<double>::infinity();
  } else if (text == "-Infinity") {
    out = -std::numeric_limits<double>::infinity();
  } else {
    return fail(quote(text) + " is not a number (" + std::string(type) +
                " strings are only \"NaN\", \"Infinity\" and \"-Infinity\")");
  }
  return true;
}

bool Decoder::fail_number(od::value& v, simdjson::error_code error, std::string_view type,
                          std::string_view expected) {
  od::json_type t;
  if (v.type().get(t)) return fail_json(error);
  if (t != od::json_type::number) {
    return fail_type(v, std::string(expected) + " (" + std::string(type) + ")");
  }
  const std::string_view token = trim_token(v.raw_json_token());
  if (error == simdjson::NUMBER_ERROR) {
    return fail(clip(token) + " is not a valid " + std::string(type) +
                " (malformed or out of range)");
  }
  if (!is_integer_token(token)) {
    return fail(clip(token) + " is not an integer (" + std::string(type) + ")");
  }
  return fail(clip(token) + " is out of range for " + std::string(type));
}

bool Decoder::fail_type(od::value& v, std::string_view expected) {
  od::json_type t;
  if (auto e = v.type().get(t)) return fail_json(e);
  return fail("expected " + std::string(expected) + ", got " + std::string(json_type_name(t)));
}

bool Decoder::fail(std::string_view problem, const char* code) {
  std::string message = path();
  if (!message.empty()) message += ": ";
  message += problem;
  error_ = Status::error(std::move(message), code);
  return false;
}

bool Decoder::fail_too_many_samples() {
  return fail("the response holds more than " + std::to_string(limits_.max_samples) +
                  " samples (the limit)",
              "too_many_samples");
}

bool Decoder::fail_json(simdjson::error_code error) {
  return fail(std::string("invalid JSON: ") + simdjson::error_message(error));
}

std::string Decoder::path() const {
  std::string out;
  for (std::size_t i = 0; i < std::min(depth_, kMaxDepth); ++i) {
    const PathSegment& s = path_[i];
    if (s.is_index) {
      out += '[';
      out += std::to_string(s.index);
      out += ']';
    } else {
      if (!out.empty()) out += '.';
      out += s.key;
    }
  }
  return out;
}

template <class Owner>
bool decode_owner_json(std::string_view text, Owner& owner) {
  thread_local std::string padded;
  padded.assign(text);
  padded.append(simdjson::SIMDJSON_PADDING, '\0');
  const DecodeLimits limits;
  CollectDecodeMemo none;
  return Decoder(limits, thread_buffers(), none)
      .decode_owner_text(std::string_view(padded.data(), text.size()), padded.size(), owner);
}

}  // namespace

Result<std::vector<CollectItem>> decode_general(std::string_view json, const DecodeLimits& limits,
                                                CollectDecodeMemo& memo) {
  ParserBuffers& buffers = thread_buffers();
  Result<std::vector<CollectItem>> result = Decoder(limits, buffers, memo).decode(json);
  buffers.after_decode(json.size());
  return result;
}

bool decode_target_text(std::string_view text, Target& out) { return decode_owner_json(text, out); }

bool decode_metric_text(std::string_view text, Metric& out) { return decode_owner_json(text, out); }

CollectDecodeMemo::TextHash hash_text(std::string_view text) {
  const XXH128_hash_t h = XXH3_128bits(text.data(), text.size());
  return {h.low64, h.high64};
}

TimeseriesRef reuse_series(CollectDecodeMemo& memo, const CollectDecodeMemo::TextHash& target,
                           const CollectDecodeMemo::TextHash& metric, uint32_t version) {
  const std::size_t n = memo.next.size();
  if (n >= memo.last.size()) return nullptr;
  // The next sample's timeseries is wanted soon, and its control block is written then.
  if (n + 1 < memo.last.size()) __builtin_prefetch(memo.last[n + 1].series.get(), 1);
  CollectDecodeMemo::Entry& last = memo.last[n];
  if (last.metric != metric || last.target != target || last.version != version) return nullptr;
  TimeseriesRef series = last.series;
  memo.next.push_back(std::move(last));
  return series;
}

bool name_matches(std::string_view name, const Timeseries& series) {
  const std::string& target = series.target.name;
  const std::string& metric = series.metric.name;
  const std::size_t colon = target.size();
  return name.size() == colon + 1 + metric.size() && name[colon] == ':' &&
         name.substr(0, colon) == target && name.substr(colon + 1) == metric;
}

}  // namespace tally::collect_json

namespace tally {

Result<std::vector<CollectItem>> decode_collect_response(std::string_view json,
                                                         const DecodeLimits& limits,
                                                         CollectDecodeMemo* memo) {
  CollectDecodeMemo none;
  CollectDecodeMemo& m = memo ? *memo : none;
  m.next.clear();
  m.next.reserve(m.last.size());
  Result<std::vector<CollectItem>> result = [&]() -> Result<std::vector<CollectItem>> {
    if (auto items = collect_json::decode_canonical(json, limits, m)) return std::move(*items);
    return collect_json::decode_general(json, limits, m);
  }();
  // A failed decode moved some entries out of `last`: the next one starts afresh.
  if (result.ok()) {
    std::swap(m.last, m.next);
  } else {
    m.last.clear();
  }
  // Between decodes only `last` is held: a producer's memo is polled once an interval, and
  // 56 spare bytes per series over 10,000 producers is memory for nothing.
  std::vector<CollectDecodeMemo::Entry>().swap(m.next);
  return result;
}

}  // namespace tally
