// The Postgres monitor measuring itself: per target and query, latency, errors and timeouts; per
// target, polls, skipped polls and connect errors; discovery refreshes and failures; targets
// known. Two ways out, like the rest of the collector's own metrics (collector_metrics.h): lines
// for GET /metrics, and samples of target `tally_collector`. docs/pgstats.md lists them.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tally/common/field.h"
#include "tally/common/sample.h"
#include "tally/common/time.h"

namespace tally::collector::pgstats {

// Query latency in seconds: counts[i] holds observations in (kBounds[i-1], kBounds[i]], the last
// count those above every bound.
struct QueryLatency {
  static constexpr std::array<double, 12> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1,    2.5,   10};
  std::array<uint64_t, kBounds.size() + 1> counts{};
  uint64_t count = 0;
  double sum_seconds = 0;

  void observe(double seconds);
};

struct QueryStats {
  uint64_t runs = 0;      // queries sent (answered, failed or timed out)
  uint64_t errors = 0;    // failed, timeouts not included
  uint64_t timeouts = 0;  // cancelled after query_timeout
  QueryLatency latency;   // every run, timeouts included
};

// One target's counters since it was added (a target removed and added again starts afresh).
struct TargetSnapshot {
  std::string name;
  std::string source;  // "static" or "api"
  Timestamp added;     // start time of its cumulative self samples
  bool connected = false;
  int server_version = 0;      // server_version_num, 0 before the first connection
  uint64_t polls = 0;          // polls started
  uint64_t polls_skipped = 0;  // due while the previous poll was still queued or running
  uint64_t connects = 0;       // connections opened
  uint64_t connect_errors = 0;
  uint64_t samples = 0;                       // samples handed on
  std::map<std::string, QueryStats> queries;  // by query name; every query of its version
};

struct PgstatsSnapshot {
  std::vector<TargetSnapshot> targets;  // sorted by name
  bool discovery = false;               // an API is configured
  uint64_t discovery_refreshes = 0;
  uint64_t discovery_failures = 0;
};

// Appends the Prometheus text (0.0.4) families tally_collector_pgstats_* to `out`.
void append_prometheus(std::string& out, const PgstatsSnapshot& s);

// The snapshot as samples of target tally_collector{collector_id}: counters as cumulative_u64
// (start: the target's `added`, or `process_start` for discovery), gauges as i64, latency as
// histogram_f64. Metric fields `pg_target` and `query`.
std::vector<Sample> make_self_samples(const PgstatsSnapshot& s, const Uuid& collector_id,
                                      Timestamp process_start, Timestamp now);

}  // namespace tally::collector::pgstats
