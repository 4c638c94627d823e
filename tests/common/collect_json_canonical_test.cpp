// The two decoders behind decode_collect_response (collect_json_decode_paths.h), against each
// other: whatever decode_canonical accepts, decode_general decodes to the same items and leaves
// the same memo entries; what it refuses leaves the memo as it was; decode_collect_response
// answers what decode_general answers; and the layouts producers write are accepted, or the
// fast path would never run.
#include <doctest/doctest.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collect_json_decode_paths.h"
#include "support/every_datum.h"
#include "support/series.h"
#include "tally/common/collect_json.h"

namespace tally::collect_json {
namespace {

using Entry = CollectDecodeMemo::Entry;
using Items = std::vector<CollectItem>;

// ---------------------------------------------------------------------------------------------
// Helpers

using test::ip;
using test::uuid;

// Target fields of type string, uuid and i64; metric fields of type string, u16, bool and
// ip_addr. `metric` names the metric, so that the samples of a response are distinct series.
Sample make_sample(Datum datum, std::string metric = "request_latency", uint16_t status = 200) {
  Target target{"http_service",
                {{"name", std::string("api caf\xC3\xA9")},
                 {"instance_id", uuid("6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f")},
                 {"shard", int64_t{-3}}}};
  Metric m{std::move(metric),
           {{"route", std::string("/v1/items")},
            {"status_code", status},
            {"cached", status % 2 == 0},
            {"peer", ip(status % 2 ? "2001:db8::1" : "10.0.0.1")}}};
  return Sample{make_timeseries(std::move(target), std::move(m)),
                test::ts("2026-11-22T10:00:00.123456Z"), std::move(datum)};
}

// A sample of each datum, each its own series (metrics m0, m1, …).
std::vector<Sample> samples_of(const std::vector<Datum>& datums) {
  std::vector<Sample> out;
  for (std::size_t i = 0; i < datums.size(); ++i) {
    out.push_back(make_sample(datums[i], "m" + std::to_string(i), static_cast<uint16_t>(200 + i)));
  }
  return out;
}

std::string encode(const std::vector<Sample>& samples) {
  CollectItem item;
  item.samples = samples;
  return encode_collect_response(std::span<const CollectItem>(&item, 1));
}

// The largest value of T, which the canonical scanner reads as the general decoder does.
template <class T>
constexpr T top() {
  return std::numeric_limits<T>::max();
}

// A histogram with these edges, values varied by `seed`, its max at top<T>().
template <class T>
Histogram<T> histogram(std::vector<std::optional<T>> edges, uint64_t seed) {
  Histogram<T> h = test::histogram<T>(test::ts("2026-11-22T09:00:00.5Z"), std::move(edges), seed);
  h.max = top<T>();
  return h;
}

// Edges for histograms of T: unbounded below, then finite edges up to T's extremes.
template <class T>
std::vector<std::optional<T>> edges_from_below() {
  using Limits = std::numeric_limits<T>;
  if constexpr (std::is_floating_point_v<T>) {
    return {std::nullopt, Limits::lowest(), T(-0.5), T(0), T(1e-3), T(0.1), Limits::max()};
  } else if constexpr (std::is_signed_v<T>) {
    return {std::nullopt, Limits::min(), T(-1), T(0), T(1), Limits::max()};
  } else {
    return {std::nullopt, T(0), T(10), top<T>()};
  }
}

template <class T>
void add_histograms(std::vector<Datum>& out) {
  out.push_back(histogram<T>(edges_from_below<T>(), 3));  // range_to, range…, range_from
  out.push_back(histogram<T>({T(1), T(2), T(100)}, 7));   // range…, range_from
  out.push_back(histogram<T>({T(5)}, 0));                 // range_from alone
}

// A datum of every type, with extreme values; the string has no byte the encoder escapes.
std::vector<Datum> datums_of_every_type() {
  const Timestamp start = test::ts("2026-11-22T09:00:00Z");
  std::vector<Datum> out = {
      true,
      false,
      std::numeric_limits<int8_t>::min(),
      std::numeric_limits<uint8_t>::max(),
      std::numeric_limits<int16_t>::min(),
      std::numeric_limits<uint16_t>::max(),
      std::numeric_limits<int32_t>::min(),
      std::numeric_limits<uint32_t>::max(),
      std::numeric_limits<int64_t>::min(),
      std::numeric_limits<int64_t>::max(),
      top<uint64_t>(),
      uint64_t{0},
      0.1f,
      -std::numeric_limits<float>::denorm_min(),
      std::numeric_limits<float>::max(),
      -1.5e300,
      5e-324,
      -0.0,
      0.0,
      123456789.0,
      std::string("plain text caf\xC3\xA9 \xF0\x9F\x98\x80 /path?q=1&r=<2> '#'"),
      std::string(),
      Bytes{0, 255, 7},
      Bytes{},
      Cumulative<int64_t>{start, -42},
      Cumulative<uint64_t>{start, top<uint64_t>()},
      Cumulative<float>{start, 2.5e-3f},
      Cumulative<double>{start, 1e21},
  };
  add_histograms<int8_t>(out);
  add_histograms<uint8_t>(out);
  add_histograms<int16_t>(out);
  add_histograms<uint16_t>(out);
  add_histograms<int32_t>(out);
  add_histograms<uint32_t>(out);
  add_histograms<int64_t>(out);
  add_histograms<uint64_t>(out);
  add_histograms<float>(out);
  add_histograms<double>(out);
  return out;
}

// The memo a producer's collector holds after decoding `json`: `last` filled, `next` empty.
CollectDecodeMemo memo_after(std::string_view json) {
  CollectDecodeMemo memo;
  Result<Items> r = decode_collect_response(json, {}, &memo);
  REQUIRE_MESSAGE(r.ok(), r.error());
  return memo;
}

// `json` with whitespace of every kind around every token.
std::string spaced(std::string_view json) {
  std::string out = " \n";
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < json.size()) {
        out += json[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        out += c;
        break;
      case '{':
      case '}':
      case '[':
      case ']':
      case ':':
      case ',':
        out += "\n\t ";
        out += c;
        out += " \r\n  ";
        break;
      default:
        out += c;
    }
  }
  out += "\n";
  return out;
}

// `json` with every occurrence of `from` replaced by `to`; at least one must be there.
std::string replace_all(std::string json, std::string_view from, std::string_view to) {
  std::size_t at = json.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "no " << std::string(from) << " in " << json);
  for (; at != std::string::npos; at = json.find(from, at + to.size())) {
    json.replace(at, from.size(), to);
  }
  return json;
}

std::size_t sample_count(const Items& items) {
  std::size_t n = 0;
  for (const CollectItem& item : items) n += item.samples.size();
  return n;
}

// Reports the first sample that differs (and how many do), not each.
void check_same_items(const Items& a, const Items& b) {
  REQUIRE(a.size() == b.size());
  std::string first;
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a[i].error == b[i].error);
    REQUIRE(a[i].samples.size() == b[i].samples.size());
    for (std::size_t j = 0; j < a[i].samples.size(); ++j) {
      const Sample& x = a[i].samples[j];
      const Sample& y = b[i].samples[j];
      if (same_sample(x, y) && x.key() == y.key()) continue;
      if (differ++ == 0) {
        first = "[" + std::to_string(i) + "].info[" + std::to_string(j) + "] (" +
                x.timeseries_name() + ", datum type " +
                std::string(to_string(datum_type(x.datum))) + ")";
      }
    }
  }
  CHECK_MESSAGE(differ == 0, differ << " samples differ, first " << first);
}

bool same_series(const Timeseries& a, const Timeseries& b) {
  return a.target == b.target && a.metric == b.metric && a.version == b.version && a.key == b.key;
}

// The entries two decodes left, one per sample: the same hashes, sizes and version, and the same
// timeseries, by pointer where one of them took it from `before.last` (it must then be the only
// choice), by value where it is new.
// Reports the first entry that differs (and how many do), not each: a response has many.
void check_same_entries(const std::vector<Entry>& a, const std::vector<Entry>& b,
                        const CollectDecodeMemo& before) {
  REQUIRE(a.size() == b.size());
  std::string first;
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].series);
    REQUIRE(b[i].series);
    const bool a_reused = i < before.last.size() && a[i].series == before.last[i].series;
    const bool b_reused = i < before.last.size() && b[i].series == before.last[i].series;
    std::string what;
    if (a[i].target != b[i].target) what += " target hash";
    if (a[i].metric != b[i].metric) what += " metric hash";
    if (a[i].version != b[i].version) what += " version";
    if (a[i].metric_size != b[i].metric_size) what += " metric_size";
    if (a_reused != b_reused)
      what += a_reused ? " reused by the first only" : " reused by the second only";
    if ((!a_reused || !b_reused) && !same_series(*a[i].series, *b[i].series)) what += " series";
    if (what.empty()) continue;
    if (differ++ == 0) first = "entry " + std::to_string(i) + ":" + what;
  }
  CHECK_MESSAGE(differ == 0, differ << " of " << a.size() << " entries differ, first " << first);
}

