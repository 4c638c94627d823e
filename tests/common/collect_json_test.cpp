#include "tally/common/collect_json.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "support/every_datum.h"
#include "support/fixtures.h"
#include "support/series.h"
#include "tally/common/names.h"
#include "tally/common/timeseries_key.h"

namespace tally {
namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

using test::ip;
using test::ts;
using test::uuid;

Sample make_sample(Datum datum) {
  Target target{"http_service",
                {{"name", std::string("api")},
                 {"instance_id", uuid("6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f")}}};
  Metric metric{"request_latency",
                {{"route", std::string("/v1/items")}, {"status_code", uint16_t{200}}}};
  return Sample{make_timeseries(std::move(target), std::move(metric)),
                ts("2026-11-22T10:00:00.123456Z"), std::move(datum)};
}

std::string encode(const std::vector<Sample>& samples) {
  CollectItem item;
  item.samples = samples;
  return encode_collect_response(std::span<const CollectItem>(&item, 1));
}

// Decodes `json`, which must be one ok item, and returns its samples.
std::vector<Sample> decode_samples(const std::string& json) {
  Result<std::vector<CollectItem>> r = decode_collect_response(json);
  REQUIRE_MESSAGE(r.ok(), r.error());
  REQUIRE(r->size() == 1);
  REQUIRE_FALSE((*r)[0].error);
  return (*r)[0].samples;
}

// Encodes, decodes and checks that every sample came back the same, and that a second
// encoding is byte-for-byte the first (the form is canonical).
void check_round_trip(const std::vector<Sample>& samples) {
  for (const Sample& s : samples)
    REQUIRE_MESSAGE(validate_sample(s).ok(), validate_sample(s).message());
  const std::string json = encode(samples);
  const std::vector<Sample> back = decode_samples(json);
  REQUIRE(back.size() == samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    CAPTURE(i);
    CAPTURE(json);
    CHECK(same_sample(back[i], samples[i]));
  }
  CHECK(encode(back) == json);
}

template <class T>
Histogram<T> make_histogram(std::vector<std::optional<T>> edges) {
  Histogram<T> h;
  h.start_time = ts("2026-11-22T09:00:00Z");
  uint64_t count = 1;
  for (const auto& e : edges) h.bins.push_back({e, count++});
  h.n_samples = count * (count - 1) / 2;
  h.min = std::numeric_limits<T>::lowest();
  h.max = std::numeric_limits<T>::max();
  h.sum_of_samples = std::numeric_limits<HistogramSum<T>>::max();
  h.squared_mean = 0.25;
  return h;
}

// A histogram unbounded below and one that starts at a finite edge, with extreme edges.
template <class T>
std::vector<Sample> histogram_samples() {
  constexpr T lo = std::numeric_limits<T>::lowest();
  constexpr T hi = std::numeric_limits<T>::max();
  std::vector<Sample> out;
  if constexpr (std::is_signed_v<T>) {
    out.push_back(make_sample(make_histogram<T>({std::nullopt, lo, T(-1), T(0), T(1), hi})));
  } else {
    out.push_back(make_sample(make_histogram<T>({std::nullopt, T(0), T(10), hi})));
  }
  out.push_back(make_sample(make_histogram<T>({T(1), T(2), T(3)})));
  out.push_back(make_sample(make_histogram<T>({T(0)})));
  return out;
}

// A single-sample response around a datum and target fields given as JSON text.
std::string doc(std::string_view datum, std::string_view target_fields = "{}",
                std::string_view name = "\"t:m\"", std::string_view metric_fields = "{}") {
  std::string out = R"([{"status":"ok","info":[{"timeseries_name":)";
  out += name;
  out += R"(,"target":{"name":"t","fields":)";
  out += target_fields;
  out += R"(},"metric":{"name":"m","fields":)";
  out += metric_fields;
  out += R"(},"measurement":{"timestamp":"2026-01-01T00:00:00Z","datum":)";
  out += datum;
  out += "}}]}]";
  return out;
}

std::string field(std::string_view name, std::string_view type, std::string_view value) {
  std::string out = "{\"";
  out += name;
  out += R"(":{"name":")";
  out += name;
  out += R"(","value":{"type":")";
  out += type;
  out += R"(","value":)";
  out += value;
  out += "}}}";
  return out;
}

std::string histogram(std::string_view type, std::string_view bins) {
  std::string out = R"({"type":")";
  out += type;
  out += R"(","datum":{"start_time":"2026-01-01T00:00:00Z","bins":)";
  out += bins;
  out += R"(,"n_samples":1,"min":0,"max":0,"sum_of_samples":0,"squared_mean":0}})";
  return out;
}

// The example of DESIGN.md §3.1, with oximeter's quantile estimate and an err item.
constexpr std::string_view kDesignExample = R"([ {"status": "ok", "info": [
    {"timeseries_name": "http_service:request_latency",
     "timeseries_version": 1,
     "target": {"name": "http_service", "fields": {
        "name": {"name": "name", "value": {"type": "string", "value": "api"}},
        "instance_id": {"name": "instance_id", "value": {"type": "uuid",
                        "value": "6F1F3C1E-0C0E-4C5A-9F0E-3A2B1C0D9E8F"}}}},
     "metric": {"name": "request_latency", "fields": {
        "route": {"name": "route", "value": {"type": "string", "value": "/v1/items"}},
        "status_code": {"name": "status_code", "value": {"type": "u16", "value": 200}}}},
     "measurement": {"timestamp": "2026-11-22T10:00:00.123456789Z",
        "datum": {"type": "histogram_f64", "datum": {
          "start_time": "2026-11-22T09:00:00Z",
          "bins": [{"range": {"type": "range_to", "end": 0.01}, "count": 4},
                   {"range": {"type": "range", "start": 0.01, "end": 0.1}, "count": 9},
                   {"range": {"type": "range_from", "start": 0.1}, "count": 1}],
          "n_samples": 14, "min": 0.002, "max": 0.3, "sum_of_samples": 0.71,
          "squared_mean": 0.011,
          "p50": {"marker_heights": [0, 0, 0, 0, 0], "marker_positions": [1, 2, 3, 4, 5],
                  "desired_marker_positions": [1.0, 2.0, 3.0, 4.0, 5.0]},
          "p90": null, "p99": {"anything": "goes"}}}}} ]},
  {"status": "err", "info": {"type": "datum_error", "content": "disk stats unavailable"}} ])";

// ---------------------------------------------------------------------------------------------
// Decoding well-formed input

TEST_CASE("decode: the example of DESIGN.md 3.1") {
  Result<std::vector<CollectItem>> r = decode_collect_response(kDesignExample);
  REQUIRE_MESSAGE(r.ok(), r.error());
  REQUIRE(r->size() == 2);
  REQUIRE((*r)[0].samples.size() == 1);
  CHECK_FALSE((*r)[0].error);

  const Sample& s = (*r)[0].samples[0];
  Histogram<double> h;
  h.start_time = ts("2026-11-22T09:00:00Z");
  h.bins = {{std::nullopt, 4}, {0.01, 9}, {0.1, 1}};
  h.n_samples = 14;
  h.min = 0.002;
  h.max = 0.3;
  h.sum_of_samples = 0.71;
  h.squared_mean = 0.011;
  CHECK(same_sample(s, make_sample(h)));
  CHECK(s.timeseries_name() == "http_service:request_latency");
  // Nanoseconds are truncated to the microsecond, never rounded up.
  CHECK(format_rfc3339(s.timestamp) == "2026-11-22T10:00:00.123456Z");

  CHECK((*r)[1].samples.empty());
  REQUIRE((*r)[1].error);
  CHECK(*(*r)[1].error == ProducerError{"datum_error", "disk stats unavailable"});
}

TEST_CASE("decode: an empty list and an ok item with no samples") {
  Result<std::vector<CollectItem>> empty = decode_collect_response(" [ ] \n");
  REQUIRE(empty.ok());
  CHECK(empty->empty());

  Result<std::vector<CollectItem>> no_samples =
      decode_collect_response(R"([{"status":"ok","info":[]}])");
  REQUIRE(no_samples.ok());
  REQUIRE(no_samples->size() == 1);
  CHECK((*no_samples)[0].samples.empty());
  CHECK_FALSE((*no_samples)[0].error);
}

