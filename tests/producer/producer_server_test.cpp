// The embedded server over real HTTP on port 0.
#include <doctest/doctest.h>

#include "producer_fakes.h"
#include "tally/common/collect_json.h"
#include "tally/common/http_client.h"
#include "tally/producer/metric_set.h"
#include "tally/producer/server.h"

namespace tally {
namespace {

const Timestamp kStart = Timestamp{} + std::chrono::seconds(1'700'000'000);

// Samples fixed to the microsecond, so what the decoder reads back can be compared exactly.
std::vector<Sample> fixed_samples() {
  const Target target{"disk", {{"device", std::string("nvme0")}}};
  const Timestamp at = kStart + std::chrono::microseconds(123'456);
  return {
      Sample{make_timeseries(target, Metric{"reads", {}}), at, Cumulative<uint64_t>{kStart, 1234}},
      Sample{make_timeseries(target, Metric{"busy_ratio", {}}), at, 0.25},
      Sample{
          make_timeseries(target, Metric{"latency", {{"op", std::string("read")}}}, 2), at,
          Histogram<double>{kStart, {{std::nullopt, 1}, {0.001, 4}}, 5, 0.0001, 0.004, 0.01, 1e-5}},
  };
}

struct Fixture {
  Fixture() {
    metrics = std::make_shared<MetricSet>(Target{"http_service", {{"name", std::string("api")}}});
    metrics->counter("request_count", {{"status_code", uint16_t{200}}}).add(3);
    registry->add(std::make_shared<test::FixedProducer>(fixed_samples()));
    registry->add(std::make_shared<test::FailingProducer>("disk stats unavailable"));
    registry->add(metrics);
  }

  std::string url(std::string_view path) const {
    return "http://" + server->address() + std::string(path);
  }

  std::shared_ptr<ProducerRegistry> registry = std::make_shared<ProducerRegistry>();
  std::shared_ptr<MetricSet> metrics;
  std::unique_ptr<ProducerServer> server;

  void start(ProducerServerOptions options = {}) {
    server = std::make_unique<ProducerServer>(registry, std::move(options));
    REQUIRE(server->start().ok());
  }
};

TEST_CASE_FIXTURE(Fixture, "GET /collect returns JSON the common decoder reads back equal") {
  start({.self_metrics = false});
  CHECK(server->port() != 0);
  auto r = http_request({}, "GET", url("/collect"));
  REQUIRE(r.ok());
  CHECK(r->status == 200);
  CHECK(r->content_type == "application/json");
  auto items = decode_collect_response(r->body);
  REQUIRE_MESSAGE(items.ok(), items.error());
  REQUIRE(items->size() == 3);

  const std::vector<Sample> expected = fixed_samples();
  REQUIRE((*items)[0].samples.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CHECK(same_sample((*items)[0].samples[i], expected[i]));
  }
  CHECK((*items)[1].error == ProducerError{"datum_error", "disk stats unavailable"});
  REQUIRE((*items)[2].samples.size() == 1);
  const Sample& counter = (*items)[2].samples[0];
  CHECK(counter.timeseries_name() == "http_service:request_count");
  CHECK(counter.metric().fields == Fields{{"status_code", uint16_t{200}}});
  CHECK(std::get<Cumulative<uint64_t>>(counter.datum).value == 3);
}

TEST_CASE_FIXTURE(Fixture, "GET /metrics serves the same samples as Prometheus text") {
  start({.self_metrics = false});
  auto r = http_request({}, "GET", url("/metrics"));
  REQUIRE(r.ok());
  CHECK(r->status == 200);
  CHECK(r->content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(r->body.find("disk_reads_total{device=\"nvme0\"} 1234\n") != std::string::npos);
  CHECK(r->body.find("http_service_request_count_total{name=\"api\",status_code=\"200\"} 3\n") !=
        std::string::npos);
  CHECK(r->body.find("# producer error: datum_error: disk stats unavailable\n") !=
        std::string::npos);
}

TEST_CASE_FIXTURE(Fixture, "the route is configurable, other paths are 404, other methods 405") {
  start({.collect_route = "/6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f", .serve_prometheus = false});
  auto ok = http_request({}, "GET", url("/6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f"));
  REQUIRE(ok.ok());
  CHECK(ok->status == 200);
  auto missing = http_request({}, "GET", url("/collect"));
  REQUIRE(missing.ok());
  CHECK(missing->status == 404);
  auto metrics = http_request({}, "GET", url("/metrics"));
  REQUIRE(metrics.ok());
  CHECK(metrics->status == 404);
  auto post = http_request({}, "POST", url("/6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f"), "{}");
  REQUIRE(post.ok());
  CHECK(post->status == 405);
  CHECK(post->header("Allow") == "GET");
}

TEST_CASE_FIXTURE(Fixture, "the server measures itself: collections, bytes, latency by format") {
  const Uuid id = *Uuid::parse("0b9d6f3e-4f0c-4a55-9d5b-2a8f4e2f8c11");
  start({.producer_id = id});
  auto first = http_request({}, "GET", url("/collect"));
  REQUIRE(first.ok());
  auto second = http_request({}, "GET", url("/collect"));
  REQUIRE(second.ok());
  auto items = decode_collect_response(second->body);
  REQUIRE(items.ok());
  REQUIRE(items->size() == 4);  // the self-metrics are the last producer
  const auto& self = (*items)[3].samples;
  REQUIRE(self.size() == 6);
  CHECK(self[0].target() == Target{"tally_producer", {{"producer_id", id}}});
  CHECK(self[0].metric() == Metric{"collections", {{"format", std::string("oximeter")}}});
  CHECK(std::get<Cumulative<uint64_t>>(self[0].datum).value == 1);
  CHECK(self[1].metric().name == "response_bytes");
  CHECK(std::get<Cumulative<uint64_t>>(self[1].datum).value == first->body.size());
  CHECK(self[2].metric().name == "collection_latency");
  CHECK(std::get<Histogram<double>>(self[2].datum).n_samples == 1);
  CHECK(self[3].metric() == Metric{"collections", {{"format", std::string("prometheus")}}});

  server->stop();
  CHECK(registry->size() == 3);  // the self-metrics leave with the server
}

TEST_CASE_FIXTURE(Fixture, "start() reports a listen address in use") {
  start({.self_metrics = false});
  ProducerServer second(registry, {.listen = server->address(), .self_metrics = false});
  const Status s = second.start();
  CHECK_FALSE(s.ok());
  CHECK(s.message() == "cannot listen on " + server->address() + ": address already in use");
}

}  // namespace
}  // namespace tally
