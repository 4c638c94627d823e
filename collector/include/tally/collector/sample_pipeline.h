// What happens to decoded samples in the daemon (DESIGN.md §5 "Schema", "Sink"): the time
// window, the schema check, then the sink; samples the schema store could not check (database
// down) are set aside and checked again later; and everything is counted, in total and per
// producer, for the API.
//
//   SamplePipeline pipeline(checker, *sink, {.max_pending = 250'000, .max_age = days(30)});
//   pipeline.set_producers({{id, "static"}});
//   pipeline.push(id, std::move(samples));   // a scheduler decode thread
//   pipeline.retry_pending();                // the daemon's housekeeping thread, every second
//
// Thread-safe. push() and retry_pending() may block for a database round trip (the schema check
// of a new series): never call them on an I/O thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tally/collector/collector_metrics.h"
#include "tally/collector/producer_target.h"
#include "tally/collector/schema_check.h"
#include "tally/collector/sink.h"
#include "tally/common/field.h"
#include "tally/common/sample.h"
#include "tally/common/time.h"

namespace tally::collector {

// One schema conflict seen for a producer: the checker's message (the difference, then both
// schemas spelled out), and how often it happened.
struct SchemaConflict {
  Timestamp first_seen;
  Timestamp last_seen;
  std::string message;
  uint64_t collections = 0;  // collections in which it was seen
};

// What became of one producer's samples after they were collected (the scheduler's
// ProducerState knows the rest).
struct ProducerPipelineState {
  std::string source = "static";     // "static" (the YAML) or "registry"
  uint64_t rejected_schema = 0;      // samples
  uint64_t rejected_unstorable = 0;  // samples
  uint64_t rejected_timestamp = 0;   // samples outside the accepted time window
  uint64_t deferred = 0;             // samples set aside while the schema store was unreachable
  uint64_t failures_schema = 0;      // collections with samples rejected for their schema
  uint64_t failures_unstorable = 0;  // collections with unstorable samples
  uint64_t failures_timestamp = 0;   // collections with samples outside the time window
  uint64_t failures_schema_unavailable = 0;       // collections with samples set aside
  std::optional<CollectionFailure> last_failure;  // the latest of the four
  // The previous collection had samples outside the time window: the next one that does too
  // is counted but not logged again (one log line per episode).
  bool rejecting_timestamps = false;
  std::deque<SchemaConflict> conflicts;           // newest last, at most kMaxConflicts
  static constexpr std::size_t kMaxConflicts = 8;
};

struct SamplePipelineOptions {
  // The most samples set aside at once, and their most memory (queued_sample_bytes, as the
  // sink counts its queue); more are dropped and counted (dropped_schema_unavailable).
  std::size_t max_pending = 250'000;
  std::size_t max_pending_bytes = std::numeric_limits<std::size_t>::max();
  // The accepted time window (docs/decisions.md "Accepted time window"): a sample stamped more
  // than `max_future` ahead of `wall_clock`, or more than `max_age` behind it, is rejected with
  // reason "timestamp" before the schema check. max_age 0 means no lower bound; the daemon
  // passes database.retention_days.
  std::chrono::microseconds max_future = std::chrono::hours(1);
  std::chrono::microseconds max_age{0};
  std::function<Timestamp()> wall_clock = &tally::now;  // read once per push()
};

class SamplePipeline {
 public:
  // `checker` and `sink` must outlive the pipeline.
  SamplePipeline(SchemaChecker& checker, Sink& sink, SamplePipelineOptions options = {});
  SamplePipeline(const SamplePipeline&) = delete;
  SamplePipeline& operator=(const SamplePipeline&) = delete;

  // Drops the samples outside the time window, checks the rest and pushes the accepted ones to
  // the sink. `producer` is empty for the collector's own samples (counted in totals, not per
  // producer, and not as collections).
  void push(const std::optional<Uuid>& producer, std::vector<Sample> samples);

  // Checks the samples set aside again, oldest first; those still uncheckable stay, in order.
  void retry_pending();
  // Gives up on the samples set aside (counted as dropped, logged with `why`).
  void drop_pending(std::string_view why);

  // The producers polled now, with their source. State of the others is forgotten; samples of
  // an unknown producer are counted in totals only.
  void set_producers(const std::map<Uuid, std::string>& sources);
  std::optional<ProducerPipelineState> producer(const Uuid& id) const;

  PipelineTotals totals() const { return counters_.totals(); }
  void count_self_samples(std::size_t n) { counters_.self_samples += n; }

 private:
  struct Pending {
    std::optional<Uuid> producer;
    std::vector<Sample> samples;
    std::size_t bytes = 0;  // queued_sample_bytes() of the samples
  };
  // Checks and pushes the accepted samples; returns those that could not be checked.
  std::vector<Sample> check(const std::optional<Uuid>& producer, std::vector<Sample> samples,
                            bool retry);
  void account(const std::optional<Uuid>& producer, const SchemaCheckResult& r, bool retry);
  // Removes (in place, keeping the order) and counts the samples outside the time window.
  void reject_outside_window(const std::optional<Uuid>& producer, std::vector<Sample>& samples);
  void set_aside(const std::optional<Uuid>& producer, std::vector<Sample> samples);

  SchemaChecker& checker_;
  Sink& sink_;
  const SamplePipelineOptions options_;
  PipelineCounters counters_;

  mutable std::mutex producers_mu_;
  std::map<Uuid, ProducerPipelineState> producers_;  // producers_mu_

  std::mutex pending_mu_;
  std::deque<Pending> pending_;       // pending_mu_, oldest first
  std::size_t pending_samples_ = 0;   // pending_mu_
  std::size_t pending_bytes_ = 0;     // pending_mu_
  bool pending_full_logged_ = false;  // pending_mu_
};

}  // namespace tally::collector
