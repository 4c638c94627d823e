// The Postgres monitor against real servers: the Postgres tools/test starts and a throwaway
// cluster of the test's own, found from a static list or a discovery API, through the real schema
// check and sink into a Tally database. Conditions are polled with deadlines (eventually), never
// slept for; nothing asserts how long anything took.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "sink_fakes.h"
#include "support/private_cluster.h"
#include "support/test_db.h"
#include "tally/collector/daemon.h"
#include "tally/collector/pgstats/pgstats_monitor.h"
#include "tally/collector/schema_check.h"
#include "tally/collector/sink.h"
#include "tally/common/http_client.h"
#include "tally/common/http_server.h"
#include "tally/schema/migrations.h"

namespace tally::collector::pgstats {
namespace {

using namespace std::chrono_literals;
using tally::collector::test::TempDir;
using tally::test::eventually;
using tally::test::TestDatabase;

using Cluster = tally::test::PrivateCluster;
using tally::test::unused_port;

std::unique_ptr<pg::Connection> connect(const std::string& url) {
  auto conn = pg::Connection::open(url);
  REQUIRE_MESSAGE(conn.ok(), conn.error());
  return std::move(conn).value();
}

// The first column of the first row of `sql` as text; nullopt on an error or no row.
std::optional<std::string> scalar(pg::Connection& conn, const std::string& sql,
                                  const pg::Params& params = {}) {
  auto rows = conn.exec(sql, params);
  if (!rows.ok() || rows->size() == 0 || rows->is_null(0, 0)) return std::nullopt;
  return std::string(rows->get(0, 0));
}

bool positive(const std::optional<std::string>& count) {
  return count.has_value() && std::stoll(*count) > 0;
}

// Where the monitor's samples go: the real schema check and sink into a migrated database of
// its own, and a copy in memory to count by target.
class Store {
 public:
  Store() {
    auto conn = db_.connect();
    REQUIRE(schema::apply_migrations(*conn).ok());
    SinkOptions options;
    options.batch_size = 2000;
    options.batch_interval = 20ms;
    options.spool = {dir_.sub("spool"), 1 << 30};
    const std::string url = db_.url();
    auto sink = Sink::open(options, make_copy_batch_writer([url] {
                             return pg::Connection::open(url, std::chrono::seconds(5));
                           }));
    REQUIRE_MESSAGE(sink.ok(), sink.error());
    sink_ = std::move(*sink);
    sink_->start();
    checker_ = std::make_unique<SchemaChecker>(
        make_schema_source([url] { return pg::Connection::open(url, std::chrono::seconds(5)); }));
    reader_ = db_.connect();
  }
  ~Store() { sink_->stop(); }

  PgSamplesCallback callback() {
    return [this](std::vector<Sample> samples) {
      {
        std::lock_guard lock(mu_);
        for (const Sample& s : samples) {
          const std::string& name = std::get<std::string>(s.target().fields[0].value);
          ++by_target_[name];
          ++by_metric_[name + "/" + s.metric().name];
        }
      }
      SchemaCheckResult r = checker_->check(std::move(samples));
      rejected_ += r.rejections.total() + r.unchecked.size();
      sink_->push(std::move(r.accepted));
    };
  }

  uint64_t samples(const std::string& target) const {
    std::lock_guard lock(mu_);
    auto it = by_target_.find(target);
    return it == by_target_.end() ? 0 : it->second;
  }
  uint64_t samples(const std::string& target, const std::string& metric) const {
    std::lock_guard lock(mu_);
    auto it = by_metric_.find(target + "/" + metric);
    return it == by_metric_.end() ? 0 : it->second;
  }
  uint64_t rejected() const { return rejected_; }

  // SQL over the stored series of postgres_instance:<metric> of target `name`; `where` adds
  // conditions on the series' fields (t.fields) and `what` is computed over the measurements
  // (m). nullopt while nothing matches yet.
  std::optional<std::string> stored(const std::string& metric, const std::string& table,
                                    const std::string& name, const std::string& what,
                                    const std::string& where = "") {
    std::lock_guard lock(reader_mu_);
    return scalar(*reader_,
                  "SELECT " + what + " FROM tally.timeseries t JOIN tally.measurements_" + table +
                      " m USING (timeseries_key) WHERE t.timeseries_name = $1 AND "
                      "t.fields->>'name' = $2" +
                      (where.empty() ? "" : " AND " + where),
                  {"postgres_instance:" + metric, name});
  }

