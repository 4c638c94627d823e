// End to end under faults: schema conflicts, Postgres going away under a running collector, and
// producers that misbehave — each visible in the collector's API and metrics, none breaking the
// rest.
#include <doctest/doctest.h>

#include <boost/json.hpp>
#include <map>
#include <set>

#include "e2e_support.h"
#include "support/test_db.h"

using namespace tally;
using namespace tally::test;
namespace json = boost::json;

namespace {

std::string static_producer(const std::string& id, const std::string& address,
                            const std::string& interval = "200ms") {
  return "  - {id: " + id + ", address: \"" + address + "\", interval: " + interval + "}\n";
}

std::string count_rows(const std::string& timeseries_name) {
  return "SELECT count(*) FROM tally.measurements_cumulative_u64 m JOIN tally.timeseries t "
         "USING (timeseries_key) WHERE t.timeseries_name = '" +
         timeseries_name + "'";
}

uint64_t failures(const json::value& producer, const std::string& reason) {
  const json::object& f = producer.at("counts").at("failures").as_object();
  const auto it = f.find(reason);
  return it == f.end() ? 0 : it->value().to_number<uint64_t>();
}

}  // namespace

TEST_CASE("e2e: a sample whose schema conflicts is rejected, shown with both schemas, counted") {
  TestDatabase db;
  const std::string a_id = "e2e00000-0000-4000-8000-00000000000a";
  const std::string b_id = "e2e00000-0000-4000-8000-00000000000b";
  // Both serve e2e_conflict:ticks; A's field n is a u16, B's a string.
  CounterProducer a("e2e_conflict", 2, "u16");
  CounterProducer b("e2e_conflict", 2, "string");
  b.freeze();  // until A's schema is stored, so A's is the one that wins
  TempDir state;
  CollectorProcess collector(collector_yaml(db.url(), state.path(),
                                            "static_producers:\n" +
                                                static_producer(a_id, a.address()) +
                                                static_producer(b_id, b.address())));
  REQUIRE(
      eventually([&] { return query_scalar(db.url(), count_rows("e2e_conflict:ticks")) != "0"; }));
  b.unfreeze();

  json::value p;
  REQUIRE_MESSAGE(eventually([&] {
                    p = collector.producer(b_id);
                    return !p.at("schema_conflicts").as_array().empty();
                  }),
                  collector.log());
  const json::value& conflict = p.at("schema_conflicts").at(0);
  CHECK(conflict.at("timeseries_name").as_string() == "e2e_conflict:ticks");
  const std::string stored(conflict.at("stored_schema").as_string());
  const std::string incoming(conflict.at("new_schema").as_string());
  CHECK_MESSAGE(stored.find("n u16 metric") != std::string::npos, stored);
  CHECK_MESSAGE(incoming.find("n string metric") != std::string::npos, incoming);
  CHECK(std::string(conflict.at("difference").as_string()).find("'n'") != std::string::npos);
  CHECK(failures(p, "schema") >= 1);
  CHECK(p.at("counts").at("samples_rejected").at("schema").to_number<uint64_t>() >= 2);
  CHECK(p.at("last_failure").at("reason").as_string() == "schema");

  CHECK(collector.metric("tally_collector_samples_rejected_total", "reason=\"schema\"") >= 2.0);
  CHECK(collector.metric("tally_collector_failures_total", "reason=\"schema\"") >= 1.0);
  // A is untouched: no conflict, and its samples keep being stored.
  const json::value pa = collector.producer(a_id);
  CHECK(pa.at("schema_conflicts").as_array().empty());
  CHECK(failures(pa, "schema") == 0);
  const uint64_t before = std::stoull(query_scalar(db.url(), count_rows("e2e_conflict:ticks")));
  CHECK(eventually([&] {
    return std::stoull(query_scalar(db.url(), count_rows("e2e_conflict:ticks"))) > before;
  }));
  // Every stored row is A's: B's field type never made it into tally.timeseries.
  CHECK(query_scalar(db.url(),
                     "SELECT count(*) FROM tally.timeseries WHERE timeseries_name = "
                     "'e2e_conflict:ticks'") == "2");
}

