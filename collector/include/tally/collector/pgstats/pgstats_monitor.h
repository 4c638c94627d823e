// The collector's Postgres monitor (DESIGN.md §5 "Postgres monitoring (pgstatsmon)"): polls the
// pg_stat views of every target every `interval` and hands the samples (target
// postgres_instance) to the caller, which sends them through the same schema check and sink as
// every producer's. docs/pgstats.md is the operator's guide.
//
//   PgstatsMonitor monitor({.config = *config.postgres_monitoring},
//                          [&](std::vector<Sample> samples) { pipeline.push({}, samples); });
//   monitor.start();
//   monitor.prometheus_text();   // GET /metrics
//   monitor.stop();
//
// Threads of its own, none of them an I/O thread: a timer that starts due polls, up to
// max_in_flight workers that run them (blocking libpq calls; started as needed), the watchdog
// that cancels queries past query_timeout, and the discovery thread when an API is configured.
// A poll due while the target's previous one is still queued or running is skipped and counted.
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tally/collector/deps.h"
#include "tally/collector/pgstats/discovery.h"
#include "tally/collector/pgstats/pgstats_metrics.h"
#include "tally/collector/pgstats/queries.h"
#include "tally/common/field.h"
#include "tally/common/sample.h"
#include "tally/common/time.h"
#include "tally/config/collector_config.h"

namespace tally::collector::pgstats {

struct MonitorOptions {
  config::PostgresMonitoringConfig config;
  // What is asked of each server; tests add queries of their own (a query that blocks).
  std::vector<QuerySpec> queries = builtin_queries();
  DiscoveryFetch fetch = http_discovery_fetch();
  // Reconnect backoff after a failed connection: doubling from min to max.
  Clock::duration min_backoff = std::chrono::seconds(1);
  Clock::duration max_backoff = std::chrono::seconds(60);
  // The offset of a target's first poll inside its interval; empty: uniformly random, so that
  // targets added together do not all poll at once.
  std::function<Clock::duration(Clock::duration interval)> first_offset;
};

// Called on a worker thread with each poll's samples (never empty); may block (the schema
// check, the sink's back-pressure), which holds up that worker only.
using PgSamplesCallback = std::function<void(std::vector<Sample> samples)>;

class PgstatsMonitor {
 public:
  PgstatsMonitor(MonitorOptions options, PgSamplesCallback on_samples);
  ~PgstatsMonitor();  // stop()s
  PgstatsMonitor(const PgstatsMonitor&) = delete;
  PgstatsMonitor& operator=(const PgstatsMonitor&) = delete;

  // Starts polling the static targets and, with an API, the discovery thread (first fetch at
  // once). Call once.
  void start();
  // Stops discovery and the timer, cancels running queries, joins every thread and closes every
  // connection. Samples of polls cancelled this way are dropped. Idempotent.
  void stop();

  // Replaces the API's targets (what Discovery does with each good list): new names are added,
  // names gone are removed (their query cancelled, their connection closed, their polling
  // ended), a name whose URL changed is removed and added again.
  void set_api_targets(std::vector<PgTarget> targets);
  // Fetches the API now on the calling thread (tests); false without an API or when it failed.
  bool refresh_discovery();

  std::vector<PgTarget> targets() const;  // polled now, sorted by name
  PgstatsSnapshot snapshot() const;
  // The tally_collector_pgstats_* families for GET /metrics.
  std::string prometheus_text() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::collector::pgstats