TEST_CASE("decode: timeseries_version defaults to 1 and is kept when given") {
  CHECK(decode_samples(doc(R"({"type":"i64","datum":5})"))[0].timeseries_version() == 1);
  std::string v7 = doc(R"({"type":"i64","datum":5})");
  v7.replace(v7.find("\"target\""), 0, "\"timeseries_version\":7,");
  CHECK(decode_samples(v7)[0].timeseries_version() == 7);
}

TEST_CASE("decode: keys in any order, unknown keys at every level ignored") {
  // Every object reordered, and an unknown key (with a nested value to skip) in each.
  constexpr std::string_view kExtra = R"("x_new":{"a":[1,{"b":null}],"c":"}"})";
  std::string json =
      R"([{)" + std::string(kExtra) + R"(,"info":[{)" + std::string(kExtra) +
      R"(,"measurement":{)" + std::string(kExtra) + R"(,"datum":{"datum":{)" + std::string(kExtra) +
      R"(,"value":7,"start_time":"2026-01-01T00:00:00Z"},)" + std::string(kExtra) +
      R"(,"type":"cumulative_u64"},"timestamp":"2026-01-02T00:00:00Z"},)" +
      R"("metric":{"fields":{"k":{"value":{"value":true,)" + std::string(kExtra) +
      R"(,"type":"bool"},)" + std::string(kExtra) + R"(,"name":"k"}},)" + std::string(kExtra) +
      R"(,"name":"m"},)" +
      R"("target":{"name":"t","fields":{}},"timeseries_name":"t:m"}],"status":"ok"}])";
  const std::vector<Sample> samples = decode_samples(json);
  REQUIRE(samples.size() == 1);
  Sample expected;
  test::change_series(expected, [&](Timeseries& t) {
    t.target.name = "t";
    t.metric.name = "m";
    t.metric.fields = {{"k", true}};
  });
  expected.timestamp = ts("2026-01-02T00:00:00Z");
  expected.datum = Cumulative<uint64_t>{ts("2026-01-01T00:00:00Z"), 7};
  CHECK(same_sample(samples[0], expected));
}

TEST_CASE("decode: histogram bins become lower edges") {
  const std::string json =
      doc(histogram("histogram_i64", R"([{"range":{"type":"range","start":-5,"end":0},"count":1},
                            {"range":{"type":"range","start":0,"end":10},"count":2},
                            {"range":{"type":"range_from","start":10},"count":3}])"));
  const std::vector<Sample> samples = decode_samples(json);
  const auto& h = std::get<Histogram<int64_t>>(samples[0].datum);
  CHECK(h.bins == std::vector<Bin<int64_t>>{{-5, 1}, {0, 2}, {10, 3}});
}

TEST_CASE("decode: a range's keys in any order, unknown keys skipped, give the same bins") {
  // The edges come before the type, or around it, with unknown keys between.
  const std::string json = doc(histogram(
      "histogram_i64", R"([{"range":{"end":0,"x":[1,{"y":2}],"start":-5,"type":"range"},"count":1},
                            {"range":{"start":0,"type":"range","end":10},"count":2},
                            {"range":{"start":10,"z":null,"type":"range_from"},"count":3}])"));
  const std::vector<Sample> samples = decode_samples(json);
  const auto& h = std::get<Histogram<int64_t>>(samples[0].datum);
  CHECK(h.bins == std::vector<Bin<int64_t>>{{-5, 1}, {0, 2}, {10, 3}});
}

TEST_CASE("decode: non-finite floats are strings, integers are accepted as floats") {
  const std::vector<Sample> nan = decode_samples(doc(R"({"type":"f64","datum":"NaN"})"));
  CHECK(std::isnan(std::get<double>(nan[0].datum)));
  const std::vector<Sample> inf = decode_samples(doc(R"({"type":"f32","datum":"-Infinity"})"));
  CHECK(std::get<float>(inf[0].datum) == -std::numeric_limits<float>::infinity());
  const std::vector<Sample> integral = decode_samples(doc(R"({"type":"f64","datum":3})"));
  CHECK(std::get<double>(integral[0].datum) == 3.0);
}

TEST_CASE("decode: f32 rounds to the nearest float, tiny values underflow to zero") {
  auto f32 = [](std::string_view number) {
    const std::string datum = R"({"type":"f32","datum":)" + std::string(number) + "}";
    return std::get<float>(decode_samples(doc(datum))[0].datum);
  };
  CHECK(f32("0.1") == 0.1f);
  CHECK(f32("16777217") == 16777216.0f);  // 2^24 + 1 is not a float: ties to even
  CHECK(f32("3.4028235e38") == std::numeric_limits<float>::max());
  CHECK(f32("3.40282356e38") == std::numeric_limits<float>::max());  // rounds down, in range
  CHECK(f32("1e-50") == 0.0f);
  CHECK(f32("1e-45") == std::numeric_limits<float>::denorm_min());
}

TEST_CASE("decode: escaped strings are unescaped") {
  const std::string json = doc(R"({"type":"string","datum":"a\"b\\c\/d\n\u00e9\ud83d\ude00"})");
  CHECK(std::get<std::string>(decode_samples(json)[0].datum) ==
        "a\"b\\c/d\n\xC3\xA9\xF0\x9F\x98\x80");
}

TEST_CASE("decode: err items, with string, structured or no content, beside ok items") {
  const std::string json = R"([
    {"status":"err","info":{"type":"datum_error","content":"disk"}},
    {"status":"ok","info":[]},
    {"status":"err","info":{"type":"missing_datum_requires_start_time",
                            "content":{"datum_type":"i64"}}},
    {"status":"err","info":{"type":"unit_variant"}},
    {"status":"err","info":{"type":"n","content":42}}])";
  Result<std::vector<CollectItem>> r = decode_collect_response(json);
  REQUIRE_MESSAGE(r.ok(), r.error());
  REQUIRE(r->size() == 5);
  CHECK(*(*r)[0].error == ProducerError{"datum_error", "disk"});
  CHECK_FALSE((*r)[1].error);
  CHECK(*(*r)[2].error ==
        ProducerError{"missing_datum_requires_start_time", R"({"datum_type":"i64"})"});
  CHECK(*(*r)[3].error == ProducerError{"unit_variant", ""});
  CHECK(*(*r)[4].error == ProducerError{"n", "42"});
}

TEST_CASE("decode: max_samples counts across items and fails with too_many_samples") {
  const std::string two = encode({make_sample(int64_t{1}), make_sample(int64_t{2})});
  CHECK(decode_collect_response(two, DecodeLimits{2}).ok());

  Result<std::vector<CollectItem>> r = decode_collect_response(two, DecodeLimits{1});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == "too_many_samples");
  CHECK(r.error() == "[0].info[1]: the response holds more than 1 samples (the limit)");

  // One sample in each of two items is still two samples.
  CollectItem a;
  a.samples = {make_sample(int64_t{1})};
  const std::vector<CollectItem> items = {a, a};
  Result<std::vector<CollectItem>> split =
      decode_collect_response(encode_collect_response(items), DecodeLimits{1});
  REQUIRE_FALSE(split.ok());
  CHECK(split.status().code() == "too_many_samples");
  CHECK(split.error().starts_with("[1].info[0]: "));
}

TEST_CASE("decode: the limit is enforced before the offending sample is parsed") {
  // The second sample is malformed: with a limit of one, the count is what fails.
  std::string json = encode({make_sample(int64_t{1})});
  json.insert(json.size() - 3, R"(,{"broken":)");
  json.insert(json.size() - 3, "1}");
  Result<std::vector<CollectItem>> r = decode_collect_response(json, DecodeLimits{1});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == "too_many_samples");
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST_CASE("round trip: every field type, with extreme values") {
  Sample s = make_sample(int64_t{1});
  test::change_series(s, [&](Timeseries& t) {
    t.target.fields = {
        {"s", std::string("")},
        {"s_unicode",
         std::string("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \"q\" \\ \n\t\x01\x1f")},
        {"i8_min", std::numeric_limits<int8_t>::min()},
        {"i8_max", std::numeric_limits<int8_t>::max()},
        {"u8_max", std::numeric_limits<uint8_t>::max()},
        {"i16_min", std::numeric_limits<int16_t>::min()},
        {"u16_max", std::numeric_limits<uint16_t>::max()},
        {"i32_min", std::numeric_limits<int32_t>::min()},
        {"u32_max", std::numeric_limits<uint32_t>::max()},
        {"i64_min", std::numeric_limits<int64_t>::min()},
        {"i64_max", std::numeric_limits<int64_t>::max()},
        {"u64_max", std::numeric_limits<uint64_t>::max()},
        {"u64_zero", uint64_t{0}},
        {"ip4", ip("192.168.0.1")},
        {"ip6", ip("2001:db8::ff00:42:8329")},
        {"ip6_mapped", ip("::ffff:10.0.0.1")},
        {"id", uuid("00000000-0000-0000-0000-000000000000")},
        {"id_max", uuid("ffffffff-ffff-ffff-ffff-ffffffffffff")},
        {"yes", true},
        {"no", false}};
    t.metric.fields = {};
  });
  check_round_trip({s});
}

