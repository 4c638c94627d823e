#include "tally/collector/spool_record.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <type_traits>
#include <utility>
#include <variant>

#include "tally/collector/copy_writer.h"
#include "tally/common/collect_json.h"

namespace tally::collector {
namespace {

// Numbers go to disk as their bytes in memory: little-endian on every host Tally builds for.
static_assert(std::endian::native == std::endian::little, "the spool format is little-endian");
// The tags on disk are the alternatives' indexes: adding or reordering alternatives needs a new
// format version.
static_assert(std::variant_size_v<Datum> == 28 &&
              std::is_same_v<std::variant_alternative_t<27, Datum>, Missing>);
static_assert(std::variant_size_v<FieldValue> == 12);

constexpr std::string_view kMagic = "TLYSPOOL";
constexpr uint32_t kJsonVersion = 1;
constexpr uint32_t kBinaryVersion = 2;
constexpr uint8_t kSameTarget = 1;

// Appends to a string through its end pointer. A record is built from pieces of a few bytes,
// and std::string::append's capacity check and call for each were most of the encoding's cost.
// The string grows (zero-filled) by doubling; the destructor cuts it to what was written.
class Appender {
 public:
  explicit Appender(std::string& out)
      : out_(out), begin_(out.data()), end_(begin_ + out.size()), limit_(end_) {}
  ~Appender() { out_.resize(size()); }
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;

  void append(const void* bytes, std::size_t n) {
    reserve(n);
    std::memcpy(end_, bytes, n);
    end_ += n;
  }
  // Room for `n` more bytes.
  void reserve(std::size_t n) {
    if (static_cast<std::size_t>(limit_ - end_) < n) grow(n);
  }
  std::size_t size() const { return static_cast<std::size_t>(end_ - begin_); }

 private:
  void grow(std::size_t n) {
    const std::size_t used = size();
    out_.resize(std::max(out_.size() * 2, used + n));
    begin_ = out_.data();
    end_ = begin_ + used;
    limit_ = begin_ + out_.size();
  }

  std::string& out_;
  // Kept here rather than read from out_ at every append: the compiler must assume a memcpy into
  // the string's bytes could change the string itself.
  char* begin_;
  char* end_;  // what was written; beyond it, up to limit_, is room
  char* limit_;
};

template <class T>
void put_raw(Appender& out, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  out.append(&v, sizeof(T));
}

uint64_t checksum(std::string_view header24, std::string_view payload) {
  XXH64_state_t* state = XXH64_createState();
  XXH64_reset(state, 0);
  XXH64_update(state, header24.data(), header24.size());
  XXH64_update(state, payload.data(), payload.size());
  const uint64_t h = XXH64_digest(state);
  XXH64_freeState(state);
  return h;
}

template <class T>
T get_raw_at(const char* in) {
  T v;
  std::memcpy(&v, in, sizeof(T));
  return v;
}

// --- encoding ---

void put_bytes(Appender& out, std::string_view bytes) {
  put_raw(out, static_cast<uint32_t>(bytes.size()));
  out.append(bytes.data(), bytes.size());
}

void put_time(Appender& out, Timestamp t) { put_raw(out, t.time_since_epoch().count()); }

template <class T>
void put_value(Appender& out, const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    put_raw(out, static_cast<uint8_t>(v ? 1 : 0));
  } else if constexpr (std::is_arithmetic_v<T>) {
    put_raw(out, v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    put_bytes(out, v);
  } else if constexpr (std::is_same_v<T, Bytes>) {
    put_bytes(out, {reinterpret_cast<const char*>(v.data()), v.size()});
  } else if constexpr (std::is_same_v<T, Uuid>) {
    out.append(v.bytes.data(), v.bytes.size());
  } else if constexpr (std::is_same_v<T, IpAddr>) {
    out.append(v.bytes.data(), v.bytes.size());
    put_value(out, v.v6);
  } else if constexpr (std::is_same_v<T, Missing>) {
    put_raw(out, static_cast<uint8_t>(v.datum_type));
    put_value(out, v.start_time.has_value());
    if (v.start_time) put_time(out, *v.start_time);
  } else if constexpr (requires { v.bins; }) {  // Histogram<U>
    put_time(out, v.start_time);
    put_raw(out, static_cast<uint32_t>(v.bins.size()));
    for (const auto& bin : v.bins) {
      put_value(out, bin.lower.has_value());
      if (bin.lower) put_value(out, *bin.lower);
      put_raw(out, bin.count);
    }
    put_raw(out, v.n_samples);
    put_value(out, v.min);
    put_value(out, v.max);
    put_raw(out, v.sum_of_samples);
    put_raw(out, v.squared_mean);
  } else {  // Cumulative<U>
    put_time(out, v.start_time);
    put_value(out, v.value);
  }
}

template <class Variant>
void put_variant(Appender& out, const Variant& v) {
  put_raw(out, static_cast<uint8_t>(v.index()));
  std::visit([&out](const auto& alternative) { put_value(out, alternative); }, v);
}

void put_fields(Appender& out, const Fields& fields) {
  put_raw(out, static_cast<uint32_t>(fields.size()));
  for (const Field& f : fields) {
    put_bytes(out, f.name);
    put_variant(out, f.value);
  }
}

// --- decoding: every read is bounds-checked; the first failure sticks ---

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  std::size_t consumed() const { return at_; }
  bool at_end() const { return at_ == in_.size(); }

