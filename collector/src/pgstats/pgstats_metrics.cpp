#include "tally/collector/pgstats/pgstats_metrics.h"

#include <algorithm>
#include <limits>
#include <span>
#include <string_view>

#include "tally/common/prometheus_text.h"

namespace tally::collector::pgstats {
namespace {

using prometheus::Label;

constexpr std::string_view kPrefix = "tally_collector_pgstats_";

std::string name(std::string_view what) { return std::string(kPrefix) + std::string(what); }

// One counter family with a sample per target.
template <class Get>
void per_target(std::string& out, std::string_view what, std::string_view type,
                std::string_view help, const PgstatsSnapshot& s, Get get) {
  const std::string n = name(what);
  prometheus::append_family(out, n, type, help);
  for (const TargetSnapshot& t : s.targets) {
    const Label labels[] = {{"target", t.name}};
    prometheus::append_sample(out, n, labels, static_cast<uint64_t>(get(t)));
  }
}

// One counter family with a sample per target and query.
template <class Get>
void per_query(std::string& out, std::string_view what, std::string_view help,
               const PgstatsSnapshot& s, Get get) {
  const std::string n = name(what);
  prometheus::append_family(out, n, "counter", help);
  for (const TargetSnapshot& t : s.targets) {
    for (const auto& [query, q] : t.queries) {
      const Label labels[] = {{"target", t.name}, {"query", query}};
      prometheus::append_sample(out, n, labels, get(q));
    }
  }
}

void latency_histogram(std::string& out, const PgstatsSnapshot& s) {
  const std::string n = name("query_duration_seconds");
  const std::string bucket = n + "_bucket";
  prometheus::append_family(out, n, "histogram",
                            "Duration of each monitoring query, timeouts included.");
  std::string le;
  for (const TargetSnapshot& t : s.targets) {
    for (const auto& [query, q] : t.queries) {
      uint64_t cumulative = 0;
      for (std::size_t i = 0; i < QueryLatency::kBounds.size(); ++i) {
        cumulative += q.latency.counts[i];
        le.clear();
        prometheus::append_value(le, QueryLatency::kBounds[i]);
        const Label labels[] = {{"target", t.name}, {"query", query}, {"le", le}};
        prometheus::append_sample(out, bucket, labels, cumulative);
      }
      const Label inf[] = {{"target", t.name}, {"query", query}, {"le", "+Inf"}};
      prometheus::append_sample(out, bucket, inf, q.latency.count);
      const Label labels[] = {{"target", t.name}, {"query", query}};
      prometheus::append_sample(out, n + "_sum", labels, q.latency.sum_seconds);
      prometheus::append_sample(out, n + "_count", labels, q.latency.count);
    }
  }
}

}  // namespace

void QueryLatency::observe(double seconds) {
  const auto it = std::lower_bound(kBounds.begin(), kBounds.end(), seconds);
  ++counts[static_cast<std::size_t>(it - kBounds.begin())];
  ++count;
  sum_seconds += seconds;
}

void append_prometheus(std::string& out, const PgstatsSnapshot& s) {
  uint64_t by_source[2] = {0, 0};
  for (const TargetSnapshot& t : s.targets) ++by_source[t.source == "static" ? 0 : 1];
  const std::string targets = name("targets");
  prometheus::append_family(out, targets, "gauge", "Postgres targets known, by source.");
  const Label static_label[] = {{"source", "static"}};
  const Label api_label[] = {{"source", "api"}};
  prometheus::append_sample(out, targets, static_label, by_source[0]);
  prometheus::append_sample(out, targets, api_label, by_source[1]);

  per_target(out, "connected", "gauge", "1 while the target's connection is open.", s,
             [](const TargetSnapshot& t) { return t.connected ? 1 : 0; });
  per_target(out, "polls_total", "counter", "Polls of the target started.", s,
             [](const TargetSnapshot& t) { return t.polls; });
  per_target(out, "polls_skipped_total", "counter",
             "Polls skipped because the previous one was still queued or running.", s,
             [](const TargetSnapshot& t) { return t.polls_skipped; });
  per_target(out, "connects_total", "counter", "Connections opened to the target.", s,
             [](const TargetSnapshot& t) { return t.connects; });
  per_target(out, "connect_errors_total", "counter",
             "Connection attempts that failed (refused, timed out, authentication, set-up).", s,
             [](const TargetSnapshot& t) { return t.connect_errors; });
  per_target(out, "samples_total", "counter", "Samples made from the target's answers.", s,
             [](const TargetSnapshot& t) { return t.samples; });
  per_query(out, "queries_total", "Monitoring queries sent.", s,
            [](const QueryStats& q) { return q.runs; });
  per_query(out, "query_errors_total", "Monitoring queries that failed (timeouts not included).", s,
            [](const QueryStats& q) { return q.errors; });
  per_query(out, "query_timeouts_total",
            "Monitoring queries cancelled after query_timeout (their connection is closed).", s,
            [](const QueryStats& q) { return q.timeouts; });
  latency_histogram(out, s);
  if (s.discovery) {
    prometheus::append_family(out, name("discovery_refreshes_total"), "counter",
                              "Fetches of the discovery API, failures included.");
    prometheus::append_sample(out, name("discovery_refreshes_total"), {}, s.discovery_refreshes);
    prometheus::append_family(out, name("discovery_failures_total"), "counter",
                              "Fetches of the discovery API whose list was not used (the last "
                              "good list was kept).");
    prometheus::append_sample(out, name("discovery_failures_total"), {}, s.discovery_failures);
  }
}

std::vector<Sample> make_self_samples(const PgstatsSnapshot& s, const Uuid& collector_id,
                                      Timestamp process_start, Timestamp now) {
  std::vector<Sample> out;
  const Target target{"tally_collector", {{"collector_id", collector_id}}};
  const auto add = [&](std::string_view metric, Fields fields, Datum datum) {
    out.push_back(Sample{make_timeseries(target, Metric{std::string(metric), std::move(fields)}),
                         now, std::move(datum)});
  };
  int64_t by_source[2] = {0, 0};
  for (const TargetSnapshot& t : s.targets) ++by_source[t.source == "static" ? 0 : 1];
  add("pgstats_targets", {{"source", std::string("static")}}, by_source[0]);
  add("pgstats_targets", {{"source", std::string("api")}}, by_source[1]);

  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  for (const TargetSnapshot& t : s.targets) {
    const auto counter = [&](std::string_view metric, uint64_t value) {
      add(metric, {{"pg_target", t.name}}, Cumulative<uint64_t>{t.added, value});
    };
    counter("pgstats_polls", t.polls);
    counter("pgstats_polls_skipped", t.polls_skipped);
    counter("pgstats_connects", t.connects);
    counter("pgstats_connect_errors", t.connect_errors);
    for (const auto& [query, q] : t.queries) {
      const Fields fields = {{"pg_target", t.name}, {"query", query}};
      add("pgstats_query_errors", fields, Cumulative<uint64_t>{t.added, q.errors});
      add("pgstats_query_timeouts", fields, Cumulative<uint64_t>{t.added, q.timeouts});
      // Like the collector's other latency histograms: one bin per bucket, no min, max or
      // squared mean (NaN).
      Histogram<double> h;
      h.start_time = t.added;
      h.bins.push_back({std::nullopt, q.latency.counts[0]});
      for (std::size_t i = 0; i < QueryLatency::kBounds.size(); ++i) {
        h.bins.push_back({QueryLatency::kBounds[i], q.latency.counts[i + 1]});
      }
      h.n_samples = q.latency.count;
      h.min = kNaN;
      h.max = kNaN;
      h.sum_of_samples = q.latency.sum_seconds;
      h.squared_mean = kNaN;
      add("pgstats_query_duration", fields, std::move(h));
    }
  }
  if (s.discovery) {
    add("pgstats_discovery_refreshes", {},
        Cumulative<uint64_t>{process_start, s.discovery_refreshes});
    add("pgstats_discovery_failures", {},
        Cumulative<uint64_t>{process_start, s.discovery_failures});
  }
  return out;
}

}  // namespace tally::collector::pgstats