// A decode's memo entries are its samples' series, in order, with their version.
void check_entries_of(const Items& items, const std::vector<Entry>& entries) {
  REQUIRE(entries.size() == sample_count(items));
  std::size_t n = 0;
  for (const CollectItem& item : items) {
    for (const Sample& s : item.samples) {
      CAPTURE(n);
      CHECK(entries[n].series == s.series);
      CHECK(entries[n].version == s.timeseries_version());
      ++n;
    }
  }
}

// A memo that a refusal left as `before` was.
void check_unchanged(const CollectDecodeMemo& memo, const CollectDecodeMemo& before) {
  CHECK(memo.next.empty());
  REQUIRE(memo.last.size() == before.last.size());
  for (std::size_t i = 0; i < memo.last.size(); ++i) {
    CAPTURE(i);
    CHECK(memo.last[i].series == before.last[i].series);
    CHECK(memo.last[i].target == before.last[i].target);
    CHECK(memo.last[i].metric == before.last[i].metric);
    CHECK(memo.last[i].version == before.last[i].version);
    CHECK(memo.last[i].metric_size == before.last[i].metric_size);
  }
}

struct Outcome {
  std::optional<Items> canonical;  // nullopt: refused
  Result<Items> general;           // what decode_collect_response answered too
};

// Runs decode_canonical, decode_general and decode_collect_response on `json`, each from a copy
// of `before` (a memo between decodes: `next` empty), and checks the contract between them:
// - canonical accepted: general decodes the same items and leaves the same entries in `next`,
//   which are canonical's samples' series;
// - canonical refused: its memo is as it was;
// - decode_collect_response answers what general answers, the same items and entries (now in
//   `last`) or the same error and code.
Outcome expect_same(std::string_view input, const CollectDecodeMemo& before = {},
                    const DecodeLimits& limits = {}) {
  // The input, cut short in messages: some responses here are 100 kB.
  constexpr std::size_t kShown = 3000;
  const std::string text = input.size() <= kShown ? std::string(input)
                                                  : std::string(input.substr(0, kShown)) + "… (" +
                                                        std::to_string(input.size()) + " bytes)";
  CAPTURE(text);
  REQUIRE(before.next.empty());
  // The decoders see the text in a buffer of its exact size, as a socket read hands it over, so
  // that a read past its end is caught by the sanitizers (a std::string has slack after it).
  const std::unique_ptr<char[]> exact(new char[input.size()]);
  std::copy(input.begin(), input.end(), exact.get());
  const std::string_view json(exact.get(), input.size());

  CollectDecodeMemo canonical_memo = before;
  std::optional<Items> canonical = decode_canonical(json, limits, canonical_memo);
  CollectDecodeMemo general_memo = before;
  Result<Items> general = decode_general(json, limits, general_memo);
  CollectDecodeMemo public_memo = before;
  Result<Items> public_result = decode_collect_response(json, limits, &public_memo);

  if (canonical) {
    REQUIRE_MESSAGE(general.ok(), "canonical accepted what general refuses: " << general.error());
    check_same_items(*canonical, *general);
    check_entries_of(*canonical, canonical_memo.next);
    check_entries_of(*general, general_memo.next);
    check_same_entries(canonical_memo.next, general_memo.next, before);
  } else {
    check_unchanged(canonical_memo, before);
  }

  REQUIRE(public_result.ok() == general.ok());
  if (general.ok()) {
    check_same_items(*public_result, *general);
    CHECK(public_memo.next.empty());
    check_entries_of(*public_result, public_memo.last);
    check_same_entries(public_memo.last, general_memo.next, before);
  } else {
    CHECK(public_result.error() == general.error());
    CHECK(public_result.status().code() == general.status().code());
  }
  return {std::move(canonical), std::move(general)};
}

// expect_same, from a fresh memo and from memos primed by `json` itself and by each of `others`
// (responses decoded before it, which share some, all or none of its series). Returns whether
// canonical accepted every time (it must decide alike whatever the memo holds).
bool expect_same_with_memos(std::string_view json, const std::vector<std::string>& others = {}) {
  const bool accepted = expect_same(json).canonical.has_value();
  const Result<Items> itself = decode_collect_response(json);
  if (itself.ok()) {
    CHECK(expect_same(json, memo_after(json)).canonical.has_value() == accepted);
  }
  for (const std::string& other : others) {
    CHECK(expect_same(json, memo_after(other)).canonical.has_value() == accepted);
  }
  return accepted;
}

// A single-sample response around a datum (the value of "datum" in the measurement).
std::string doc(std::string_view datum, std::string_view name = "\"t:m\"") {
  std::string out = R"([{"status":"ok","info":[{"timeseries_name":)";
  out += name;
  out += R"(,"timeseries_version":1,"target":{"name":"t","fields":{"host":{"name":"host",)";
  out += R"("value":{"type":"string","value":"h1"}}}},"metric":{"name":"m","fields":{}},)";
  out += R"("measurement":{"timestamp":"2026-01-01T00:00:00Z","datum":)";
  out += datum;
  out += "}}]}]";
  return out;
}

// A histogram_<type> datum around its bins' JSON.
std::string histogram_datum(std::string_view type, std::string_view bins) {
  std::string out = R"({"type":"histogram_)";
  out += type;
  out += R"(","datum":{"start_time":"2026-01-01T00:00:00Z","bins":)";
  out += bins;
  out += R"(,"n_samples":3,"min":0,"max":9,"sum_of_samples":12,"squared_mean":0.5}})";
  return out;
}

std::string gauge(std::string_view type, std::string_view value) {
  return R"({"type":")" + std::string(type) + R"(","datum":)" + std::string(value) + "}";
}

// ---------------------------------------------------------------------------------------------
// a. The encoder's output is accepted and decoded as the general decoder decodes it

TEST_CASE("canonical: accepts the encoder's output for a datum of every type") {
  const std::vector<Sample> samples = samples_of(datums_of_every_type());
  for (const Sample& s : samples) REQUIRE_MESSAGE(validate_sample(s).ok(), s.timeseries_name());
  const std::string json = encode(samples);
  // A response before it whose every third sample is another series.
  std::vector<Sample> variant = samples;
  for (std::size_t i = 1; i < variant.size(); i += 3) {
    test::change_series(variant[i], [](Timeseries& t) { t.metric.fields[1].value = uint16_t{1}; });
  }
  CHECK(expect_same_with_memos(json, {encode(variant), encode({samples[0]})}));

  const Outcome out = expect_same(json);
  REQUIRE(out.canonical);
  REQUIRE(out.canonical->size() == 1);
  const std::vector<Sample>& got = (*out.canonical)[0].samples;
  REQUIRE(got.size() == samples.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(same_sample(got[i], samples[i]));
  }
}