  void fail(std::string why) {
    if (!failed()) error_ = "at payload byte " + std::to_string(at_) + ": " + std::move(why);
  }

  template <class T>
  T raw() {
    if (in_.size() - at_ < sizeof(T)) {
      fail("truncated");
      return T{};
    }
    const T v = get_raw_at<T>(in_.data() + at_);
    at_ += sizeof(T);
    return v;
  }

  std::string_view bytes(std::size_t n) {
    if (in_.size() - at_ < n) {
      fail("truncated");
      return {};
    }
    const std::string_view v = in_.substr(at_, n);
    at_ += n;
    return v;
  }

  // A count of items of at least `min_item_bytes` each: no larger than what is left could hold,
  // so a damaged count cannot make the decoder reserve gigabytes.
  uint32_t count(std::size_t min_item_bytes) {
    const auto n = raw<uint32_t>();
    if (n > (in_.size() - at_) / min_item_bytes) {
      fail("count " + std::to_string(n) + " exceeds the bytes left");
      return 0;
    }
    return n;
  }

 private:
  std::string_view in_;
  std::size_t at_ = 0;
  std::string error_;
};

bool get_bool(Reader& in) {
  const auto b = in.raw<uint8_t>();
  if (b > 1) in.fail("bool byte " + std::to_string(b));
  return b == 1;
}

Timestamp get_time(Reader& in) { return Timestamp(std::chrono::microseconds(in.raw<int64_t>())); }

template <class T>
void get_value(Reader& in, T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    v = get_bool(in);
  } else if constexpr (std::is_arithmetic_v<T>) {
    v = in.raw<T>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    v = in.bytes(in.count(1));
  } else if constexpr (std::is_same_v<T, Bytes>) {
    const std::string_view b = in.bytes(in.count(1));
    v.assign(b.begin(), b.end());
  } else if constexpr (std::is_same_v<T, Uuid>) {
    const std::string_view b = in.bytes(v.bytes.size());
    if (!b.empty()) std::memcpy(v.bytes.data(), b.data(), b.size());
  } else if constexpr (std::is_same_v<T, IpAddr>) {
    const std::string_view b = in.bytes(v.bytes.size());
    if (!b.empty()) std::memcpy(v.bytes.data(), b.data(), b.size());
    v.v6 = get_bool(in);
  } else if constexpr (std::is_same_v<T, Missing>) {
    const auto type = in.raw<uint8_t>();
    if (type >= kDatumTypeCount) in.fail("missing datum type " + std::to_string(type));
    v.datum_type = static_cast<DatumType>(type);
    if (get_bool(in)) v.start_time = get_time(in);
  } else if constexpr (requires { v.bins; }) {  // Histogram<U>
    v.start_time = get_time(in);
    // A bin takes at least 9 bytes: the has-lower byte and the count.
    v.bins.resize(in.count(9));
    for (auto& bin : v.bins) {
      if (get_bool(in)) get_value(in, bin.lower.emplace());
      bin.count = in.raw<uint64_t>();
    }
    v.n_samples = in.raw<uint64_t>();
    get_value(in, v.min);
    get_value(in, v.max);
    v.sum_of_samples = in.raw<decltype(v.sum_of_samples)>();
    v.squared_mean = in.raw<double>();
  } else {  // Cumulative<U>
    v.start_time = get_time(in);
    get_value(in, v.value);
  }
}