TEST_CASE("round trip: gauges of every type") {
  std::vector<Sample> samples;
  auto add = [&](Datum d) { samples.push_back(make_sample(std::move(d))); };
  add(true);
  add(false);
  add(std::numeric_limits<int8_t>::min());
  add(std::numeric_limits<int8_t>::max());
  add(std::numeric_limits<uint8_t>::max());
  add(std::numeric_limits<int16_t>::min());
  add(std::numeric_limits<uint16_t>::max());
  add(std::numeric_limits<int32_t>::min());
  add(std::numeric_limits<uint32_t>::max());
  add(std::numeric_limits<int64_t>::min());
  add(std::numeric_limits<int64_t>::max());
  add(std::numeric_limits<uint64_t>::max());
  for (float f :
       {0.0f, -0.0f, 0.1f, -1.5f, std::numeric_limits<float>::max(),
        std::numeric_limits<float>::lowest(), std::numeric_limits<float>::min(),
        std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::infinity(),
        -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    add(f);
  }
  for (double d :
       {0.0, -0.0, 0.1, 1e300, -2.5e-300, std::numeric_limits<double>::max(),
        std::numeric_limits<double>::lowest(), std::numeric_limits<double>::min(),
        std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(),
        9007199254740993.0}) {
    add(d);
  }
  add(std::string(""));
  add(std::string("line\nbreak \"quoted\" back\\slash \x7f caf\xC3\xA9 \xF0\x9F\x98\x80"));
  add(Bytes{});
  add(Bytes{0, 1, 127, 128, 255});
  check_round_trip(samples);
}

TEST_CASE("round trip: -0.0 keeps its sign (same_datum tells it from 0.0)") {
  const std::vector<Sample> back = decode_samples(encode({make_sample(-0.0)}));
  CHECK(std::signbit(std::get<double>(back[0].datum)));
  CHECK_FALSE(same_datum(back[0].datum, Datum(0.0)));
}

TEST_CASE("round trip: cumulative counters") {
  const Timestamp start = ts("2026-11-22T09:00:00.000001Z");
  check_round_trip({
      make_sample(Cumulative<int64_t>{start, std::numeric_limits<int64_t>::min()}),
      make_sample(Cumulative<int64_t>{start, std::numeric_limits<int64_t>::max()}),
      make_sample(Cumulative<uint64_t>{start, std::numeric_limits<uint64_t>::max()}),
      make_sample(Cumulative<float>{start, 1.25f}),
      make_sample(Cumulative<float>{start, std::numeric_limits<float>::infinity()}),
      make_sample(Cumulative<double>{start, std::numeric_limits<double>::quiet_NaN()}),
      make_sample(Cumulative<double>{start, -0.0}),
  });
}

TEST_CASE_TEMPLATE("round trip: histograms", T, int8_t, uint8_t, int16_t, uint16_t, int32_t,
                   uint32_t, int64_t, uint64_t) {
  check_round_trip(histogram_samples<T>());
}

TEST_CASE_TEMPLATE("round trip: float histograms", T, float, double) {
  constexpr T inf = std::numeric_limits<T>::infinity();
  std::vector<Sample> samples = {
      make_sample(make_histogram<T>({std::nullopt, T(-1.5), T(0), T(0.1), T(1e30)})),
      make_sample(make_histogram<T>({-inf, T(0), inf})),
      make_sample(make_histogram<T>({T(0.5)})),
  };
  auto& h = std::get<Histogram<T>>(samples[0].datum);
  h.min = -inf;
  h.max = std::numeric_limits<T>::quiet_NaN();
  h.sum_of_samples = std::numeric_limits<double>::quiet_NaN();
  h.squared_mean = inf;
  check_round_trip(samples);
}

TEST_CASE("round trip: missing datums of gauge, cumulative and histogram types") {
  const Timestamp start = ts("2026-11-22T09:00:00Z");
  check_round_trip({
      make_sample(Missing{DatumType::kI64, std::nullopt}),
      make_sample(Missing{DatumType::kBool, std::nullopt}),
      make_sample(Missing{DatumType::kString, std::nullopt}),
      make_sample(Missing{DatumType::kF32, std::nullopt}),
      make_sample(Missing{DatumType::kCumulativeU64, start}),
      make_sample(Missing{DatumType::kCumulativeF64, start}),
      make_sample(Missing{DatumType::kHistogramU8, start}),
      make_sample(Missing{DatumType::kHistogramF64, start}),
  });
}

TEST_CASE("round trip: versions, timestamps before 1970 and at the microsecond") {
  Sample s = make_sample(uint64_t{3});
  test::change_series(s, [&](Timeseries& t) { t.version = std::numeric_limits<uint32_t>::max(); });
  s.timestamp = ts("1969-12-31T23:59:59.999999Z");
  Sample t = make_sample(Cumulative<int64_t>{ts("1900-01-01T00:00:00Z"), 1});
  t.timestamp = ts("2999-12-31T23:59:59.000001Z");
  check_round_trip({s, t});
}

// Shortest float text read back through the decoder is the same float, for many random bit
// patterns (sorted into histogram edges so that one response carries them all).
TEST_CASE_TEMPLATE("round trip: random finite floats are exact", T, float, double) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  std::mt19937_64 rng(12345);
  std::vector<T> values;
  while (values.size() < 50000) {
    const Bits bits = static_cast<Bits>(rng());
    T v;
    std::memcpy(&v, &bits, sizeof v);
    if (std::isfinite(v)) values.push_back(v);
  }
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  Histogram<T> h = make_histogram<T>({});
  for (T v : values) h.bins.push_back({v, 1});
  const std::vector<Sample> back = decode_samples(encode({make_sample(h)}));
  const auto& got = std::get<Histogram<T>>(back[0].datum);
  REQUIRE(got.bins.size() == values.size());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::memcmp(&*got.bins[i].lower, &values[i], sizeof(T)) != 0) ++mismatches;
  }
  CHECK(mismatches == 0);
}

