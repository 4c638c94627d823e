// The encode side of the collect response (common/src/collect_json_encode.cpp): the timestamp
// cache, SampleJsonTemplate against the generic encoder, and a large mixed body read back by
// decode_collect_response value for value.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "support/every_datum.h"
#include "tally/common/collect_json.h"

namespace tally {
namespace {

using test::every_datum;
using test::histogram;
using test::metric_of;
using test::target_of;
using test::ts;

std::string sample_json(const Sample& s) {
  std::string out;
  append_sample_json(out, s);
  return out;
}

TEST_CASE("timestamp_json is the RFC 3339 text in quotes across seconds, days and 1970") {
  std::vector<Timestamp> times;
  for (const char* text :
       {"2026-11-22T10:00:00Z", "2026-11-22T10:00:00.999999Z", "2026-11-22T10:00:01.000001Z",
        "2026-11-22T23:59:59.5Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z",
        "1900-02-28T12:34:56.000100Z", "9999-12-31T23:59:59.999999Z"}) {
    times.push_back(ts(text));
  }
  // Back and forth, so the per-thread second cache is hit and missed in every order.
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < times.size(); ++i) {
      const Timestamp t = times[(i * 5 + round) % times.size()];
      CHECK(timestamp_json(t) == "\"" + format_rfc3339(t) + "\"");
      CHECK(timestamp_json(t + std::chrono::microseconds(1)) ==
            "\"" + format_rfc3339(t + std::chrono::microseconds(1)) + "\"");
    }
  }
}

TEST_CASE("a SampleJsonTemplate writes what append_sample_json writes, for every datum") {
  const Timestamp at = ts("2026-11-22T10:00:00.123456Z");
  const auto target = std::make_shared<TargetJson>(target_of(1));
  const std::vector<Datum> shapes = every_datum(1);
  const std::vector<Datum> same_shape = every_datum(8);  // other values, same start and edges
  const std::vector<Datum> other_start = every_datum(2);
  for (std::size_t k = 0; k < shapes.size(); ++k) {
    CAPTURE(k);
    const Metric metric = metric_of(1, k);
    const SampleJsonTemplate t(target, metric, 3, shapes[k]);
    const auto check = [&](const Datum& d) {
      std::string got = "prefix,";
      t.append(got, timestamp_json(at), d);
      CHECK(got ==
            "prefix," + sample_json(Sample{make_timeseries(target_of(1), metric, 3), at, d}));
    };
    check(shapes[k]);
    check(same_shape[k]);
    check(other_start[k]);                           // another start time
    for (const Datum& other : shapes) check(other);  // another type
  }
}

TEST_CASE("a SampleJsonTemplate given other bin edges renders them, also -0 against 0") {
  const Timestamp at = ts("2026-11-22T10:00:00Z");
  const auto target = std::make_shared<TargetJson>(target_of(1));
  const Metric metric{"latency", {}};
  const Histogram<double> zero = histogram<double>(at, {std::nullopt, 0.0, 1.0}, 1);
  const Histogram<double> negative_zero = histogram<double>(at, {std::nullopt, -0.0, 1.0}, 1);
  const Histogram<double> longer = histogram<double>(at, {std::nullopt, 0.0, 1.0, 2.0}, 1);
  const SampleJsonTemplate first(target, metric, 1, zero);
  // Shares first's rendered bins only where the edges are the same.
  const SampleJsonTemplate shared(target, metric, 1, zero, &first);
  const SampleJsonTemplate unshared(target, metric, 1, longer, &first);
  for (const SampleJsonTemplate* t : {&first, &shared, &unshared}) {
    for (const Histogram<double>& h : {zero, negative_zero, longer}) {
      std::string got;
      t->append(got, timestamp_json(at), h);
      CHECK(got == sample_json(Sample{make_timeseries(target_of(1), metric), at, h}));
    }
  }
  std::string text;
  first.append(text, timestamp_json(at), negative_zero);
  CHECK(text.find(R"("start":-0,)") != std::string::npos);
}

