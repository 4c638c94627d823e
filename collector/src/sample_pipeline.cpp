#include "tally/collector/sample_pipeline.h"

#include <algorithm>
#include <iterator>

#include "tally/common/log.h"

namespace tally::collector {
namespace {

std::string str(uint64_t n) { return std::to_string(n); }

}  // namespace

SamplePipeline::SamplePipeline(SchemaChecker& checker, Sink& sink, SamplePipelineOptions options)
    : checker_(checker), sink_(sink), options_(options) {}

void SamplePipeline::push(const std::optional<Uuid>& producer, std::vector<Sample> samples) {
  reject_outside_window(producer, samples);
  if (samples.empty()) return;
  std::vector<Sample> unchecked = check(producer, std::move(samples), /*retry=*/false);
  if (!unchecked.empty()) set_aside(producer, std::move(unchecked));
}

std::vector<Sample> SamplePipeline::check(const std::optional<Uuid>& producer,
                                          std::vector<Sample> samples, bool retry) {
  SchemaCheckResult r = checker_.check(std::move(samples));
  account(producer, r, retry);
  if (!r.accepted.empty()) sink_.push(std::move(r.accepted));  // the sink counts its drops
  return std::move(r.unchecked);
}

void SamplePipeline::account(const std::optional<Uuid>& producer, const SchemaCheckResult& r,
                             bool retry) {
  const SchemaRejections& rej = r.rejections;
  counters_.rejected_schema += rej.schema;
  counters_.rejected_unstorable += rej.unstorable;
  counters_.schemas_created += r.schemas_created;
  // Samples set aside are counted once, when they are first set aside.
  const bool deferred = !r.unchecked.empty() && !retry;
  if (deferred) counters_.deferred_schema_unavailable += r.unchecked.size();
  if (producer) {
    if (rej.schema > 0) ++counters_.failures_schema;
    if (rej.unstorable > 0) ++counters_.failures_unstorable;
    if (deferred) ++counters_.failures_schema_unavailable;
  }
  if (rej.total() == 0 && !deferred) return;

  const Timestamp now = tally::now();
  const std::string who = producer ? producer->to_string() : "tally_collector";
  std::vector<std::string> new_conflicts;
  {
    std::lock_guard lock(producers_mu_);
    auto it = producer ? producers_.find(*producer) : producers_.end();
    if (it == producers_.end()) {
      new_conflicts = rej.conflicts;  // the collector's own samples, or a producer just removed
    } else {
      ProducerPipelineState& p = it->second;
      p.rejected_schema += rej.schema;
      p.rejected_unstorable += rej.unstorable;
      if (rej.schema > 0) ++p.failures_schema;
      if (rej.unstorable > 0) ++p.failures_unstorable;
      if (deferred) {
        p.deferred += r.unchecked.size();
        ++p.failures_schema_unavailable;
        p.last_failure =
            CollectionFailure{now, "schema_unavailable",
                              str(r.unchecked.size()) +
                                  " samples set aside to be checked again: " + r.status.message()};
      }
      if (rej.unstorable > 0) {
        p.last_failure = CollectionFailure{now, "unstorable", rej.first_unstorable};
      }
      if (!rej.conflicts.empty()) {
        p.last_failure = CollectionFailure{now, "schema", rej.conflicts.front()};
      }
      for (const std::string& message : rej.conflicts) {
        auto same = std::find_if(p.conflicts.begin(), p.conflicts.end(),
                                 [&](const SchemaConflict& c) { return c.message == message; });
        if (same != p.conflicts.end()) {
          same->last_seen = now;
          ++same->collections;
          continue;
        }
        new_conflicts.push_back(message);
        p.conflicts.push_back(SchemaConflict{now, now, message, 1});
        if (p.conflicts.size() > ProducerPipelineState::kMaxConflicts) p.conflicts.pop_front();
      }
    }
  }
  // Once per producer and conflict; the counts carry the repetitions.
  for (const std::string& message : new_conflicts) {
    log_warn("schema_conflict", {{"producer", who}, {"conflict", message}});
  }
  if (rej.unstorable > 0) {
    log_debug(
        "samples_unstorable",
        {{"producer", who}, {"samples", str(rej.unstorable)}, {"first", rej.first_unstorable}});
  }
}

void SamplePipeline::reject_outside_window(const std::optional<Uuid>& producer,
                                           std::vector<Sample>& samples) {
  const Timestamp now = options_.wall_clock();
  const Timestamp latest = now + options_.max_future;
  const Timestamp earliest =
      options_.max_age.count() > 0 ? now - options_.max_age : Timestamp::min();
  const auto outside = [&](const Sample& s) {
    return s.timestamp > latest || s.timestamp < earliest;
  };
  auto first = std::find_if(samples.begin(), samples.end(), outside);
  if (first == samples.end()) {
    if (producer) {
      std::lock_guard lock(producers_mu_);
      auto it = producers_.find(*producer);
      if (it != producers_.end()) it->second.rejecting_timestamps = false;
    }
    return;
  }
  // Described before remove_if moves it away.
  const std::string series = first->timeseries_name();
  const std::string stamp = format_rfc3339(first->timestamp);
  const std::size_t before = samples.size();
  samples.erase(std::remove_if(first, samples.end(), outside), samples.end());
  const std::size_t n = before - samples.size();

  counters_.rejected_timestamp += n;
  if (producer) ++counters_.failures_timestamp;
  const std::string window =
      (options_.max_age.count() > 0 ? format_rfc3339(earliest) : std::string("-")) + " .. " +
      format_rfc3339(latest);
  bool log = true;
  {
    std::lock_guard lock(producers_mu_);
    auto it = producer ? producers_.find(*producer) : producers_.end();
    if (it != producers_.end()) {
      ProducerPipelineState& p = it->second;
      p.rejected_timestamp += n;
      ++p.failures_timestamp;
      p.last_failure = CollectionFailure{now, "timestamp",
                                         str(n) + " samples outside the accepted time window " +
                                             window + ", first '" + series + "' at " + stamp};
      log = !p.rejecting_timestamps;
      p.rejecting_timestamps = true;
    }
  }
  // Once per episode for a known producer: a producer with a broken clock would otherwise log
  // at every poll; the counts carry the repetitions.
  if (log) {
    log_warn("samples_timestamp_rejected",
             {{"producer", producer ? producer->to_string() : "tally_collector"},
              {"timeseries", series},
              {"timestamp", stamp},
              {"samples", str(n)},
              {"window", window}});
  }
}

namespace {
std::size_t bytes_of(const std::vector<Sample>& samples) {
  std::size_t bytes = 0;
  for (const Sample& s : samples) bytes += queued_sample_bytes(s);
  return bytes;
}
}  // namespace

void SamplePipeline::set_aside(const std::optional<Uuid>& producer, std::vector<Sample> samples) {
  const std::size_t n = samples.size();
  const std::size_t bytes = bytes_of(samples);
  std::lock_guard lock(pending_mu_);
  if (pending_samples_ + n > options_.max_pending ||
      pending_bytes_ + bytes > options_.max_pending_bytes) {
    counters_.dropped_schema_unavailable += n;
    if (!pending_full_logged_) {
      pending_full_logged_ = true;
      log_error("pending_schema_full",
                {{"dropped", str(n)},
                 {"pending", str(pending_samples_)},
                 {"limit", str(options_.max_pending)},
                 {"pending_bytes", str(pending_bytes_)},
                 {"limit_bytes", str(options_.max_pending_bytes)},
                 {"action", "dropping samples of unchecked schemas until the database returns"}});
    }
    return;
  }
  pending_.push_back(Pending{producer, std::move(samples), bytes});
  pending_samples_ += n;
  pending_bytes_ += bytes;
  counters_.pending_schema = pending_samples_;
}

void SamplePipeline::retry_pending() {
  std::deque<Pending> batches;
  {
    std::lock_guard lock(pending_mu_);
    if (pending_.empty()) return;
    batches.swap(pending_);
    pending_samples_ = 0;
    pending_bytes_ = 0;
    counters_.pending_schema = 0;
    pending_full_logged_ = false;
  }
  // Oldest first, so what can be checked now reaches the sink in the order it was collected.
  std::deque<Pending> still;
  std::size_t n = 0;
  std::size_t bytes = 0;
  for (Pending& batch : batches) {
    std::vector<Sample> unchecked = check(batch.producer, std::move(batch.samples), /*retry=*/true);
    if (unchecked.empty()) continue;
    n += unchecked.size();
    const std::size_t b = bytes_of(unchecked);
    bytes += b;
    still.push_back(Pending{batch.producer, std::move(unchecked), b});
  }
  if (still.empty()) return;
  // Back in front of what push() set aside meanwhile; already counted, so never dropped here.
  std::lock_guard lock(pending_mu_);
  pending_.insert(pending_.begin(), std::make_move_iterator(still.begin()),
                  std::make_move_iterator(still.end()));
  pending_samples_ += n;
  pending_bytes_ += bytes;
  counters_.pending_schema = pending_samples_;
}

void SamplePipeline::drop_pending(std::string_view why) {
  std::lock_guard lock(pending_mu_);
  if (pending_samples_ == 0) return;
  counters_.dropped_schema_unavailable += pending_samples_;
  log_error("pending_schema_dropped", {{"samples", str(pending_samples_)}, {"why", why}});
  pending_.clear();
  pending_samples_ = 0;
  pending_bytes_ = 0;
  counters_.pending_schema = 0;
}

void SamplePipeline::set_producers(const std::map<Uuid, std::string>& sources) {
  std::lock_guard lock(producers_mu_);
  std::map<Uuid, ProducerPipelineState> kept;
  for (const auto& [id, source] : sources) {
    auto it = producers_.find(id);
    ProducerPipelineState state =
        it != producers_.end() ? std::move(it->second) : ProducerPipelineState{};
    state.source = source;
    kept.emplace(id, std::move(state));
  }
  producers_ = std::move(kept);
}

std::optional<ProducerPipelineState> SamplePipeline::producer(const Uuid& id) const {
  std::lock_guard lock(producers_mu_);
  auto it = producers_.find(id);
  if (it == producers_.end()) return std::nullopt;
  return it->second;
}

}  // namespace tally::collector