// Reads a tag and the alternative it names.
template <class Variant>
Variant get_variant(Reader& in) {
  return [&in]<std::size_t... I>(std::index_sequence<I...>) {
    const auto tag = in.raw<uint8_t>();
    Variant v;
    const bool known = ((tag == I ? (get_value(in, v.template emplace<I>()), true) : false) || ...);
    if (!known) in.fail("unknown tag " + std::to_string(tag));
    return v;
  }
  (std::make_index_sequence<std::variant_size_v<Variant>>());
}

void get_fields(Reader& in, Fields& fields) {
  // A field takes at least 6 bytes: the name's length, its type and a one-byte value.
  fields.resize(in.count(6));
  for (Field& f : fields) {
    get_value(in, f.name);
    f.value = get_variant<FieldValue>(in);
  }
}

Status decode_json_samples(std::string_view payload, std::vector<Sample>& out) {
  auto items = decode_collect_response(payload);
  if (!items.ok()) return Status::error("payload: " + items.error());
  if (items->size() != 1 || (*items)[0].error) return Status::error("payload is not one ok item");
  std::vector<Sample>& samples = (*items)[0].samples;
  out.insert(out.end(), std::make_move_iterator(samples.begin()),
             std::make_move_iterator(samples.end()));
  return {};
}

}  // namespace

void append_binary_samples(std::string& text, std::span<const Sample> samples) {
  Appender out(text);
  const Target* previous = nullptr;
  const std::size_t start = out.size();
  for (const Sample& s : samples) {
    if (previous == &samples.front().target()) {
      // Growing a record of megabytes by doubling copies it again and again: make room for the
      // samples to come at the size of the first one (and a quarter more, for the mix).
      const std::size_t first = out.size() - start;
      out.reserve((samples.size() - 1) * (first + first / 4));
    }
    const bool same_target =
        previous != nullptr && (previous == &s.target() || s.target() == *previous);
    put_raw(out, same_target ? kSameTarget : uint8_t{0});
    if (!same_target) {
      put_bytes(out, s.target().name);
      put_fields(out, s.target().fields);
    }
    put_bytes(out, s.metric().name);
    put_fields(out, s.metric().fields);
    put_raw(out, s.timeseries_version());
    put_time(out, s.timestamp);
    put_variant(out, s.datum);
    previous = &s.target();
  }
}

