// The Postgres monitor's own metrics: the /metrics lines and the self samples.
#include "tally/collector/pgstats/pgstats_metrics.h"

#include <doctest/doctest.h>

#include <set>

namespace tally::collector::pgstats {
namespace {

const Timestamp kStart = parse_rfc3339("2026-11-22T09:00:00Z").value();
const Timestamp kAdded = parse_rfc3339("2026-11-22T09:30:00Z").value();
const Timestamp kNow = parse_rfc3339("2026-11-22T10:00:00Z").value();

PgstatsSnapshot snapshot() {
  PgstatsSnapshot s;
  TargetSnapshot a;
  a.name = "main";
  a.source = "static";
  a.added = kAdded;
  a.connected = true;
  a.polls = 7;
  a.polls_skipped = 1;
  a.connects = 2;
  a.samples = 300;
  QueryStats q;
  q.runs = 7;
  q.timeouts = 1;
  q.latency.observe(0.004);
  q.latency.observe(0.3);
  a.queries["stat_database"] = q;
  a.queries["instance"] = QueryStats{};
  TargetSnapshot b;
  b.name = "replica \"2\"";
  b.source = "api";
  b.added = kAdded;
  b.connect_errors = 3;
  s.targets = {a, b};
  s.discovery = true;
  s.discovery_refreshes = 5;
  s.discovery_failures = 2;
  return s;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST_CASE("/metrics: per target, per query (zeros included), discovery and targets by source") {
  std::string text;
  append_prometheus(text, snapshot());
  CHECK(has_line(text, "tally_collector_pgstats_targets{source=\"static\"} 1"));
  CHECK(has_line(text, "tally_collector_pgstats_targets{source=\"api\"} 1"));
  CHECK(has_line(text, "tally_collector_pgstats_connected{target=\"main\"} 1"));
  CHECK(has_line(text, "tally_collector_pgstats_polls_total{target=\"main\"} 7"));
  CHECK(has_line(text, "tally_collector_pgstats_polls_skipped_total{target=\"main\"} 1"));
  CHECK(has_line(text,
                 "tally_collector_pgstats_connect_errors_total{target=\"replica \\\"2\\\"\"} 3"));
  CHECK(has_line(text,
                 "tally_collector_pgstats_query_timeouts_total{target=\"main\","
                 "query=\"stat_database\"} 1"));
  CHECK(has_line(text,
                 "tally_collector_pgstats_query_errors_total{target=\"main\","
                 "query=\"instance\"} 0"));
  CHECK(has_line(text,
                 "tally_collector_pgstats_query_duration_seconds_bucket{target=\"main\","
                 "query=\"stat_database\",le=\"0.005\"} 1"));
  CHECK(has_line(text,
                 "tally_collector_pgstats_query_duration_seconds_bucket{target=\"main\","
                 "query=\"stat_database\",le=\"0.25\"} 1"));
  CHECK(has_line(text,
                 "tally_collector_pgstats_query_duration_seconds_bucket{target=\"main\","
                 "query=\"stat_database\",le=\"0.5\"} 2"));
  CHECK(has_line(text,
                 "tally_collector_pgstats_query_duration_seconds_count{target=\"main\","
                 "query=\"stat_database\"} 2"));
  CHECK(has_line(text, "tally_collector_pgstats_discovery_refreshes_total 5"));
  CHECK(has_line(text, "tally_collector_pgstats_discovery_failures_total 2"));
  // Each family once.
  CHECK(text.find("# TYPE tally_collector_pgstats_polls_total counter") ==
        text.rfind("# TYPE tally_collector_pgstats_polls_total counter"));
}

TEST_CASE("/metrics without discovery has no discovery families") {
  PgstatsSnapshot s = snapshot();
  s.discovery = false;
  std::string text;
  append_prometheus(text, s);
  CHECK(text.find("discovery") == std::string::npos);
}

TEST_CASE("self samples are valid tally_collector series starting when the target was added") {
  const Uuid id = Uuid::parse("cccccccc-0000-4000-8000-000000000001").value();
  const std::vector<Sample> samples = make_self_samples(snapshot(), id, kStart, kNow);
  std::set<std::string> names;
  for (const Sample& s : samples) {
    const Status valid = validate_sample(s);
    CHECK_MESSAGE(valid.ok(), valid.message());
    CHECK(s.timestamp == kNow);
    CHECK(s.target().name == "tally_collector");
    names.insert(s.timeseries_name());
  }
  for (const char* name :
       {"tally_collector:pgstats_targets", "tally_collector:pgstats_polls",
        "tally_collector:pgstats_polls_skipped", "tally_collector:pgstats_connects",
        "tally_collector:pgstats_connect_errors", "tally_collector:pgstats_query_errors",
        "tally_collector:pgstats_query_timeouts", "tally_collector:pgstats_query_duration",
        "tally_collector:pgstats_discovery_refreshes",
        "tally_collector:pgstats_discovery_failures"}) {
    CAPTURE(name);
    CHECK(names.contains(name));
  }
  for (const Sample& s : samples) {
    if (s.metric().name != "pgstats_query_timeouts") continue;
    if (s.metric().fields !=
        Fields{{"pg_target", std::string("main")}, {"query", std::string("stat_database")}}) {
      continue;
    }
    CHECK(same_datum(s.datum, Cumulative<uint64_t>{kAdded, 1}));
  }
}

}  // namespace
}  // namespace tally::collector::pgstats