// every_datum has u64 values of 20 digits, which the canonical scanner may leave to the general
// decoder: here both must agree, and the response decode as encoded.
TEST_CASE("canonical: the encoder's output of varied datums, targets and metrics agrees") {
  for (uint64_t seed = 0; seed < 12; ++seed) {
    CAPTURE(seed);
    std::vector<Datum> datums = test::every_datum(seed);
    std::vector<Sample> samples;
    for (std::size_t kind = 0; kind < datums.size(); ++kind) {
      if (std::holds_alternative<std::string>(datums[kind])) {
        datums[kind] = "caf\xC3\xA9 #" + std::to_string(seed);  // every_datum's has escapes
      }
      if (is_missing(datums[kind])) continue;  // see the test of missing datums
      samples.push_back(
          {make_timeseries(test::target_of(seed), test::metric_of(seed, kind)),
           test::ts("1969-07-20T20:17:40Z") + std::chrono::microseconds(seed * 999'999),
           datums[kind]});
    }
    const std::string json = encode(samples);
    expect_same_with_memos(json);
    const Outcome out = expect_same(json);
    REQUIRE_MESSAGE(out.general.ok(), out.general.error());
    for (std::size_t i = 0; i < samples.size(); ++i) {
      CAPTURE(i);
      CHECK(same_sample((*out.general)[0].samples[i], samples[i]));
    }
  }
}

// Not asked of the fast path (producers seldom send them; it leaves them to the general decoder).
TEST_CASE("canonical: missing datums decode as the general decoder decodes them") {
  const Timestamp start = test::ts("2026-11-22T09:00:00Z");
  const std::string json = encode(
      samples_of({Missing{DatumType::kI64, std::nullopt}, Missing{DatumType::kCumulativeF64, start},
                  Missing{DatumType::kHistogramU16, start}}));
  expect_same_with_memos(json);
  for (std::string_view datum : {
           R"({"type":"missing","datum":{"datum_type":"f64"}})",
           R"({"type":"missing","datum":{"start_time":null,"datum_type":"u8"}})",
           R"({"type":"missing","datum":{"datum_type":"cumulative_u64",)"
           R"("start_time":"2026-01-01T00:00:00Z"}})",
           R"({"type":"missing","datum":{"datum_type":"bytes","start_time":null}})",
           R"({"type":"missing","datum":{"datum_type":"i64","start_time":"2026-01-01T00:00:00Z"}})",
           R"({"type":"missing","datum":{"datum_type":"x64","start_time":null}})",
       }) {
    expect_same(doc(datum));
  }
}

TEST_CASE("canonical: accepts NaN and infinities in float gauges, counters and histograms") {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  constexpr double kInf = std::numeric_limits<double>::infinity();
  constexpr float kNaNf = std::numeric_limits<float>::quiet_NaN();
  constexpr float kInff = std::numeric_limits<float>::infinity();
  const Timestamp start = test::ts("2026-11-22T09:00:00Z");
  std::vector<Datum> datums = {kNaN, kInf, -kInf, kNaNf, kInff, -kInff};
  datums.push_back(Cumulative<double>{start, -kInf});
  datums.push_back(Cumulative<float>{start, kNaNf});
  Histogram<double> hd = test::histogram<double>(start, {std::nullopt, 0.0, 1.0}, 1);
  hd.sum_of_samples = kNaN;
  hd.squared_mean = kInf;
  hd.min = -kInf;
  hd.max = kNaN;
  datums.push_back(hd);
  Histogram<float> hf = test::histogram<float>(start, {-kInff, 0.0f, 1.0f}, 1);
  hf.sum_of_samples = -kInf;
  hf.squared_mean = kNaN;
  hf.min = kNaNf;
  hf.max = kInff;
  datums.push_back(hf);
  const std::vector<Sample> samples = samples_of(datums);
  const std::string json = encode(samples);
  REQUIRE(json.find("\"NaN\"") != std::string::npos);
  REQUIRE(json.find("\"-Infinity\"") != std::string::npos);
  CHECK(expect_same_with_memos(json));
  const Outcome out = expect_same(json);
  REQUIRE(out.canonical);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    CAPTURE(i);
    CHECK(same_sample((*out.canonical)[0].samples[i], samples[i]));
  }
}

TEST_CASE("canonical: accepts several items, an empty info list and an empty response") {
  const std::vector<Sample> samples = samples_of({int64_t{1}, 2.5, std::string("x")});
  std::vector<CollectItem> items(4);
  items[0].samples = {samples[0], samples[1]};
  items[2].samples = {samples[2]};
  items[3].samples = {samples[0]};  // a series again, in another item
  const std::string json = encode_collect_response(items);
  CHECK(expect_same_with_memos(json, {encode(samples)}));
  const Outcome out = expect_same(json);
  REQUIRE(out.canonical);
  REQUIRE(out.canonical->size() == 4);
  CHECK((*out.canonical)[1].samples.empty());
  CHECK_FALSE((*out.canonical)[1].error);

  for (std::string_view empty : {"[]", " [ ]\n", R"([{"status":"ok","info":[]}])",
                                 R"([{"status":"ok","info":[]},{"status":"ok","info":[]}])"}) {
    CAPTURE(std::string(empty));
    CHECK(expect_same(empty).canonical.has_value());
    CHECK(expect_same(empty, memo_after(json)).canonical.has_value());
  }
}

TEST_CASE("canonical: random floats and integers decode as the general decoder decodes them") {
  std::mt19937_64 rng(20261122);
  std::vector<Datum> datums;
  for (int i = 0; i < 200; ++i) {
    const uint64_t bits = rng();
    double d;
    float f;
    std::memcpy(&d, &bits, sizeof d);
    const auto low = static_cast<uint32_t>(bits);
    std::memcpy(&f, &low, sizeof f);
    datums.push_back(std::isnan(d) ? 0.5 : d);  // NaN payloads do not survive JSON
    datums.push_back(std::isnan(f) ? 0.5f : f);
    datums.push_back(static_cast<int64_t>(bits));
    datums.push_back(bits >> (i % 63 + 1));  // below 10^19: see top()
    datums.push_back(std::ldexp(static_cast<double>(bits % 1000), i % 80 - 40));
  }
  const std::vector<Sample> samples = samples_of(datums);
  const Outcome out = expect_same(encode(samples));
  REQUIRE(out.canonical);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    CAPTURE(i);
    CHECK(same_sample((*out.canonical)[0].samples[i], samples[i]));
  }
}

// ---------------------------------------------------------------------------------------------
// b. Other layouts producers write

TEST_CASE("canonical: accepts the encoder's output with whitespace around every token") {
  const std::vector<Sample> samples = samples_of(datums_of_every_type());
  const std::string compact = encode(samples);
  const std::string json = spaced(compact);
  // Primed by the compact text, no series is shared (the hashes are of the text as written).
  CHECK(expect_same_with_memos(json, {compact}));
  const Outcome out = expect_same(json);
  REQUIRE(out.canonical);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    CAPTURE(i);
    CHECK(same_sample((*out.canonical)[0].samples[i], samples[i]));
  }
  CHECK(expect_same_with_memos(spaced(R"([{"status":"ok","info":[]}])")));
  CHECK(expect_same_with_memos(spaced("[]")));
}

// A sample with a cumulative and one with a histogram, keys in the order of oximeter and of
// Tally's encoder; the tests below reorder them or add keys.
constexpr std::string_view kTarget = R"("target":{"name":"t","fields":{"host":{"name":"host",)"
                                     R"("value":{"type":"string","value":"h"}}}},)";
const std::string kOrdered =
    R"([{"status":"ok","info":[)"
    R"({"timeseries_name":"t:m","timeseries_version":2,)" +
    std::string(kTarget) +
    R"("metric":{"name":"m","fields":{"k":{"name":"k","value":{"type":"u16","value":70}}}},)"
    R"("measurement":{"timestamp":"2026-01-02T00:00:00Z",)"
    R"("datum":{"type":"cumulative_u64",)"
    R"("datum":{"start_time":"2026-01-01T00:00:00Z","value":7}}}},)"
    R"({"timeseries_name":"t:h","timeseries_version":1,)" +
    std::string(kTarget) +
    R"("metric":{"name":"h","fields":{}},)"
    R"("measurement":{"timestamp":"2026-01-02T00:00:00.5Z",)"
    R"("datum":{"type":"histogram_f64","datum":{"start_time":"2026-01-01T00:00:00Z",)"
    R"("bins":[{"range":{"type":"range_to","end":0.5},"count":1},)"
    R"({"range":{"type":"range","start":0.5,"end":1e1},"count":2},)"
    R"({"range":{"type":"range_from","start":1e1},"count":3}],)"
    R"("n_samples":6,"min":0.25,"max":12,"sum_of_samples":30.5,"squared_mean":0.125}}}})"
    R"(]}])";