// A response above the size whose parser buffers are always kept per thread: the next call on
// the thread, with buffers sized for the large one, must still work.
TEST_CASE("round trip: a large response, then a small one on the same thread") {
  Bytes big(6 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  const std::vector<Sample> back = decode_samples(encode({make_sample(big)}));
  CHECK(std::get<Bytes>(back[0].datum) == big);
  CHECK(decode_samples(encode({make_sample(uint8_t{9})}))[0].datum == Datum(uint8_t{9}));
}

// ---------------------------------------------------------------------------------------------
// Encoding: the exact shape of §3.1

TEST_CASE("encode: a gauge sample has exactly the shape of DESIGN.md 3.1") {
  Sample s;
  test::change_series(s, [&](Timeseries& t) {
    t.target.name = "t";
    t.target.fields = {{"a", uint16_t{200}}, {"id", uuid("6F1F3C1E-0C0E-4C5A-9F0E-3A2B1C0D9E8F")}};
    t.metric.name = "m";
    t.metric.fields = {{"addr", ip("2001:DB8:0:0:0:0:0:1")}, {"up", true}, {"n", int8_t{-8}}};
  });
  s.timestamp = ts("2026-01-01T00:00:00Z");
  s.datum = 1.5;
  std::string out;
  append_sample_json(out, s);
  CHECK(out == R"({"timeseries_name":"t:m","timeseries_version":1,)"
               R"("target":{"name":"t","fields":{)"
               R"("a":{"name":"a","value":{"type":"u16","value":200}},)"
               R"("id":{"name":"id","value":{"type":"uuid",)"
               R"("value":"6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f"}}}},)"
               R"("metric":{"name":"m","fields":{)"
               R"("addr":{"name":"addr","value":{"type":"ip_addr","value":"2001:db8::1"}},)"
               R"("up":{"name":"up","value":{"type":"bool","value":true}},)"
               R"("n":{"name":"n","value":{"type":"i8","value":-8}}}},)"
               R"("measurement":{"timestamp":"2026-01-01T00:00:00.000000Z",)"
               R"("datum":{"type":"f64","datum":1.5}}})");
}

// The "datum" object of one sample, as encoded.
std::string datum_json(Datum d) {
  std::string out;
  append_sample_json(out, make_sample(std::move(d)));
  const std::size_t at = out.find("\"datum\":");
  REQUIRE(at != std::string::npos);
  return out.substr(at + 8, out.size() - at - 8 - 2);
}

TEST_CASE("encode: datum forms") {
  const Timestamp start = ts("2026-11-22T09:00:00Z");
  CHECK(datum_json(std::numeric_limits<uint64_t>::max()) ==
        R"({"type":"u64","datum":18446744073709551615})");
  CHECK(datum_json(std::numeric_limits<int64_t>::min()) ==
        R"({"type":"i64","datum":-9223372036854775808})");
  CHECK(datum_json(uint8_t{255}) == R"({"type":"u8","datum":255})");
  CHECK(datum_json(0.1f) == R"({"type":"f32","datum":0.1})");
  CHECK(datum_json(0.1) == R"({"type":"f64","datum":0.1})");
  CHECK(datum_json(-0.0) == R"({"type":"f64","datum":-0})");
  CHECK(datum_json(1e300) == R"({"type":"f64","datum":1e+300})");
  CHECK(datum_json(std::numeric_limits<double>::quiet_NaN()) == R"({"type":"f64","datum":"NaN"})");
  CHECK(datum_json(std::numeric_limits<float>::infinity()) ==
        R"({"type":"f32","datum":"Infinity"})");
  CHECK(datum_json(-std::numeric_limits<double>::infinity()) ==
        R"({"type":"f64","datum":"-Infinity"})");
  CHECK(datum_json(false) == R"({"type":"bool","datum":false})");
  CHECK(datum_json(Bytes{1, 2, 3}) == R"({"type":"bytes","datum":[1,2,3]})");
  CHECK(datum_json(Bytes{}) == R"({"type":"bytes","datum":[]})");
  CHECK(datum_json(Cumulative<uint64_t>{start, 3}) ==
        R"({"type":"cumulative_u64",)"
        R"("datum":{"start_time":"2026-11-22T09:00:00.000000Z","value":3}})");
  CHECK(datum_json(Missing{DatumType::kI64, std::nullopt}) ==
        R"({"type":"missing","datum":{"datum_type":"i64","start_time":null}})");
  CHECK(datum_json(Missing{DatumType::kCumulativeF64, start}) ==
        R"({"type":"missing",)"
        R"("datum":{"datum_type":"cumulative_f64","start_time":"2026-11-22T09:00:00.000000Z"}})");
}

TEST_CASE("encode: histogram bins are oximeter ranges") {
  Histogram<double> h;
  h.start_time = ts("2026-11-22T09:00:00Z");
  h.bins = {{std::nullopt, 4}, {0.01, 9}, {0.1, 1}};
  h.n_samples = 14;
  h.min = 0.002;
  h.max = 0.3;
  h.sum_of_samples = 0.71;
  h.squared_mean = 0.011;
  CHECK(datum_json(h) ==
        R"({"type":"histogram_f64","datum":{"start_time":"2026-11-22T09:00:00.000000Z","bins":[)"
        R"({"range":{"type":"range_to","end":0.01},"count":4},)"
        R"({"range":{"type":"range","start":0.01,"end":0.1},"count":9},)"
        R"({"range":{"type":"range_from","start":0.1},"count":1}],)"
        R"("n_samples":14,"min":0.002,"max":0.3,"sum_of_samples":0.71,"squared_mean":0.011}})");

  Histogram<uint8_t> small;
  small.start_time = h.start_time;
  small.bins = {{uint8_t{0}, 1}};
  small.max = 255;
  CHECK(datum_json(small) ==
        R"({"type":"histogram_u8","datum":{"start_time":"2026-11-22T09:00:00.000000Z","bins":[)"
        R"({"range":{"type":"range_from","start":0},"count":1}],)"
        R"("n_samples":0,"min":0,"max":255,"sum_of_samples":0,"squared_mean":0}})");
}

TEST_CASE("encode: a response with ok and err items") {
  CollectItem ok;
  CollectItem err;
  err.error = ProducerError{"datum_error", "disk \"sda\" gone"};
  const std::vector<CollectItem> items = {ok, err};
  CHECK(encode_collect_response(items) ==
        R"([{"status":"ok","info":[]},)"
        R"({"status":"err","info":{"type":"datum_error","content":"disk \"sda\" gone"}}])");
  CHECK(encode_collect_response({}) == "[]");

  Result<std::vector<CollectItem>> back = decode_collect_response(encode_collect_response(items));
  REQUIRE(back.ok());
  REQUIRE(back->size() == 2);
  CHECK(*(*back)[1].error == *err.error);
}

