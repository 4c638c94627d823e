// The registry's own metrics, served at GET /metrics in Prometheus text format. Thread-safe.
//
//   tally_registry_requests_total{route,status}          counter
//   tally_registry_request_duration_seconds{route}       histogram
//   tally_registry_producers / _unassigned_producers     gauges (read from the database)
//   tally_registry_live_collectors / _collectors         gauges (read from the database)
//   tally_registry_reassignments_total                   counter (moves off dead collectors)
//   tally_registry_assignments_total                     counter (unassigned → live, by GC)
//   tally_registry_expired_producers_total               counter
//   tally_registry_gc_runs_total{result}                 counter
//   tally_registry_database_up                           gauge (1 while the last check worked)
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "tally/registry/store.h"

namespace tally::registry {

class RegistryMetrics {
 public:
  // Upper bounds of the latency buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 12> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1,    2.5,   5};

  // `route` is a route template ("/v1/producers/{id}"), never a raw path.
  void observe_request(std::string_view route, int status, double seconds);
  void add_reassignments(int64_t n) { reassignments_ += n; }
  void add_assignments(int64_t n) { assignments_ += n; }
  void add_expired(int64_t n) { expired_ += n; }
  void gc_run(bool ok) { (ok ? gc_ok_ : gc_failed_) += 1; }
  void set_counts(const Counts& counts);
  void set_database_up(bool up) { database_up_ = up; }

  int64_t reassignments() const { return reassignments_; }

  // The exposition text.
  std::string render() const;

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};  // not cumulative; summed when rendered
    uint64_t count = 0;
    double sum = 0;
  };

  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (route, status) → count
  std::map<std::string, Histogram> durations_;                // route → latencies
  Counts counts_;
  bool have_counts_ = false;

  std::atomic<int64_t> reassignments_{0};
  std::atomic<int64_t> assignments_{0};
  std::atomic<int64_t> expired_{0};
  std::atomic<int64_t> gc_ok_{0};
  std::atomic<int64_t> gc_failed_{0};
  std::atomic<bool> database_up_{false};
};

}  // namespace tally::registry