TEST_CASE("canonical: accepts sample, measurement, datum, bin and range keys in any order") {
  const std::string base(kOrdered);
  REQUIRE(expect_same(base).canonical);
  struct Reorder {
    const char* what;
    std::string json;
  };
  const std::vector<Reorder> reorders = {
      {"sample: measurement first, name last",
       replace_all(
           replace_all(
               base, R"({"timeseries_name":"t:m","timeseries_version":2,)",
               R"({"timeseries_version":2,"measurement":{"timestamp":"2026-01-02T00:00:00Z",)"
               R"("datum":{"type":"cumulative_u64","datum":{"start_time":"2026-01-01T00:00:00Z",)"
               R"("value":7}}},)"),
           R"(,"measurement":{"timestamp":"2026-01-02T00:00:00Z","datum":{"type":"cumulative_u64",)"
           R"("datum":{"start_time":"2026-01-01T00:00:00Z","value":7}}}})",
           R"(,"timeseries_name":"t:m"})")},
      {"sample: metric before target",
       replace_all(base, std::string(kTarget) + R"("metric":{"name":"h","fields":{}},)",
                   R"("metric":{"name":"h","fields":{}},)" + std::string(kTarget))},
      {"measurement: datum before timestamp",
       replace_all(replace_all(base, R"("measurement":{"timestamp":"2026-01-02T00:00:00Z",)",
                               R"("measurement":{)"),
                   R"("value":7}}}},)", R"("value":7}},"timestamp":"2026-01-02T00:00:00Z"}},)")},
      {"cumulative: value before start_time",
       replace_all(base, R"({"start_time":"2026-01-01T00:00:00Z","value":7})",
                   R"({"value":7,"start_time":"2026-01-01T00:00:00Z"})")},
      {"histogram: squared_mean first, the values shuffled",
       replace_all(
           replace_all(base, R"({"start_time":"2026-01-01T00:00:00Z","bins":)",
                       R"({"squared_mean":0.125,"start_time":"2026-01-01T00:00:00Z","bins":)"),
           R"(],"n_samples":6,"min":0.25,"max":12,"sum_of_samples":30.5,"squared_mean":0.125})",
           R"(],"max":12,"sum_of_samples":30.5,"min":0.25,"n_samples":6})")},
      {"histogram: bins after the values",
       replace_all(
           replace_all(base, R"("bins":[{"range":{"type":"range_to")",
                       R"("n_samples":6,"min":0.25,"max":12,"sum_of_samples":30.5,)"
                       R"("squared_mean":0.125,"bins":[{"range":{"type":"range_to")"),
           R"(],"n_samples":6,"min":0.25,"max":12,"sum_of_samples":30.5,"squared_mean":0.125})",
           "]}")},
      {"bin: count before range",
       replace_all(
           replace_all(replace_all(base, R"({"range":{"type":"range_to","end":0.5},"count":1})",
                                   R"({"count":1,"range":{"type":"range_to","end":0.5}})"),
                       R"({"range":{"type":"range","start":0.5,"end":1e1},"count":2})",
                       R"({"count":2,"range":{"type":"range","start":0.5,"end":1e1}})"),
           R"({"range":{"type":"range_from","start":1e1},"count":3})",
           R"({"count":3,"range":{"type":"range_from","start":1e1}})")},
      {"range: type last, end before start",
       replace_all(replace_all(replace_all(base, R"({"type":"range_to","end":0.5})",
                                           R"({"end":0.5,"type":"range_to"})"),
                               R"({"type":"range","start":0.5,"end":1e1})",
                               R"({"end":1e1,"start":0.5,"type":"range"})"),
                   R"({"type":"range_from","start":1e1})", R"({"start":1e1,"type":"range_from"})")},
      {"range: type between the edges",
       replace_all(base, R"({"type":"range","start":0.5,"end":1e1})",
                   R"({"start":0.5,"type":"range","end":1e1})")},
  };
  const Outcome expected = expect_same(base);
  for (const Reorder& r : reorders) {
    CAPTURE(r.what);
    REQUIRE(r.json != base);
    CHECK(expect_same_with_memos(r.json, {base}));
    const Outcome out = expect_same(r.json);
    if (out.canonical) check_same_items(*out.canonical, *expected.canonical);
  }
}

// The canonical scanner may refuse these (it reads "status" before "info", a datum's "type"
// before its "datum"); whatever it does must agree with the general decoder.
TEST_CASE("canonical: info before status, datum before type agree with the general decoder") {
  const std::string base(kOrdered);
  // The first three are `base` reordered.
  const std::vector<std::string> cases = {
      replace_all(replace_all(base, R"({"status":"ok","info":[)", R"({"info":[)"), R"(]}])",
                  R"(],"status":"ok"}])"),
      replace_all(base,
                  R"({"type":"cumulative_u64","datum":{"start_time":"2026-01-01T00:00:00Z",)"
                  R"("value":7}})",
                  R"({"datum":{"start_time":"2026-01-01T00:00:00Z","value":7},)"
                  R"("type":"cumulative_u64"})"),
      replace_all(replace_all(base, R"({"type":"histogram_f64","datum":{)", R"({"datum":{)"),
                  R"("squared_mean":0.125}}}})",
                  R"("squared_mean":0.125},"type":"histogram_f64"}}})"),
      doc(R"({"datum":5,"type":"i64"})"),
      doc(R"({"datum":"NaN","type":"f32"})"),
      doc(R"({"datum":[1,2],"type":"bytes"})"),
      R"([{"info":{"type":"e","content":"c"},"status":"err"}])",
  };
  const Outcome expected = expect_same(base);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    const Outcome out = expect_same(cases[i]);
    REQUIRE_MESSAGE(out.general.ok(), out.general.error());
    if (i < 3) check_same_items(*out.general, *expected.general);
  }
}

TEST_CASE("canonical: accepts unknown keys with nested values in a histogram and a sample") {
  const std::string base(kOrdered);
  constexpr std::string_view kP50 = R"("p50":{"marker_heights":[1,2],"x":null})";
  const std::vector<std::string> cases = {
      // oximeter's quantile estimates after the histogram's values, and before them
      replace_all(base, R"("squared_mean":0.125})",
                  R"("squared_mean":0.125,)" + std::string(kP50) +
                      R"(,"p90":null,"p99":{"a":[{"b":"}"}],"c":-1.5e-3}})"),
      replace_all(base, R"({"start_time":"2026-01-01T00:00:00Z","bins")",
                  "{" + std::string(kP50) + R"(,"start_time":"2026-01-01T00:00:00Z","bins")"),
      // an unknown key in each sample, first and last
      replace_all(base, R"({"timeseries_name":)",
                  "{" + std::string(kP50) + R"(,"timeseries_name":)"),
      replace_all(base, R"("value":7}}}},)", R"("value":7}}},)" + std::string(kP50) + "},"),
      replace_all(base, R"(,"timeseries_version":1,)",
                  R"(,"x_new":[true,false,null,"s",{"k":[]},-0.0e+0],"timeseries_version":1,)"),
  };
  const Outcome expected = expect_same(base);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    CHECK(expect_same_with_memos(cases[i], {base}));
    const Outcome out = expect_same(cases[i]);
    if (out.canonical) check_same_items(*out.canonical, *expected.canonical);
  }
}

// Unknown keys elsewhere: the canonical scanner may refuse them; it must agree when it accepts.
TEST_CASE("canonical: unknown keys in other objects agree with the general decoder") {
  const std::string base(kOrdered);
  constexpr std::string_view kX = R"("x":{"y":[1,"\"",{"z":null}]})";
  const std::vector<std::string> cases = {
      replace_all(base, R"({"status":"ok",)", "{" + std::string(kX) + R"(,"status":"ok",)"),
      replace_all(base, R"(]}])", "]," + std::string(kX) + "}]"),
      replace_all(base, R"("measurement":{)", R"("measurement":{)" + std::string(kX) + ","),
      replace_all(base, R"({"type":"cumulative_u64",)",
                  "{" + std::string(kX) + R"(,"type":"cumulative_u64",)"),
      replace_all(base, R"("value":7}})", R"("value":7,)" + std::string(kX) + "}}"),
      replace_all(base, R"("count":2})", R"("count":2,)" + std::string(kX) + "}"),
      replace_all(base, R"("end":0.5})", R"("end":0.5,)" + std::string(kX) + "}"),
      replace_all(base, R"("metric":{"name":"h","fields":{}})",
                  R"("metric":{"name":"h","fields":{},)" + std::string(kX) + "}"),
      replace_all(
          base, R"({"name":"host","value":{"type":"string","value":"h"}})",
          R"({"name":"host",)" + std::string(kX) + R"(,"value":{"type":"string","value":"h"}})"),
      // a key spelled with an escape is another key to both
      replace_all(base, R"("timeseries_version":2)", R"("timeseries_vers\u0069on":2)"),
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    const Outcome out = expect_same(cases[i]);
    CHECK_MESSAGE(out.general.ok(), out.general.error());
  }
}

TEST_CASE("canonical: accepts a sample without timeseries_version, which is then 1") {
  const std::string json = replace_all(kOrdered, R"("timeseries_version":2,)", "");
  CHECK(expect_same_with_memos(json, {kOrdered}));
  const Outcome out = expect_same(json);
  REQUIRE(out.canonical);
  for (const Sample& s : (*out.canonical)[0].samples) CHECK(s.timeseries_version() == 1);
}

// Producers other than Tally's encoder: serde_json's pretty printer, fields in another order.
TEST_CASE("canonical: target and metric layouts agree with the general decoder") {
  const std::string base(kOrdered);
  const std::vector<std::string> cases = {
      replace_all(base, R"({"name":"host","value":{"type":"string","value":"h"}})",
                  R"({"value":{"value":"h","type":"string"},"name":"host"})"),
      replace_all(base,
                  R"("target":{"name":"t","fields":{"host":{"name":"host","value":{)"
                  R"("type":"string","value":"h"}}}})",
                  R"("target":{"fields":{"host":{"name":"host","value":{"type":"string",)"
                  R"("value":"h"}}},"name":"t"})"),
      replace_all(base, R"("value":{"type":"string","value":"h"})",
                  R"("value":{"type":"string","value":"caf\u00e9"})"),
      replace_all(base, R"("value":{"type":"u16","value":70})",
                  R"("value":{"type":"u16","value":70000})"),
      replace_all(base, R"("fields":{}})",
                  R"("fields":{"Bad":{"name":"Bad","value":{"type":"bool","value":true}}}})"),
      replace_all(base, R"("fields":{}})",
                  R"("fields":{"host":{"name":"host","value":{"type":"bool","value":true}}}})"),
      replace_all(base, R"("fields":{}})",
                  R"("fields":{"a":{"name":"b","value":{"type":"bool","value":true}}}})"),
      replace_all(
          base, R"("fields":{}})",
          R"("fields":{"a":{"name":"a","value":{"type":"ip_addr","value":"::ffff:1.2.3.4"}}}})"),
      replace_all(base, R"("fields":{}})",
                  R"("fields":{"a":{"name":"a","value":{"type":"uuid",)"
                  R"("value":"6F1F3C1E-0C0E-4C5A-9F0E-3A2B1C0D9E8F"}}}})"),
      spaced(base),
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    expect_same_with_memos(cases[i], {base});
  }
}

