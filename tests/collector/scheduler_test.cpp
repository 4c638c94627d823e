// PollSchedule and Scheduler on a fake clock and a fake Fetcher: no network, no threads, no
// sleeps. (scraper_test.cpp runs the Scheduler against real HTTP producers.)
#include "tally/collector/scheduler.h"

#include <doctest/doctest.h>

#include <atomic>
#include <deque>
#include <mutex>

#include "collect_bodies.h"
#include "tally/common/collect_json.h"

namespace tally::collector {
namespace {

using namespace std::chrono_literals;
using Duration = Clock::duration;
using TimePoint = Clock::time_point;

// Time moves only when advance() is called.
class ManualClock final : public Clock {
 public:
  time_point now() const override { return time_point(duration(ticks_.load())); }
  void advance(Duration d) { ticks_ += d.count(); }

 private:
  std::atomic<duration::rep> ticks_{Duration(std::chrono::hours(1)).count()};
};

// Records fetches; the test completes them by hand. Synchronous: complete() calls back inline.
class FakeFetcher final : public Fetcher {
 public:
  struct Pending {
    FetchRequest request;
    FetchCallback done;
  };

  void fetch(FetchRequest request, FetchCallback done) override {
    requests.push_back(request);
    pending.push_back({std::move(request), std::move(done)});
  }

  void close(const Uuid& id) override {
    closed.push_back(id);
    std::vector<FetchCallback> cancelled;
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->request.producer_id == id) {
        cancelled.push_back(std::move(it->done));
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& done : cancelled) {
      FetchResult r;
      r.reason = "cancelled";
      r.message = "producer removed";
      done(std::move(r));
    }
  }

  std::size_t pending_for(const Uuid& id) const {
    std::size_t n = 0;
    for (const auto& p : pending) n += p.request.producer_id == id;
    return n;
  }

  // Completes the oldest pending fetch of `id`.
  void complete(const Uuid& id, FetchResult result) {
    for (auto it = pending.begin(); it != pending.end(); ++it) {
      if (it->request.producer_id != id) continue;
      FetchCallback done = std::move(it->done);
      pending.erase(it);
      result.started_at = tally::now();
      result.duration = 3ms;
      done(std::move(result));
      return;
    }
    FAIL("no pending fetch for ", id.to_string());
  }

  void succeed(const Uuid& id, std::string body) {
    FetchResult r;
    r.body = std::move(body);
    complete(id, std::move(r));
  }

  void fail(const Uuid& id, std::string reason, std::string message = "it failed") {
    FetchResult r;
    r.reason = std::move(reason);
    r.message = std::move(message);
    complete(id, std::move(r));
  }

  std::vector<FetchRequest> requests;
  std::deque<Pending> pending;
  std::vector<Uuid> closed;
};

using test::oximeter_body;
using test::shard_sample;

ProducerTarget target(std::string address = "127.0.0.1:9100", Duration interval = 10s) {
  ProducerTarget t;
  t.id = Uuid::random();
  t.address = std::move(address);
  t.route = "/collect";
  t.interval = std::chrono::duration_cast<std::chrono::microseconds>(interval);
  return t;
}

// A fixed first offset, so due times are known.
PollSchedule::OffsetFn fixed_offset(Duration d) {
  return [d](Duration) { return d; };
}

struct Harness {
  explicit Harness(Duration first_offset = 3s, std::size_t max_samples = 1000) {
    SchedulerOptions o;
    o.max_samples_per_collection = max_samples;
    o.sink_full = [this] { return sink_full.load(); };
    o.decode_threads = 0;  // decode inline: FakeFetcher::complete() returns with the state updated
    o.clock = &clock;
    o.first_offset = fixed_offset(first_offset);
    scheduler = std::make_unique<Scheduler>(std::move(o), fetcher,
                                            [this](const Uuid& id, std::vector<Sample> s) {
                                              std::lock_guard lock(mu);
                                              delivered.emplace_back(id, std::move(s));
                                            });
  }

