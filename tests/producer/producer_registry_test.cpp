// ProducerRegistry: one item per producer, failures isolated to their own item.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <thread>

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
    out.push_back(Sample{Target{"disk", {}}, Metric{"used_bytes", {}}, 1, now(), uint64_t{5}});
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
        out.push_back(Sample{Target{"disk", {}}, Metric{"Bad Name", {}}, 1, now(), 1.0});
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

TEST_CASE("concurrent collections never run one producer twice at once") {
  ProducerRegistry registry;
  auto producer = fake(FakeProducer::Mode::kSamples);
  registry.add(producer);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) CHECK(registry.collect().size() == 1);
    });
  }
  for (auto& t : threads) t.join();
  CHECK_FALSE(producer->reentered());
}

}  // namespace
}  // namespace tally