// ---------------------------------------------------------------------------------------------
// c. Valid input outside the canonical layout: refused, decoded by the general decoder

TEST_CASE("canonical: refuses escapes in strings it reads, which decode_collect_response decodes") {
  struct Case {
    std::string json;
    Datum datum;
    Timestamp timestamp;
  };
  const Timestamp t0 = test::ts("2026-01-01T00:00:00Z");
  const Timestamp start = test::ts("2025-12-31T00:00:00Z");
  const std::vector<Case> cases = {
      {doc(R"({"type":"string","datum":"a\"b"})"), std::string("a\"b"), t0},
      {doc(R"({"type":"string","datum":"caf\u00e9"})"), std::string("caf\xC3\xA9"), t0},
      {doc(R"({"type":"string","datum":"\\"})"), std::string("\\"), t0},
      {doc(R"({"type":"string","datum":"x\/y"})"), std::string("x/y"), t0},
      {replace_all(doc(R"({"type":"i64","datum":5})"), R"("2026-01-01T00:00:00Z")",
                   R"("2026-01-01T00:00:00\u005a")"),
       int64_t{5}, t0},
      {replace_all(doc(R"({"type":"i64","datum":5})"), R"("2026-01-01T00:00:00Z")",
                   R"("2026-01-01\u005400:00:00Z")"),
       int64_t{5}, t0},
      {doc(R"({"type":"cumulative_i64",)"
           R"("datum":{"start_time":"2025-12-31T00:00:00\u005A","value":3}})"),
       Cumulative<int64_t>{start, 3}, t0},
      {doc(R"({"type":"f64","datum":"\u004eaN"})"), std::numeric_limits<double>::quiet_NaN(), t0},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    const Outcome out = expect_same(cases[i].json);
    CHECK_FALSE(out.canonical);
    REQUIRE_MESSAGE(out.general.ok(), out.general.error());
    REQUIRE(out.general->size() == 1);
    REQUIRE((*out.general)[0].samples.size() == 1);
    const Sample& s = (*out.general)[0].samples[0];
    CHECK(same_datum(s.datum, cases[i].datum));
    CHECK(s.timestamp == cases[i].timestamp);
    // And with a memo of the canonical twin: refused as well, the memo left for general.
    const std::string twin = doc(R"({"type":"string","datum":"plain"})");
    expect_same(cases[i].json, memo_after(twin));
  }
}

TEST_CASE("canonical: refuses err items, which decode_collect_response decodes") {
  const std::string ok = encode(samples_of({int64_t{1}}));
  const std::vector<std::pair<std::string, ProducerError>> cases = {
      {R"([{"status":"err","info":{"type":"datum_error","content":"disk"}}])",
       {"datum_error", "disk"}},
      {R"([{"status":"err","info":{"type":"unit_variant"}}])", {"unit_variant", ""}},
      {R"([{"status":"err","info":{"type":"m","content":{"datum_type":"i64"}}}])",
       {"m", R"({"datum_type":"i64"})"}},
      {"[" + ok.substr(1, ok.size() - 2) + R"(,{"status":"err","info":{"type":"n","content":42}}])",
       {"n", "42"}},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    const Outcome out = expect_same(cases[i].first, memo_after(ok));
    CHECK_FALSE(out.canonical);
    REQUIRE_MESSAGE(out.general.ok(), out.general.error());
    REQUIRE_FALSE(out.general->empty());
    REQUIRE(out.general->back().error);
    CHECK(*out.general->back().error == cases[i].second);
    CHECK(out.general->back().samples.empty());
  }
}

// ---------------------------------------------------------------------------------------------
// d. Invalid input: refused, and decode_collect_response reports decode_general's error

struct BadCase {
  const char* what;
  std::string json;
};

