#include "tally/registry/metrics.h"

#include "tally/common/prometheus_text.h"

namespace tally::registry {

namespace prom = tally::prometheus;

void RegistryMetrics::observe_request(std::string_view route, int status, double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{std::string(route), status}];
  Histogram& h = durations_[std::string(route)];
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

void RegistryMetrics::set_counts(const Counts& counts) {
  std::lock_guard lock(mu_);
  counts_ = counts;
  have_counts_ = true;
}

std::string RegistryMetrics::render() const {
  std::string out;
  std::lock_guard lock(mu_);

  prom::append_family(out, "tally_registry_requests_total", "counter",
                      "HTTP requests answered by the API, by route and status.");
  for (const auto& [key, n] : requests_) {
    const std::string status = std::to_string(key.second);
    const prom::Label labels[] = {{"route", key.first}, {"status", status}};
    prom::append_sample(out, "tally_registry_requests_total", labels, n);
  }

  prom::append_family(out, "tally_registry_request_duration_seconds", "histogram",
                      "Time from a request being read to its response being ready.");
  for (const auto& [route, h] : durations_) {
    uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      std::string le;
      prom::append_value(le, kBuckets[i]);
      const prom::Label labels[] = {{"route", route}, {"le", le}};
      prom::append_sample(out, "tally_registry_request_duration_seconds_bucket", labels,
                          cumulative);
    }
    const prom::Label inf[] = {{"route", route}, {"le", "+Inf"}};
    prom::append_sample(out, "tally_registry_request_duration_seconds_bucket", inf, h.count);
    const prom::Label labels[] = {{"route", route}};
    prom::append_sample(out, "tally_registry_request_duration_seconds_sum", labels, h.sum);
    prom::append_sample(out, "tally_registry_request_duration_seconds_count", labels, h.count);
  }

  if (have_counts_) {
    const auto gauge = [&](std::string_view name, std::string_view help, int64_t value) {
      prom::append_family(out, name, "gauge", help);
      prom::append_sample(out, name, {}, value);
    };
    gauge("tally_registry_producers", "Registered producers.", counts_.producers);
    gauge("tally_registry_unassigned_producers",
          "Registered producers waiting for a live collector.", counts_.unassigned);
    gauge("tally_registry_live_collectors",
          "Collectors whose last heartbeat is younger than collector_ttl.",
          counts_.live_collectors);
    gauge("tally_registry_collectors", "Collectors known, live or not.", counts_.collectors);
  }

  const auto counter = [&](std::string_view name, std::string_view help, int64_t value) {
    prom::append_family(out, name, "counter", help);
    prom::append_sample(out, name, {}, value);
  };
  counter("tally_registry_reassignments_total",
          "Producers moved by this registry from a dead collector to a live one.",
          reassignments_.load());
  counter("tally_registry_assignments_total",
          "Unassigned producers given to a live collector by this registry's GC.",
          assignments_.load());
  counter("tally_registry_expired_producers_total",
          "Producers deleted by this registry's GC because their lease ran out.", expired_.load());

  prom::append_family(out, "tally_registry_gc_runs_total", "counter",
                      "GC passes run by this registry, by result.");
  const prom::Label ok[] = {{"result", "ok"}};
  prom::append_sample(out, "tally_registry_gc_runs_total", ok, gc_ok_.load());
  const prom::Label failed[] = {{"result", "error"}};
  prom::append_sample(out, "tally_registry_gc_runs_total", failed, gc_failed_.load());

  prom::append_family(out, "tally_registry_database_up", "gauge",
                      "1 when the last database access of this registry worked.");
  prom::append_sample(out, "tally_registry_database_up", {}, int64_t{database_up_ ? 1 : 0});
  return out;
}

}  // namespace tally::registry
