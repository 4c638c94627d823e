// End to end under faults: schema conflicts, Postgres going away under a running collector
// (restarted, stopped for a minute), the collector killed mid-batch, a full disk under its
// state_dir, the registry restarted, and producers that misbehave — each visible in the
// collector's API and metrics, none breaking the rest. The durability tests count what was
// produced against what was stored (each CounterProducer sample is identifiable by its series and
// timestamp), so duplicates and losses show as numbers.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <map>
#include <set>

#include "e2e_support.h"
#include "support/test_db.h"
#include "tally/common/http_client.h"
#include "tally/common/pg.h"

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
  // Its samples reach Postgres a batch_interval after they were collected, or later on a loaded
  // machine: polled, not read once.
  uint64_t stored = 0;
  CHECK_MESSAGE(eventually([&] {
                  stored = std::stoull(query_scalar(db.url(), count_rows("e2e_good:ticks")));
                  return stored > 0;
                }),
                collector.log());
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

namespace {

// Rows of a CounterProducer's series, and how many are distinct samples: each response has a
// timestamp of its own, so (series, timestamp) identifies a produced sample.
struct Stored {
  uint64_t total = 0;
  uint64_t distinct = 0;
};

Stored stored(const std::string& url, const std::string& timeseries_name) {
  const auto rows = query_rows(
      url,
      "SELECT count(*), count(DISTINCT (m.timeseries_key, m.timestamp)) "
      "FROM tally.measurements_cumulative_u64 m JOIN tally.timeseries t USING (timeseries_key) "
      "WHERE t.timeseries_name = '" +
          timeseries_name + "'");
  return {std::stoull(rows.at(0).at(0)), std::stoull(rows.at(0).at(1))};
}

// Samples the collector has handed to its sink for one producer (they leave the collection
// before it counts as a success, so this is what the sink accepted).
uint64_t delivered(const CollectorProcess& collector, const std::string& id) {
  return collector.producer(id).at("counts").at("samples").to_number<uint64_t>();
}

double dropped(const CollectorProcess& collector, const std::string& reason) {
  return collector.metric("tally_collector_samples_dropped_total", "reason=\"" + reason + "\"")
      .value_or(-1);
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE(
    "e2e: Postgres restarted, then stopped for a minute, under steady collection: each "
    "sample stored once") {
  PrivateCluster pg;
  const std::string id = "e2e00000-0000-4000-8000-0000000000c2";
  const int series = 5;
  CounterProducer producer("e2e_steady", series);
  TempDir state;
  // A queue smaller than a minute of samples, so the outage goes through the spool on disk.
  CollectorProcess collector(collector_yaml(
      pg.url(), state.path(), "static_producers:\n" + static_producer(id, producer.address()),
      ", batch_size: 50, max_queue_samples: 400"));
  REQUIRE_MESSAGE(eventually([&] { return stored(pg.url(), "e2e_steady:ticks").total > 0; }),
                  collector.log());

  // pg_ctl restart: a fast shutdown under the writer's feet, and straight back.
  pg.stop();
  pg.start();
  const uint64_t at_restart = producer.responses();
  REQUIRE_MESSAGE(eventually([&] {
                    return stored(pg.url(), "e2e_steady:ticks").distinct >=
                           (at_restart + 5) * series;
                  }),
                  collector.log());

  // A minute without Postgres: 300 collections at 200 ms, counted on the producer.
  pg.stop();
  const uint64_t at_stop = producer.responses();
  REQUIRE_MESSAGE(
      eventually([&] { return producer.responses() >= at_stop + 300; }, std::chrono::seconds(150)),
      collector.log());
  CHECK(collector.metric("tally_collector_database_up") == 0.0);
  CHECK(collector.metric("tally_collector_samples_spooled_total") > 0.0);
  pg.start();
  const uint64_t at_start = producer.responses();
  REQUIRE(eventually([&] { return producer.responses() >= at_start + 5; }));
  producer.freeze();
  const uint64_t produced = producer.responses() * series;
  REQUIRE_MESSAGE(
      eventually([&] { return stored(pg.url(), "e2e_steady:ticks").distinct >= produced; },
                 std::chrono::seconds(90)),
      "stored " << stored(pg.url(), "e2e_steady:ticks").distinct << " of " << produced << "\n"
                << collector.log());
  const Stored s = stored(pg.url(), "e2e_steady:ticks");
  MESSAGE("restart + 60 s down: produced " << produced << ", stored " << s.total << ", distinct "
                                           << s.distinct << ", duplicates "
                                           << s.total - s.distinct);
  CHECK(s.distinct == produced);
  CHECK(s.total == s.distinct);
  check_stored_exactly(pg.url(), "e2e_steady:ticks", producer, series);
  CHECK(collector.metric("tally_collector_samples_replayed_total") > 0.0);
  for (const char* reason : {"queue_full", "spool_full", "spool_error", "schema_unavailable"}) {
    CHECK(dropped(collector, reason) == 0.0);
  }
}

TEST_CASE(
    "e2e: the collector killed with SIGKILL mid-batch and restarted: every sample it "
    "accepted is stored, at most one batch twice") {
  TestDatabase db;
  const std::string id = "e2e00000-0000-4000-8000-0000000000c3";
  const int series = 10;
  const int batch_size = 50;
  CounterProducer producer("e2e_kill", series);
  TempDir state;
  const std::string yaml =
      collector_yaml(db.url(), state.path(),
                     "static_producers:\n" + static_producer(id, producer.address(), "100ms"),
                     ", batch_size: " + std::to_string(batch_size));
  auto collector = std::make_unique<CollectorProcess>(yaml);
  REQUIRE_MESSAGE(eventually([&] { return stored(db.url(), "e2e_kill:ticks").total > 0; }),
                  collector->log());

  // Hold the measurement table: the writer's next COPY into it waits inside its transaction,
  // and everything collected meanwhile queues up behind it (in memory, and in the journal).
  auto lock = pg::Connection::open(db.url(), std::chrono::seconds(5));
  REQUIRE_MESSAGE(lock.ok(), lock.error());
  REQUIRE((*lock)->exec("BEGIN").ok());
  REQUIRE(
      (*lock)->exec("LOCK TABLE tally.measurements_cumulative_u64 IN ACCESS EXCLUSIVE MODE").ok());
  const uint64_t at_lock = producer.responses();
  REQUIRE_MESSAGE(eventually([&] {
                    return query_scalar(db.url(),
                                        "SELECT count(*) FROM pg_stat_activity WHERE "
                                        "wait_event_type = 'Lock' AND query LIKE 'COPY%'") != "0" &&
                           producer.responses() >= at_lock + 20;
                  }),
                  collector->log());
  producer.freeze();
  const uint64_t produced = producer.responses() * series;
  REQUIRE(eventually([&] { return delivered(*collector, id) == produced; }));
  const double queued = collector->metric("tally_collector_queue_depth").value_or(0);
  collector->kill();
  REQUIRE((*lock)->exec("ROLLBACK").ok());
  const Stored before = stored(db.url(), "e2e_kill:ticks");
  CHECK(before.distinct < produced);  // the rest was only in the killed process (and its journal)

  collector = std::make_unique<CollectorProcess>(yaml);  // the same state_dir
  REQUIRE_MESSAGE(
      eventually([&] { return stored(db.url(), "e2e_kill:ticks").distinct >= produced; },
                 std::chrono::seconds(60)),
      "stored " << stored(db.url(), "e2e_kill:ticks").distinct << " of " << produced << "\n"
                << collector->log());
  const Stored s = stored(db.url(), "e2e_kill:ticks");
  MESSAGE("SIGKILL mid-batch: produced " << produced << " (queued at the kill: " << queued
                                         << " of all series), stored before the restart "
                                         << before.total << ", stored " << s.total << ", distinct "
                                         << s.distinct << ", duplicates " << s.total - s.distinct);
  CHECK(s.distinct == produced);
  CHECK(s.total - s.distinct <= static_cast<uint64_t>(batch_size));
  CHECK(collector->metric("tally_collector_samples_replayed_total") > 0.0);
  CHECK(collector->log().find("journal_segments=") != std::string::npos);
}

namespace {

// A tmpfs of `size` mounted on `dir` for the test's life (the tests run as root, as tools/test
// does; without the right to mount, the test fails rather than skips).
class SmallDisk {
 public:
  SmallDisk(const std::string& dir, const std::string& size) : dir_(dir) {
    const CommandResult r =
        run_command({"/bin/mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", dir});
    REQUIRE_MESSAGE(r.exit_code == 0, "mounting a tmpfs (needs root): " << r.err);
  }
  ~SmallDisk() { run_command({"/bin/umount", "-l", dir_}); }

  // Fills what is left of the disk with one file; returns its path.
  std::string fill() const {
    const std::string path = dir_ + "/filler";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    const std::string block(64 * 1024, 'x');
    while (true) {
      const ssize_t n = ::write(fd, block.data(), block.size());
      if (n > 0) continue;
      REQUIRE(errno == ENOSPC);
      break;
    }
    ::close(fd);
    return path;
  }

 private:
  std::string dir_;
};

}  // namespace

TEST_CASE(
    "e2e: a full disk under the spool and journal holds polls back (counted), drops nothing "
    "uncounted, no crash, and recovers when space returns") {
  PrivateCluster pg;
  TempDir tmp;
  const std::string disk_dir = tmp.sub("disk");
  std::filesystem::create_directories(disk_dir);
  SmallDisk disk(disk_dir, "1m");
  const std::string id = "e2e00000-0000-4000-8000-0000000000c4";
  const int series = 10;
  CounterProducer producer("e2e_disk", series);
  CollectorProcess collector(
      collector_yaml(pg.url(), disk_dir + "/state",
                     "static_producers:\n" + static_producer(id, producer.address(), "100ms"),
                     ", batch_size: 50, max_queue_samples: 200, spool_max_bytes: 64MiB"));
  REQUIRE_MESSAGE(eventually([&] { return stored(pg.url(), "e2e_disk:ticks").total > 0; }),
                  collector.log());

  const std::string filler = disk.fill();
  pg.stop();
  // Postgres away, memory full, the disk refusing both the journal and the spool: the queue
  // reaches 7/8 of max_queue_samples and the scheduler skips polls (back-pressure) rather than
  // collect samples it could only drop.
  const auto skipped = [&] {
    return collector.metric("tally_collector_failures_total", "reason=\"queue_full\"").value_or(0);
  };
  REQUIRE_MESSAGE(eventually([&] { return skipped() >= 20; }, std::chrono::seconds(60)),
                  collector.log());
  CHECK(collector.metric("tally_collector_samples_unjournaled_total") > 0.0);
  const std::string log = collector.log();
  // Logged once per episode, not once per batch or sample: an episode ends when a write works
  // again (a journal file deleted after its commit may free a little room for a while).
  CHECK(occurrences(log, " error spool_failed ") == 1);
  CHECK(occurrences(log, " error journal_failed ") >= 1);
  CHECK(occurrences(log, " error journal_failed ") == occurrences(log, " journal_recovered ") + 1);
  CHECK(log.find("No space left on device") != std::string::npos);
  CHECK(log.find(disk_dir + "/state/spool/") != std::string::npos);
  CHECK(dropped(collector, "queue_full") == 0.0);

  std::filesystem::remove(filler);  // space returns
  REQUIRE_MESSAGE(
      eventually([&] { return collector.log().find("spool_recovered") != std::string::npos; },
                 std::chrono::seconds(30)),
      collector.log());
  const double dropped_while_full = dropped(collector, "spool_error");
  const double skipped_while_full = skipped();
  pg.start();
  const uint64_t at_start = producer.responses();
  REQUIRE(eventually([&] { return producer.responses() >= at_start + 5; }));
  producer.freeze();
  const uint64_t produced = producer.responses() * series;
  REQUIRE(eventually([&] { return delivered(collector, id) == produced; }));
  // Everything left in the spool and queue reaches Postgres; what is missing was counted.
  REQUIRE_MESSAGE(eventually(
                      [&] {
                        return collector.metric("tally_collector_spool_files") == 0.0 &&
                               collector.metric("tally_collector_queue_depth") == 0.0 &&
                               collector.metric("tally_collector_database_up") == 1.0;
                      },
                      std::chrono::seconds(60)),
                  collector.log());
  const Stored s = stored(pg.url(), "e2e_disk:ticks");
  const uint64_t lost = produced - s.distinct;
  MESSAGE("disk full: produced " << produced << ", stored " << s.total << ", distinct "
                                 << s.distinct << ", duplicates " << s.total - s.distinct
                                 << ", missing " << lost << ", dropped{reason=spool_error} "
                                 << dropped(collector, "spool_error")
                                 << " (all series, the collector's own included), polls skipped "
                                 << skipped_while_full << " (queue_full)");
  CHECK(s.total == s.distinct);
  // The producer served only the polls taken: what it served is stored, or counted as dropped.
  CHECK(static_cast<double>(lost) <= dropped(collector, "spool_error"));
  CHECK(dropped(collector, "spool_error") == dropped_while_full);  // no drops once space returned
  CHECK(collector.log().find("journal_recovered") != std::string::npos);
}

namespace {

// tally-registry on a fixed port, so that a restarted one is found at the same address.
class RegistryOnPort {
 public:
  RegistryOnPort(const std::string& database_url, uint16_t port) {
    const std::string config =
        dir_.write("registry.yaml", "listen: 127.0.0.1:" + std::to_string(port) +
                                        "\ndatabase: {url: \"" + database_url + "\"}\n");
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{TALLY_REGISTRY_PATH, "--config", config, "--log-level", "debug"},
        dir_.path());
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/healthz";
    REQUIRE_MESSAGE(eventually([&] {
                      if (!process_->running()) return true;
                      HttpClientOptions options;
                      options.timeout = std::chrono::seconds(2);
                      auto r = http_request(options, "GET", url, "", {});
                      return r.ok() && r->status == 200;
                    }),
                    process_->stderr_text());
    REQUIRE_MESSAGE(process_->running(), process_->stderr_text());
  }
  ~RegistryOnPort() { CHECK(process_->signal_and_wait(SIGTERM) == 0); }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace

TEST_CASE(
    "e2e: the registry restarted: the collector keeps collecting what it was assigned, "
    "then heartbeats again") {
  TestDatabase db;
  const uint16_t port = unused_port();
  const std::string registry_url = "http://127.0.0.1:" + std::to_string(port);
  auto registry = std::make_unique<RegistryOnPort>(db.url(), port);
  const std::string id = "e2e00000-0000-4000-8000-0000000000c5";
  const int series = 2;
  CounterProducer producer("e2e_registry", series);
  TempDir state;
  CollectorProcess collector(
      collector_yaml(db.url(), state.path(),
                     "registry: {url: \"" + registry_url +
                         "\", heartbeat_interval: 200ms, refresh_interval: 200ms}\n"));
  const CommandResult registered = tallyctl(
      registry_url,
      {"producer", "register", "--id", id, "--address", producer.address(), "--interval", "200ms"});
  REQUIRE_MESSAGE(registered.exit_code == 0, registered.err);
  REQUIRE_MESSAGE(eventually([&] { return stored(db.url(), "e2e_registry:ticks").total > 0; }),
                  collector.log());

  registry.reset();
  const double failures_at_stop =
      collector.metric("tally_collector_registry_heartbeat_failures_total").value_or(0);
  const uint64_t stored_at_stop = stored(db.url(), "e2e_registry:ticks").distinct;
  // Down: heartbeats and refreshes fail, the last assignment list is kept and polled.
  REQUIRE_MESSAGE(
      eventually([&] {
        return collector.metric("tally_collector_registry_heartbeat_failures_total").value_or(0) >=
                   failures_at_stop + 5 &&
               collector.metric("tally_collector_registry_refresh_failures_total").value_or(0) >=
                   5 &&
               stored(db.url(), "e2e_registry:ticks").distinct >= stored_at_stop + 20 * series;
      }),
      collector.log());
  const uint64_t stored_while_down =
      stored(db.url(), "e2e_registry:ticks").distinct - stored_at_stop;
  CHECK(collector.producer(id).is_object());  // still assigned

  registry = std::make_unique<RegistryOnPort>(db.url(), port);
  const auto ok_heartbeats = [&] {
    return collector.metric("tally_collector_registry_heartbeats_total").value_or(0) -
           collector.metric("tally_collector_registry_heartbeat_failures_total").value_or(0);
  };
  const double ok_at_return = ok_heartbeats();
  REQUIRE_MESSAGE(eventually([&] { return ok_heartbeats() >= ok_at_return + 3; }), collector.log());
  const json::value collectors = json::parse(call("GET", registry_url + "/v1/collectors").body);
  MESSAGE("registry down: " << stored_while_down << " samples stored meanwhile; collectors: "
                            << json::serialize(collectors));
  CHECK(stored_while_down >= 20u * series);
  CHECK(json::serialize(collectors).find("\"alive\":true") != std::string::npos);
  const uint64_t after = stored(db.url(), "e2e_registry:ticks").distinct;
  CHECK(eventually([&] { return stored(db.url(), "e2e_registry:ticks").distinct > after; }));
}