TEST_CASE("a histogram's numbers are written as std::to_chars writes them, -0 and 1e+21 too") {
  const Timestamp at = ts("2026-11-22T10:00:00Z");
  Histogram<double> h;
  h.start_time = at;
  h.bins = {{std::nullopt, 0}, {-0.0, 7}, {0.5, 12'345'678'901'234'567'890u}, {1e21, 3}};
  h.n_samples = 12;
  h.min = 1e-7;
  h.max = 100000;
  h.sum_of_samples = 0.1 + 0.2;
  h.squared_mean = std::numeric_limits<double>::quiet_NaN();
  const std::string want =
      R"("datum":{"type":"histogram_f64","datum":{"start_time":"2026-11-22T10:00:00.000000Z",)"
      R"("bins":[{"range":{"type":"range_to","end":-0},"count":0},)"
      R"({"range":{"type":"range","start":-0,"end":0.5},"count":7},)"
      R"({"range":{"type":"range","start":0.5,"end":1e+21},"count":12345678901234567890},)"
      R"({"range":{"type":"range_from","start":1e+21},"count":3}],"n_samples":12,"min":1e-07,)"
      R"("max":1e+05,"sum_of_samples":0.30000000000000004,"squared_mean":"NaN"}}}})";
  const Sample s{make_timeseries(target_of(1), Metric{"latency", {}}), at, h};
  const std::string json = sample_json(s);
  CHECK(json.substr(json.find("\"datum\":{")) == want);
  const SampleJsonTemplate t(std::make_shared<TargetJson>(target_of(1)), s.metric(), 1, h);
  std::string from_template;
  t.append(from_template, timestamp_json(at), h);
  CHECK(from_template == json);
}

TEST_CASE("a histogram larger than the encoder's stack buffer is written whole by both paths") {
  const Timestamp at = ts("2026-11-22T10:00:00Z");
  for (std::size_t edges : {100, 300, 1024}) {
    CAPTURE(edges);
    Histogram<double> h;
    h.start_time = at;
    h.bins.push_back({std::nullopt, 1});
    for (std::size_t i = 0; i < edges; ++i) {
      h.bins.push_back({-1.0 / 3 + static_cast<double>(i) * 0.7, i * 1'000'003});
    }
    for (const auto& bin : h.bins) h.n_samples += bin.count;
    h.min = -1.0 / 3;
    h.max = 1e21;
    h.sum_of_samples = 0.1;
    h.squared_mean = 2.5e-300;
    const Sample s{make_timeseries(target_of(1), Metric{"latency", {}}), at, h};
    const std::string json = sample_json(s);
    const SampleJsonTemplate t(std::make_shared<TargetJson>(target_of(1)), s.metric(), 1, h);
    std::string from_template;
    t.append(from_template, timestamp_json(at), h);
    CHECK(from_template == json);
    Result<std::vector<CollectItem>> back =
        decode_collect_response(std::string("[") + std::string(kOkItemJsonOpen) + json +
                                std::string(kOkItemJsonClose) + "]");
    REQUIRE_MESSAGE(back.ok(), back.error());
    REQUIRE(back->size() == 1);
    REQUIRE((*back)[0].samples.size() == 1);
    CHECK(same_sample((*back)[0].samples[0], s));
  }
}

TEST_CASE("a large mixed body round-trips through encode and decode value for value") {
  std::vector<CollectItem> items(3);
  std::mt19937_64 rng(7);
  for (uint64_t i = 0; i < 400; ++i) {
    const uint64_t seed = rng() % 1000;
    const std::vector<Datum> datums = every_datum(seed);
    for (std::size_t k = 0; k < datums.size(); ++k) {
      CollectItem& item = items[k % 2 == 0 ? 0 : 2];
      item.samples.push_back(Sample{
          make_timeseries(target_of(seed), metric_of(seed, k), static_cast<uint32_t>(1 + i % 3)),
          ts("2026-11-22T10:00:00Z") + std::chrono::microseconds(rng() % 3'600'000'000),
          datums[k]});
    }
  }
  items[1].error = ProducerError{"datum_error", "disk \"sda\" gone"};
  for (const CollectItem& item : items) {
    for (const Sample& s : item.samples) REQUIRE_MESSAGE(validate_sample(s).ok(), sample_json(s));
  }

  const std::string json = encode_collect_response(items);
  Result<std::vector<CollectItem>> back = decode_collect_response(json);
  REQUIRE_MESSAGE(back.ok(), back.error());
  REQUIRE(back->size() == items.size());
  std::size_t compared = 0;
  std::size_t different = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    CHECK((*back)[i].error == items[i].error);
    REQUIRE((*back)[i].samples.size() == items[i].samples.size());
    for (std::size_t j = 0; j < items[i].samples.size(); ++j, ++compared) {
      if (!same_sample((*back)[i].samples[j], items[i].samples[j])) {
        ++different;
        CHECK(sample_json((*back)[i].samples[j]) == sample_json(items[i].samples[j]));
      }
    }
  }
  CHECK(compared == 400 * every_datum(0).size());
  CHECK(different == 0);
  CHECK(encode_collect_response(*back) == json);
}

}  // namespace
}  // namespace tally
