// The sink and the schema check against a real Postgres: the samples pushed are the rows stored,
// each exactly once, through outages and restarts.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>

#include "sink_fakes.h"
#include "support/private_cluster.h"
#include "support/series.h"
#include "support/test_db.h"
#include "tally/collector/schema_check.h"
#include "tally/collector/sink.h"
#include "tally/schema/measurement_reader.h"
#include "tally/schema/migrations.h"

namespace tally::collector {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using tally::test::eventually;
using tally::test::TestDatabase;
using test::TempDir;

// Connections go to `url` while up, else to a port where nothing listens.
class Switch {
 public:
  explicit Switch(std::string url)
      : url_(std::move(url)),
        dead_url_("postgresql://postgres@127.0.0.1:" + std::to_string(tally::test::unused_port()) +
                  "/x") {}
  ConnectionFactory factory() {
    return [this] { return pg::Connection::open(up ? url_ : dead_url_, std::chrono::seconds(5)); };
  }
  std::atomic<bool> up{true};

 private:
  std::string url_;
  std::string dead_url_;
};

// Ends every other session on the test's database, as a server crash would for the sink.
void terminate_sessions(const TestDatabase& db) {
  db.scalar(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE datname = current_database() AND pid <> pg_backend_pid()");
}

// Sample i: one of three series (a gauge, a counter, a histogram), timestamp kT0 + i ms.
Sample db_sample(int64_t i) {
  Sample s;
  tally::test::change_series(s, [&](Timeseries& t) {
    t.target = {"sink_db_test", {{"instance", std::string("a")}}};
  });
  s.timestamp = test::kT0 + std::chrono::milliseconds(i);
  const Timestamp start = test::kT0 - std::chrono::hours(1);
  switch (i % 3) {
    case 0:
      tally::test::change_series(s, [&](Timeseries& t) {
        t.metric = {"gauge", {{"route", std::string("/v1/items")}}};
      });
      s.datum = static_cast<double>(i) * 0.5;
      break;
    case 1:
      tally::test::change_series(s, [&](Timeseries& t) { t.metric = {"counter", {}}; });
      s.datum = Cumulative<uint64_t>{start, static_cast<uint64_t>(i)};
      break;
    default: {
      Histogram<double> h;
      h.start_time = start;
      h.bins = {{std::nullopt, 1}, {0.1, static_cast<uint64_t>(i)}};
      h.n_samples = 1 + static_cast<uint64_t>(i);
      h.min = 0.01;
      h.max = 0.5;
      h.sum_of_samples = 0.25 * static_cast<double>(i);
      h.squared_mean = 0.04;
      tally::test::change_series(s, [&](Timeseries& t) { t.metric = {"latency", {}}; });
      s.datum = std::move(h);
      break;
    }
  }
  return s;
}

std::vector<Sample> db_samples(int64_t first, int64_t count) {
  std::vector<Sample> out;
  for (int64_t i = first; i < first + count; ++i) out.push_back(db_sample(i));
  return out;
}

// Every sample is stored exactly once, value for value, and nothing else is.
void check_stored_exactly_once(pg::Connection& conn, const std::vector<Sample>& samples) {
  std::map<int64_t, std::vector<const Sample*>> expected;
  for (const Sample& s : samples) expected[s.key()].push_back(&s);
  for (auto& [key, want] : expected) {
    std::sort(want.begin(), want.end(),
              [](const Sample* a, const Sample* b) { return a->timestamp < b->timestamp; });
    auto stored = schema::read_samples(conn, key);
    REQUIRE_MESSAGE(stored.ok(), stored.error());
    CAPTURE(want[0]->timeseries_name());
    REQUIRE(stored->size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      CHECK_MESSAGE(same_sample((*stored)[i], *want[i]), "timestamp ",
                    format_rfc3339(want[i]->timestamp));
    }
  }
  int64_t rows = 0;
  for (const char* table : {"f64", "cumulative_u64", "histogram_f64"}) {
    auto r = conn.exec(std::string("SELECT count(*) FROM tally.measurements_") + table);
    REQUIRE(r.ok());
    rows += std::stoll(std::string(r->get(0, 0)));
  }
  CHECK(rows == static_cast<int64_t>(samples.size()));
}

SinkOptions sink_options(const TempDir& dir) {
  SinkOptions o;
  o.batch_size = 100;
  o.batch_interval = 20ms;
  o.max_queue_samples = 1000;
  o.spool_above_samples = 200;
  o.spool = {dir.sub("spool"), 1 << 30};
  o.min_backoff = 10ms;
  o.max_backoff = 200ms;
  return o;
}

std::unique_ptr<Sink> open_sink(const SinkOptions& options, ConnectionFactory factory) {
  auto sink = Sink::open(options, make_copy_batch_writer(std::move(factory)));
  REQUIRE_MESSAGE(sink.ok(), sink.error());
  return std::move(sink).value();
}

// A migrated database, a schema checker on it, and a sink writing to it through a switch.
struct Fixture {
  TestDatabase db;
  std::unique_ptr<pg::Connection> conn = db.connect();
  Switch sw{db.url()};
  SchemaChecker checker{make_schema_source(sw.factory())};
  TempDir dir;

  Fixture() { REQUIRE(schema::apply_migrations(*conn).ok()); }

  // Checks and pushes; every sample must be accepted.
  void push(Sink& sink, std::vector<Sample> samples) {
    auto checked = checker.check(std::move(samples));
    REQUIRE_MESSAGE(checked.status.ok(), checked.status.message());
    REQUIRE(checked.rejections.total() == 0);
    const std::size_t n = checked.accepted.size();
    REQUIRE(sink.push(std::move(checked.accepted)) == n);
  }
};

TEST_CASE("every pushed sample becomes one row") {
  Fixture f;
  SinkOptions options = sink_options(f.dir);
  options.max_queue_samples = 2500;  // pushes may outrun the writer: nothing may be dropped here
  auto sink = open_sink(options, f.sw.factory());
  sink->start();
  const std::vector<Sample> samples = db_samples(0, 2500);
  for (std::size_t i = 0; i < samples.size(); i += 250) {
    f.push(*sink, std::vector<Sample>(samples.begin() + static_cast<std::ptrdiff_t>(i),
                                      samples.begin() + static_cast<std::ptrdiff_t>(i + 250)));
  }
  CHECK(eventually([&] { return sink->stats().samples_stored == samples.size(); }));
  sink->stop();
  const SinkStats s = sink->stats();
  CHECK(s.samples_queued == samples.size());
  CHECK(s.samples_spooled == 0);
  CHECK(s.write_failures == 0);
  CHECK(s.insert_latency.count == s.batches_written);
  check_stored_exactly_once(*f.conn, samples);
}

TEST_CASE("Postgres lost mid-stream: samples are spooled, then each arrives exactly once") {
  Fixture f;
  auto sink = open_sink(sink_options(f.dir), f.sw.factory());
  sink->start();
  const std::vector<Sample> samples = db_samples(0, 3000);
  auto part = [&](std::size_t from, std::size_t to) {
    return std::vector<Sample>(samples.begin() + static_cast<std::ptrdiff_t>(from),
                               samples.begin() + static_cast<std::ptrdiff_t>(to));
  };
  f.push(*sink, part(0, 1000));
  REQUIRE(eventually([&] { return sink->stats().samples_stored == 1000; }));

  // The server goes away while the sink is idle (so no COMMIT is in doubt) and stays away.
  f.sw.up = false;
  terminate_sessions(f.db);
  // Memory holds 200 samples while Postgres is away (spool_above_samples), the rest is spooled.
  const auto spooled_down = [&] {
    const SinkStats s = sink->stats();
    return !s.database_up && s.spool_files > 0 && s.queue_depth <= 200;
  };
  f.push(*sink, part(1000, 1800));
  REQUIRE(eventually(spooled_down));
  f.push(*sink, part(1800, 2600));
  REQUIRE(eventually([&] { return spooled_down() && sink->stats().samples_spooled >= 1400; }));
  SinkStats s = sink->stats();
  CHECK(s.samples_stored == 1000);
  CHECK(s.samples_spooled >= 1400);

  f.sw.up = true;
  f.push(*sink, part(2600, 3000));
  CHECK(eventually([&] { return sink->stats().samples_stored == samples.size(); }));
  sink->stop();
  s = sink->stats();
  CHECK(s.database_up);
  CHECK(s.write_failures > 0);
  CHECK(s.spool_files == 0);
  CHECK(s.samples_replayed == s.samples_spooled);
  CHECK(s.dropped_queue_full + s.dropped_spool_full == 0);
  CHECK(fs::is_empty(f.dir.sub("spool")));
  check_stored_exactly_once(*f.db.connect(), samples);  // f.conn was terminated too
}

TEST_CASE("a restarted sink replays the spool the stopped one left") {
  Fixture f;
  const std::vector<Sample> samples = db_samples(0, 1500);
  SinkOptions options = sink_options(f.dir);
  options.max_queue_samples = samples.size();
  REQUIRE(f.checker.check(db_samples(0, 3)).status.ok());  // schemas stored while it is up
  f.sw.up = false;
  {
    auto sink = open_sink(options, f.sw.factory());
    f.push(*sink, samples);
    sink->stop();  // SIGTERM with Postgres away: one failed write, then all to the spool
    REQUIRE(sink->stats().samples_spooled == samples.size());
  }
  f.sw.up = true;
  auto sink = open_sink(options, f.sw.factory());
  CHECK(sink->stats().spool_files == 15);
  sink->start();
  CHECK(eventually([&] { return sink->stats().samples_stored == samples.size(); }));
  CHECK(sink->stats().samples_replayed == samples.size());
  sink->stop();
  CHECK(fs::is_empty(f.dir.sub("spool")));
  check_stored_exactly_once(*f.conn, samples);
}

TEST_CASE("the schema check stores new schemas, rejects conflicts and survives an outage") {
  Fixture f;
  auto first = f.checker.check(db_samples(0, 30));
  CHECK(first.status.ok());
  CHECK(first.accepted.size() == 30);
  CHECK(first.schemas_created == 3);
  CHECK(f.db.scalar("SELECT count(*) FROM tally.timeseries_schema") == "3");

  // Another collector (a fresh checker) sees the stored schemas and creates none.
  SchemaChecker other(make_schema_source(f.sw.factory()));
  auto again = other.check(db_samples(30, 3));
  CHECK(again.accepted.size() == 3);
  CHECK(again.schemas_created == 0);

  Sample changed = db_sample(33);  // the gauge with a u64 datum
  changed.datum = uint64_t{7};
  auto conflict = other.check({changed, db_sample(34)});
  CHECK(conflict.rejections.schema == 1);
  CHECK(conflict.accepted.size() == 1);
  REQUIRE(conflict.rejections.conflicts.size() == 1);
  CHECK(conflict.rejections.conflicts[0].find("datum type differs: f64 vs u64") !=
        std::string::npos);

  f.sw.up = false;
  terminate_sessions(f.db);
  Sample fresh = db_sample(36);
  tally::test::change_series(fresh, [&](Timeseries& t) { t.metric.name = "brand_new"; });
  auto outage = other.check({db_sample(37), fresh});
  CHECK(outage.status.code() == "database");
  CHECK(outage.accepted.size() == 1);
  CHECK(outage.unchecked.size() == 1);
}

TEST_CASE("a Postgres server stopped and started again: spooled, replayed, each sample once") {
  tally::test::PrivateCluster cluster;
  auto conn = pg::Connection::open(cluster.url());
  REQUIRE_MESSAGE(conn.ok(), conn.error());
  REQUIRE(schema::apply_migrations(**conn).ok());
  conn->reset();
  ConnectionFactory factory = [&] { return pg::Connection::open(cluster.url(), 5s); };
  SchemaChecker checker(make_schema_source(factory));
  TempDir dir;
  auto sink = open_sink(sink_options(dir), factory);
  sink->start();
  const std::vector<Sample> samples = db_samples(0, 2000);
  auto push = [&](std::size_t from, std::size_t to) {
    auto checked =
        checker.check(std::vector<Sample>(samples.begin() + static_cast<std::ptrdiff_t>(from),
                                          samples.begin() + static_cast<std::ptrdiff_t>(to)));
    REQUIRE(checked.status.ok());
    REQUIRE(sink->push(std::move(checked.accepted)) == to - from);
  };
  push(0, 500);
  REQUIRE(eventually([&] { return sink->stats().samples_stored == 500; }));

  cluster.stop();
  push(500, 1500);
  REQUIRE(eventually([&] {
    const SinkStats s = sink->stats();
    return !s.database_up && s.spool_files > 0 && s.queue_depth <= 200;
  }));
  cluster.start();
  push(1500, 2000);
  CHECK(eventually([&] { return sink->stats().samples_stored == samples.size(); }));
  sink->stop();
  CHECK(sink->stats().spool_files == 0);

  auto reader = pg::Connection::open(cluster.url());
  REQUIRE(reader.ok());
  check_stored_exactly_once(**reader, samples);
}

}  // namespace
}  // namespace tally::collector
