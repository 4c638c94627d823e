// GET /metrics: Tally samples as Prometheus text 0.0.4, against a table of expected lines.
#include "prometheus_encode.h"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <regex>
#include <sstream>

#include "producer_fakes.h"
#include "tally/producer/metric_set.h"

namespace tally {
namespace {

const Timestamp kStart = Timestamp{} + std::chrono::seconds(1'700'000'000);
const Timestamp kNow = kStart + std::chrono::seconds(60);

Sample sample(std::string target, Fields target_fields, std::string metric, Fields metric_fields,
              Datum datum) {
  return Sample{make_timeseries(Target{std::move(target), std::move(target_fields)},
                                Metric{std::move(metric), std::move(metric_fields)}),
                kNow, std::move(datum)};
}

Sample api(std::string metric, Fields fields, Datum datum) {
  return sample("http_service", {{"name", std::string("api")}}, std::move(metric),
                std::move(fields), std::move(datum));
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_CASE("each datum kind maps to its Prometheus form") {
  Histogram<double> latency{kStart, {{std::nullopt, 1}, {0.1, 2}, {1.0, 3}}, 6, 0.05, 4.0, 7.5, 2};
  std::vector<CollectItem> items(2);
  items[0].samples = {
      api("request_count", {{"route", std::string("/v1/items")}, {"status_code", uint16_t{200}}},
          Cumulative<uint64_t>{kStart, 42}),
      api("temperature", {}, std::nan("")),
      api("request_count", {{"route", std::string("/v1/items")}, {"status_code", uint16_t{500}}},
          Cumulative<uint64_t>{kStart, 3}),
      api("leader", {}, true),
      api("build_info", {}, std::string("1.0 \"rc\"\\n")),
      api("latency", {}, latency),
      api("errors_total", {}, Cumulative<double>{kStart, 0.5}),
      api("queue_depth", {}, uint64_t{18446744073709551615u}),
      api("offset", {}, int64_t{-7}),
      api("raw", {}, Bytes{1, 2}),
      api("not_yet", {}, Missing{DatumType::kF64, std::nullopt}),
  };
  items[1].error = ProducerError{"datum_error", "disk\nstats unavailable"};

  const std::vector<std::string> expected = {
      "# producer error: datum_error: disk stats unavailable",
      "# HELP http_service_request_count_total Tally timeseries http_service:request_count "
      "(cumulative_u64)",
      "# TYPE http_service_request_count_total counter",
      R"(http_service_request_count_total{name="api",route="/v1/items",status_code="200"} 42)",
      R"(http_service_request_count_total{name="api",route="/v1/items",status_code="500"} 3)",
      "# HELP http_service_temperature Tally timeseries http_service:temperature (f64)",
      "# TYPE http_service_temperature gauge",
      R"(http_service_temperature{name="api"} NaN)",
      "# HELP http_service_leader Tally timeseries http_service:leader (bool)",
      "# TYPE http_service_leader gauge",
      R"(http_service_leader{name="api"} 1)",
      "# HELP http_service_build_info Tally timeseries http_service:build_info (string)",
      "# TYPE http_service_build_info gauge",
      R"(http_service_build_info{name="api",value="1.0 \"rc\"\\n"} 1)",
      "# HELP http_service_latency Tally timeseries http_service:latency (histogram_f64)",
      "# TYPE http_service_latency histogram",
      R"(http_service_latency_bucket{name="api",le="0.1"} 1)",
      R"(http_service_latency_bucket{name="api",le="1"} 3)",
      R"(http_service_latency_bucket{name="api",le="+Inf"} 6)",
      R"(http_service_latency_sum{name="api"} 7.5)",
      R"(http_service_latency_count{name="api"} 6)",
      "# HELP http_service_errors_total Tally timeseries http_service:errors_total "
      "(cumulative_f64)",
      "# TYPE http_service_errors_total counter",
      R"(http_service_errors_total{name="api"} 0.5)",
      "# HELP http_service_queue_depth Tally timeseries http_service:queue_depth (u64)",
      "# TYPE http_service_queue_depth gauge",
      R"(http_service_queue_depth{name="api"} 18446744073709551615)",
      "# HELP http_service_offset Tally timeseries http_service:offset (i64)",
      "# TYPE http_service_offset gauge",
      R"(http_service_offset{name="api"} -7)",
  };
  const std::vector<std::string> got = lines_of(encode_prometheus(items));
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == expected[i]);
  }
}

TEST_CASE("field values of every type are label values, target fields come first") {
  std::vector<CollectItem> items(1);
  items[0].samples = {sample(
      "node",
      {{"id", *Uuid::parse("6F1F3C1E-0C0E-4C5A-9F0E-3A2B1C0D9E8F")}, {"ip", *IpAddr::parse("::1")}},
      "up", {{"ok", true}, {"port", uint16_t{443}}, {"delta", int8_t{-1}}}, 1.0)};
  const std::vector<std::string> got = lines_of(encode_prometheus(items));
  REQUIRE(got.size() == 3);
  CHECK(got[2] == R"(node_up{id="6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f",ip="::1",)"
                  R"(ok="true",port="443",delta="-1"} 1)");
}