TEST_CASE("encode: strings are escaped, UTF-8 passes through, invalid bytes become U+FFFD") {
  struct Case {
    std::string in;
    std::string out;
  };
  const Case cases[] = {
      {"plain", R"("plain")"},
      {"q\"b\\s/", R"("q\"b\\s/")"},
      {std::string("\x00\x01\n\r\t\x1f", 6), R"("\u0000\u0001\n\r\t\u001f")"},
      {"\x7f", "\"\x7f\""},
      {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
       "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\""},
      {"a\xFFz", "\"a\xEF\xBF\xBDz\""},                              // not a lead byte
      {"\xC0\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},                  // overlong '/'
      {"\xE2\x82", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},                  // cut short
      {"\xED\xA0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},  // a surrogate
      {"\xF4\x90\x80\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},  // > U+10FFFF
  };
  for (const Case& c : cases) {
    CAPTURE(c.in);
    CollectItem item;
    item.error = ProducerError{"t", c.in};
    const std::string json = encode_collect_response(std::span<const CollectItem>(&item, 1));
    const std::string prefix = R"([{"status":"err","info":{"type":"t","content":)";
    REQUIRE(json.starts_with(prefix));
    CHECK(json.substr(prefix.size(), json.size() - prefix.size() - 3) == c.out);
    // Whatever went in, the output is JSON the decoder accepts.
    CHECK(decode_collect_response(json).ok());
  }
}

// The escaper skips plain text eight bytes at a time: a byte that needs escaping is found at
// every offset of a block, and after a block too.
TEST_CASE("encode: a byte to escape is found wherever it sits in a long string") {
  const std::pair<std::string, std::string> specials[] = {{"\"", "\\\""},
                                                          {"\\", "\\\\"},
                                                          {"\n", "\\n"},
                                                          {std::string(1, '\0'), "\\u0000"},
                                                          {"\x1f", "\\u001f"},
                                                          {"\xff", "\xEF\xBF\xBD"},
                                                          {"\xC3\xA9", "\xC3\xA9"},
                                                          {"\x7f", "\x7f"}};
  for (const auto& [special, escaped] : specials) {
    for (std::size_t at = 0; at <= 17; ++at) {
      CAPTURE(at);
      CAPTURE(escaped);
      const std::string in = std::string(at, 'a') + special + std::string(17 - at, 'b');
      CollectItem item;
      item.error = ProducerError{"t", in};
      const std::string json = encode_collect_response(std::span<const CollectItem>(&item, 1));
      const std::string prefix = R"([{"status":"err","info":{"type":"t","content":)";
      REQUIRE(json.starts_with(prefix));
      CHECK(json.substr(prefix.size(), json.size() - prefix.size() - 3) ==
            "\"" + std::string(at, 'a') + escaped + std::string(17 - at, 'b') + "\"");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Malformed input: the whole response is rejected with the path and the problem.

// `json` with the first `from` replaced by `to`.
std::string edit(std::string json, std::string_view from, std::string_view to) {
  const std::size_t at = json.find(from);
  REQUIRE(at != std::string::npos);
  return json.replace(at, from.size(), to);
}

struct BadCase {
  std::string what;
  std::string json;
  std::string error;  // a substring of the message
};

std::vector<BadCase> bad_cases() {
  const std::string u16 = R"({"type":"u16","datum":1})";
  const std::string contiguous_start = R"([{"range":{"type":"range_to","end":1},"count":1},)";
  return {
      {"empty input", "", "invalid JSON"},
      {"truncated", R"([{"status":"ok","info":[)", "invalid JSON"},
      {"truncated inside a sample", doc(u16).substr(0, 60), "invalid JSON"},
      {"not JSON", "hello", "expected a JSON array of items"},
      {"broken JSON", "[{]", "[0]: invalid JSON"},
      {"not an array", R"({"status":"ok"})", "expected a JSON array of items"},
      {"a scalar", "5", "expected a JSON array of items"},
      {"trailing content", "[]]", "unexpected content after the array"},
      {"trailing comma", R"([{"status":"ok","info":[]},])", "[1]"},
      {"invalid UTF-8", "[\"\xff\"]", "invalid JSON"},
      {"item not an object", "[1]", "[0]: expected an object, got a number"},
      {"status missing", R"([{"info":[]}])", "[0]: missing key 'status'"},
      {"unknown status", R"([{"status":"maybe","info":[]}])", "[0]: unknown status 'maybe'"},
      {"info missing", R"([{"status":"ok"}])", "[0]: missing key 'info'"},
      {"ok info not a list", R"([{"status":"ok","info":{}}])",
       "[0].info: expected an array, got an object"},
      {"err info not an object", R"([{"status":"err","info":"x"}])",
       "[0].info: expected an object, got a string"},
      {"err info without type", R"([{"status":"err","info":{"content":"x"}}])",
       "[0].info: missing key 'type'"},
      {"sample not an object", R"([{"status":"ok","info":[[]]}])",
       "[0].info[0]: expected an object, got an array"},
      {"timeseries_name missing", edit(doc(u16), R"("timeseries_name":"t:m",)", ""),
       "[0].info[0]: missing key 'timeseries_name'"},
      {"timeseries_name not a string", doc(u16, "{}", "5"),
       "[0].info[0].timeseries_name: expected a string, got a number"},
      {"timeseries_name mismatch", doc(u16, "{}", "\"t:x\""),
       "[0].info[0].timeseries_name: 't:x' does not match the target and metric names 't:m'"},
      {"timeseries_name without colon", doc(u16, "{}", "\"tm\""), "'tm' does not match"},
      {"duplicate key", doc(u16, "{}", R"("t:m","timeseries_name":"t:m")"),
       "[0].info[0]: duplicate key 'timeseries_name'"},
      {"version zero", doc(u16, "{}", R"("t:m","timeseries_version":0)"),
       "[0].info[0]: timeseries 't:m': version must be at least 1"},
      {"version negative", doc(u16, "{}", R"("t:m","timeseries_version":-1)"),
       "[0].info[0].timeseries_version: -1 is out of range for u32"},
      {"target missing", edit(doc(u16), R"("target":{"name":"t","fields":{}},)", ""),
       "[0].info[0]: missing key 'target'"},
      {"target not an object", edit(doc(u16), R"({"name":"t","fields":{}})", "7"),
       "[0].info[0].target: expected an object, got a number"},
      {"target name missing", edit(doc(u16), R"("name":"t",)", ""),
       "[0].info[0].target: missing key 'name'"},
      {"fields missing", edit(doc(u16), R"(,"fields":{}},"metric")", R"(},"metric")"),
       "[0].info[0].target: missing key 'fields'"},
      {"fields not an object", doc(u16, "[]"),
       "[0].info[0].target.fields: expected an object, got an array"},
      {"field key differs from its name",
       doc(u16, R"({"a":{"name":"b","value":{"type":"bool","value":true}}})"),
       "[0].info[0].target.fields.a: the key 'a' differs from the field's name 'b'"},
      {"field value missing", doc(u16, R"({"a":{"name":"a"}})"),
       "[0].info[0].target.fields.a: missing key 'value'"},
      {"unknown field type", doc(u16, field("a", "u128", "1")),
       "[0].info[0].target.fields.a.value: unknown field type 'u128'"},
      {"bad UUID", doc(u16, field("instance_id", "uuid", "\"zz\"")),
       "[0].info[0].target.fields.instance_id.value: 'zz' is not a hyphenated UUID"},
      {"UUID with a stray hyphen",
       doc(u16, field("id", "uuid", "\"6f1f3c1e-0c0e-4c5a-9f0e--a2b1c0d9e8f\"")),
       "is not a hyphenated UUID"},
      {"UUID not a string", doc(u16, field("id", "uuid", "12")),
       "[0].info[0].target.fields.id.value: expected a string, got a number"},
      {"bad IP", doc(u16, field("addr", "ip_addr", "\"1.2.3.256\"")),
       "[0].info[0].target.fields.addr.value: '1.2.3.256' is not an IPv4 or IPv6 address"},
      {"IP with a NUL", doc(u16, field("addr", "ip_addr", R"("1.2.3.4\u0000junk")")),
       "is not an IPv4 or IPv6 address"},
      {"u8 256", doc(u16, field("x", "u8", "256")),
       "[0].info[0].target.fields.x.value: 256 is out of range for u8"},
      {"i8 -129", doc(u16, field("x", "i8", "-129")),
       "[0].info[0].target.fields.x.value: -129 is out of range for i8"},
      {"u64 -1", doc(u16, field("x", "u64", "-1")), "-1 is out of range for u64"},
      {"u64 2^64", doc(u16, field("x", "u64", "18446744073709551616")),
       "18446744073709551616 is out of range for u64"},
      {"i64 2^63", doc(u16, field("x", "i64", "9223372036854775808")),
       "9223372036854775808 is out of range for i64"},
      {"integer with a fraction", doc(u16, field("x", "u16", "1.5")),
       "[0].info[0].target.fields.x.value: 1.5 is not an integer (u16)"},
      {"integer with an exponent", doc(u16, field("x", "i32", "1e3")),
       "1e3 is not an integer (i32)"},
      {"integer as a string", doc(u16, field("x", "u16", "\"200\"")),
       "expected an integer (u16), got a string"},
      {"bool as a string", doc(u16, field("x", "bool", "\"true\"")),
       "expected true or false, got a string"},
      {"string field as a number", doc(u16, field("x", "string", "1")),
       "expected a string, got a number"},
      {"bad field name", doc(u16, field("Bad-Name", "bool", "true")),
       "[0].info[0]: field 'Bad-Name' of target 't': must match [a-z][a-z0-9]*(_[a-z0-9]+)*"},
      {"duplicate field across target and metric",
       doc(u16, field("x", "bool", "true"), "\"t:m\"", field("x", "u8", "1")),
       "[0].info[0]: field 'x' of metric 'm': duplicate field name"},
      {"bad target name", edit(doc(u16, "{}", "\"T:m\""), R"("name":"t")", R"("name":"T")"),
       "[0].info[0]: target 'T': must match"},
      {"measurement missing",
       edit(doc(u16), R"(,"measurement":{"timestamp":"2026-01-01T00:00:00Z","datum":)" + u16 + "}",
            ""),
       "[0].info[0]: missing key 'measurement'"},
      {"bad timestamp", edit(doc(u16), "2026-01-01", "2026-02-30"),
       "[0].info[0].measurement.timestamp: bad timestamp '2026-02-30T00:00:00Z': no such date"},
      {"timestamp without zone", edit(doc(u16), "00:00:00Z", "00:00:00"), "missing time zone"},
      {"datum missing", edit(doc(u16), R"(,"datum":{"type":"u16","datum":1})", ""),
       "[0].info[0].measurement: missing key 'datum'"},
      {"datum type missing", doc(R"({"datum":1})"),
       "[0].info[0].measurement.datum: missing key 'type'"},
      {"datum body missing", doc(R"({"type":"u8"})"),
       "[0].info[0].measurement.datum: missing key 'datum'"},
      {"unknown datum type", doc(R"({"type":"f65","datum":1})"),
       "[0].info[0].measurement.datum: unknown type 'f65'"},
      {"gauge out of range", doc(R"({"type":"u8","datum":300})"),
       "[0].info[0].measurement.datum: 300 is out of range for u8"},
      {"bool gauge as a number", doc(R"({"type":"bool","datum":1})"),
       "[0].info[0].measurement.datum: expected true or false, got a number"},
      {"float as an unknown string", doc(R"({"type":"f64","datum":"nan"})"),
       "[0].info[0].measurement.datum: 'nan' is not a number"},
      {"float as null", doc(R"({"type":"f64","datum":null})"),
       "[0].info[0].measurement.datum: expected a number (f64), got null"},
      {"f32 beyond its range", doc(R"({"type":"f32","datum":1e39})"),
       "[0].info[0].measurement.datum: 1e+39 is out of range for f32"},
      {"f64 beyond its range", doc(R"({"type":"f64","datum":1e400})"),
       "[0].info[0].measurement.datum: 1e400 is not a valid f64"},
      {"bytes not a list", doc(R"({"type":"bytes","datum":"AQID"})"),
       "[0].info[0].measurement.datum: expected an array, got a string"},
      {"byte out of range", doc(R"({"type":"bytes","datum":[1,256]})"),
       "[0].info[0].measurement.datum[1]: 256 is out of range for u8"},
      {"cumulative without start_time", doc(R"({"type":"cumulative_u64","datum":{"value":3}})"),
       "[0].info[0].measurement.datum: missing key 'start_time'"},
      {"cumulative as a number", doc(R"({"type":"cumulative_u64","datum":3})"),
       "[0].info[0].measurement.datum: expected an object, got a number"},
      {"cumulative value out of range",
       doc(R"({"type":"cumulative_i64",)"
           R"("datum":{"start_time":"2026-01-01T00:00:00Z","value":9223372036854775808}})"),
       "[0].info[0].measurement.datum.value: 9223372036854775808 is out of range for i64"},
      {"missing gauge with a start_time",
       doc(R"({"type":"missing",)"
           R"("datum":{"datum_type":"i64","start_time":"2026-01-01T00:00:00Z"}})"),
       "[0].info[0]: timeseries 't:m': missing i64 datum (a gauge) must not have a start_time"},
      {"missing cumulative without start_time",
       doc(R"({"type":"missing","datum":{"datum_type":"cumulative_u64","start_time":null}})"),
       "[0].info[0]: timeseries 't:m': missing cumulative_u64 datum needs a start_time"},
      {"missing histogram, start_time absent",
       doc(R"({"type":"missing","datum":{"datum_type":"histogram_f64"}})"),
       "missing histogram_f64 datum needs a start_time"},
      {"missing bytes",
       doc(R"({"type":"missing","datum":{"datum_type":"bytes","start_time":null}})"),
       "[0].info[0]: timeseries 't:m': a bytes datum cannot be missing"},
      {"missing of an unknown type",
       doc(R"({"type":"missing","datum":{"datum_type":"missing","start_time":null}})"),
       "[0].info[0].measurement.datum.datum_type: unknown datum type 'missing'"},
      {"missing with a bad start_time",
       doc(R"({"type":"missing","datum":{"datum_type":"cumulative_f64","start_time":5}})"),
       "[0].info[0].measurement.datum.start_time: expected a string, got a number"},
      {"histogram without bins",
       doc(R"({"type":"histogram_u8","datum":{"start_time":"2026-01-01T00:00:00Z"}})"),
       "[0].info[0].measurement.datum: missing key 'bins'"},
      {"histogram with an empty bin list", doc(histogram("histogram_u8", "[]")),
       "[0].info[0].measurement.datum.bins: a histogram needs at least one bin"},
      {"histogram without n_samples",
       doc(R"({"type":"histogram_u8","datum":{"start_time":"2026-01-01T00:00:00Z",)"
           R"("bins":[{"range":{"type":"range_from","start":0},"count":1}]}})"),
       "[0].info[0].measurement.datum: missing key 'n_samples'"},
      {"non-contiguous bins",
       doc(histogram("histogram_i64",
                     contiguous_start + R"({"range":{"type":"range","start":2,"end":3},"count":1},
                                           {"range":{"type":"range_from","start":3},"count":1}])")),
       "[0].info[0].measurement.datum.bins[1].range: bins are not contiguous: this one starts at "
       "2 but the previous one ends at 1"},
      {"overlapping float bins",
       doc(histogram("histogram_f64",
                     R"([{"range":{"type":"range_to","end":0.5},"count":1},
                         {"range":{"type":"range_from","start":0.25},"count":1}])")),
       "bins[1].range: bins are not contiguous: this one starts at 0.25 but the previous one ends "
       "at 0.5"},
      {"last bin bounded",
       doc(histogram(
           "histogram_i64",
           contiguous_start + R"({"range":{"type":"range","start":1,"end":3},"count":1}])")),
       "[0].info[0].measurement.datum.bins: the last bin must be range_from (unbounded above)"},
      {"range_to after the first bin",
       doc(histogram("histogram_i64",
                     contiguous_start + R"({"range":{"type":"range_to","end":3},"count":1}])")),
       "bins[1].range: only the first bin may be range_to"},
      {"a bin after range_from",
       doc(histogram("histogram_i64",
                     R"([{"range":{"type":"range_from","start":1},"count":1},
                         {"range":{"type":"range_from","start":1},"count":1}])")),
       "bins[1]: a bin follows the range_from bin, which must be the last"},
      {"empty range",
       doc(histogram("histogram_i64",
                     R"([{"range":{"type":"range","start":5,"end":5},"count":1},
                         {"range":{"type":"range_from","start":5},"count":1}])")),
       "bins[0].range: empty range: start 5 is not below end 5"},
      {"NaN edge",
       doc(histogram("histogram_f32",
                     R"([{"range":{"type":"range_from","start":"NaN"},"count":1}])")),
       "bins[0].range: a bin edge is NaN"},
      {"unknown range type",
       doc(histogram("histogram_u8",
                     R"([{"range":{"type":"range_inclusive","start":1,"end":2},"count":1}])")),
       "bins[0].range: unknown range type 'range_inclusive'"},
      {"range end missing",
       doc(histogram("histogram_u8", R"([{"range":{"type":"range_to"},"count":1}])")),
       "bins[0].range: missing key 'end'"},
      {"range start missing",
       doc(histogram("histogram_u8", R"([{"range":{"type":"range_from"},"count":1}])")),
       "bins[0].range: missing key 'start'"},
      {"range type missing", doc(histogram("histogram_u8", R"([{"range":{"start":1},"count":1}])")),
       "bins[0].range: missing key 'type'"},
      {"bin count missing",
       doc(histogram("histogram_u8", R"([{"range":{"type":"range_from","start":1}}])")),
       "bins[0]: missing key 'count'"},
      {"bin edge out of range",
       doc(histogram("histogram_i8", R"([{"range":{"type":"range_from","start":128},"count":1}])")),
       "bins[0].range.start: 128 is out of range for i8"},
      {"histogram min out of range",
       doc(R"({"type":"histogram_u8","datum":{"start_time":"2026-01-01T00:00:00Z",)"
           R"("bins":[{"range":{"type":"range_from","start":0},"count":1}],)"
           R"("n_samples":1,"min":-1,"max":0,"sum_of_samples":0,"squared_mean":0}})"),
       "[0].info[0].measurement.datum.min: -1 is out of range for u8"},
      {"syntax error deep inside", doc(R"({"type":"bytes","datum":[1,,2]})"),
       "[0].info[0].measurement.datum[1]: invalid JSON"},
      {"missing colon", doc(R"({"type":"u8","datum" 1})"), "invalid JSON"},
  };
}

TEST_CASE("decode: malformed input is rejected with the path and the problem") {
  for (const BadCase& c : bad_cases()) {
    CAPTURE(c.what);
    CAPTURE(c.json);
    Result<std::vector<CollectItem>> r = decode_collect_response(c.json);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == "decode");
    CHECK_MESSAGE(r.error().find(c.error) != std::string::npos, r.error());
  }
}

TEST_CASE("decode: one bad sample rejects the whole response") {
  std::string json = encode({make_sample(int64_t{1}), make_sample(int64_t{2})});
  json.replace(json.rfind("\"i64\""), 5, "\"i65\"");
  Result<std::vector<CollectItem>> r = decode_collect_response(json);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == "[0].info[1].measurement.datum: unknown type 'i65'");
}

// ---------------------------------------------------------------------------------------------
// The memo: a producer's next response shares the timeseries of its last one

// Decodes `json` (one ok item) with `memo` and returns its samples.
std::vector<Sample> decode_with(CollectDecodeMemo& memo, const std::string& json) {
  Result<std::vector<CollectItem>> r = decode_collect_response(json, {}, &memo);
  REQUIRE_MESSAGE(r.ok(), r.error());
  REQUIRE(r->size() == 1);
  return (*r)[0].samples;
}

// Checks got[i] against want[i] value for value, and whether it shares the timeseries of
// last[i] (sharing[i]).
void check_decoded(const std::vector<Sample>& got, const std::vector<Sample>& want,
                   const std::vector<Sample>& last, const std::vector<bool>& sharing) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(same_sample(got[i], want[i]));
    CHECK(got[i].key() ==
          timeseries_key(want[i].target(), want[i].metric(), want[i].timeseries_version()));
    if (i < last.size()) CHECK((got[i].series == last[i].series) == sharing[i]);
  }
}

TEST_CASE("memo: the same series in the same places share the last response's timeseries") {
  CollectDecodeMemo memo;
  const std::vector<Sample> samples = {make_sample(int64_t{1}), make_sample(2.5)};
  const std::vector<Sample> first = decode_with(memo, encode(samples));
  check_decoded(first, samples, {}, {});
  CHECK(memo.last.size() == 2);
  // New values and timestamps, the same series.
  std::vector<Sample> later = samples;
  later[0].datum = int64_t{7};
  later[1].timestamp += std::chrono::seconds(10);
  const std::vector<Sample> second = decode_with(memo, encode(later));
  check_decoded(second, later, first, {true, true});
  // Without a memo nothing is shared.
  check_decoded(decode_samples(encode(later)), later, second, {false, false});
}

TEST_CASE("memo: a changed metric, target or version makes a timeseries of its own") {
  const Sample base = make_sample(int64_t{1});
  Sample metric = base;  // the same length: only the bytes differ
  test::change_series(metric, [](Timeseries& t) { t.metric.fields[1].value = uint16_t{201}; });
  Sample target = base;
  test::change_series(target, [](Timeseries& t) { t.target.fields[0].value = std::string("apj"); });
  Sample version = base;
  test::change_series(version, [](Timeseries& t) { t.version = 2; });
  const std::vector<Sample> samples = {base, base, base, base};
  CollectDecodeMemo memo;
  const std::vector<Sample> first = decode_with(memo, encode(samples));
  const std::vector<Sample> changed = {base, metric, target, version};
  const std::vector<Sample> second = decode_with(memo, encode(changed));
  check_decoded(second, changed, first, {true, false, false, false});
  // And back: the memo holds what the last response had.
  check_decoded(decode_with(memo, encode(samples)), samples, second, {true, false, false, false});
}

TEST_CASE("memo: series that moved are decoded anew, not mistaken for their neighbours") {
  std::vector<Sample> samples;
  for (int i = 0; i < 4; ++i) {
    Sample s = make_sample(int64_t{i});
    test::change_series(s, [&](Timeseries& t) { t.metric.name = "m" + std::to_string(i); });
    samples.push_back(s);
  }
  CollectDecodeMemo memo;
  const std::vector<Sample> first = decode_with(memo, encode(samples));
  // A series added in front shifts the others by one place.
  std::vector<Sample> shifted = samples;
  Sample added = make_sample(int64_t{9});
  test::change_series(added, [](Timeseries& t) { t.metric.name = "added"; });
  shifted.insert(shifted.begin(), added);
  const std::vector<Sample> second = decode_with(memo, encode(shifted));
  check_decoded(second, shifted, first, {false, false, false, false});
  // The next response, in the new order, shares them again.
  check_decoded(decode_with(memo, encode(shifted)), shifted, second,
                {true, true, true, true, true});
}

TEST_CASE("memo: a failed decode leaves nothing behind, the next one decodes afresh") {
  const std::vector<Sample> samples = {make_sample(int64_t{1}), make_sample(int64_t{2})};
  CollectDecodeMemo memo;
  const std::vector<Sample> first = decode_with(memo, encode(samples));
  std::string bad = encode(samples);
  bad.replace(bad.rfind("\"i64\""), 5, "\"i65\"");  // the second sample's datum
  Result<std::vector<CollectItem>> r = decode_collect_response(bad, {}, &memo);
  REQUIRE_FALSE(r.ok());
  CHECK(memo.last.empty());
  check_decoded(decode_with(memo, encode(samples)), samples, first, {false, false});
}

// A bad metric is reported where it is, memo or not.
TEST_CASE("memo: a metric that fails its checks is refused with its path") {
  Sample bad = make_sample(int64_t{1});
  test::change_series(bad, [](Timeseries& t) { t.metric.fields.push_back({"Bad", true}); });
  const std::string json = encode({make_sample(int64_t{1}), bad});
  CollectDecodeMemo memo;
  for (int i = 0; i < 2; ++i) {
    Result<std::vector<CollectItem>> r = decode_collect_response(json, {}, &memo);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() ==
          "[0].info[1]: field 'Bad' of metric 'request_latency': must match "
          "[a-z][a-z0-9]*(_[a-z0-9]+)*");
  }
  // A metric whose members lack their comma: the skip through the document does not see it,
  // the metric's own parse does.
  std::string no_comma = encode({make_sample(int64_t{1})});
  const std::size_t name = no_comma.find(R"("metric":{"name":"request_latency",)");
  REQUIRE(name != std::string::npos);
  no_comma.erase(name + std::string_view(R"("metric":{"name":"request_latency")").size(), 1);
  Result<std::vector<CollectItem>> r = decode_collect_response(no_comma, {}, &memo);
  REQUIRE_FALSE(r.ok());
  CHECK_MESSAGE(r.error().starts_with("[0].info[0].metric: invalid JSON"), r.error());
}

// The decoder copies a target whose text is the one it decoded last (decode_target).
TEST_CASE("decode: every sample gets its own target, repeated or not") {
  Sample a = make_sample(int64_t{1});
  Sample b = make_sample(int64_t{2});
  // The same length: only the bytes differ.
  test::change_series(b, [](Timeseries& t) { t.target.fields[0].value = std::string("apj"); });
  Sample c = make_sample(int64_t{3});
  test::change_series(c, [](Timeseries& t) {
    t.target.name = "other_service";
    t.target.fields.pop_back();
  });
  const std::vector<Sample> samples = {a, a, b, a, c, c, b};
  const std::vector<Sample> back = decode_samples(encode(samples));
  REQUIRE(back.size() == samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    CAPTURE(i);
    CHECK(same_sample(back[i], samples[i]));
  }
  // The same target written with other spacing is another text, decoded to the same target.
  std::string json = encode({a, a});
  const std::size_t second = json.rfind(R"("target":{"name")");
  REQUIRE(second != std::string::npos);
  json.insert(second + 10, " ");
  const std::vector<Sample> spaced = decode_samples(json);
  REQUIRE(spaced.size() == 2);
  CHECK(same_sample(spaced[1], a));
}

TEST_CASE("decode: a malformed target is refused after the same target decoded well") {
  const std::string json = encode({make_sample(int64_t{1}), make_sample(int64_t{2})});
  const std::size_t second = json.rfind(R"("target":{"name")");
  REQUIRE(second != std::string::npos);
  struct Case {
    std::string what, from, to, error;
  };
  const std::vector<Case> cases = {
      {"missing colon", R"("name":"http_service")", R"("name" "http_service")", "invalid JSON"},
      {"name not a string", R"("name":"http_service")", R"("name":5)",
       "[0].info[1].target.name: expected a string, got a number"},
      {"duplicate key", R"("name":"http_service")", R"("name":"http_service","name":"x")",
       "[0].info[1].target: duplicate key 'name'"},
      {"fields missing", R"("fields":)", R"("fieldz":)",
       "[0].info[1].target: missing key 'fields'"},
      {"field name and key differ", R"("name":{"name":"name")", R"("name":{"name":"nome")",
       "[0].info[1].target.fields.name: the key 'name' differs from the field's name 'nome'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    std::string bad = json;
    const std::size_t at = bad.find(c.from, second);
    REQUIRE(at != std::string::npos);
    bad.replace(at, c.from.size(), c.to);
    Result<std::vector<CollectItem>> r = decode_collect_response(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == "decode");
    CHECK_MESSAGE(r.error().find(c.error) != std::string::npos, r.error());
  }
}

TEST_CASE("decode: long values are cut short in messages") {
  const std::string long_type(10000, 'x');
  Result<std::vector<CollectItem>> r =
      decode_collect_response(doc(R"({"type":")" + long_type + R"(","datum":1})"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().size() < 200);
  CHECK(r.error().find("unknown type 'xxxx") != std::string::npos);
}

TEST_CASE("decode: every proper prefix of a valid response is rejected") {
  const std::string json(kDesignExample);
  REQUIRE(decode_collect_response(json).ok());
  std::size_t accepted = 0;
  for (std::size_t n = 0; n < json.size(); ++n) {
    // The only valid prefix ends at the closing bracket (trailing whitespace is not cut).
    if (decode_collect_response(std::string_view(json).substr(0, n)).ok()) ++accepted;
  }
  CHECK(accepted == 0);
}

// Corrupting any byte must give a clean result or a clean error, never a crash (this runs
// under the sanitizers in the sanitizer build).
TEST_CASE("decode: single-byte corruptions never crash") {
  const std::string json(kDesignExample);
  std::size_t errors = 0;
  for (std::size_t i = 0; i < json.size(); ++i) {
    for (char c : {'"', '}', ']', ',', '0', 'x', '\\', '\0', '\xC3'}) {
      std::string bad = json;
      bad[i] = c;
      Result<std::vector<CollectItem>> r = decode_collect_response(bad);
      if (!r.ok()) {
        ++errors;
        REQUIRE(!r.error().empty());
        REQUIRE((r.status().code() == "decode"));
      }
    }
  }
  CHECK(errors > json.size());
}

// The per-thread buffers are kept after large responses and dropped after several small ones
// in a row: every response decodes the same across those transitions.
TEST_CASE("decode: large and small responses alternate on one thread") {
  Bytes big(5 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 13);
  const std::string big_json = encode({make_sample(big)});
  const std::string small_json = encode({make_sample(uint8_t{9})});
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    CHECK(std::get<Bytes>(decode_samples(big_json)[0].datum) == big);
    for (int i = 0; i < 12; ++i) {
      CHECK(decode_samples(small_json)[0].datum == Datum(uint8_t{9}));
    }
  }
  CHECK(std::get<Bytes>(decode_samples(big_json)[0].datum) == big);
}

}  // namespace
}  // namespace tally