 private:
  TestDatabase db_;
  TempDir dir_;
  std::unique_ptr<Sink> sink_;
  std::unique_ptr<SchemaChecker> checker_;
  std::mutex reader_mu_;
  std::unique_ptr<pg::Connection> reader_;  // reader_mu_
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> by_target_;  // mu_
  std::map<std::string, uint64_t> by_metric_;  // mu_
  std::atomic<uint64_t> rejected_{0};
};

MonitorOptions options(std::vector<config::PostgresTarget> targets,
                       std::chrono::milliseconds query_timeout = 5s) {
  MonitorOptions o;
  o.config.interval = 200ms;
  o.config.query_timeout = query_timeout;
  o.config.max_in_flight = 4;
  o.config.static_targets = std::move(targets);
  o.min_backoff = 100ms;
  o.max_backoff = 400ms;
  o.first_offset = [](Clock::duration) { return Clock::duration::zero(); };
  return o;
}

std::optional<TargetSnapshot> target(const PgstatsMonitor& monitor, const std::string& name) {
  for (const TargetSnapshot& t : monitor.snapshot().targets) {
    if (t.name == name) return t;
  }
  return std::nullopt;
}

uint64_t polls(const PgstatsMonitor& monitor, const std::string& name) {
  auto t = target(monitor, name);
  return t ? t->polls : 0;
}

QueryStats query(const PgstatsMonitor& monitor, const std::string& name, const std::string& q) {
  auto t = target(monitor, name);
  if (!t || !t->queries.contains(q)) return {};
  return t->queries.at(q);
}

// Sessions the monitor holds on a server (it names them tally-pgstats).
int64_t monitor_sessions(pg::Connection& conn) {
  return std::stoll(scalar(conn,
                           "SELECT count(*) FROM pg_stat_activity "
                           "WHERE application_name = 'tally-pgstats'")
                        .value_or("-1"));
}

TEST_CASE("two servers from a static list: both monitored, the stored values right") {
  Cluster second;
  TestDatabase watched;  // the main server's target connects here: its tables are the test's
  Store store;
  auto work = watched.connect();
  REQUIRE(work->exec("CREATE TABLE items (id int PRIMARY KEY, name text)").ok());

  // The second server is watched as a least-privileged role: pg_monitor and nothing else.
  REQUIRE(connect(second.url())->exec("CREATE ROLE mon LOGIN; GRANT pg_monitor TO mon").ok());
  PgstatsMonitor monitor(options({{"main", watched.url()}, {"second", second.url("mon")}}),
                         store.callback());
  monitor.start();

  // The first stored xact_commit of the watched database, then 25 more commits.
  const std::string db_is = "t.fields->>'database' = '" + watched.name() + "'";
  std::optional<std::string> first;
  REQUIRE(eventually([&] {
    first = store.stored("xact_commit", "cumulative_u64", "main", "min(m.datum)", db_is);
    return first.has_value();
  }));
  for (int i = 0; i < 25; ++i) {
    REQUIRE(work->exec("INSERT INTO items VALUES ($1, 'x')", {std::to_string(i)}).ok());
  }
  // Sessions publish their counters at most once a second, and only 10 s after going idle
  // otherwise: ask for it now.
  REQUIRE(work->exec("SELECT pg_stat_force_next_flush()").ok());
  const int64_t expected = std::stoll(*first) + 25;
  CHECK(eventually([&] {
    auto latest = store.stored("xact_commit", "cumulative_u64", "main", "max(m.datum)", db_is);
    return latest && std::stoll(*latest) >= expected;
  }));
  CHECK(eventually([&] {
    auto inserted = store.stored("n_tup_ins", "cumulative_u64", "main", "max(m.datum)",
                                 db_is +
                                     " AND t.fields->>'table' = 'items' AND "
                                     "t.fields->>'schema' = 'public'");
    return inserted && *inserted == "25";
  }));
  CHECK(eventually([&] {
    auto live = store.stored("n_live_tup", "i64", "main", "max(m.datum)",
                             db_is + " AND t.fields->>'table' = 'items'");
    return live && *live == "25";
  }));

  // Counters start at the database's stats reset, or when the server started.
  const std::string reset_us = *scalar(
      *work,
      "SELECT (extract(epoch FROM coalesce(stats_reset, pg_postmaster_start_time())) * 1000000)"
      "::bigint FROM pg_stat_database WHERE datname = current_database()");
  CHECK(store.stored("xact_commit", "cumulative_u64", "main",
                     "(extract(epoch FROM max(m.start_time)) * 1000000)::bigint",
                     db_is) == reset_us);

  // The second server: its own host and port, zeros for every connection state, a primary.
  auto second_conn = connect(second.url());
  CHECK(eventually([&] {
    return positive(store.stored("connections", "i64", "second", "count(*)",
                                 "t.fields->>'database' = 'postgres' AND "
                                 "t.fields->>'state' = 'fastpath function call' AND "
                                 "m.datum = 0 AND t.fields->>'host' = '127.0.0.1' AND "
                                 "(t.fields->>'port')::int = " +
                                     std::to_string(second.port())));
  }));
  CHECK(eventually([&] {
    return store.stored("is_in_recovery", "bool", "second", "bool_and(NOT m.datum)") ==
           std::optional<std::string>("t");
  }));
  CHECK(eventually([&] {
    auto size = store.stored("database_size_bytes", "i64", "second", "max(m.datum)",
                             "t.fields->>'database' = 'postgres'");
    return size && std::stoll(*size) > 1'000'000;
  }));
  CHECK(eventually([&] {
    auto age = store.stored("xid_age", "i64", "second", "max(m.datum)",
                            "t.fields->>'database' = 'template0'");
    return age && std::stoll(*age) > 0;
  }));
  CHECK(monitor_sessions(*second_conn) == 1);

  const auto s = target(monitor, "second");
  REQUIRE(s.has_value());
  CHECK(s->connected);
  CHECK(s->server_version >= 150000);
  CHECK(s->connect_errors == 0);
  for (const auto& [name, q] : s->queries) {
    CAPTURE(name);
    CHECK(q.errors == 0);
    CHECK(q.timeouts == 0);
  }
  CHECK(store.rejected() == 0);
  monitor.stop();
  CHECK(eventually([&] { return monitor_sessions(*second_conn) == 0; }));
}

TEST_CASE("a primary and its standby: replication lag on one, recovery lag on the other") {
  Cluster primary;
  Cluster standby(primary.port());
  Store store;
  auto primary_conn = connect(primary.url());
  REQUIRE(primary_conn->exec("CREATE ROLE mon LOGIN; GRANT pg_monitor TO mon").ok());
  REQUIRE(eventually([&] {
    return scalar(*primary_conn, "SELECT count(*) FROM pg_stat_replication") ==
           std::optional<std::string>("1");
  }));
  // Some WAL for the standby to receive and replay.
  REQUIRE(primary_conn->exec("CREATE TABLE t AS SELECT generate_series(1, 1000) AS n").ok());

  PgstatsMonitor monitor(
      options({{"primary", primary.url("mon")}, {"standby", standby.url("mon")}}),
      store.callback());
  monitor.start();
  CHECK(eventually([&] {
    auto lag = store.stored("replication_lag_bytes", "i64", "primary", "min(m.datum)",
                            "t.fields->>'replica' = 'walreceiver' AND "
                            "t.fields->>'client_addr' = '127.0.0.1'");
    return lag && std::stoll(*lag) >= 0;
  }));
  CHECK(eventually([&] {
    return positive(store.stored("replication_lag_seconds", "f64", "primary", "count(m.datum)"));
  }));
  CHECK(eventually([&] {
    return store.stored("is_in_recovery", "bool", "standby", "bool_and(m.datum)") ==
           std::optional<std::string>("t");
  }));
  CHECK(eventually([&] {
    auto lag = store.stored("recovery_lag_bytes", "i64", "standby", "min(m.datum)");
    return lag && std::stoll(*lag) >= 0;
  }));
  CHECK(eventually([&] {
    return positive(store.stored("recovery_lag_seconds", "f64", "standby", "count(m.datum)"));
  }));
  // Each side answers only its own half.
  CHECK(store.samples("primary", "recovery_lag_bytes") == 0);
  CHECK(store.samples("standby", "replication_lag_bytes") == 0);
  for (const std::string name : {"primary", "standby"}) {
    const auto t = target(monitor, name);
    REQUIRE(t.has_value());
    for (const auto& [q, stats] : t->queries) {
      CAPTURE(name);
      CAPTURE(q);
      CHECK(stats.errors == 0);
    }
  }
  CHECK(store.rejected() == 0);
}

// A discovery API whose answer the test changes.
class DiscoveryServer {
 public:
  DiscoveryServer()
      : server_({}, [this](const HttpRequest& req) {
          std::lock_guard lock(mu_);
          ++requests_;
          if (req.header("Authorization") != std::optional<std::string_view>("Bearer s3cret")) {
            return HttpResponse::error(401, "unauthorized", "no token");
          }
          if (status_ != 200) return HttpResponse::text(status_, "down for maintenance");
          return HttpResponse::json(200, body_);
        }) {
    REQUIRE(server_.start().ok());
  }
  std::string url() const { return "http://" + server_.address() + "/v1/postgres"; }
  void answer(int status, std::string body = "") {
    std::lock_guard lock(mu_);
    status_ = status;
    body_ = std::move(body);
  }
  void list(const std::vector<std::pair<std::string, std::string>>& targets) {
    std::string body = "[";
    for (const auto& [name, url] : targets) {
      if (body.size() > 1) body += ",";
      body += R"({"name": ")" + name + R"(", "url": ")" + url + R"("})";
    }
    answer(200, body + "]");
  }

