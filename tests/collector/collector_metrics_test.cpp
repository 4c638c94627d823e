#include "tally/collector/collector_metrics.h"

#include <doctest/doctest.h>

#include <set>

namespace tally::collector {
namespace {

const Timestamp kStart = parse_rfc3339("2026-11-22T10:00:00Z").value();

CollectorSnapshot snapshot() {
  CollectorSnapshot s;
  s.collector_id = Uuid::parse("cccccccc-0000-4000-8000-000000000001").value();
  s.version = "0.1.0";
  s.start_time = kStart;
  s.scheduler.producers = 3;
  s.scheduler.collections = 10;
  s.scheduler.failures = {{"http_503", 2}, {"timeout", 1}};
  s.scheduler.latency.counts[0] = 4;  // ≤ 5 ms
  s.scheduler.latency.counts[3] = 1;  // ≤ 50 ms
  s.scheduler.latency.count = 5;
  s.scheduler.latency.sum_seconds = 0.07;
  s.sink.samples_stored = 90;
  s.sink.dropped_spool_full = 4;
  s.sink.queue_depth = 5;
  s.sink.in_flight = 2;
  s.pipeline.rejected_schema = 6;
  s.pipeline.failures_schema = 1;
  return s;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST_CASE("/metrics has every reason, zeros included, and cumulative histogram buckets") {
  const std::string text = render_prometheus(snapshot());
  CHECK(has_line(text, "tally_collector_collections_total 10"));
  CHECK(has_line(text, "tally_collector_failures_total{reason=\"http_503\"} 2"));
  CHECK(has_line(text, "tally_collector_failures_total{reason=\"timeout\"} 1"));
  CHECK(has_line(text, "tally_collector_failures_total{reason=\"unreachable\"} 0"));
  CHECK(has_line(text, "tally_collector_failures_total{reason=\"schema\"} 1"));
  CHECK(has_line(text, "tally_collector_samples_rejected_total{reason=\"schema\"} 6"));
  CHECK(has_line(text, "tally_collector_samples_rejected_total{reason=\"timestamp\"} 0"));
  CHECK(has_line(text, "tally_collector_samples_dropped_total{reason=\"spool_full\"} 4"));
  CHECK(has_line(text, "tally_collector_samples_dropped_total{reason=\"schema_unavailable\"} 0"));
  CHECK(has_line(text, "tally_collector_queue_depth 7"));
  CHECK(has_line(text, "tally_collector_collection_duration_seconds_bucket{le=\"0.005\"} 4"));
  CHECK(has_line(text, "tally_collector_collection_duration_seconds_bucket{le=\"0.025\"} 4"));
  CHECK(has_line(text, "tally_collector_collection_duration_seconds_bucket{le=\"0.05\"} 5"));
  CHECK(has_line(text, "tally_collector_collection_duration_seconds_bucket{le=\"+Inf\"} 5"));
  CHECK(has_line(text, "tally_collector_collection_duration_seconds_count 5"));
  CHECK(text.find("# TYPE tally_collector_insert_duration_seconds histogram") != std::string::npos);
  CHECK(text.find("registry_heartbeats") == std::string::npos);  // no registry configured

  CollectorSnapshot with_registry = snapshot();
  with_registry.registry = RegistryTotals{.heartbeats = 9, .heartbeat_failures = 1};
  const std::string text2 = render_prometheus(with_registry);
  CHECK(has_line(text2, "tally_collector_registry_heartbeats_total 9"));
  CHECK(has_line(text2, "tally_collector_registry_heartbeat_failures_total 1"));
}

TEST_CASE(
    "/metrics shows the queue's bytes next to its depth, the unjournaled samples and the push "
    "waits") {
  CollectorSnapshot s = snapshot();
  s.sink.queue_bytes = 6000;
  s.sink.in_flight_bytes = 2400;
  s.sink.samples_unjournaled = 3;
  s.sink.push_waits = 4;
  const std::string text = render_prometheus(s);
  CHECK(has_line(text, "# TYPE tally_collector_queue_bytes gauge"));
  CHECK(has_line(text, "tally_collector_queue_bytes 8400"));  // the batch being written included
  CHECK(has_line(text, "# TYPE tally_collector_samples_unjournaled_total counter"));
  CHECK(has_line(text, "tally_collector_samples_unjournaled_total 3"));
  CHECK(has_line(text, "# TYPE tally_collector_push_waits_total counter"));
  CHECK(has_line(text, "tally_collector_push_waits_total 4"));
  // Next to the depth, as the docs list them.
  const auto depth = text.find("tally_collector_queue_depth ");
  const auto bytes = text.find("tally_collector_queue_bytes ");
  REQUIRE(depth != std::string::npos);
  CHECK(bytes > depth);
  CHECK(has_line(render_prometheus(snapshot()), "tally_collector_samples_unjournaled_total 0"));
}

TEST_CASE("self samples are valid, one per series, counters starting at the process start") {
  const CollectorSnapshot s = snapshot();
  const Timestamp now = kStart + std::chrono::seconds(30);
  const std::vector<Sample> samples = make_self_samples(s, now);
  REQUIRE(!samples.empty());
  std::set<int64_t> keys;
  std::set<std::string> failure_reasons;
  for (const Sample& sample : samples) {
    INFO(sample.timeseries_name());
    CHECK(validate_sample(sample).ok());
    CHECK(sample.target().name == "tally_collector");
    CHECK(sample.timestamp == now);
    CHECK(keys.insert(sample.key()).second);
    if (auto start = start_time(sample.datum)) CHECK(*start == kStart);
    if (sample.timeseries_name() == "tally_collector:collection_failures") {
      failure_reasons.insert(std::get<std::string>(sample.metric().fields.at(0).value));
    }
  }
  CHECK(failure_reasons.contains("http_503"));
  CHECK(failure_reasons.contains("unreachable"));
  CHECK(failure_reasons.contains("schema_unavailable"));
  // The same snapshot gives the same series.
  std::set<int64_t> again;
  for (const Sample& sample : make_self_samples(s, now)) again.insert(sample.key());
  CHECK(again == keys);
}

}  // namespace
}  // namespace tally::collector