std::vector<BadCase> bad_cases() {
  const std::string ok = doc(gauge("i64", "5"));
  const std::string name_utf8 = "\"t:m\xC3\x28\"";
  return {
      {"wrong timeseries_name", doc(gauge("i64", "5"), "\"t:x\"")},
      {"timeseries_name of another target", doc(gauge("i64", "5"), "\"u:m\"")},
      {"timeseries_name without colon", doc(gauge("i64", "5"), "\"tm\"")},
      {"non-contiguous bins",
       doc(histogram_datum("i64", R"([{"range":{"type":"range_to","end":0},"count":1},)"
                                  R"({"range":{"type":"range","start":1,"end":2},"count":1},)"
                                  R"({"range":{"type":"range_from","start":2},"count":1}])"))},
      {"overlapping bins",
       doc(histogram_datum("f64", R"([{"range":{"type":"range","start":0,"end":2},"count":1},)"
                                  R"({"range":{"type":"range_from","start":1.5},"count":1}])"))},
      {"bins without range_from last",
       doc(histogram_datum("u8", R"([{"range":{"type":"range_to","end":1},"count":1},)"
                                 R"({"range":{"type":"range","start":1,"end":2},"count":1}])"))},
      {"range_to not first",
       doc(histogram_datum("u8", R"([{"range":{"type":"range","start":0,"end":1},"count":1},)"
                                 R"({"range":{"type":"range_to","end":2},"count":1},)"
                                 R"({"range":{"type":"range_from","start":2},"count":1}])"))},
      {"a bin after range_from",
       doc(histogram_datum("u8", R"([{"range":{"type":"range_from","start":1},"count":1},)"
                                 R"({"range":{"type":"range_from","start":2},"count":1}])"))},
      {"no bins", doc(histogram_datum("u8", "[]"))},
      {"empty range",
       doc(histogram_datum("i8", R"([{"range":{"type":"range","start":3,"end":3},"count":1},)"
                                 R"({"range":{"type":"range_from","start":3},"count":1}])"))},
      {"NaN edge", doc(histogram_datum("f32", R"([{"range":{"type":"range_to","end":"NaN"},)"
                                              R"("count":1},{"range":{"type":"range_from",)"
                                              R"("start":"NaN"},"count":1}])"))},
      {"u8 out of range", doc(gauge("u8", "256"))},
      {"u8 negative", doc(gauge("u8", "-1"))},
      {"i8 out of range", doc(gauge("i8", "-129"))},
      {"bin edge out of range for u8",
       doc(histogram_datum("u8", R"([{"range":{"type":"range_from","start":300},"count":1}])"))},
      {"byte out of range", doc(gauge("bytes", "[1,256]"))},
      {"1.5 for i64", doc(gauge("i64", "1.5"))},
      {"1.5 for u32", doc(gauge("u32", "1.5"))},
      {"1.5 for a bin count",
       doc(histogram_datum("u8", R"([{"range":{"type":"range_from","start":0},"count":1.5}])"))},
      {"1.5 for a u16 field",
       replace_all(ok, R"("fields":{}})",
                   R"("fields":{"k":{"name":"k","value":{"type":"u16","value":1.5}}}})")},
      {"leading zero", doc(gauge("i64", "01"))},
      {"leading zero, negative", doc(gauge("i64", "-01"))},
      {"leading zero in a float", doc(gauge("f64", "01.5"))},
      {"leading zero in a cumulative",
       doc(R"({"type":"cumulative_u64",)"
           R"("datum":{"start_time":"2026-01-01T00:00:00Z","value":00}})")},
      {"trailing garbage", ok + "x"},
      {"trailing array", ok + "[]"},
      {"trailing comma", ok + ","},
      {"trailing bracket", ok + "]"},
      {"trailing number after whitespace", ok + " 1"},
      {"trailing NUL", ok + std::string(1, '\0')},
      {"truex for a bool", doc(gauge("bool", "truex"))},
      {"falsey for a bool", doc(gauge("bool", "falsey"))},
      {"tru for a bool", doc(gauge("bool", "tru"))},
      {"true1 for a bool", doc(gauge("bool", "true1"))},
      {"control character in a string datum", doc(gauge("string", std::string("\"a\x01") + "b\""))},
      {"newline in a string datum", doc(gauge("string", "\"a\nb\""))},
      {"invalid UTF-8 in a string datum", doc(gauge("string", "\"a\xC3\x28z\""))},
      {"lone continuation byte in a string datum", doc(gauge("string", "\"a\x80z\""))},
      {"overlong UTF-8 in a string datum", doc(gauge("string", "\"a\xC0\xAFz\""))},
      {"UTF-8 surrogate in a string datum", doc(gauge("string", "\"a\xED\xA0\x80z\""))},
      {"truncated UTF-8 at the end of a string datum", doc(gauge("string", "\"a\xE2\x82\""))},
      {"invalid UTF-8 in an unknown key's string",
       replace_all(ok, R"("timeseries_version":1,)",
                   "\"p50\":\"x\xC3\x28y\",\"timeseries_version\":1,")},
      {"invalid UTF-8 in an unknown key's name",
       replace_all(ok, R"("timeseries_version":1,)", "\"p\xC3\x28\":1,\"timeseries_version\":1,")},
      {"invalid UTF-8 in a histogram's unknown key",
       doc(replace_all(histogram_datum("u8", R"([{"range":{"type":"range_from","start":0},)"
                                             R"("count":1}])"),
                       R"("squared_mean":0.5})", "\"squared_mean\":0.5,\"p50\":[\"\xFF\"]}"))},
      {"invalid UTF-8 in timeseries_name", doc(gauge("i64", "5"), name_utf8)},
      {"invalid UTF-8 in a target field",
       replace_all(ok, R"("value":"h1")", "\"value\":\"h\xC3\x28\"")},
      {"duplicate timestamp in a measurement",
       replace_all(ok, R"("measurement":{"timestamp":"2026-01-01T00:00:00Z",)",
                   R"("measurement":{"timestamp":"2026-01-01T00:00:00Z",)"
                   R"("timestamp":"2026-01-03T00:00:00Z",)")},
      {"duplicate timestamp, the second invalid",
       replace_all(ok, R"("measurement":{"timestamp":"2026-01-01T00:00:00Z",)",
                   R"("measurement":{"timestamp":"2026-01-01T00:00:00Z","timestamp":"x",)")},
      {"unknown datum type", doc(gauge("f65", "1"))},
      {"unknown range type",
       doc(histogram_datum("u8", R"([{"range":{"type":"range_up","start":0},"count":1}])"))},
      {"unknown status", R"([{"status":"maybe","info":[]}])"},
      {"status not a string", R"([{"status":1,"info":[]}])"},
      {"missing status", R"([{"info":[]}])"},
      {"missing info", R"([{"status":"ok"}])"},
      {"info not an array", R"([{"status":"ok","info":{}}])"},
      {"top not an array", R"({"status":"ok","info":[]})"},
      {"empty input", ""},
      {"whitespace only", " \n"},
      {"bad timestamp", replace_all(ok, "2026-01-01T00:00:00Z", "2026-13-01T00:00:00Z")},
      {"string for an integer", doc(gauge("i64", "\"5\""))},
      {"NaN string for an integer", doc(gauge("i64", "\"NaN\""))},
      {"nan string for a float", doc(gauge("f64", "\"nan\""))},
      {"bare NaN for a float", doc(gauge("f64", "NaN"))},
      {"u64 overflow", doc(gauge("u64", "18446744073709551616"))},
      {"i64 overflow", doc(gauge("i64", "9223372036854775808"))},
      {"i64 underflow", doc(gauge("i64", "-9223372036854775809"))},
      {"f32 overflow", doc(gauge("f32", "3.5e38"))},
      {"f64 overflow", doc(gauge("f64", "1e400"))},
      {"lone minus", doc(gauge("f64", "-"))},
      {"dot without digits", doc(gauge("f64", "1."))},
      {"leading dot", doc(gauge("f64", ".5"))},
      {"exponent without digits", doc(gauge("f64", "1e"))},
      {"plus sign", doc(gauge("i64", "+1"))},
      {"hexadecimal", doc(gauge("i64", "0x10"))},
      {"missing comma between samples", "[{\"status\":\"ok\",\"info\":[" +
                                            ok.substr(24, ok.size() - 27) +
                                            ok.substr(24, ok.size() - 27) + "]}]"},
      {"trailing comma in info",
       "[{\"status\":\"ok\",\"info\":[" + ok.substr(24, ok.size() - 27) + ",]}]"},
      {"sample not an object", R"([{"status":"ok","info":[1]}])"},
      {"missing measurement", replace_all(ok,
                                          R"(,"measurement":{"timestamp":"2026-01-01T00:00:00Z",)"
                                          R"("datum":{"type":"i64","datum":5}})",
                                          "")},
      {"missing target", replace_all(ok,
                                     R"("target":{"name":"t","fields":{"host":{"name":"host",)"
                                     R"("value":{"type":"string","value":"h1"}}}},)",
                                     "")},
      {"version 0", replace_all(ok, R"("timeseries_version":1)", R"("timeseries_version":0)")},
      {"version negative",
       replace_all(ok, R"("timeseries_version":1)", R"("timeseries_version":-1)")},
      {"version over u32",
       replace_all(ok, R"("timeseries_version":1)", R"("timeseries_version":4294967296)")},
      {"invalid metric name",
       replace_all(doc(gauge("i64", "5"), "\"t:M\""), R"("name":"m")", R"("name":"M")")},
      {"duplicate sample key", replace_all(ok, R"("timeseries_version":1,)",
                                           R"("timeseries_version":1,"timeseries_version":1,)")},
      {"duplicate status", R"([{"status":"ok","status":"ok","info":[]}])"},
      {"duplicate histogram key",
       doc(replace_all(histogram_datum("u8", R"([{"range":{"type":"range_from","start":0},)"
                                             R"("count":1}])"),
                       R"("n_samples":3,)", R"("n_samples":3,"n_samples":3,)"))},
      {"unclosed sample", ok.substr(0, ok.size() - 4) + "]}]"},
      {"unclosed item", ok.substr(0, ok.size() - 2) + "]"},
  };
}

TEST_CASE("canonical: refuses invalid input, and decode_collect_response reports general's error") {
  for (const BadCase& c : bad_cases()) {
    CAPTURE(c.what);
    const Outcome out = expect_same(c.json);
    CHECK_FALSE(out.canonical);
    // The general decoder takes the first of duplicated keys in a measurement (a lookup, not a
    // walk): "invalid" only to the canonical scanner.
    if (std::string_view(c.what).starts_with("duplicate timestamp")) continue;
    CHECK_FALSE(out.general.ok());
    // And from a memo primed by a valid response of the same series.
    expect_same(c.json, memo_after(doc(gauge("i64", "5"))));
  }
}

TEST_CASE("canonical: refuses every proper prefix of a valid response") {
  const std::string json = encode(samples_of(
      {int64_t{-5}, 2.5, true, std::string("s"),
       Cumulative<uint64_t>{test::ts("2026-01-01T00:00:00Z"), 3},
       test::histogram<double>(test::ts("2026-01-01T00:00:00Z"), {std::nullopt, 0.5, 1.0}, 1)}));
  REQUIRE(expect_same(json).canonical);
  const CollectDecodeMemo memo = memo_after(json);
  for (std::size_t n = 0; n < json.size(); ++n) {
    CAPTURE(n);
    const Outcome out = expect_same(std::string_view(json).substr(0, n), memo);
    CHECK_FALSE(out.canonical);
    CHECK_FALSE(out.general.ok());
  }
}

// Bytes changed one at a time: the two decoders must agree on whatever the canonical one
// accepts (this is the fuzz harness's differential check, run on every build).
TEST_CASE("canonical: single-byte changes agree with the general decoder") {
  const std::string json = kOrdered;
  const CollectDecodeMemo memo = memo_after(json);
  std::size_t accepted = 0;
  for (std::size_t i = 0; i < json.size(); ++i) {
    for (const char c : {' ', '0', '9', '"', '\\', ',', '}', 'x', '-', '.', 'e', '\x01', '\xC3'}) {
      if (json[i] == c) continue;
      std::string changed = json;
      changed[i] = c;
      CAPTURE(i);
      CAPTURE(c);
      if (expect_same(changed, memo).canonical) ++accepted;
    }
  }
  MESSAGE("single-byte variants accepted by canonical: " << accepted);
}