// A body tools/fuzz found (tests/fixtures/fuzz/collect_json/<name>) is refused as a decode
// error, not accepted and not a crash.
void check_fixture_refused(const std::string& name) {
  auto r = tally::decode_collect_response(tally::test::read_fixture("fuzz/collect_json/" + name));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == "decode");
}

// Found by tools/fuzz (collect_json): a stray byte after a bin edge made On Demand's later key
// lookup corrupt memory (double free in the Release build); now refused by validation.
TEST_CASE("a malformed histogram range found by the fuzzer is refused cleanly") {
  check_fixture_refused("nul_after_number");
  // The same with a printable stray token, the form the fuzzer reported first.
  auto r2 = tally::decode_collect_response(std::string(
      R"([{"status":"ok","info":[{"measurement":{"timestamp":"2026-11-22T10:00:00Z","datum":)"
      R"({"type":"histogram_i16","datum":{"start_time":"2026-11-22T09:00:00Z","bins":[{"range":)"
      R"({"type":"range_to","end":0 x}}]}}}}]}])"));
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.status().code() == "decode");
}

// Found by tools/fuzz (collect_json): an item whose "info" array was followed by garbage instead
// of the item's closing brace (`…]y]`) was accepted, since the item was read by lookups and On
// Demand does not check what it skips; with a sample limit the same bytes gave another error.
TEST_CASE("an item not closed after its info is refused, with or without a sample limit") {
  check_fixture_refused("item_not_closed");
  const std::string body = tally::test::read_fixture("fuzz/collect_json/item_not_closed");
  auto limited = tally::decode_collect_response(body, {.max_samples = 0});
  REQUIRE_FALSE(limited.ok());
  // The same item closed properly decodes, "info" first or last.
  const std::string sample =
      body.substr(body.find("{\"timeseries_name\""),
                  body.find("}}}]y]") + 3 - body.find("{\"timeseries_name\""));
  auto ok = tally::decode_collect_response("[{\"status\":\"ok\",\"info\":[" + sample + "]}]");
  REQUIRE_MESSAGE(ok.ok(), ok.error());
  CHECK((*ok)[0].samples.size() == 1);
  auto info_first =
      tally::decode_collect_response("[{\"info\":[" + sample + "],\"status\":\"ok\"}]");
  REQUIRE_MESSAGE(info_first.ok(), info_first.error());
  CHECK((*info_first)[0].samples.size() == 1);
  auto twice = tally::decode_collect_response("[{\"status\":\"ok\",\"info\":[],\"info\":[]}]");
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error() == "[0]: duplicate key 'info'");
}

