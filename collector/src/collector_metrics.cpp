#include "tally/collector/collector_metrics.h"

#include <array>
#include <string_view>

#include "tally/collector/producer_target.h"
#include "tally/common/prometheus_text.h"

namespace tally::collector {
namespace {

using prometheus::Label;

uint64_t get(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }

void counter(std::string& out, std::string_view name, std::string_view help, uint64_t value) {
  prometheus::append_family(out, name, "counter", help);
  prometheus::append_sample(out, name, {}, value);
}

void gauge(std::string& out, std::string_view name, std::string_view help, double value) {
  prometheus::append_family(out, name, "gauge", help);
  prometheus::append_sample(out, name, {}, value);
}

void by_reason(std::string& out, std::string_view name, std::string_view help,
               const ReasonCounts& counts) {
  prometheus::append_family(out, name, "counter", help);
  for (const auto& [reason, n] : counts) {
    const Label labels[] = {{"reason", reason}};
    prometheus::append_sample(out, name, labels, n);
  }
}

// A Prometheus histogram from fixed buckets: counts[i] is the observations in
// (bounds[i-1], bounds[i]], the last count those above every bound.
template <std::size_t N>
void histogram(std::string& out, std::string_view name, std::string_view help,
               const std::array<double, N>& bounds, const std::array<uint64_t, N + 1>& counts,
               uint64_t count, double sum) {
  prometheus::append_family(out, name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  std::string le;
  for (std::size_t i = 0; i < N; ++i) {
    cumulative += counts[i];
    le.clear();
    prometheus::append_value(le, bounds[i]);
    const Label labels[] = {{"le", le}};
    prometheus::append_sample(out, bucket, labels, cumulative);
  }
  const Label inf[] = {{"le", "+Inf"}};
  prometheus::append_sample(out, bucket, inf, count);
  prometheus::append_sample(out, std::string(name) + "_sum", {}, sum);
  prometheus::append_sample(out, std::string(name) + "_count", {}, count);
}

}  // namespace

PipelineTotals PipelineCounters::totals() const {
  return PipelineTotals{
      .rejected_schema = get(rejected_schema),
      .rejected_unstorable = get(rejected_unstorable),
      .rejected_timestamp = get(rejected_timestamp),
      .deferred_schema_unavailable = get(deferred_schema_unavailable),
      .dropped_schema_unavailable = get(dropped_schema_unavailable),
      .pending_schema = get(pending_schema),
      .schemas_created = get(schemas_created),
      .self_samples = get(self_samples),
      .failures_schema = get(failures_schema),
      .failures_schema_unavailable = get(failures_schema_unavailable),
      .failures_unstorable = get(failures_unstorable),
      .failures_timestamp = get(failures_timestamp),
  };
}

ReasonCounts failures_by_reason(const CollectorSnapshot& s) {
  ReasonCounts out;
  for (std::string_view r :
       {reason::kUnreachable, reason::kTimeout, reason::kDecode, reason::kTooLarge,
        reason::kTooManySamples, reason::kInProgress, reason::kForbidden, reason::kProducerError}) {
    out.emplace(r, 0);
  }
  for (const auto& [r, n] : s.scheduler.failures) out[r] += n;
  out["schema"] += s.pipeline.failures_schema;
  out["schema_unavailable"] += s.pipeline.failures_schema_unavailable;
  out["unstorable"] += s.pipeline.failures_unstorable;
  out["timestamp"] += s.pipeline.failures_timestamp;
  return out;
}

ReasonCounts rejected_by_reason(const CollectorSnapshot& s) {
  return {{"schema", s.pipeline.rejected_schema},
          {"unstorable", s.pipeline.rejected_unstorable},
          {"timestamp", s.pipeline.rejected_timestamp},
          {"database", s.sink.rejected_database}};
}

ReasonCounts dropped_by_reason(const CollectorSnapshot& s) {
  return {{"queue_full", s.sink.dropped_queue_full},
          {"spool_full", s.sink.dropped_spool_full},
          {"spool_error", s.sink.dropped_spool_error},
          {"stopped", s.sink.dropped_stopped},
          {"schema_unavailable", s.pipeline.dropped_schema_unavailable}};
}

std::string render_prometheus(const CollectorSnapshot& s) {
  std::string out;
  out.reserve(8192);
  const std::string id = s.collector_id.to_string();
  prometheus::append_family(out, "tally_collector_build_info", "gauge",
                            "Always 1; the labels say which collector and version this is.");
  const Label info[] = {{"collector_id", id}, {"version", s.version}};
  prometheus::append_sample(out, "tally_collector_build_info", info, uint64_t{1});
  gauge(out, "tally_collector_start_time_seconds", "When the collector started (Unix time).",
        static_cast<double>(s.start_time.time_since_epoch().count()) / 1e6);

  // Collections.
  gauge(out, "tally_collector_producers", "Producers being polled.",
        static_cast<double>(s.scheduler.producers));
  gauge(out, "tally_collector_collections_in_progress", "Collections queued or running now.",
        static_cast<double>(s.scheduler.in_progress));
  counter(out, "tally_collector_collections_total", "Collections started.",
          s.scheduler.collections);
  counter(out, "tally_collector_collection_successes_total",
          "Collections whose samples were delivered.", s.scheduler.successes);
  by_reason(out, "tally_collector_failures_total",
            "Failed collections and skipped polls by reason (see docs/collector.md).",
            failures_by_reason(s));
  counter(out, "tally_collector_missed_polls_total",
          "Poll slots that passed while the scheduler could not run.", s.scheduler.missed_polls);
  const CollectionLatency& cl = s.scheduler.latency;
  histogram(out, "tally_collector_collection_duration_seconds",
            "Duration of each collection that reached its producer, from leaving the queue to "
            "the samples decoded.",
            CollectionLatency::kBounds, cl.counts, cl.count, cl.sum_seconds);

  // Samples.
  counter(out, "tally_collector_samples_collected_total", "Samples decoded from producers.",
          s.scheduler.samples);
  counter(out, "tally_collector_self_samples_total",
          "The collector's own samples (target tally_collector) sent to the schema check.",
          s.pipeline.self_samples);
  counter(out, "tally_collector_samples_queued_total", "Samples accepted into the sink's queue.",
          s.sink.samples_queued);
  counter(out, "tally_collector_samples_stored_total", "Samples written to Postgres.",
          s.sink.samples_stored);
  by_reason(out, "tally_collector_samples_rejected_total", "Samples refused, by reason.",
            rejected_by_reason(s));
  counter(out, "tally_collector_samples_spooled_total",
          "Samples written to the on-disk spool while Postgres was away.", s.sink.samples_spooled);
  counter(out, "tally_collector_samples_replayed_total", "Samples read back from the spool.",
          s.sink.samples_replayed);
  by_reason(out, "tally_collector_samples_dropped_total", "Samples lost, by reason.",
            dropped_by_reason(s));
  counter(out, "tally_collector_samples_deferred_total",
          "Samples set aside because the schema store was unreachable (checked again later).",
          s.pipeline.deferred_schema_unavailable);
  gauge(out, "tally_collector_samples_pending_schema",
        "Samples set aside now, waiting for the schema store.",
        static_cast<double>(s.pipeline.pending_schema));

  // Sink.
  gauge(out, "tally_collector_queue_depth", "Samples in the sink's memory queue.",
        static_cast<double>(s.sink.queue_depth + s.sink.in_flight));
  gauge(out, "tally_collector_queue_bytes",
        "Approximate heap bytes of the samples in the sink's memory queue (bounded by "
        "database.max_queue_bytes).",
        static_cast<double>(s.sink.queue_bytes + s.sink.in_flight_bytes));
  counter(out, "tally_collector_samples_unjournaled_total",
          "Samples queued in memory only because their journal append failed (disk full): lost "
          "if the collector is killed before they are stored.",
          s.sink.samples_unjournaled);
  counter(out, "tally_collector_push_waits_total",
          "Collections that found the sink's queue full and waited for room (up to two "
          "database.batch_interval) instead of being dropped: Postgres is slower than the "
          "producers.",
          s.sink.push_waits);
  gauge(out, "tally_collector_spool_bytes", "Bytes in spool files.",
        static_cast<double>(s.sink.spool_bytes));
  gauge(out, "tally_collector_spool_files", "Spool files waiting to be replayed.",
        static_cast<double>(s.sink.spool_files));
  counter(out, "tally_collector_spool_corrupt_files_total", "Spool files set aside as corrupt.",
          s.sink.spool_corrupt_files);
  gauge(out, "tally_collector_database_up", "1 while the sink's last write (or connect) succeeded.",
        s.sink.database_up ? 1 : 0);
  counter(out, "tally_collector_batches_written_total", "Batches committed.",
          s.sink.batches_written);
  counter(out, "tally_collector_write_failures_total", "Batch writes that failed.",
          s.sink.write_failures);
  const LatencyHistogram& il = s.sink.insert_latency;
  histogram(out, "tally_collector_insert_duration_seconds",
            "Duration of each successful batch write (one transaction of COPYs).",
            LatencyHistogram::kBounds, il.counts, il.count, il.sum_seconds);

  // Schemas.
  counter(out, "tally_collector_schemas_created_total",
          "New timeseries schemas this collector stored.", s.pipeline.schemas_created);
  gauge(out, "tally_collector_schemas_cached", "Timeseries schemas in the schema check's cache.",
        static_cast<double>(s.schemas_cached));

  // Maintenance.
  counter(out, "tally_collector_partitions_created_total",
          "Day partitions created ahead by the collector's maintenance.", s.partitions_created);
  counter(out, "tally_collector_partitions_dropped_total",
          "Day partitions dropped by the collector's maintenance (older than retention_days).",
          s.partitions_dropped);

  // Scraper.
  gauge(out, "tally_collector_connections_open", "Keep-alive connections to producers.",
        static_cast<double>(s.scraper.connections_open));
  counter(out, "tally_collector_connections_opened_total", "Connections made to producers.",
          s.scraper.connections_opened);
  counter(out, "tally_collector_requests_sent_total", "HTTP requests sent to producers.",
          s.scraper.requests_sent);

  // Registry.
  if (s.registry) {
    counter(out, "tally_collector_registry_heartbeats_total",
            "Heartbeats sent to the registry (failures included).", s.registry->heartbeats);
    counter(out, "tally_collector_registry_heartbeat_failures_total", "Heartbeats that failed.",
            s.registry->heartbeat_failures);
    counter(out, "tally_collector_registry_refreshes_total",
            "Assignment refreshes attempted (failures included).", s.registry->refreshes);
    counter(out, "tally_collector_registry_refresh_failures_total",
            "Assignment refreshes that failed (the last good list is kept).",
            s.registry->refresh_failures);
  }
  return out;
}

}  // namespace tally::collector