// Values each decoder may take or refuse, but alike: numbers, literals, strings, timestamps.
TEST_CASE("canonical: edge-case values agree with the general decoder") {
  const std::vector<std::pair<std::string_view, std::vector<std::string_view>>> values = {
      {"i64",
       {"0", "-0", "-1", "9223372036854775807", "-9223372036854775808", "1.0", "1e0", "1E2", "-0.0",
        "00", "0e", "1 ", "5\t", "-a", "1-", "--1", "123456789012345678901234567890"}},
      {"u64", {"0", "-0", "18446744073709551615", "1.0", "1e19", "01", "-1"}},
      {"u8", {"255", "0", "-0", "2.55e2", "1e0"}},
      {"i8", {"-128", "127", "-0", "128"}},
      {"bool", {"true", "false", "null", "True", "0", "\"true\"", "false ", "fals"}},
      {"f64",
       {"0",
        "-0",
        "0.0",
        "-0.0",
        "1E5",
        "1e+5",
        "1e-5",
        "1.5e-310",
        "4.9e-324",
        "5e-325",
        "1e-400",
        "1.7976931348623157e308",
        "1.7976931348623159e308",
        "2e308",
        "123456789012345678901234567890",
        "18446744073709551616",
        "-9223372036854775809",
        "\"NaN\"",
        "\"Infinity\"",
        "\"-Infinity\"",
        "\"+Infinity\"",
        "\"inf\"",
        "\"\"",
        "Infinity",
        "1.",
        "1e",
        "1e+",
        "-",
        "01",
        "1.5 ",
        "null",
        "[1]",
        "{}",
        "true"}},
      {"f32",
       {"0", "-0.0", "3.4028235e38", "3.40282356e38", "3.4028236e38", "3.5e38", "1e-45", "1e-46",
        "7e-46", "1.17549435e-38", "16777217", "0.1", "\"NaN\"", "\"Infinity\"", "\"-Infinity\"",
        "1e39", "-1e39", "1e-400", "2.5e-3"}},
      {"string",
       {"\"\"", "\"\xF0\x9F\x98\x80\"", "\"\x7F\"", "\" \"", "\"\x1F\"", "\"\xFF\"",
        "\"\xF4\x90\x80\x80\"", "\"\\u0000\"", "\"\\ud83d\\ude00\"", "\"\\ud83d\"", "\"\\x\"", "1",
        "null", "[\"a\"]", "\"a\"\"b\""}},
      {"bytes", {"[]", "[0,255]", "[ 1 , 2 ]", "[1,]", "[-1]", "[1.0]", "[\"1\"]", "[256]", "{}"}},
      {"cumulative_f64",
       {R"({"start_time":"2026-01-01T00:00:00Z","value":"NaN"})",
        R"({"start_time":"2026-01-01T00:00:00Z"})", R"({"value":1})",
        R"({"start_time":"2026-01-01T00:00:00Z","value":1,"value":2})",
        R"({"start_time":"2026-01-01T00:00:00Z","start_time":"2026-01-02T00:00:00Z","value":1})",
        R"({"start_time":null,"value":1})", R"({"start_time":"2026-01-01T00:00:00Z","value":1,})",
        R"({"start_time":"2026-01-01T00:00:00Z" "value":1})", "[]", "1"}},
  };
  for (const auto& [type, list] : values) {
    for (std::string_view value : list) {
      CAPTURE(std::string(type));
      CAPTURE(std::string(value));
      expect_same(doc(gauge(type, value)));
    }
  }
  // Duplicated keys the general decoder reads by lookup (the first one wins there).
  for (std::string_view datum : {
           R"({"type":"i64","datum":1,"datum":2})",
           R"({"type":"i64","type":"u8","datum":1})",
           R"({"type":"u8","type":"i64","datum":-1})",
           R"({"type":"i64","datum":1,"type":"u8"})",
       }) {
    CAPTURE(std::string(datum));
    expect_same(doc(datum));
  }
  for (std::string_view bins : {
           R"([{"range":{"type":"range_from","start":0,"start":1},"count":1}])",
           R"([{"range":{"type":"range_to","end":0,"end":1},"count":1},)"
           R"({"range":{"type":"range_from","start":1},"count":1}])",
           R"([{"range":{"type":"range_to","type":"range_from","end":0,"start":1},"count":1}])",
           R"([{"range":{"type":"range_from","start":0},"count":1,"count":2}])",
           R"([{"range":{"type":"range_from","start":0},"range":{"type":"range_from","start":1},)"
           R"("count":1}])",
           R"([{"range":{"type":"range_from","start":0,"end":5},"count":1}])",
           R"([{"range":{"type":"range_to","start":-5,"end":0},"count":1},)"
           R"({"range":{"type":"range_from","start":0},"count":1}])",
           R"([{"range":{"type":"range_from","start":0,"end":"x"},"count":1}])",
           R"([{"range":{"type":"range_from","start":-0.0},"count":1}])",
           R"([{"range":{"type":"range_to","end":-0.0},"count":1},)"
           R"({"range":{"type":"range_from","start":0.0},"count":1}])",
           R"([{"range":{"type":"range_to","end":"-Infinity"},"count":1},)"
           R"({"range":{"type":"range_from","start":"-Infinity"},"count":1}])",
           R"([{"range":{"type":"range_from","start":"Infinity"},"count":1}])",
           R"([{"range":{"type":"range_to","end":1},"count":1}])",
           R"([{"range":{"type":"range_from","start":0},"count":-1}])",
       }) {
    CAPTURE(std::string(bins));
    expect_same(doc(histogram_datum("f64", bins)));
    expect_same(doc(histogram_datum("i16", bins)));
  }
  // Timestamps as each decoder reads them.
  for (std::string_view t :
       {"2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123456789Z", "2026-01-01T00:00:00.1Z",
        "2026-01-01T00:00:00+02:00", "2026-01-01t00:00:00z", "2026-01-01 00:00:00Z",
        "1969-12-31T23:59:59.999999Z", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:60Z", "", "2026-01-01", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
    CAPTURE(std::string(t));
    expect_same(replace_all(doc(gauge("i64", "1")), "2026-01-01T00:00:00Z", t));
  }
}

// Integers of 20 digits (u64 from 10^19 up to its maximum) decode the same way in both.
TEST_CASE("canonical: u64 values of 20 digits agree with the general decoder") {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const Timestamp start = test::ts("2026-11-22T09:00:00Z");
  Histogram<uint64_t> h = histogram<uint64_t>({std::nullopt, uint64_t{0}, kMax}, 1);
  h.max = kMax;
  h.sum_of_samples = kMax - 1;
  const std::vector<Sample> samples = samples_of(
      {kMax, uint64_t{10'000'000'000'000'000'000u}, Cumulative<uint64_t>{start, kMax}, h});
  const Outcome out = expect_same(encode(samples));
  REQUIRE_MESSAGE(out.general.ok(), out.general.error());
  CHECK(out.canonical.has_value());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    CAPTURE(i);
    CHECK(same_sample((*out.general)[0].samples[i], samples[i]));
  }
}

// simdjson (3.0.1 here) refuses a number whose exponent has 20 digits or more, whatever its value;
// std::from_chars reads it.
TEST_CASE("canonical: floats whose exponent has 20 digits or more agree with the general decoder") {
  for (std::string_view number :
       {"0e99999999999999999999", "-0.0e-99999999999999999999", "1e0000000000000000000001",
        "1e-0000000000000000000001", "2.5E+00000000000000000000", "0e9999999999999999999",
        "1e000000000000000001"}) {
    CAPTURE(std::string(number));
    expect_same(doc(gauge("f64", number)));
    expect_same(doc(gauge("f32", number)));
    expect_same(doc(R"({"type":"cumulative_f64","datum":{"start_time":"2026-01-01T00:00:00Z",)"
                    R"("value":)" +
                    std::string(number) + "}}"));
    expect_same(doc(replace_all(
        histogram_datum("f64", R"([{"range":{"type":"range_from","start":-1},"count":3}])"),
        R"("sum_of_samples":12)", R"("sum_of_samples":)" + std::string(number))));
  }
}

// simdjson 3.0.1's get_double misreads a number whose integer part is 0 and whose fraction has
// more digits than a uint64_t holds (simdjson issue 2093, fixed upstream in 3.6.3): 0.95 followed
// by zeros reads as 0.0277. The canonical scanner reads these with std::from_chars.
TEST_CASE(
    "canonical: general reads 20 or more digits after '0.' as the nearest float (simdjson 2093)") {
  for (std::string_view number :
       {"0.95000000000000000000", "0.5000000000000000000000000000001",
        "0.1000000000000000055511151231257827021181583404541015625", "0.18446744073709551616"}) {
    CAPTURE(std::string(number));
    double d = 0;
    float f = 0;
    REQUIRE(std::from_chars(number.data(), number.data() + number.size(), d).ec == std::errc());
    REQUIRE(std::from_chars(number.data(), number.data() + number.size(), f).ec == std::errc());
    for (const auto& [type, want] : {std::pair<std::string_view, Datum>{"f64", d}, {"f32", f}}) {
      CAPTURE(std::string(type));
      const Outcome out = expect_same(doc(gauge(type, number)));
      REQUIRE_MESSAGE(out.general.ok(), out.general.error());
      CHECK(same_datum((*out.general)[0].samples[0].datum, want));
      if (out.canonical) CHECK(same_datum((*out.canonical)[0].samples[0].datum, want));
    }
  }
}