// Found by tools/fuzz (collect_json): bins not closed (`"count":23[{…`), after which the
// histogram's lookup of "n_samples" tripped simdjson's own assertion in the fuzz build (memory
// corruption in Release, as for nul_after_number). The histogram object is now walked.
TEST_CASE("a histogram whose bins are not closed is refused cleanly") {
  check_fixture_refused("bins_not_closed");
}

// Found by tools/fuzz (collect_json): a range whose tail was a malformed container; the walk of
// the range skipped it without noticing, and the bin's "count" lookup after it tripped
// simdjson's assertion. The bin object is now walked too.
TEST_CASE("a bin whose range ends in malformed containers is refused cleanly") {
  check_fixture_refused("range_not_closed");
}

// Found by tools/fuzz (collect_json) when the samples were no longer counted before being read:
// a field value and the metric object left unclosed (`"value":-9228:}`, `"fields":{}|,`) are
// passed over by the lookups, and only the count's walk of the array noticed the structure
// ending in the wrong place. Without it the response decoded. The count stays.
TEST_CASE("a sample whose objects are left unclosed inside is refused, with or without a limit") {
  check_fixture_refused("sample_not_closed");
  const std::string body = tally::test::read_fixture("fuzz/collect_json/sample_not_closed");
  auto limited = tally::decode_collect_response(body, {.max_samples = 0});
  REQUIRE_FALSE(limited.ok());
  CHECK(limited.status().code() == "decode");
}