namespace {

// Every (timestamp, value) the producer served, once in each of its `series` series.
void check_stored_exactly(const std::string& url, const std::string& timeseries_name,
                          const CounterProducer& producer, int series) {
  const auto served = producer.served();
  const auto rows = query_rows(
      url,
      "SELECT (extract(epoch from m.timestamp) * 1000000)::bigint, m.datum::text, count(*) "
      "FROM tally.measurements_cumulative_u64 m JOIN tally.timeseries t USING (timeseries_key) "
      "WHERE t.timeseries_name = '" +
          timeseries_name + "' GROUP BY 1, 2 ORDER BY 1");
  REQUIRE(rows.size() == served.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CHECK(std::stoll(rows[i][0]) == served[i].first.time_since_epoch().count());
    CHECK(std::stoull(rows[i][1]) == served[i].second);
    CHECK(rows[i][2] == std::to_string(series));
  }
}

}  // namespace

TEST_CASE("e2e: samples collected while Postgres is down arrive once it is back, each once") {
  PrivateCluster pg;
  const std::string id = "e2e00000-0000-4000-8000-0000000000c0";
  const std::string late_id = "e2e00000-0000-4000-8000-0000000000c1";
  // `producer`'s schema is known before the outage; `late` first serves during it, so its
  // schema cannot be checked until Postgres is back.
  CounterProducer producer("e2e_outage", 20);
  CounterProducer late("e2e_late", 2);
  late.freeze();
  TempDir state;
  // A small queue, so the outage is spooled to disk rather than held in memory.
  CollectorProcess collector(collector_yaml(pg.url(), state.path(),
                                            "static_producers:\n" +
                                                static_producer(id, producer.address()) +
                                                static_producer(late_id, late.address()),
                                            ", batch_size: 50, max_queue_samples: 200"));
  REQUIRE_MESSAGE(
      eventually([&] { return query_scalar(pg.url(), count_rows("e2e_outage:ticks")) != "0"; }),
      collector.log());

  pg.stop();
  late.unfreeze();
  REQUIRE_MESSAGE(eventually([&] {
                    return collector.metric("tally_collector_samples_spooled_total") > 0.0 &&
                           collector.metric("tally_collector_samples_deferred_total") > 0.0;
                  }),
                  collector.log());
  CHECK(collector.metric("tally_collector_database_up") == 0.0);
  const json::value waiting = collector.producer(late_id);
  CHECK(failures(waiting, "schema_unavailable") >= 1);
  CHECK(waiting.at("last_failure").at("reason").as_string() == "schema_unavailable");
  pg.start();

  // Let a few collections happen after the restart too, then stop serving new samples.
  const uint64_t served_at_restart = producer.responses();
  REQUIRE(eventually([&] { return producer.responses() >= served_at_restart + 3; }));
  producer.freeze();
  late.freeze();
  const auto stored_all = [&](const std::string& name, const CounterProducer& p, int series) {
    return query_scalar(pg.url(), count_rows(name)) == std::to_string(p.responses() * series);
  };
  REQUIRE_MESSAGE(eventually(
                      [&] {
                        return stored_all("e2e_outage:ticks", producer, 20) &&
                               stored_all("e2e_late:ticks", late, 2);
                      },
                      std::chrono::seconds(60)),
                  "stored " << query_scalar(pg.url(), count_rows("e2e_outage:ticks")) << " of "
                            << producer.responses() * 20 << " and "
                            << query_scalar(pg.url(), count_rows("e2e_late:ticks")) << " of "
                            << late.responses() * 2 << "\n"
                            << collector.log());
  check_stored_exactly(pg.url(), "e2e_outage:ticks", producer, 20);
  check_stored_exactly(pg.url(), "e2e_late:ticks", late, 2);
  CHECK(collector.metric("tally_collector_samples_replayed_total") > 0.0);
  CHECK(collector.metric("tally_collector_samples_pending_schema") == 0.0);
  for (const char* reason : {"queue_full", "schema_unavailable", "spool_full"}) {
    CHECK(collector.metric("tally_collector_samples_dropped_total",
                           "reason=\"" + std::string(reason) + "\"") == 0.0);
  }
}

