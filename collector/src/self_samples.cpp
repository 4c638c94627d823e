// The collector's counters as Tally samples: target tally_collector{collector_id}, one series
// per counter (per reason where there are reasons), and the two latency histograms.
#include <array>
#include <limits>
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
  // Fixed Prometheus-style buckets (counts[i] in (bounds[i-1], bounds[i]], the last above them
  // all) as a histogram_f64 with one bin per bucket. Like a scraped Prometheus histogram it has
  // no min, max or squared mean: those are NaN (docs/decisions.md).
  template <std::size_t N>
  void histogram(std::string_view metric, const std::array<double, N>& bounds,
                 const std::array<uint64_t, N + 1>& counts, uint64_t count, double sum) {
    constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
    Histogram<double> h;
    h.start_time = start_;
    h.bins.push_back({std::nullopt, counts[0]});
    for (std::size_t i = 0; i < N; ++i) h.bins.push_back({bounds[i], counts[i + 1]});
    h.n_samples = count;
    h.min = kNaN;
    h.max = kNaN;
    h.sum_of_samples = sum;
    h.squared_mean = kNaN;
    add(metric, std::move(h), {});
  }
  void by_reason(std::string_view metric, const ReasonCounts& counts) {
    for (const auto& [reason, n] : counts) counter(metric, n, {{"reason", reason}});
  }

  std::vector<Sample> take() { return std::move(out_); }

 private:
  void add(std::string_view metric, Datum datum, Fields fields) {
    out_.push_back(Sample{make_timeseries(target_, Metric{std::string(metric), std::move(fields)}),
                          now_, std::move(datum)});
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
  out.gauge("queue_bytes", s.sink.queue_bytes + s.sink.in_flight_bytes);
  out.gauge("spool_bytes", s.sink.spool_bytes);
  out.flag("database_up", s.sink.database_up);
  out.counter("batches_written", s.sink.batches_written);
  out.counter("write_failures", s.sink.write_failures);
  const CollectionLatency& cl = s.scheduler.latency;
  out.histogram("collection_duration", CollectionLatency::kBounds, cl.counts, cl.count,
                cl.sum_seconds);
  const LatencyHistogram& il = s.sink.insert_latency;
  out.histogram("insert_duration", LatencyHistogram::kBounds, il.counts, il.count, il.sum_seconds);
  if (s.registry) {
    out.counter("registry_heartbeats", s.registry->heartbeats);
    out.counter("registry_heartbeat_failures", s.registry->heartbeat_failures);
    out.counter("registry_refreshes", s.registry->refreshes);
    out.counter("registry_refresh_failures", s.registry->refresh_failures);
  }
  return out.take();
}

}  // namespace tally::collector
