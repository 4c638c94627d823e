// The collector's polling engine (DESIGN.md §5 "Per producer"): when to poll each producer
// (PollSchedule, pure logic on a time line), and the Scheduler that polls them through a
// Fetcher, decodes the responses off the I/O threads, keeps each producer's ProducerState and
// hands the samples on.
//
//   Scraper scraper({.collection = config.collection});
//   Scheduler scheduler({.max_samples_per_collection = 200'000}, scraper,
//                       [&](const Uuid& id, std::vector<Sample> samples) { … });
//   scraper.start();
//   scheduler.start();
//   scheduler.upsert(target);        // add, or update (takes effect at the next poll)
//   scheduler.collect_now(id);       // POST /producers/{id}/collect
//   scheduler.snapshot();            // GET /producers
//   scheduler.stop(); scraper.stop();
//
// docs/collection.md describes the behaviour in full.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "tally/collector/deps.h"
#include "tally/collector/producer_target.h"
#include "tally/collector/scraper.h"
#include "tally/common/field.h"
#include "tally/common/result.h"
#include "tally/common/sample.h"

namespace tally::collector {

// When each producer is due. The first poll comes at a random offset inside the interval (so
// producers added together do not all poll at once), later ones on a fixed grid
// first + k·interval, never drifting with how long polls take or how late the timer fires.
// Not thread-safe.
class PollSchedule {
 public:
  using time_point = Clock::time_point;
  using duration = Clock::duration;
  // Returns the offset of a first poll, in [0, interval).
  using OffsetFn = std::function<duration(duration interval)>;

  // A uniformly random offset from a generator seeded from std::random_device.
  static OffsetFn random_offset();

  explicit PollSchedule(OffsetFn offset = random_offset());

  // Adds a producer, first due at now + offset(interval). For a producer already there, a new
  // interval applies from its next poll: that poll keeps its time unless it is more than one new
  // interval away (an interval cut from 1 h to 10 s), in which case it moves to
  // now + offset(new interval). interval must be > 0.
  void set(const Uuid& id, duration interval, time_point now);
  // False when the id was not there.
  bool remove(const Uuid& id);
  bool contains(const Uuid& id) const { return slots_.contains(id); }
  std::size_t size() const { return slots_.size(); }

  // The earliest due time, if any producer is scheduled.
  std::optional<time_point> next_due() const;
  // When `id` is next due.
  std::optional<time_point> due(const Uuid& id) const;

  struct Due {
    Uuid id;
    uint64_t missed = 0;  // whole grid slots that passed before `now` without a poll
  };
  // Every producer due at or before `now`, earliest first; each moves to its first grid slot
  // after `now`.
  std::vector<Due> take_due(time_point now);

 private:
  struct Slot {
    time_point due;
    duration interval;
  };
  OffsetFn offset_;
  std::map<Uuid, Slot> slots_;
  std::set<std::pair<time_point, Uuid>> by_due_;
};

// Collection latency (one observation per collection that reached the producer, failed or not).
// counts[i] holds observations ≤ kBounds[i] seconds and > kBounds[i-1]; the last one the rest.
struct CollectionLatency {
  static constexpr std::array<double, 12> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                     0.5,   1,    2.5,   5,    10,  30};
  std::array<uint64_t, kBounds.size() + 1> counts{};
  uint64_t count = 0;
  double sum_seconds = 0;
};

// Totals over every producer ever polled (removing a producer does not lower them), for the
// daemon's GET /metrics.
struct SchedulerTotals {
  uint64_t producers = 0;    // scheduled now
  uint64_t in_progress = 0;  // collections queued or running now
  uint64_t collections = 0;
  uint64_t successes = 0;
  uint64_t samples = 0;
  std::map<std::string, uint64_t, std::less<>> failures;  // by reason, as in ProducerCounts
  uint64_t missed_polls = 0;
  CollectionLatency latency;
};

struct SchedulerOptions {
  std::size_t max_samples_per_collection = 200'000;  // collection.max_samples_per_collection
  // Threads decoding responses (oximeter JSON, Prometheus text). 0 decodes on the thread that
  // delivers the fetch result — for tests with a synchronous fake Fetcher only: with the Scraper
  // that would be an I/O thread.
  int decode_threads = 2;
  const Clock* clock = &steady_clock();  // must outlive the scheduler
  // Asked once per run_due(): while it returns true, due polls are skipped and counted
  // (reason queue_full) — the daemon passes Sink::nearly_full. Empty: never.
  std::function<bool()> sink_full;
  PollSchedule::OffsetFn first_offset = PollSchedule::random_offset();
};

// Called with the samples of each successful collection (never an empty vector), on a decode
// thread; may block (it is the sink's back-pressure), which holds up other decodes only.
using SamplesCallback = std::function<void(const Uuid& producer_id, std::vector<Sample> samples)>;

// Thread-safe. `fetcher` must outlive the scheduler.
class Scheduler {
 public:
  Scheduler(SchedulerOptions options, Fetcher& fetcher, SamplesCallback on_samples);
  ~Scheduler();  // stop()s
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Starts the timer thread that calls run_due() whenever a poll is due. Without it nothing is
  // polled on schedule (collect_now() still works): tests drive run_due() with a fake clock.
  void start();
  // Stops the timer thread, cancels every queued and running collection (Fetcher::close; their
  // results are discarded), waits for the decodes in progress and joins the decode threads.
  // Later calls to upsert()/collect_now() are ignored / fail. Idempotent.
  void stop();

  // Adds a producer or updates one. Address, route, format and target name apply from the next
  // collection (a collection already running finishes as it began); the interval as described
  // at PollSchedule::set. A producer whose target did not change is left untouched.
  void upsert(const ProducerTarget& target);
  // Removes a producer: no more polls, its running collection is cancelled and its connection
  // closed, its state forgotten. False when unknown.
  bool remove(const Uuid& id);
  // Makes the set of producers exactly `targets` (upsert each, remove the others): for the
  // daemon's periodic refresh of its assignment.
  void set_producers(const std::vector<ProducerTarget>& targets);

  // Starts a collection of `id` now, off the grid (the grid is unchanged). Errors: code
  // "not_found"; code "in_progress" when one is running (counted like a skipped poll).
  Status collect_now(const Uuid& id);

  std::vector<ProducerState> snapshot() const;  // sorted by id
  std::optional<ProducerState> snapshot(const Uuid& id) const;
  SchedulerTotals totals() const;

  // Starts every poll due at clock->now() (a due producer still collecting is skipped and
  // counted as in_progress; while options.sink_full() says so, every due poll is skipped and
  // counted as queue_full). Returns how many collections were started. The timer thread loops
  // on this; tests call it directly instead of start().
  std::size_t run_due();
  // When run_due() next has work (nullopt: no producers).
  std::optional<Clock::time_point> next_due() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::collector
