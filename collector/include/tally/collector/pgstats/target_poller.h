// One monitored Postgres server: its connection (opened with a connect timeout, reopened with
// backoff), the queries for its server_version_num, each run under the watchdog's query_timeout,
// and its counters. The monitor runs poll() on one of its worker threads, never two at once for
// the same target.
//
//   TargetPoller poller(target, {.query_timeout = 5s}, builtin_queries(), watchdog);
//   std::vector<Sample> samples = poller.poll();   // blocking: connect if needed, run queries
//   poller.abort();                                // any thread: cancel the running query
//
// docs/pgstats.md describes the behaviour.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tally/collector/deps.h"
#include "tally/collector/pgstats/discovery.h"
#include "tally/collector/pgstats/pgstats_metrics.h"
#include "tally/collector/pgstats/queries.h"
#include "tally/collector/pgstats/watchdog.h"
#include "tally/common/pg.h"
#include "tally/common/result.h"
#include "tally/common/sample.h"

namespace tally::collector::pgstats {

// Host and port of a libpq URI ("postgresql://u:pw@db1:5433/x", "postgres://[::1]/x",
// "postgresql:///x?host=/run/postgresql&port=5433") or key=value string ("host=db1 port=5433").
// The first host of a list; no host: "localhost" (libpq then uses its default Unix socket); no
// port: 5432. Error (code "bad_url") for a port that is not a number in 1..65535.
Result<Instance> parse_instance(std::string name, std::string_view url);

// `url` with `params` added, each only when the URL does not set it already: "?k=v&…" for a
// URI, " k='v'" for a key=value string.
std::string with_connection_params(std::string_view url,
                                   const std::vector<std::pair<std::string, std::string>>& params);

// Reconnect delays: `min`, doubling after each failure up to `max`; reset() after a success.
class Backoff {
 public:
  Backoff(Clock::duration min, Clock::duration max) : min_(min), max_(max), next_(min) {}
  // Records a failure at `now`: no attempt before the returned time.
  Clock::time_point failed(Clock::time_point now);
  void reset() { next_ = min_; }

 private:
  Clock::duration min_;
  Clock::duration max_;
  Clock::duration next_;
};

// A target's counters, written by the poll running it and read by GET /metrics. Thread-safe.
class TargetStats {
 public:
  TargetStats(const PgTarget& target, Timestamp added);
  void count_poll();
  void count_skipped();
  void count_samples(std::size_t n);
  void connected(int server_version, const std::vector<std::string>& queries);
  void connect_failed();
  void disconnected();
  enum class Outcome { kOk, kError, kTimeout };
  void observe(const std::string& query, double seconds, Outcome outcome);
  TargetSnapshot snapshot() const;

 private:
  mutable std::mutex mu_;
  TargetSnapshot s_;  // mu_
};

struct PollerOptions {
  std::chrono::microseconds query_timeout = std::chrono::seconds(5);
  // Reconnect backoff after a failed connect (or session set-up).
  Clock::duration min_backoff = std::chrono::seconds(1);
  Clock::duration max_backoff = std::chrono::seconds(60);
  const Clock* clock = &steady_clock();  // must outlive the poller
};

class TargetPoller {
 public:
  // `queries` and `watchdog` must outlive the poller.
  TargetPoller(PgTarget target, Instance instance, PollerOptions options,
               const std::vector<QuerySpec>& queries, Watchdog& watchdog, TargetStats& stats);
  ~TargetPoller();  // closes the connection
  TargetPoller(const TargetPoller&) = delete;
  TargetPoller& operator=(const TargetPoller&) = delete;

  // Connects if needed (not during a backoff), then runs every query for the server's version
  // and returns their samples. A query that fails is counted and the others still run; one that
  // times out ends the poll (the samples so far are returned) and closes the connection, as does
  // a broken connection. Blocking; one call at a time.
  std::vector<Sample> poll();

  // Cancels the query running now and makes poll() return as soon as it can, without further
  // queries; poll() returns nothing from then on. Any thread.
  void abort();

  const PgTarget& target() const { return target_; }

 private:
  struct Prepared {
    const QuerySpec* spec;
    std::string sql;                   // build_sql for the server's version
    std::vector<std::string> columns;  // result_columns
  };
  bool connect();
  void close();
  // Runs one query under the watchdog; false when the poll must end (timeout, broken, aborted).
  bool run_query(const Prepared& p, std::vector<Sample>& out);

  const PgTarget target_;
  const Instance instance_;
  const Target sample_target_;
  const PollerOptions options_;
  const std::vector<QuerySpec>& all_queries_;
  Watchdog& watchdog_;
  TargetStats& stats_;

  // The poll's own state (one poll at a time).
  std::shared_ptr<pg::Connection> conn_;
  int version_ = 0;
  std::vector<Prepared> queries_;  // for version_
  Backoff backoff_;
  Clock::time_point retry_at_{};
  bool ever_connected_ = false;
  bool connect_failing_ = false;           // log a connect failure once per streak
  std::set<std::string> failing_queries_;  // log a query failure once per streak

  std::mutex abort_mu_;
  bool aborted_ = false;         // abort_mu_
  Watchdog::Token running_ = 0;  // abort_mu_: the armed query, 0 when none
};

}  // namespace tally::collector::pgstats