Status decode_binary_samples(std::string_view payload, uint32_t count, std::vector<Sample>& out) {
  Reader in(payload);
  const std::size_t first = out.size();
  // A sample takes at least 23 bytes: flags, metric name length and field count, version,
  // timestamp, datum tag and a one-byte value.
  if (count > payload.size() / 23) {
    return Status::error("header says " + std::to_string(count) + " samples in " +
                         std::to_string(payload.size()) + " bytes");
  }
  out.reserve(first + count);
  for (uint32_t i = 0; i < count && !in.failed(); ++i) {
    Target target;
    const auto flags = in.raw<uint8_t>();
    if (flags > kSameTarget) in.fail("flags " + std::to_string(flags));
    if ((flags & kSameTarget) != 0) {
      if (out.size() == first)
        in.fail("the first sample refers to a previous target");
      else
        target = out.back().target();
    } else {
      get_value(in, target.name);
      get_fields(in, target.fields);
    }
    Metric metric;
    get_value(in, metric.name);
    get_fields(in, metric.fields);
    const auto version = in.raw<uint32_t>();
    const Timestamp timestamp = get_time(in);
    Datum datum = get_variant<Datum>(in);
    if (in.failed()) break;
    out.push_back(Sample{make_timeseries(std::move(target), std::move(metric), version), timestamp,
                         std::move(datum)});
  }
  if (!in.failed() && !in.at_end()) in.fail("bytes left after the last sample");
  if (in.failed()) return Status::error(in.error());
  return {};
}

std::string encode_record(std::span<const Sample> samples) {
  // The header's room first, then the payload, then the header filled in.
  std::string record(kSpoolHeaderBytes, '\0');
  append_binary_samples(record, samples);
  char* header = record.data();
  const std::string_view payload = std::string_view(record).substr(kSpoolHeaderBytes);
  std::memcpy(header, kMagic.data(), kMagic.size());
  const auto put_at = [header]<class T>(std::size_t offset, T v) {
    std::memcpy(header + offset, &v, sizeof(T));
  };
  put_at(8, kBinaryVersion);
  put_at(12, static_cast<uint32_t>(samples.size()));
  put_at(16, static_cast<uint64_t>(payload.size()));
  put_at(24, checksum(std::string_view(header, 24), payload));
  return record;
}

Result<std::size_t> decode_record(std::string_view data, std::vector<Sample>& out) {
  if (data.size() < kSpoolHeaderBytes) {
    return Status::error("shorter than a header (" + std::to_string(data.size()) + " bytes)");
  }
  if (data.substr(0, kMagic.size()) != kMagic) return Status::error("bad magic");
  const auto version = get_raw_at<uint32_t>(data.data() + 8);
  if (version != kJsonVersion && version != kBinaryVersion) {
    return Status::error("unknown format version " + std::to_string(version));
  }
  const auto count = get_raw_at<uint32_t>(data.data() + 12);
  const auto length = get_raw_at<uint64_t>(data.data() + 16);
  if (length > data.size() - kSpoolHeaderBytes) {
    return Status::error("payload is " + std::to_string(data.size() - kSpoolHeaderBytes) +
                         " bytes, header says " + std::to_string(length));
  }
  const std::string_view payload = data.substr(kSpoolHeaderBytes, length);
  if (checksum(data.substr(0, 24), payload) != get_raw_at<uint64_t>(data.data() + 24)) {
    return Status::error("checksum mismatch");
  }
  const std::size_t first = out.size();
  const auto fail = [&out, first](Status s) -> Result<std::size_t> {
    out.resize(first);
    return s;
  };
  Status decoded = version == kBinaryVersion ? decode_binary_samples(payload, count, out)
                                             : decode_json_samples(payload, out);
  if (!decoded.ok()) return fail(Status::error("payload: " + decoded.message()));
  if (out.size() - first != count) {
    return fail(Status::error("holds " + std::to_string(out.size() - first) +
                              " samples, header says " + std::to_string(count)));
  }
  // The JSON decoder has validated its samples; the binary one checks only the structure. Both
  // are checked as storable: what is replayed goes to the writer without the schema check.
  for (std::size_t i = first; i < out.size(); ++i) {
    Status st = version == kBinaryVersion ? validate_sample(out[i]) : Status();
    if (st.ok()) st = check_storable(out[i]);
    if (!st.ok()) {
      return fail(
          Status::error("payload: sample " + std::to_string(i - first) + ": " + st.message()));
    }
  }
  return kSpoolHeaderBytes + length;
}

}  // namespace tally::collector