// The hashes are of a target's and a metric's text as written, whitespace inside included; both
// decoders must hash the same span, or a memo filled by one is never reused by the other.
TEST_CASE("canonical: a target or metric followed by whitespace hashes as the general decoder's") {
  const std::string json =
      replace_all(replace_all(kOrdered, R"(}}}},"metric")", "}}}} \n\t,\"metric\""),
                  R"(,"measurement")", " \r\n,\"measurement\"");
  CHECK(expect_same_with_memos(json, {kOrdered}));

  // A memo filled by either decoder serves the other.
  CollectDecodeMemo by_general;
  REQUIRE(decode_general(json, {}, by_general).ok());
  std::swap(by_general.last, by_general.next);
  CollectDecodeMemo by_canonical;
  REQUIRE(decode_canonical(json, {}, by_canonical));
  std::swap(by_canonical.last, by_canonical.next);
  for (const CollectDecodeMemo* memo : {&by_general, &by_canonical}) {
    CollectDecodeMemo for_canonical = *memo;
    CollectDecodeMemo for_general = *memo;
    const std::optional<Items> c = decode_canonical(json, {}, for_canonical);
    const Result<Items> g = decode_general(json, {}, for_general);
    REQUIRE(c);
    REQUIRE(g.ok());
    for (std::size_t i = 0; i < memo->last.size(); ++i) {
      CAPTURE(i);
      CHECK((*c)[0].samples[i].series == memo->last[i].series);
      CHECK((*g)[0].samples[i].series == memo->last[i].series);
    }
  }
}

// A target's or metric's text is matched for brackets and strings only; a response cut right
// after a backslash inside it must not be read past its end (caught in the sanitizer builds:
// expect_same hands the decoders a buffer of the exact size).
TEST_CASE("canonical: a response cut inside a target's or metric's escape is refused in bounds") {
  const std::string json = replace_all(
      replace_all(kOrdered, R"("value":"h"})", R"("value":"h\"\\\u00e9"})"),
      R"("metric":{"name":"h","fields":{}})", R"("metric":{"name":"h","fields":{},"x":"\\"})");
  REQUIRE(expect_same(json).general.ok());
  for (std::size_t n = 0; n < json.size(); ++n) {
    CAPTURE(n);
    const Outcome out = expect_same(std::string_view(json).substr(0, n));
    CHECK_FALSE(out.canonical);
    CHECK_FALSE(out.general.ok());
  }
}

// ---------------------------------------------------------------------------------------------
// e. The memo

TEST_CASE("canonical memo: a response decoded again reuses every timeseries") {
  const std::vector<Sample> samples = samples_of(
      {int64_t{1}, 2.5,
       test::histogram<uint16_t>(test::ts("2026-01-01T00:00:00Z"), {uint16_t{0}, uint16_t{9}}, 1)});
  const std::string json = encode(samples);
  CollectDecodeMemo memo;
  Result<Items> first = decode_collect_response(json, {}, &memo);
  REQUIRE_MESSAGE(first.ok(), first.error());
  REQUIRE(memo.last.size() == 3);
  REQUIRE(memo.next.empty());

  CollectDecodeMemo copy = memo;
  const std::optional<Items> again = decode_canonical(json, {}, copy);
  REQUIRE(again);
  REQUIRE((*again)[0].samples.size() == 3);
  REQUIRE(copy.next.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK((*again)[0].samples[i].series == (*first)[0].samples[i].series);
    CHECK(copy.next[i].series == memo.last[i].series);
    CHECK(copy.next[i].target == memo.last[i].target);
    CHECK(copy.next[i].metric == memo.last[i].metric);
    CHECK(same_sample((*again)[0].samples[i], samples[i]));
  }
  expect_same(json, memo);
}

TEST_CASE("canonical memo: a changed metric field gives that sample a new timeseries only") {
  const std::vector<Sample> samples = samples_of({int64_t{1}, int64_t{2}, int64_t{3}});
  CollectDecodeMemo memo;
  Result<Items> first = decode_collect_response(encode(samples), {}, &memo);
  REQUIRE_MESSAGE(first.ok(), first.error());

  std::vector<Sample> changed = samples;
  test::change_series(changed[1], [](Timeseries& t) { t.metric.fields[1].value = uint16_t{999}; });
  const std::string json = encode(changed);
  CollectDecodeMemo copy = memo;
  const std::optional<Items> got = decode_canonical(json, {}, copy);
  REQUIRE(got);
  const std::vector<Sample>& s = (*got)[0].samples;
  REQUIRE(s.size() == 3);
  CHECK(s[0].series == (*first)[0].samples[0].series);
  CHECK(s[1].series != (*first)[0].samples[1].series);
  CHECK(s[2].series == (*first)[0].samples[2].series);
  for (std::size_t i = 0; i < 3; ++i) CHECK(same_sample(s[i], changed[i]));
  CHECK(s[1].key() != (*first)[0].samples[1].key());
  REQUIRE(copy.next.size() == 3);
  CHECK(copy.next[1].series == s[1].series);
  CHECK(copy.next[1].metric != memo.last[1].metric);
  CHECK(copy.next[1].target == memo.last[1].target);
  expect_same(json, memo);

  // A changed version, and a changed target, likewise.
  std::vector<Sample> versioned = samples;
  test::change_series(versioned[2], [](Timeseries& t) { t.version = 3; });
  test::change_series(versioned[0], [](Timeseries& t) { t.target.fields[2].value = int64_t{4}; });
  const Outcome out = expect_same(encode(versioned), memo);
  REQUIRE(out.canonical);
  const std::vector<Sample>& v = (*out.canonical)[0].samples;
  CHECK(v[0].series != (*first)[0].samples[0].series);
  CHECK(v[1].series == (*first)[0].samples[1].series);
  CHECK(v[2].series != (*first)[0].samples[2].series);
  CHECK(v[2].timeseries_version() == 3);
}

TEST_CASE("canonical memo: a refusal leaves the memo as it was") {
  const std::vector<Sample> samples = samples_of({int64_t{1}, 2.5, std::string("s")});
  const std::string json = encode(samples);
  CollectDecodeMemo memo;
  REQUIRE(decode_collect_response(json, {}, &memo).ok());
  // Garbage at the end, after every sample was read and its series taken from the memo; an
  // escape in the last sample, after the first two were; an invalid value likewise.
  const std::vector<std::string> refused = {
      json + "x",
      json + "]",
      replace_all(json, R"("datum":"s")", R"("datum":"\u0073")"),
      replace_all(json, R"("datum":"s")", "\"datum\":\"s\xC3\x28\""),
      replace_all(json, R"({"type":"string","datum":"s"})", R"({"type":"u8","datum":256})"),
      replace_all(json, R"({"type":"string","datum":"s"})", R"({"type":"u8","datum":1}})"),
      json.substr(0, json.size() - 1),
  };
  for (std::size_t i = 0; i < refused.size(); ++i) {
    CAPTURE(i);
    CollectDecodeMemo copy = memo;
    CHECK_FALSE(decode_canonical(refused[i], {}, copy));
    check_unchanged(copy, memo);
    expect_same(refused[i], memo);
    // The memo still serves the next response.
    const std::optional<Items> next = decode_canonical(json, {}, copy);
    REQUIRE(next);
    for (std::size_t j = 0; j < 3; ++j) CHECK(copy.next[j].series == memo.last[j].series);
  }
}

TEST_CASE("canonical memo: a memo longer or shorter than the response") {
  const std::vector<Sample> samples = samples_of({int64_t{1}, int64_t{2}, int64_t{3}});
  const std::string three = encode(samples);
  const std::string two = encode({samples[0], samples[1]});
  const std::string shifted = encode({samples[1], samples[2]});
  CHECK(expect_same_with_memos(three, {two, shifted}));
  CHECK(expect_same_with_memos(two, {three, shifted}));
  CHECK(expect_same_with_memos(shifted, {three, two}));
  CHECK(expect_same_with_memos("[]", {three}));
}

// ---------------------------------------------------------------------------------------------
// f. Limits

TEST_CASE("canonical: refuses a response over max_samples") {
  const std::vector<Sample> samples = samples_of({int64_t{1}, int64_t{2}, int64_t{3}});
  std::vector<CollectItem> items(2);
  items[0].samples = {samples[0], samples[1]};
  items[1].samples = {samples[2]};
  const std::string json = encode_collect_response(items);
  const CollectDecodeMemo memo = memo_after(json);
  for (const CollectDecodeMemo& before : {CollectDecodeMemo{}, memo}) {
    for (std::size_t limit = 0; limit < 3; ++limit) {
      CAPTURE(limit);
      const Outcome out = expect_same(json, before, DecodeLimits{limit});
      CHECK_FALSE(out.canonical);
      REQUIRE_FALSE(out.general.ok());
      CHECK(out.general.status().code() == "too_many_samples");
    }
    CHECK(expect_same(json, before, DecodeLimits{3}).canonical);
    CHECK(expect_same(json, before, DecodeLimits{4}).canonical);
  }
  CHECK(expect_same("[]", {}, DecodeLimits{0}).canonical);
  CHECK(expect_same(R"([{"status":"ok","info":[]}])", {}, DecodeLimits{0}).canonical);
}

}  // namespace
}  // namespace tally::collect_json
