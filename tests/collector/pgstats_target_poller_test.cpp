// The pure parts of polling one Postgres target: reading host and port from its URL, the
// connection parameters added to it, reconnect backoff and the query_timeout watchdog (with a
// fake clock). Polling real servers is in pgstats_db_test.cpp.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "tally/collector/pgstats/target_poller.h"
#include "tally/collector/pgstats/watchdog.h"

namespace tally::collector::pgstats {
namespace {

using namespace std::chrono_literals;

TEST_CASE("parse_instance reads host and port from URIs and key=value strings") {
  struct Case {
    const char* url;
    const char* host;
    uint16_t port;
  };
  const Case cases[] = {
      {"postgresql://mon:secret@db1.example.com:5433/postgres", "db1.example.com", 5433},
      {"postgres://db1/postgres", "db1", 5432},
      {"postgresql://127.0.0.1", "127.0.0.1", 5432},
      {"postgresql://[::1]:6000/x", "::1", 6000},
      {"postgresql://[2001:db8::7]/x", "2001:db8::7", 5432},
      {"postgresql://a:5433,b:5434/x?target_session_attrs=read-write", "a", 5433},
      {"postgresql:///x?host=%2Frun%2Fpostgresql&port=5499", "/run/postgresql", 5499},
      {"postgresql://%2Fvar%2Frun%2Fpostgresql/x", "/var/run/postgresql", 5432},
      {"postgresql:///x", "localhost", 5432},
      {"postgresql://user@/x", "localhost", 5432},
      {"host=db2 port=5435 dbname=postgres", "db2", 5435},
      {"dbname='my db' host = 'db 3' user=mon", "db 3", 5432},
      {"hostaddr=10.0.0.5 port=6432", "10.0.0.5", 6432},
      {"host=a,b port=5440,5441", "a", 5440},
      {"dbname=postgres", "localhost", 5432},
  };
  for (const Case& c : cases) {
    CAPTURE(c.url);
    auto instance = parse_instance("t", c.url);
    REQUIRE_MESSAGE(instance.ok(), instance.error());
    CHECK(instance->name == "t");
    CHECK(instance->host == c.host);
    CHECK(instance->port == c.port);
  }
  for (const char* bad : {"postgresql://h:0/x", "postgresql://h:http/x", "host=h port=70000",
                          "postgresql://[::1/x"}) {
    CAPTURE(bad);
    auto instance = parse_instance("t", bad);
    REQUIRE_FALSE(instance.ok());
    CHECK(instance.status().code() == "bad_url");
  }
}

TEST_CASE("with_connection_params adds only what the URL does not set") {
  const std::vector<std::pair<std::string, std::string>> params = {{"keepalives", "1"},
                                                                   {"keepalives_idle", "5"}};
  CHECK(with_connection_params("postgresql://h/x", params) ==
        "postgresql://h/x?keepalives=1&keepalives_idle=5");
  CHECK(with_connection_params("postgresql://h/x?sslmode=require&keepalives_idle=30", params) ==
        "postgresql://h/x?sslmode=require&keepalives_idle=30&keepalives=1");
  CHECK(with_connection_params("host=h dbname=x", params) ==
        "host=h dbname=x keepalives='1' keepalives_idle='5'");
  CHECK(with_connection_params("host=h keepalives = 0", params) ==
        "host=h keepalives = 0 keepalives_idle='5'");
}

TEST_CASE("reconnect backoff doubles up to its maximum and starts over after a success") {
  Backoff backoff(1s, 5s);
  const Clock::time_point t0{};
  CHECK(backoff.failed(t0) == t0 + 1s);
  CHECK(backoff.failed(t0) == t0 + 2s);
  CHECK(backoff.failed(t0) == t0 + 4s);
  CHECK(backoff.failed(t0) == t0 + 5s);
  CHECK(backoff.failed(t0) == t0 + 5s);
  backoff.reset();
  CHECK(backoff.failed(t0) == t0 + 1s);
}

TEST_CASE("the watchdog cancels a query armed past its deadline, and only that one") {
  Watchdog watchdog;  // not started: the test moves time itself
  const Clock::time_point t0{};
  int cancelled_a = 0;
  int cancelled_b = 0;
  const auto a = watchdog.arm(t0 + 300ms, [&] { ++cancelled_a; });
  const auto b = watchdog.arm(t0 + 900ms, [&] { ++cancelled_b; });
  CHECK(watchdog.fire_expired(t0 + 299ms) == 0);
  CHECK(watchdog.fire_expired(t0 + 300ms) == 1);
  CHECK(watchdog.fire_expired(t0 + 301ms) == 0);  // fires once
  CHECK(cancelled_a == 1);
  CHECK(cancelled_b == 0);
  CHECK(watchdog.disarm(a));        // it fired: the caller closes that connection
  CHECK_FALSE(watchdog.disarm(b));  // finished in time
  CHECK(watchdog.fire_expired(t0 + 10s) == 0);
  CHECK(cancelled_b == 0);
  CHECK_FALSE(watchdog.disarm(b));  // unknown by now
}

TEST_CASE("fire_now cancels at once (a target removed mid-query)") {
  Watchdog watchdog;
  int cancelled = 0;
  const auto token = watchdog.arm(Clock::time_point{} + 1h, [&] { ++cancelled; });
  CHECK(watchdog.fire_now(token));
  CHECK_FALSE(watchdog.fire_now(token));
  CHECK(cancelled == 1);
  CHECK(watchdog.disarm(token));
  CHECK_FALSE(watchdog.fire_now(token));
}

TEST_CASE("the watchdog's thread fires by itself and stops promptly") {
  Watchdog watchdog;
  watchdog.start();
  std::atomic<bool> cancelled{false};
  const auto token = watchdog.arm(steady_clock().now() + 20ms, [&] { cancelled = true; });
  (void)watchdog.arm(steady_clock().now() + 1h, [] {});
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!cancelled && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  CHECK(cancelled);
  CHECK(watchdog.disarm(token));
  watchdog.stop();  // with an hour-long deadline still armed
}

TEST_CASE("TargetStats lists every query of the server with zeros and counts outcomes") {
  TargetStats stats(PgTarget{"main", "postgresql://h/x", TargetSource::kApi}, Timestamp{});
  stats.connected(150000, {"instance", "stat_database"});
  stats.observe("instance", 0.002, TargetStats::Outcome::kOk);
  stats.observe("instance", 0.3, TargetStats::Outcome::kTimeout);
  stats.observe("instance", 0.01, TargetStats::Outcome::kError);
  stats.count_poll();
  stats.count_skipped();
  stats.connect_failed();
  const TargetSnapshot s = stats.snapshot();
  CHECK(s.name == "main");
  CHECK(s.source == "api");
  CHECK(s.connected);
  CHECK(s.server_version == 150000);
  CHECK(s.connects == 1);
  CHECK(s.connect_errors == 1);
  CHECK(s.polls == 1);
  CHECK(s.polls_skipped == 1);
  REQUIRE(s.queries.size() == 2);
  const QueryStats& q = s.queries.at("instance");
  CHECK(q.runs == 3);
  CHECK(q.errors == 1);
  CHECK(q.timeouts == 1);
  CHECK(q.latency.count == 3);
  CHECK(q.latency.counts[1] == 1);  // 2 ms: in (1 ms, 2.5 ms]
  CHECK(q.latency.counts[3] == 1);  // 10 ms: in (5 ms, 10 ms]
  CHECK(q.latency.counts[8] == 1);  // 300 ms: in (250 ms, 500 ms]
  CHECK(s.queries.at("stat_database").runs == 0);
  stats.disconnected();
  CHECK_FALSE(stats.snapshot().connected);
}

}  // namespace
}  // namespace tally::collector::pgstats