  ProducerState state(const Uuid& id) {
    auto s = scheduler->snapshot(id);
    REQUIRE(s.has_value());
    return *s;
  }

  ManualClock clock;
  FakeFetcher fetcher;
  std::atomic<bool> sink_full{false};  // what SchedulerOptions::sink_full answers
  std::mutex mu;
  std::vector<std::pair<Uuid, std::vector<Sample>>> delivered;
  std::unique_ptr<Scheduler> scheduler;  // last: stopped before the fakes go
};

uint64_t failures(const ProducerState& s, std::string_view reason) {
  auto it = s.counts.failures.find(reason);
  return it == s.counts.failures.end() ? 0 : it->second;
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("PollSchedule: first polls fall at random offsets inside the interval") {
  PollSchedule schedule;  // the real random offsets
  const TimePoint now{std::chrono::hours(5)};
  std::set<TimePoint> distinct;
  for (int i = 0; i < 1000; ++i) {
    const Uuid id = Uuid::random();
    schedule.set(id, 10s, now);
    const TimePoint due = *schedule.due(id);
    CHECK(due >= now);
    CHECK(due < now + 10s);
    distinct.insert(due);
  }
  CHECK(distinct.size() > 900);  // spread out, not all at one instant
}

TEST_CASE("PollSchedule: polls stay on the grid however late they are taken") {
  PollSchedule schedule(fixed_offset(3s));
  const TimePoint t0{std::chrono::hours(1)};
  const Uuid id = Uuid::random();
  schedule.set(id, 10s, t0);
  CHECK(*schedule.next_due() == t0 + 3s);
  CHECK(schedule.take_due(t0 + 2s).empty());

  // Taken 4 s late each time: the next due time does not move with it.
  for (int k = 0; k < 5; ++k) {
    const TimePoint slot = t0 + 3s + k * 10s;
    auto due = schedule.take_due(slot + 4s);
    REQUIRE(due.size() == 1);
    CHECK(due[0].id == id);
    CHECK(due[0].missed == 0);
    CHECK(*schedule.due(id) == slot + 10s);
  }
  // Stalled for 35 s past the slot at t0+53s: one poll now, three slots missed, back on the grid.
  auto due = schedule.take_due(t0 + 53s + 35s);
  REQUIRE(due.size() == 1);
  CHECK(due[0].missed == 3);
  CHECK(*schedule.due(id) == t0 + 93s);
}

TEST_CASE("PollSchedule: take_due returns every due producer, earliest first") {
  std::deque<Duration> offsets = {5s, 1s, 8s};
  PollSchedule schedule([&](Duration) {
    Duration d = offsets.front();
    offsets.pop_front();
    return d;
  });
  const TimePoint t0{std::chrono::hours(1)};
  const Uuid a = Uuid::random(), b = Uuid::random(), c = Uuid::random();
  schedule.set(a, 10s, t0);
  schedule.set(b, 10s, t0);
  schedule.set(c, 10s, t0);
  auto due = schedule.take_due(t0 + 6s);
  REQUIRE(due.size() == 2);
  CHECK(due[0].id == b);
  CHECK(due[1].id == a);
  CHECK(*schedule.next_due() == t0 + 8s);
}

TEST_CASE("PollSchedule: an interval change applies from the next poll") {
  PollSchedule schedule(fixed_offset(2s));
  const TimePoint t0{std::chrono::hours(1)};
  const Uuid id = Uuid::random();
  schedule.set(id, 60s, t0);
  CHECK(*schedule.due(id) == t0 + 2s);

  SUBCASE("a longer interval keeps the next poll, then steps by the new one") {
    schedule.set(id, 120s, t0 + 1s);
    CHECK(*schedule.due(id) == t0 + 2s);
    REQUIRE(schedule.take_due(t0 + 2s).size() == 1);
    CHECK(*schedule.due(id) == t0 + 122s);
  }
  SUBCASE("a shorter interval keeps a next poll that is close enough") {
    schedule.set(id, 10s, t0);
    CHECK(*schedule.due(id) == t0 + 2s);
  }
  SUBCASE("a much shorter interval moves a next poll that is far away") {
    REQUIRE(schedule.take_due(t0 + 2s).size() == 1);  // next at t0 + 62s
    schedule.set(id, 10s, t0 + 5s);
    CHECK(*schedule.due(id) == t0 + 5s + 2s);
  }
}

TEST_CASE("PollSchedule: remove forgets the producer") {
  PollSchedule schedule(fixed_offset(1s));
  const TimePoint t0{std::chrono::hours(1)};
  const Uuid id = Uuid::random();
  schedule.set(id, 10s, t0);
  CHECK(schedule.remove(id));
  CHECK_FALSE(schedule.remove(id));
  CHECK_FALSE(schedule.next_due().has_value());
  CHECK(schedule.take_due(t0 + 1h).empty());
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("Scheduler: polls at the offset, then every interval, with the target's request") {
  Harness h(3s);
  ProducerTarget t = target("10.1.2.3:9100", 10s);
  t.route = "/metrics";
  t.format = config::ProducerFormat::kPrometheus;
  h.scheduler->upsert(t);
  CHECK(*h.scheduler->next_due() == h.clock.now() + 3s);

  CHECK(h.scheduler->run_due() == 0);
  h.clock.advance(3s);
  CHECK(h.scheduler->run_due() == 1);
  REQUIRE(h.fetcher.requests.size() == 1);
  CHECK(h.fetcher.requests[0].producer_id == t.id);
  CHECK(h.fetcher.requests[0].address == "10.1.2.3:9100");
  CHECK(h.fetcher.requests[0].route == "/metrics");
  CHECK(h.fetcher.requests[0].format == config::ProducerFormat::kPrometheus);
  h.fetcher.succeed(t.id, "up 1\n");

  for (int k = 1; k <= 3; ++k) {
    h.clock.advance(9s);
    CHECK(h.scheduler->run_due() == 0);
    h.clock.advance(1s);
    CHECK(h.scheduler->run_due() == 1);
    h.fetcher.succeed(t.id, "up 1\n");
  }
  const ProducerState s = h.state(t.id);
  CHECK(s.counts.collections == 4);
  CHECK(s.counts.successes == 4);
  CHECK(s.counts.samples == 4);
  CHECK(s.counts.failures.empty());
  CHECK_FALSE(s.in_progress);
}

TEST_CASE("Scheduler: a successful oximeter collection delivers its samples and is recorded") {
  Harness h;
  const ProducerTarget t = target();
  h.scheduler->upsert(t);
  REQUIRE(h.scheduler->collect_now(t.id).ok());
  CHECK(h.state(t.id).in_progress);
  h.fetcher.succeed(t.id, oximeter_body(5));

  REQUIRE(h.delivered.size() == 1);
  CHECK(h.delivered[0].first == t.id);
  CHECK(h.delivered[0].second.size() == 5);
  const ProducerState s = h.state(t.id);
  CHECK_FALSE(s.in_progress);
  REQUIRE(s.last_success.has_value());
  CHECK(s.last_success->n_samples == 5);
  CHECK(s.last_success->duration >= 3ms);
  CHECK_FALSE(s.last_failure.has_value());
  CHECK(s.counts.samples == 5);
  const SchedulerTotals totals = h.scheduler->totals();
  CHECK(totals.producers == 1);
  CHECK(totals.collections == 1);
  CHECK(totals.successes == 1);
  CHECK(totals.samples == 5);
  CHECK(totals.latency.count == 1);
}

TEST_CASE("Scheduler: err items are counted as producer_error and their ok siblings stored") {
  Harness h;
  const ProducerTarget t = target();
  h.scheduler->upsert(t);
  REQUIRE(h.scheduler->collect_now(t.id).ok());
  h.fetcher.succeed(t.id, oximeter_body(2, 2));

  REQUIRE(h.delivered.size() == 1);
  CHECK(h.delivered[0].second.size() == 2);
  const ProducerState s = h.state(t.id);
  CHECK(s.counts.successes == 1);
  CHECK(failures(s, "producer_error") == 2);
  REQUIRE(s.last_failure.has_value());
  CHECK(s.last_failure->reason == "producer_error");
  CHECK(s.last_failure->message == "datum_error: disk stats unavailable");
}

TEST_CASE("Scheduler: each failure is recorded once under its reason") {
  struct Case {
    std::string name;
    std::function<void(FakeFetcher&, const Uuid&)> respond;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"fetch timeout", [](FakeFetcher& f, const Uuid& id) { f.fail(id, "timeout"); }, "timeout"},
      {"http status", [](FakeFetcher& f, const Uuid& id) { f.fail(id, "http_503"); }, "http_503"},
      {"garbage", [](FakeFetcher& f, const Uuid& id) { f.succeed(id, "<html>"); }, "decode"},
      {"too many samples", [](FakeFetcher& f, const Uuid& id) { f.succeed(id, oximeter_body(4)); },
       "too_many_samples"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Harness h(3s, /*max_samples=*/3);
    const ProducerTarget t = target();
    h.scheduler->upsert(t);
    REQUIRE(h.scheduler->collect_now(t.id).ok());
    c.respond(h.fetcher, t.id);
    const ProducerState s = h.state(t.id);
    CHECK(s.counts.collections == 1);
    CHECK(s.counts.successes == 0);
    CHECK(s.counts.samples == 0);
    CHECK(s.counts.failures.size() == 1);
    CHECK(failures(s, c.reason) == 1);
    REQUIRE(s.last_failure.has_value());
    CHECK(s.last_failure->reason == c.reason);
    CHECK_FALSE(s.last_failure->message.empty());
    CHECK_FALSE(s.last_success.has_value());
    CHECK(h.delivered.empty());
  }
}

TEST_CASE("Scheduler: a poll due while the previous one runs is skipped as in_progress") {
  Harness h(0s);
  const ProducerTarget t = target("127.0.0.1:9100", 10s);
  h.scheduler->upsert(t);
  CHECK(h.scheduler->run_due() == 1);
  h.clock.advance(10s);
  CHECK(h.scheduler->run_due() == 0);  // skipped
  h.clock.advance(10s);
  CHECK(h.scheduler->run_due() == 0);  // skipped again
  CHECK(h.fetcher.requests.size() == 1);
  ProducerState s = h.state(t.id);
  CHECK(failures(s, "in_progress") == 2);
  CHECK(s.counts.collections == 1);
  REQUIRE(s.last_failure.has_value());
  CHECK(s.last_failure->reason == "in_progress");

  h.fetcher.succeed(t.id, oximeter_body(1));
  h.clock.advance(10s);
  CHECK(h.scheduler->run_due() == 1);  // the grid goes on
  CHECK(h.fetcher.requests.size() == 2);
  CHECK(h.scheduler->totals().failures.at("in_progress") == 2);
}

TEST_CASE("Scheduler: while the sink is nearly full, due polls are skipped as queue_full") {
  Harness h(0s);
  const ProducerTarget a = target("127.0.0.1:9100", 10s);
  const ProducerTarget b = target("127.0.0.1:9101", 10s);
  h.scheduler->upsert(a);
  h.scheduler->upsert(b);
  h.sink_full = true;
  CHECK(h.scheduler->run_due() == 0);
  CHECK(h.fetcher.requests.empty());
  ProducerState s = h.state(a.id);
  CHECK(failures(s, "queue_full") == 1);
  CHECK(s.counts.collections == 0);
  REQUIRE(s.last_failure.has_value());
  CHECK(s.last_failure->reason == "queue_full");
  CHECK(h.scheduler->totals().failures.at("queue_full") == 2);

  h.sink_full = false;  // the sink drained: the grid goes on
  h.clock.advance(10s);
  CHECK(h.scheduler->run_due() == 2);
  CHECK(h.fetcher.requests.size() == 2);
  CHECK(failures(h.state(b.id), "queue_full") == 1);
}

TEST_CASE("Scheduler: collect_now polls off the grid and leaves the grid alone") {
  Harness h(4s);
  const ProducerTarget t = target("127.0.0.1:9100", 10s);
  h.scheduler->upsert(t);
  const TimePoint due = *h.scheduler->next_due();

  CHECK(h.scheduler->collect_now(Uuid::random()).code() == "not_found");
  REQUIRE(h.scheduler->collect_now(t.id).ok());
  CHECK(h.fetcher.requests.size() == 1);
  const Status again = h.scheduler->collect_now(t.id);
  CHECK(again.code() == "in_progress");
  CHECK(failures(h.state(t.id), "in_progress") == 1);
  h.fetcher.succeed(t.id, oximeter_body(1));
  CHECK(*h.scheduler->next_due() == due);

  h.clock.advance(4s);
  CHECK(h.scheduler->run_due() == 1);
  CHECK(h.fetcher.requests.size() == 2);
}

TEST_CASE("Scheduler: an update applies from the next collection") {
  Harness h(0s);
  ProducerTarget t = target("127.0.0.1:9100", 10s);
  h.scheduler->upsert(t);
  CHECK(h.scheduler->run_due() == 1);

  ProducerTarget changed = t;
  changed.address = "127.0.0.1:9200";
  changed.route = "/other";
  changed.interval = std::chrono::seconds(20);
  h.scheduler->upsert(changed);
  CHECK(h.state(t.id).target == changed);
  CHECK(h.state(t.id).in_progress);  // the running one carries on
  h.fetcher.succeed(t.id, oximeter_body(1));
  CHECK(h.state(t.id).counts.successes == 1);

  // The next poll keeps its time (t0+10s); the one after comes 20 s later.
  h.clock.advance(10s);
  CHECK(h.scheduler->run_due() == 1);
  REQUIRE(h.fetcher.requests.size() == 2);
  CHECK(h.fetcher.requests[1].address == "127.0.0.1:9200");
  CHECK(h.fetcher.requests[1].route == "/other");
  h.fetcher.succeed(t.id, oximeter_body(1));
  h.clock.advance(10s);
  CHECK(h.scheduler->run_due() == 0);
  h.clock.advance(10s);
  CHECK(h.scheduler->run_due() == 1);

  // The same target again changes nothing.
  h.scheduler->upsert(changed);
  CHECK(h.state(t.id).counts.collections == 3);
}

TEST_CASE("Scheduler: a format change applies from the next collection") {
  Harness h;
  ProducerTarget t = target();
  h.scheduler->upsert(t);
  REQUIRE(h.scheduler->collect_now(t.id).ok());
  h.fetcher.succeed(t.id, oximeter_body(2));
  t.format = config::ProducerFormat::kPrometheus;
  h.scheduler->upsert(t);
  REQUIRE(h.scheduler->collect_now(t.id).ok());
  CHECK(h.fetcher.requests.back().format == config::ProducerFormat::kPrometheus);
  h.fetcher.succeed(t.id, "# TYPE temp gauge\ntemp 21.5\n");
  REQUIRE(h.delivered.size() == 2);
  REQUIRE(h.delivered[1].second.size() == 1);
  CHECK(h.delivered[1].second[0].timeseries_name() == "prometheus:temp");
  CHECK(h.state(t.id).counts.successes == 2);
}

TEST_CASE("Scheduler: remove stops the polls, cancels the running one and forgets the state") {
  Harness h(0s);
  const ProducerTarget t = target("127.0.0.1:9100", 10s);
  const ProducerTarget other = target("127.0.0.1:9101", 10s);
  h.scheduler->upsert(t);
  h.scheduler->upsert(other);
  CHECK(h.scheduler->run_due() == 2);

  CHECK(h.scheduler->remove(t.id));
  CHECK_FALSE(h.scheduler->remove(t.id));
  REQUIRE(h.fetcher.closed.size() == 1);
  CHECK(h.fetcher.closed[0] == t.id);
  CHECK(h.fetcher.pending_for(t.id) == 0);
  CHECK_FALSE(h.scheduler->snapshot(t.id).has_value());
  CHECK(h.scheduler->totals().in_progress == 1);

  h.fetcher.succeed(other.id, oximeter_body(1));
  h.clock.advance(10s);
  CHECK(h.scheduler->run_due() == 1);  // only `other`
  CHECK(h.fetcher.requests.back().producer_id == other.id);
  CHECK(h.scheduler->snapshot().size() == 1);
}

TEST_CASE("Scheduler: a result arriving for a removed and re-added producer is discarded") {
  // A Fetcher that does not cancel on close(): the old result comes in after the re-add.
  struct LateFetcher final : Fetcher {
    void fetch(FetchRequest, FetchCallback done) override { pending.push_back(std::move(done)); }
    void close(const Uuid&) override {}
    std::vector<FetchCallback> pending;
  };
  LateFetcher fetcher;
  ManualClock clock;
  std::vector<Uuid> delivered;
  SchedulerOptions o;
  o.decode_threads = 0;
  o.clock = &clock;
  o.first_offset = fixed_offset(1h);
  Scheduler scheduler(std::move(o), fetcher,
                      [&](const Uuid& id, std::vector<Sample>) { delivered.push_back(id); });
  const ProducerTarget t = target();
  scheduler.upsert(t);
  REQUIRE(scheduler.collect_now(t.id).ok());
  scheduler.remove(t.id);
  scheduler.upsert(t);
  FetchResult late;
  late.body = oximeter_body(1);
  fetcher.pending[0](late);
  CHECK(delivered.empty());
  const ProducerState s = *scheduler.snapshot(t.id);
  CHECK(s.counts.collections == 0);
  CHECK(s.counts.successes == 0);
  CHECK(scheduler.totals().in_progress == 0);
}

TEST_CASE("Scheduler: set_producers adds, updates and removes") {
  Harness h;
  const ProducerTarget a = target("127.0.0.1:1", 10s);
  ProducerTarget b = target("127.0.0.1:2", 10s);
  const ProducerTarget c = target("127.0.0.1:3", 10s);
  h.scheduler->set_producers({a, b});
  CHECK(h.scheduler->snapshot().size() == 2);
  b.address = "127.0.0.1:22";
  h.scheduler->set_producers({b, c});
  const auto all = h.scheduler->snapshot();
  REQUIRE(all.size() == 2);
  CHECK_FALSE(h.scheduler->snapshot(a.id).has_value());
  CHECK(h.scheduler->snapshot(b.id)->target.address == "127.0.0.1:22");
  CHECK(h.scheduler->snapshot(c.id).has_value());
  CHECK(h.fetcher.closed == std::vector<Uuid>{a.id});
}

TEST_CASE("Scheduler: stop cancels what runs and ignores later requests") {
  Harness h(0s);
  const ProducerTarget t = target();
  h.scheduler->upsert(t);
  CHECK(h.scheduler->run_due() == 1);
  h.scheduler->stop();
  CHECK(h.fetcher.pending.empty());
  CHECK(h.scheduler->totals().in_progress == 0);
  CHECK(h.scheduler->collect_now(t.id).code() == "stopping");
  h.clock.advance(1h);
  CHECK(h.scheduler->run_due() == 0);
  CHECK(h.state(t.id).counts.failures.empty());  // a cancellation is no failure
}

TEST_CASE("Scheduler: the snapshot shows when the next poll comes") {
  Harness h(7s);
  const ProducerTarget t = target("127.0.0.1:9100", 10s);
  const Timestamp before = tally::now();
  h.scheduler->upsert(t);
  const ProducerState s = h.state(t.id);
  REQUIRE(s.next_poll.has_value());
  CHECK(*s.next_poll >= before + 7s);
  CHECK(*s.next_poll <= tally::now() + 7s);
}

}  // namespace
}  // namespace tally::collector