TEST_CASE("samples that cannot be expressed are left out with a comment") {
  Histogram<int64_t> h{kStart, {{std::nullopt, 1}, {10, 0}}, 1, 3, 3, 3, 0};
  std::vector<CollectItem> items(1);
  items[0].samples = {
      sample("a", {}, "b_c", {}, 1.0),
      sample("a_b", {}, "c", {}, h),  // same family name a_b_c, but a histogram
      sample("s", {{"value", std::string("x")}}, "m", {}, std::string("y")),
      sample("h", {{"le", std::string("x")}}, "m", {}, h),
  };
  const std::string text = encode_prometheus(items);
  CHECK(text.find("# skipped a_b:c: family a_b_c is already a gauge\n") != std::string::npos);
  CHECK(text.find("# skipped s:m: a field is already called 'value'\n") != std::string::npos);
  CHECK(text.find("# skipped h:m: a field is called 'le'\n") != std::string::npos);
  CHECK(text.find("a_b_c 1\n") != std::string::npos);
  CHECK(text.find("a_b_c_bucket") == std::string::npos);
}

TEST_CASE("the output of every helper follows the text format grammar") {
  MetricSet set(Target{"svc", {{"name", std::string("we\"ird\\na\nme")}}});
  set.counter("requests", {{"code", uint16_t{200}}}).add(5);
  set.counter_f64("cpu_seconds").add(0.25);
  set.gauge("ratio").set(-std::numeric_limits<double>::infinity());
  set.gauge_i64("in_flight").set(3);
  set.gauge_bool("leader");
  set.string_gauge("build_info").set("v1");
  set.histogram("latency", {}, exponential_edges(1e-3, 10, 4)).record(0.02);
  set.histogram_u64("size", {}, {100, 1000}).record(500);
  std::vector<CollectItem> items(1);
  REQUIRE(set.produce(items[0].samples).ok());

  // Metric name, optional {label="escaped value",…}, one space, a float or integer.
  const std::regex sample_line(
      R"re([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")re"
      R"re((,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? )re"
      R"re((NaN|[+-]Inf|-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?))re");
  const std::regex type_line(R"(# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram))");
  const std::regex help_line(R"(# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*)");
  const std::string text = encode_prometheus(items);
  CHECK(text.ends_with('\n'));
  int samples = 0;
  for (const std::string& line : lines_of(text)) {
    CAPTURE(line);
    if (line.starts_with("# TYPE")) {
      CHECK(std::regex_match(line, type_line));
    } else if (line.starts_with("# HELP")) {
      CHECK(std::regex_match(line, help_line));
    } else {
      CHECK(std::regex_match(line, sample_line));
      ++samples;
    }
  }
  // 1 + 1 + 1 + 1 + 1 + 1 samples, then 5 buckets + sum + count and 3 buckets + sum + count.
  CHECK(samples == 6 + 7 + 5);
}

// ProducerRegistry::collect_prometheus() renders MetricSets from series kept between
// collections; it must write what the generic encoder writes for the same samples.
TEST_CASE("collect_prometheus() writes what encode_prometheus(collect()) writes, every time") {
  auto registry = std::make_shared<ProducerRegistry>();
  auto api = std::make_shared<MetricSet>(
      Target{"http_service", {{"name", std::string("api")}, {"id", Uuid::random()}}});
  auto other = std::make_shared<MetricSet>(Target{"disk", {{"device", std::string("nv\"me0")}}});
  registry->add(api);
  registry->add(std::make_shared<test::FixedProducer>(std::vector<Sample>{
      sample("http_service", {}, "request_count", {{"route", std::string("/x")}},
             Cumulative<uint64_t>{kStart, 1}),  // joins api's family
      sample("a_b", {}, "c", {},
             Histogram<int64_t>{// collides with other's a:b_c gauge
                                kStart,
                                {{std::nullopt, 1}, {10, 0}},
                                1,
                                3,
                                3,
                                3,
                                0}),
      sample("x", {}, "raw", {}, Bytes{1, 2}),
  }));
  registry->add(std::make_shared<test::FailingProducer>("disk\nstats unavailable"));
  registry->add(other);

  for (int route = 0; route < 3; ++route) {
    for (uint16_t status : {200, 500}) {
      const Fields fields{{"route", "/v1/" + std::to_string(route)}, {"status_code", status}};
      api->counter("request_count", fields).add(route + status);
      api->histogram("latency", fields, exponential_edges(1e-3, 2, 5)).record(0.001 * route);
    }
  }
  api->histogram_i64("size", {}, {-10, 0, 1000}).record(-3);
  api->histogram_u64("queue", {}, {1, 2}).record(7);
  api->histogram("load", {}, {0.5, 2.0}).record(1.0);  // other edges than "latency"
  api->string_gauge("build_info").set("1.0 \"rc\"");
  api->string_gauge("info", {{"value", std::string("x")}}).set("y");
  api->gauge("ratio", {{"le", std::string("x")}}).set(0.5);
  api->histogram("skipped", {{"le", std::string("x")}}, {1.0}).record(2);
  api->gauge_bool("leader").set(true);
  api->counter_f64("cpu_seconds_total").add(0.25);
  other->gauge("b_c").set(-0.0);
  other->gauge_u64("free_bytes").set(18446744073709551615u);

  CHECK(registry->collect_prometheus() == encode_prometheus(registry->collect()));
  // Values change, series are added to both MetricSets, then a third collection as is.
  api->counter("request_count", {{"route", std::string("/v1/0")}, {"status_code", uint16_t{200}}})
      .add(1);
  api->counter("request_count", {{"route", std::string("/new")}, {"status_code", uint16_t{404}}})
      .add(2);
  other->gauge_i64("queue_depth").set(-7);
  const std::string second = registry->collect_prometheus();
  CHECK(second == encode_prometheus(registry->collect()));
  CHECK(second.find("route=\"/new\"") != std::string::npos);
  CHECK(registry->collect_prometheus() == second);
}

}  // namespace
}  // namespace tally
