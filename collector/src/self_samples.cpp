// The collector's counters as Tally samples: target tally_collector{collector_id}, one series
// per counter (per reason where there are reasons). Histograms are left to GET /metrics: the
// fixed buckets carry no min/max, which a Tally histogram needs.
#include <string_view>

#include "tally/collector/collector_metrics.h"

namespace tally::collector {
namespace {

class SelfSamples {
 public:
  SelfSamples(const CollectorSnapshot& s, Timestamp now)
      : target_{"tally_collector", {{"collector_id", s.collector_id}}},
        start_(s.start_time),
        now_(now) {}

  void counter(std::string_view metric, uint64_t value, Fields fields = {}) {
    add(metric, Cumulative<uint64_t>{start_, value}, std::move(fields));
  }
  void gauge(std::string_view metric, uint64_t value) {
    add(metric, static_cast<int64_t>(value), {});
  }
  void flag(std::string_view metric, bool value) { add(metric, value, {}); }
  void by_reason(std::string_view metric, const ReasonCounts& counts) {
    for (const auto& [reason, n] : counts) counter(metric, n, {{"reason", reason}});
  }

  std::vector<Sample> take() { return std::move(out_); }

 private:
  void add(std::string_view metric, Datum datum, Fields fields) {
    Sample s;
    s.target = target_;
    s.metric = Metric{std::string(metric), std::move(fields)};
    s.timestamp = now_;
    s.datum = std::move(datum);
    out_.push_back(std::move(s));
  }

  Target target_;
  Timestamp start_;
  Timestamp now_;
  std::vector<Sample> out_;
};

}  // namespace

std::vector<Sample> make_self_samples(const CollectorSnapshot& s, Timestamp now) {
  SelfSamples out(s, now);
  out.gauge("producers", s.scheduler.producers);
  out.counter("collections", s.scheduler.collections);
  out.counter("collection_successes", s.scheduler.successes);
  out.by_reason("collection_failures", failures_by_reason(s));
  out.counter("missed_polls", s.scheduler.missed_polls);
  out.counter("samples_collected", s.scheduler.samples);
  out.counter("samples_stored", s.sink.samples_stored);
  out.by_reason("samples_rejected", rejected_by_reason(s));
  out.counter("samples_spooled", s.sink.samples_spooled);
  out.by_reason("samples_dropped", dropped_by_reason(s));
  out.counter("samples_deferred", s.pipeline.deferred_schema_unavailable);
  out.gauge("queue_depth", s.sink.queue_depth + s.sink.in_flight);
  out.gauge("spool_bytes", s.sink.spool_bytes);
  out.flag("database_up", s.sink.database_up);
  out.counter("batches_written", s.sink.batches_written);
  out.counter("write_failures", s.sink.write_failures);
  if (s.registry) {
    out.counter("registry_heartbeats", s.registry->heartbeats);
    out.counter("registry_heartbeat_failures", s.registry->heartbeat_failures);
    out.counter("registry_refreshes", s.registry->refreshes);
    out.counter("registry_refresh_failures", s.registry->refresh_failures);
  }
  return out.take();
}

}  // namespace tally::collector
