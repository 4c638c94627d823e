// The collector measuring itself (DESIGN.md §5 "Own API"; STYLE.md: the exporter measures itself
// with its own metrics). One snapshot of every part's counters, and the two ways it leaves the
// process: GET /metrics in Prometheus text, and ordinary Tally samples of target
// `tally_collector` that go through the same schema check and sink as everything else.
// docs/collector.md lists every metric.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tally/collector/scheduler.h"
#include "tally/collector/scraper.h"
#include "tally/collector/sink.h"
#include "tally/common/field.h"
#include "tally/common/sample.h"
#include "tally/common/time.h"

namespace tally::collector {

// What the daemon itself counts between the scheduler and the sink (a copy).
struct PipelineTotals {
  uint64_t rejected_schema = 0;      // samples that differ from the stored schema
  uint64_t rejected_unstorable = 0;  // samples check_storable refused (in the schema check)
  uint64_t rejected_timestamp = 0;   // samples outside the accepted time window
  // Samples the schema store could not check (database down), set aside and checked again.
  uint64_t deferred_schema_unavailable = 0;
  uint64_t dropped_schema_unavailable = 0;  // set-aside samples given up on (buffer full, stop)
  uint64_t pending_schema = 0;              // gauge: set aside right now
  uint64_t schemas_created = 0;
  uint64_t self_samples = 0;                 // the collector's own samples pushed to the check
  uint64_t failures_schema = 0;              // collections that had samples rejected for schema
  uint64_t failures_schema_unavailable = 0;  // collections that had samples set aside
  uint64_t failures_unstorable = 0;          // collections that had unstorable samples
  uint64_t failures_timestamp = 0;  // collections that had samples outside the time window
};

// The live counters behind PipelineTotals. Thread-safe; relaxed atomics (counts, not fences).
class PipelineCounters {
 public:
  std::atomic<uint64_t> rejected_schema{0};
  std::atomic<uint64_t> rejected_unstorable{0};
  std::atomic<uint64_t> rejected_timestamp{0};
  std::atomic<uint64_t> deferred_schema_unavailable{0};
  std::atomic<uint64_t> dropped_schema_unavailable{0};
  std::atomic<uint64_t> pending_schema{0};
  std::atomic<uint64_t> schemas_created{0};
  std::atomic<uint64_t> self_samples{0};
  std::atomic<uint64_t> failures_schema{0};
  std::atomic<uint64_t> failures_schema_unavailable{0};
  std::atomic<uint64_t> failures_unstorable{0};
  std::atomic<uint64_t> failures_timestamp{0};

  PipelineTotals totals() const;
};

struct RegistryTotals {
  uint64_t heartbeats = 0;
  uint64_t heartbeat_failures = 0;
  uint64_t refreshes = 0;
  uint64_t refresh_failures = 0;
};

// Everything /metrics and the self samples show, each part copied at one moment.
struct CollectorSnapshot {
  Uuid collector_id;
  std::string version;
  Timestamp start_time;  // the process's start: the start_time of every cumulative self series
  SchedulerTotals scheduler;
  ScraperStats scraper;
  SinkStats sink;
  PipelineTotals pipeline;
  uint64_t schemas_cached = 0;
  uint64_t partitions_created = 0;  // by the daemon's maintenance (retention)
  uint64_t partitions_dropped = 0;
  std::optional<RegistryTotals> registry;  // when a registry is configured
};

using ReasonCounts = std::map<std::string, uint64_t, std::less<>>;

// Failed collections by reason: the scheduler's plus the daemon's (schema, schema_unavailable,
// unstorable, timestamp).
// Every reason of DESIGN.md §5 is present, with 0 until it happens.
ReasonCounts failures_by_reason(const CollectorSnapshot& s);
// Samples refused by reason (schema, unstorable, timestamp, database), every reason present.
ReasonCounts rejected_by_reason(const CollectorSnapshot& s);
// Samples lost by reason (queue_full, spool_full, spool_error, stopped, schema_unavailable).
ReasonCounts dropped_by_reason(const CollectorSnapshot& s);

// The Prometheus text exposition (0.0.4) of GET /metrics.
std::string render_prometheus(const CollectorSnapshot& s);

// The snapshot as samples of target `tally_collector` (field collector_id), timestamped `now`:
// counters as cumulative_u64 starting at s.start_time, gauges as i64 / bool. The same series
// every time (reasons included), so each schema is checked once per process.
std::vector<Sample> make_self_samples(const CollectorSnapshot& s, Timestamp now);

}  // namespace tally::collector