// Found by tools/fuzz (collect_json) once the harness decoded a body after another document: an
// err item whose info had garbage after its content (`"content":[::1]:80 {"range": …`) decoded
// on a fresh parser and failed after a longer document, since On Demand skipping the garbage
// read the padding, which held what that document had left. The info object is now walked, and
// the padding is zeroed for every document.
TEST_CASE("an err item's info not closed after its content is refused, whatever came before") {
  const std::string body = tally::test::read_fixture("fuzz/collect_json/error_info_not_closed");
  const std::string longer = "[" + std::string(4096, ' ') + "]";
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    REQUIRE(tally::decode_collect_response(longer).ok());
    check_fixture_refused("error_info_not_closed");
  }
  // The same error with its info closed decodes, content and all.
  auto ok = tally::decode_collect_response(
      R"([{"status":"err","info":{"content":[1,{"a":2}],"type":"MissingDatum"}}])");
  REQUIRE_MESSAGE(ok.ok(), ok.error());
  REQUIRE((*ok)[0].error);
  CHECK((*ok)[0].error->type == "MissingDatum");
  CHECK((*ok)[0].error->content == R"([1,{"a":2}])");
  auto no_type = tally::decode_collect_response(R"([{"status":"err","info":{"content":"x"}}])");
  REQUIRE_FALSE(no_type.ok());
  CHECK(no_type.error() == "[0].info: missing key 'type'");
}

// Found by tools/fuzz (collect_json) in the canonical scanner: a body cut right after a
// backslash inside a string of a target (`"caf\`) made the scan for the object's end step over
// the end of the text (a heap overflow under ASan). Read from an exact-size buffer, so that a
// read past the end is one the sanitizers see.
TEST_CASE("a body cut inside an escape in a target is refused in bounds") {
  const std::string body = tally::test::read_fixture("fuzz/collect_json/escape_cut_in_target");
  REQUIRE(body.back() == '\\');
  const auto exact = std::make_unique<char[]>(body.size());
  std::memcpy(exact.get(), body.data(), body.size());
  auto r = tally::decode_collect_response(std::string_view(exact.get(), body.size()));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == "decode");
}
