// MetricSet: samples of every helper, their JSON round trip, and the rules checked at creation.
#include "tally/producer/metric_set.h"

#include <doctest/doctest.h>

#include <functional>
#include <stdexcept>
#include <string>

#include "tally/common/collect_json.h"

namespace tally {
namespace {

Target service_target() {
  return Target{"http_service",
                {{"name", std::string("api")},
                 {"instance_id", *Uuid::parse("6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f")}}};
}

std::vector<Sample> produce(MetricSet& set) {
  std::vector<Sample> samples;
  REQUIRE(set.produce(samples).ok());
  return samples;
}

TEST_CASE("every helper's sample: target, metric fields, datum type, one timestamp") {
  MetricSet set(service_target());
  const Fields route{{"route", std::string("/v1/items")}, {"status_code", uint16_t{200}}};
  set.counter("request_count", route).add(3);
  set.counter_i64("balance_changes").add(2);
  set.counter_f64("cpu_seconds").add(1.25);
  set.gauge("temperature").set(21.5);
  set.gauge_i64("requests_in_flight").set(-1);
  set.gauge_u64("queue_depth").set(9);
  set.gauge_bool("leader").set(true);
  set.string_gauge("build_info").set("1.0.0");
  set.histogram("request_latency", {{"route", std::string("/v1/items")}}, {0.01, 0.1}).record(0.05);
  set.histogram_i64("offset", {}, {-1, 1}).record(0);
  set.histogram_u64("response_size", {}, {1024}).record(4096);

  const std::vector<Sample> samples = produce(set);
  REQUIRE(samples.size() == 11);
  const DatumType types[] = {
      DatumType::kCumulativeU64, DatumType::kCumulativeI64, DatumType::kCumulativeF64,
      DatumType::kF64,           DatumType::kI64,           DatumType::kU64,
      DatumType::kBool,          DatumType::kString,        DatumType::kHistogramF64,
      DatumType::kHistogramI64,  DatumType::kHistogramU64};
  for (std::size_t i = 0; i < samples.size(); ++i) {
    CAPTURE(i);
    CHECK(samples[i].target() == service_target());
    CHECK(samples[i].timeseries_version() == 1);
    CHECK(samples[i].timestamp == samples[0].timestamp);
    CHECK(datum_type(samples[i].datum) == types[i]);
    CHECK(validate_sample(samples[i]).ok());
  }
  CHECK(samples[0].metric() == Metric{"request_count", route});
  CHECK(std::get<Cumulative<uint64_t>>(samples[0].datum).value == 3);
  CHECK(std::get<double>(samples[3].datum) == 21.5);
  CHECK(std::get<std::string>(samples[7].datum) == "1.0.0");
  CHECK(std::get<Histogram<uint64_t>>(samples[10].datum).bins[1].count == 1);
}

TEST_CASE("every helper's sample survives the §3.1 JSON encode and decode") {
  MetricSet set(service_target());
  set.counter("request_count", {{"status_code", uint16_t{500}}}).add(7);
  set.counter_f64("cpu_seconds").add(0.125);
  set.gauge("ratio").set(std::nan(""));
  set.gauge_i64("requests_in_flight").set(4);
  set.gauge_bool("leader").set(false);
  set.string_gauge("build_info").set("tally \"example\" 0.1.0\n");
  auto& latency = set.histogram("request_latency", {}, exponential_edges(0.001, 2, 8));
  for (double v : {0.0005, 0.003, 0.2, 0.2}) latency.record(v);

  std::vector<CollectItem> items(1);
  items[0].samples = produce(set);
  const std::string json = encode_collect_response(items);
  auto decoded = decode_collect_response(json);
  REQUIRE_MESSAGE(decoded.ok(), decoded.error());
  REQUIRE(decoded->size() == 1);
  const auto& back = (*decoded)[0].samples;
  REQUIRE(back.size() == items[0].samples.size());
  for (std::size_t i = 0; i < back.size(); ++i) {
    CAPTURE(json);
    CHECK(same_sample(back[i], items[0].samples[i]));
  }
}

TEST_CASE("the same name and field values give the same metric") {
  MetricSet set(service_target());
  Counter& a = set.counter("request_count", {{"route", std::string("/a")}});
  Counter& again = set.counter("request_count", {{"route", std::string("/a")}});
  Counter& b = set.counter("request_count", {{"route", std::string("/b")}});
  CHECK(&a == &again);
  CHECK(&a != &b);
  a.add();
  again.add();
  CHECK(a.value() == 2);
  CHECK(produce(set).size() == 2);
}

TEST_CASE("names and fields are checked when a metric is created") {
  MetricSet set(service_target());
  set.counter("request_count", {{"route", std::string("/a")}});
  set.histogram("latency", {}, {1.0, 2.0});

  struct Case {
    const char* what;
    std::function<void()> create;
    std::string message;
  };
  const Case cases[] = {
      {"bad metric name", [&] { set.counter("Request-Count"); },
       "metric 'Request-Count': must match [a-z][a-z0-9]*(_[a-z0-9]+)*"},
      {"bad field name",
       [&] {
         set.gauge("depth", {{"Queue", std::string("x")}});
       },
       "field 'Queue' of metric 'depth': must match [a-z][a-z0-9]*(_[a-z0-9]+)*"},
      {"field named like a target field",
       [&] {
         set.gauge("depth", {{"name", std::string("x")}});
       },
       "field 'name' of metric 'depth': duplicate field name (names are unique across target and "
       "metric)"},
      {"timeseries name too long", [&] { set.gauge(std::string(120, 'a')); },
       "timeseries name 'http_service:" + std::string(120, 'a') + "': longer than 128 characters"},
      {"same name, other datum type",
       [&] {
         set.gauge("request_count", {{"route", std::string("/a")}});
       },
       "metric 'request_count' of target 'http_service' exists as cumulative_u64 with fields "
       "(route string); asked for f64 with fields (route string)"},
      {"same name, other fields",
       [&] {
         set.counter("request_count", {{"status_code", uint16_t{1}}});
       },
       "metric 'request_count' of target 'http_service' exists as cumulative_u64 with fields "
       "(route string); asked for cumulative_u64 with fields (status_code u16)"},
      {"same name, other field type",
       [&] {
         set.counter("request_count", {{"route", int64_t{1}}});
       },
       "metric 'request_count' of target 'http_service' exists as cumulative_u64 with fields "
       "(route string); asked for cumulative_u64 with fields (route i64)"},
      {"same histogram, other edges",
       [&] {
         set.histogram("latency", {}, {1.0, 3.0});
       },
       "metric 'latency' of target 'http_service' exists with other histogram edges"},
      {"histogram with bad edges", [&] { set.histogram("size", {}, {}); },
       "histogram edges: at least one edge is needed"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    CHECK_THROWS_WITH_AS(c.create(), c.message.c_str(), std::invalid_argument);
  }
  CHECK(produce(set).size() == 2);  // nothing half-created
}

TEST_CASE("a bad target is refused when the MetricSet is made") {
  CHECK_THROWS_WITH_AS(MetricSet(Target{"HTTP", {}}),
                       "target 'HTTP': must match [a-z][a-z0-9]*(_[a-z0-9]+)*",
                       std::invalid_argument);
  CHECK_THROWS_AS(MetricSet(Target{"svc", {{"a", std::string()}, {"a", std::string()}}}),
                  std::invalid_argument);
}

}  // namespace
}  // namespace tally
