// ProducerRegistry: one item per producer, failures isolated to their own item.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "prometheus_encode.h"
#include "tally/producer/metric_set.h"
#include "tally/producer/producer.h"

namespace tally {
namespace {

// A producer whose behaviour the test picks.
class FakeProducer : public Producer {
 public:
  enum class Mode { kSamples, kError, kThrow, kInvalidSample };
  explicit FakeProducer(Mode mode) : mode_(mode) {}

  Status produce(std::vector<Sample>& out) override {
    if (busy_.exchange(true)) reentered_ = true;
    out.push_back(
        Sample{make_timeseries(Target{"disk", {}}, Metric{"used_bytes", {}}), now(), uint64_t{5}});
    Status result;
    switch (mode_) {
      case Mode::kSamples:
        break;
      case Mode::kError:
        result = Status::error("disk stats unavailable");
        break;
      case Mode::kThrow:
        busy_ = false;
        throw std::runtime_error("boom");
      case Mode::kInvalidSample:
        out.push_back(
            Sample{make_timeseries(Target{"disk", {}}, Metric{"Bad Name", {}}), now(), 1.0});
        break;
    }
    busy_ = false;
    return result;
  }

  bool reentered() const { return reentered_; }

 private:
  Mode mode_;
  std::atomic<bool> busy_{false};
  std::atomic<bool> reentered_{false};
};

std::shared_ptr<FakeProducer> fake(FakeProducer::Mode mode) {
  return std::make_shared<FakeProducer>(mode);
}

TEST_CASE("an error becomes an err item, the other producers' samples are kept") {
  ProducerRegistry registry;
  registry.add(fake(FakeProducer::Mode::kSamples));
  registry.add(fake(FakeProducer::Mode::kError));
  registry.add(fake(FakeProducer::Mode::kThrow));
  registry.add(fake(FakeProducer::Mode::kInvalidSample));
  registry.add(fake(FakeProducer::Mode::kSamples));

  const std::vector<CollectItem> items = registry.collect();
  REQUIRE(items.size() == 5);
  CHECK_FALSE(items[0].error);
  CHECK(items[0].samples.size() == 1);
  CHECK(items[1].error == ProducerError{"datum_error", "disk stats unavailable"});
  CHECK(items[1].samples.empty());
  CHECK(items[2].error == ProducerError{"datum_error", "producer threw: boom"});
  REQUIRE(items[3].error);
  CHECK(items[3].error->content ==
        "invalid sample: metric 'Bad Name': must match [a-z][a-z0-9]*(_[a-z0-9]+)*");
  CHECK(items[3].samples.empty());
  CHECK(items[4].samples.size() == 1);
}

TEST_CASE("an error code other than the default becomes the err item's type") {
  class Unavailable : public Producer {
    Status produce(std::vector<Sample>&) override {
      return Status::error("not ready", "not_ready");
    }
  };
  ProducerRegistry registry;
  registry.add(std::make_shared<Unavailable>());
  CHECK(registry.collect()[0].error == ProducerError{"not_ready", "not ready"});
}

TEST_CASE("add, remove, size, a null producer is refused") {
  ProducerRegistry registry;
  const auto a = registry.add(fake(FakeProducer::Mode::kSamples));
  const auto b = registry.add(std::make_shared<MetricSet>(Target{"svc", {}}));
  CHECK(a != b);
  CHECK(registry.size() == 2);
  CHECK(registry.remove(a));
  CHECK_FALSE(registry.remove(a));
  CHECK(registry.size() == 1);
  CHECK(registry.collect().size() == 1);
  CHECK_THROWS_AS(registry.add(nullptr), std::invalid_argument);
}

// Decoded, with every timestamp set to one value: two collections taken at different times
// compare equal when everything else is.
std::vector<CollectItem> without_timestamps(const std::string& json) {
  Result<std::vector<CollectItem>> items = decode_collect_response(json);
  REQUIRE_MESSAGE(items.ok(), items.error());
  for (CollectItem& item : *items) {
    for (Sample& s : item.samples) s.timestamp = Timestamp{};
  }
  return std::move(*items);
}

TEST_CASE("collect_json is the encoded collect, MetricSets and other producers alike") {
  ProducerRegistry registry;
  auto api = std::make_shared<MetricSet>(
      Target{"http_service", {{"name", std::string("api")}, {"instance_id", Uuid::random()}}});
  const Fields get{{"route", std::string("/v1/items")}, {"status_code", uint16_t{200}}};
  const Fields bad{{"route", std::string("/v1/\"odd\"\n")}, {"status_code", uint16_t{500}}};
  api->counter("request_count", get).add(3);
  api->counter("request_count", bad).add(1);
  api->counter_i64("balance").add(7);
  api->counter_f64("cpu_seconds").add(0.25);
  api->gauge("temperature").set(-0.0);
  api->gauge_i64("in_flight").set(-2);
  api->gauge_u64("queue").set(18'446'744'073'709'551'615ull);
  api->gauge_bool("up").set(true);
  api->string_gauge("build_info").set("shop \"1.4\" caf\xC3\xA9");
  api->histogram("request_latency", get, exponential_edges(1e-4, 2, 16)).record(0.003);
  api->histogram("request_latency", bad, exponential_edges(1e-4, 2, 16)).record(2.5);
  api->histogram("request_latency", {{"route", std::string("/")}, {"status_code", uint16_t{1}}},
                 exponential_edges(1e-4, 2, 16));  // nothing recorded: min and max untouched
  api->histogram_i64("batch_size", {}, linear_edges_i64(-10, 5, 5)).record(-7);
  api->histogram_u64("body_bytes", {}, {64, 1024}).record(100);
  registry.add(api);
  registry.add(fake(FakeProducer::Mode::kSamples));
  registry.add(fake(FakeProducer::Mode::kError));
  registry.add(fake(FakeProducer::Mode::kInvalidSample));
  registry.add(std::make_shared<MetricSet>(Target{"empty", {}}));

  const std::string json = registry.collect_json();
  const std::vector<CollectItem> served = without_timestamps(json);
  const std::vector<CollectItem> collected =
      without_timestamps(encode_collect_response(registry.collect()));
  REQUIRE(served.size() == 5);
  CHECK(served[0].samples.size() == 14);
  CHECK(served[2].error == ProducerError{"datum_error", "disk stats unavailable"});
  CHECK(served[3].error);
  CHECK(served[4].samples.empty());
  CHECK(encode_collect_response(served) == encode_collect_response(collected));
  // The second call reserves what the first wrote and serves the same.
  CHECK(encode_collect_response(without_timestamps(registry.collect_json())) ==
        encode_collect_response(served));
}

TEST_CASE("concurrent collections never run one producer twice at once") {
  ProducerRegistry registry;
  auto producer = fake(FakeProducer::Mode::kSamples);
  registry.add(producer);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        if (t % 2 == 0) {
          CHECK(registry.collect().size() == 1);
        } else {
          CHECK(registry.collect_json().substr(1, kOkItemJsonOpen.size()) == kOkItemJsonOpen);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK_FALSE(producer->reentered());
}

// collect_prometheus() keeps each MetricSet's series text and hands out pointers into it: the
// series made by one collection must stay valid while another adds to them.
TEST_CASE("collect_prometheus while metrics are being created serves every series it read") {
  ProducerRegistry registry;
  auto api = std::make_shared<MetricSet>(Target{"http_service", {{"name", std::string("api")}}});
  api->counter("request_count", {{"route", std::string("/0")}}).add();
  registry.add(api);
  std::atomic<bool> done{false};
  std::thread creator([&] {
    for (int route = 1; route < 3000; ++route) {
      api->counter("request_count", {{"route", "/" + std::to_string(route)}}).add();
      if (route % 2 == 0)
        api->histogram("latency", {{"route", "/" + std::to_string(route)}}, {1.0});
    }
    done = true;
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      for (int n = 0; n < 20 || !done; ++n) {
        const std::string text = registry.collect_prometheus();
        CHECK(text.starts_with("# HELP http_service_request_count_total "));
        CHECK(text.find("http_service_request_count_total{name=\"api\",route=\"/0\"} 1\n") !=
              std::string::npos);
      }
    });
  }
  creator.join();
  for (auto& t : readers) t.join();
  CHECK(registry.collect_prometheus() == encode_prometheus(registry.collect()));
}

}  // namespace
}  // namespace tally