 private:
  std::mutex mu_;
  int status_ = 200;         // mu_
  std::string body_ = "[]";  // mu_
  int requests_ = 0;         // mu_
  HttpServer server_;
};

std::vector<std::string> names(const PgstatsMonitor& monitor) {
  std::vector<std::string> out;
  for (const PgTarget& t : monitor.targets()) out.push_back(t.name);
  return out;
}

TEST_CASE("targets from a discovery API: added, kept while the API fails, then removed") {
  Cluster second;
  TestDatabase watched;
  Store store;
  DiscoveryServer api;
  api.list({{"main", watched.url()}});

  MonitorOptions o = options({});
  o.config.api =
      config::DiscoveryApiConfig{.url = api.url(), .token = "s3cret", .refresh_interval = 100ms};
  PgstatsMonitor monitor(o, store.callback());
  monitor.start();
  REQUIRE(eventually([&] { return store.samples("main") > 0; }));
  CHECK(names(monitor) == std::vector<std::string>{"main"});

  // A second server appears in the list: polled, its samples stored.
  api.list({{"main", watched.url()}, {"second", second.url()}});
  CHECK(eventually([&] {
    return positive(store.stored("xact_commit", "cumulative_u64", "second", "count(*)"));
  }));
  auto second_conn = connect(second.url());
  CHECK(monitor_sessions(*second_conn) == 1);

  // The API fails, then answers garbage: counted, and both targets stay.
  const uint64_t failures = monitor.snapshot().discovery_failures;
  api.answer(503);
  CHECK(eventually([&] { return monitor.snapshot().discovery_failures >= failures + 2; }));
  api.answer(200, R"([{"name": "main"}])");
  CHECK(eventually([&] { return monitor.snapshot().discovery_failures >= failures + 4; }));
  api.answer(200, "<html>");
  CHECK(eventually([&] { return monitor.snapshot().discovery_failures >= failures + 6; }));
  CHECK(names(monitor) == std::vector<std::string>{"main", "second"});
  const uint64_t second_polls = polls(monitor, "second");
  CHECK(eventually([&] { return polls(monitor, "second") >= second_polls + 2; }));

  // It is gone from the list: its connection closes and its polling stops.
  api.list({{"main", watched.url()}});
  CHECK(eventually([&] { return names(monitor) == std::vector<std::string>{"main"}; }));
  CHECK(eventually([&] { return monitor_sessions(*second_conn) == 0; }));
  const uint64_t second_samples = store.samples("second");
  const uint64_t main_polls = polls(monitor, "main");
  REQUIRE(eventually([&] { return polls(monitor, "main") >= main_polls + 3; }));
  CHECK(store.samples("second") == second_samples);
  CHECK_FALSE(target(monitor, "second").has_value());
  CHECK(monitor.prometheus_text().find("target=\"second\"") == std::string::npos);

  const PgstatsSnapshot s = monitor.snapshot();
  CHECK(s.discovery_refreshes > s.discovery_failures);
  CHECK(store.rejected() == 0);
}

// A query of the test's own that waits for an advisory lock of the database it runs in: the
// test holds the lock in one database to block it there, and only there.
QuerySpec blocked_probe() {
  return QuerySpec{.name = "probe",
                   .from = "FROM (SELECT pg_advisory_xact_lock_shared(4242)) AS l",
                   .metrics = {{"probe", ValueKind::kGaugeI64, "1::bigint"}}};
}

TEST_CASE("a query blocked past query_timeout is cancelled and counted while the others go on") {
  TestDatabase slow_db;
  TestDatabase fast_db;
  Store store;
  auto holder = slow_db.connect();
  REQUIRE(holder->exec("SELECT pg_advisory_lock(4242)").ok());

  MonitorOptions o = options({{"fast", fast_db.url()}, {"slow", slow_db.url()}}, 300ms);
  o.queries.push_back(blocked_probe());
  PgstatsMonitor monitor(o, store.callback());
  monitor.start();

  // Timed out more than once: each time cancelled, the connection closed and a new one opened.
  REQUIRE(eventually([&] { return query(monitor, "slow", "probe").timeouts >= 2; }));
  CHECK(eventually([&] { return target(monitor, "slow")->connects >= 2; }));
  // The other target was not held up: it keeps polling, its probe answering, while slow stalls.
  const uint64_t fast_probes = store.samples("fast", "probe");
  const uint64_t slow_timeouts = query(monitor, "slow", "probe").timeouts;
  CHECK(eventually([&] {
    return store.samples("fast", "probe") >= fast_probes + 3 &&
           query(monitor, "slow", "probe").timeouts > slow_timeouts;
  }));
  CHECK(query(monitor, "fast", "probe").timeouts == 0);
  CHECK(query(monitor, "fast", "probe").errors == 0);
  CHECK(store.samples("slow", "probe") == 0);
  // The queries before the probe still delivered the slow target's other samples.
  CHECK(store.samples("slow", "xact_commit") > 0);
  const std::string text = monitor.prometheus_text();
  CHECK(
      text.find("tally_collector_pgstats_query_timeouts_total{target=\"slow\",query=\"probe\"}") !=
      std::string::npos);

  // The lock released, the probe answers again.
  REQUIRE(holder->exec("SELECT pg_advisory_unlock(4242)").ok());
  CHECK(eventually([&] { return store.samples("slow", "probe") > 0; }));
  CHECK(store.rejected() == 0);
}

TEST_CASE("an unreachable target counts connect errors and does not hold up the others") {
  TestDatabase live_db;
  Store store;
  const std::string refused =
      "postgresql://postgres@127.0.0.1:" + std::to_string(unused_port()) + "/postgres";
  // TEST-NET-1: nothing answers there; connecting hangs until the connect timeout (or fails at
  // once where the network is unreachable).
  const std::string blackhole = "postgresql://postgres@192.0.2.1:5432/postgres";
  MonitorOptions o =
      options({{"blackhole", blackhole}, {"live", live_db.url()}, {"refused", refused}}, 1s);
  o.config.max_in_flight = 2;
  PgstatsMonitor monitor(o, store.callback());
  monitor.start();

  CHECK(eventually([&] { return target(monitor, "refused")->connect_errors >= 3; }));
  CHECK(eventually([&] { return target(monitor, "blackhole")->connect_errors >= 1; }));
  const uint64_t live_samples = store.samples("live");
  CHECK(eventually(
      [&] { return polls(monitor, "live") >= 5 && store.samples("live") > live_samples; }));
  CHECK_FALSE(target(monitor, "refused")->connected);
  CHECK(target(monitor, "refused")->queries.empty());
  CHECK(target(monitor, "live")->connect_errors == 0);
  CHECK(store.samples("refused") == 0);
  const std::string text = monitor.prometheus_text();
  CHECK(text.find("tally_collector_pgstats_connect_errors_total{target=\"refused\"}") !=
        std::string::npos);
  CHECK(text.find("tally_collector_pgstats_connected{target=\"live\"} 1") != std::string::npos);
}

TEST_CASE("in the collector daemon: samples stored, /metrics and self samples have pgstats") {
  TestDatabase tally_db;
  TestDatabase watched;
  TempDir state;
  config::CollectorConfig c;
  c.listen = "127.0.0.1:0";
  c.state_dir = state.path();
  c.database.url = tally_db.url();
  c.database.batch_interval = 50ms;
  c.postgres_monitoring = config::PostgresMonitoringConfig{
      .interval = 200ms, .static_targets = {{"main", watched.url()}}};
  auto daemon = Daemon::start({.config = c, .self_interval = 200ms});
  REQUIRE_MESSAGE(daemon.ok(), daemon.error());

  auto conn = tally_db.connect();
  const auto stored = [&](const std::string& name) {
    return std::stoll(
        scalar(*conn, "SELECT count(*) FROM tally.timeseries WHERE timeseries_name = $1", {name})
            .value_or("0"));
  };
  CHECK(eventually([&] { return stored("postgres_instance:xact_commit") > 0; }));
  CHECK(eventually([&] { return stored("tally_collector:pgstats_polls") > 0; }));
  auto metrics = http_request({}, "GET", "http://" + (*daemon)->address() + "/metrics");
  REQUIRE_MESSAGE(metrics.ok(), metrics.error());
  CHECK(metrics->body.find("tally_collector_pgstats_polls_total{target=\"main\"}") !=
        std::string::npos);
  CHECK(metrics->body.find("tally_collector_samples_stored_total") != std::string::npos);
  (*daemon)->stop();
}

TEST_CASE("in the collector daemon: requests during start-up get 503 starting, then answers") {
  // The API listens before start() has built the Postgres monitor and the registry link, which
  // /metrics reads: until start() is done it must answer 503 starting, not read them while they
  // are being set. (Before that fix TSan stayed quiet here too: incidental locks on the way,
  // the pipeline's and the monitor's, usually ordered the accesses. This checks the behaviour.)
  TestDatabase tally_db;
  TestDatabase watched;
  TempDir state;
  config::CollectorConfig c;
  c.listen = "127.0.0.1:" + std::to_string(tally::test::unused_port());
  c.state_dir = state.path();
  c.database.url = tally_db.url();
  c.postgres_monitoring = config::PostgresMonitoringConfig{
      .interval = 200ms, .static_targets = {{"main", watched.url()}}};

  // Asks for /metrics from before start() until an answer that is not 503 starting arrives.
  std::atomic<bool> started{false};
  std::mutex mu;
  std::vector<std::string> unexpected;  // mu
  int starting = 0;                     // mu
  std::thread client([&] {
    while (true) {
      const bool after_start = started;
      auto r = http_request({.timeout = 10s}, "GET", "http://" + c.listen + "/metrics");
      if (!r.ok()) {
        if (after_start) {
          std::lock_guard lock(mu);
          unexpected.push_back(r.error());
          return;
        }
        continue;  // not listening yet
      }
      std::lock_guard lock(mu);
      if (r->status == 503 && r->body.find("\"starting\"") != std::string::npos) {
        ++starting;
        continue;
      }
      if (r->status != 200 || r->body.find("tally_collector_build_info") == std::string::npos) {
        unexpected.push_back(std::to_string(r->status) + " " + r->body);
      }
      return;
    }
  });
  auto daemon = Daemon::start({.config = c});
  started = true;
  client.join();
  REQUIRE_MESSAGE(daemon.ok(), daemon.error());
  std::lock_guard lock(mu);
  CHECK_MESSAGE(unexpected.empty(), (unexpected.empty() ? "" : unexpected.front()));
  MESSAGE(starting << " requests answered 503 starting");
  (*daemon)->stop();
}

}  // namespace
}  // namespace tally::collector::pgstats