TEST_CASE(
    "e2e: misbehaving producers cost failures with the right reason, the good one is stored") {
  TestDatabase db;
  CounterProducer good("e2e_good", 1);
  FakeProducer error500([](const HttpRequest&) {
    return HttpResponse::error(500, "internal", "the producer broke");
  });
  FakeProducer too_many([](const HttpRequest&) {
    std::string body = R"([{"status":"ok","info":[)";
    for (int i = 0; i < 30; ++i) {
      if (i > 0) body += ',';
      body +=
          R"({"timeseries_name":"e2e_many:x","timeseries_version":1,)"
          R"("target":{"name":"e2e_many","fields":{}},)"
          R"("metric":{"name":"x","fields":{"i":{"name":"i","value":{"type":"u32","value":)" +
          std::to_string(i) +
          R"(}}}},"measurement":{"timestamp":"2026-01-01T00:00:00Z","datum":{"type":"f64","datum":1}}})";
    }
    return HttpResponse::json(200, body + "]}]");
  });
  RawProducer hang(RawProducer::Behaviour::kHang);
  RawProducer reset(RawProducer::Behaviour::kReset);
  RawProducer garbage(RawProducer::Behaviour::kGarbage);
  RawProducer endless(RawProducer::Behaviour::kEndless);

  const std::map<std::string, std::pair<std::string, std::string>> bad = {
      // id → (address, the reason it must fail with)
      {"e2e00000-0000-4000-8000-0000000000d1", {error500.address(), "http_500"}},
      {"e2e00000-0000-4000-8000-0000000000d2", {too_many.address(), "too_many_samples"}},
      {"e2e00000-0000-4000-8000-0000000000d3", {hang.address(), "timeout"}},
      {"e2e00000-0000-4000-8000-0000000000d4", {reset.address(), "unreachable"}},
      {"e2e00000-0000-4000-8000-0000000000d5", {garbage.address(), "decode"}},
      {"e2e00000-0000-4000-8000-0000000000d6", {endless.address(), "too_large"}},
  };
  const std::string good_id = "e2e00000-0000-4000-8000-0000000000d0";
  std::string producers = "static_producers:\n" + static_producer(good_id, good.address());
  for (const auto& [id, p] : bad) producers += static_producer(id, p.first, "300ms");
  TempDir state;
  CollectorProcess collector(collector_yaml(
      db.url(), state.path(),
      "collection: {timeout: 500ms, max_body_bytes: 64KiB, max_samples_per_collection: 20}\n" +
          producers));

  for (const auto& [id, p] : bad) {
    const std::string& reason = p.second;
    json::value view;
    CHECK_MESSAGE(eventually([&] {
                    view = collector.producer(id);
                    return failures(view, reason) >= 1;
                  }),
                  reason << ": " << json::serialize(view));
    CHECK_MESSAGE(view.at("last_failure").at("reason").as_string() == reason,
                  json::serialize(view));
    CHECK(view.at("last_success").is_null());
    CHECK(view.at("counts").at("successes").to_number<uint64_t>() == 0);
    CHECK(collector.metric("tally_collector_failures_total", "reason=\"" + reason + "\"") >= 1.0);
  }

  // The good producer keeps being collected and stored meanwhile, and after.
  // (A poll skipped as in_progress under a loaded machine is fine: it is not the neighbours'
  // doing.)
  const json::value g = collector.producer(good_id);
  for (const auto& [id, p] : bad) CHECK_MESSAGE(failures(g, p.second) == 0, json::serialize(g));
  CHECK(g.at("counts").at("successes").to_number<uint64_t>() > 0);
  // A success is counted when its samples reach the sink, which writes them within a batch
  // interval.
  uint64_t stored = 0;
  CHECK(eventually([&] {
    stored = std::stoull(query_scalar(db.url(), count_rows("e2e_good:ticks")));
    return stored > 0;
  }));
  CHECK(eventually([&] {
    return std::stoull(query_scalar(db.url(), count_rows("e2e_good:ticks"))) > stored + 2;
  }));
  // Stopping stores a last round of the collector's own samples (target tally_collector),
  // failures by reason and the latency histograms included.
  REQUIRE_MESSAGE(collector.stop() == 0, collector.log());
  const std::string own = "FROM tally.timeseries t JOIN tally.measurements_";
  CHECK(std::stoull(query_scalar(
            db.url(), "SELECT max(m.datum) " + own +
                          "cumulative_u64 m USING (timeseries_key) WHERE t.timeseries_name = "
                          "'tally_collector:collection_failures' AND t.fields->>'reason' = "
                          "'timeout'")) >= 1);
  CHECK(query_scalar(db.url(), "SELECT count(*) " + own +
                                   "histogram_f64 m USING (timeseries_key) WHERE "
                                   "t.timeseries_name = 'tally_collector:collection_duration'") !=
        "0");
  // Nothing of the too-many producer was stored.
  CHECK(query_scalar(db.url(),
                     "SELECT count(*) FROM tally.timeseries WHERE timeseries_name = "
                     "'e2e_many:x'") == "0");
}
