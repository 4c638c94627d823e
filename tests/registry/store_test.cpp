// RegistryStore against a real Postgres. Liveness is the database's clock, so these tests make
// a collector dead or a lease expire by moving its timestamp into the past, not by waiting.
#include "tally/registry/store.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "assignment_model.h"
#include "support/test_db.h"
#include "tally/registry/connection_pool.h"
#include "tally/registry/registration_batcher.h"
#include "tally/schema/migrations.h"

using namespace tally;
using namespace tally::registry;
using tally::registry::model::CollectorLoad;
using tally::registry::model::plan_assignments;

namespace {

struct Fixture {
  test::TestDatabase db;
  std::unique_ptr<pg::Connection> conn = db.connect();
  RegistryStore store{StoreOptions{}};
  Caller admin{std::nullopt, true};

  Fixture() {
    Status s = schema::apply_migrations(*conn);
    REQUIRE_MESSAGE(s.ok(), s.message());
  }

  Uuid heartbeat(int n) {
    Uuid id = collector_id(n);
    auto h = store.heartbeat(*conn, {id, "127.0.0.1:" + std::to_string(12000 + n)});
    REQUIRE_MESSAGE(h.ok(), h.error());
    return id;
  }

  static Uuid collector_id(int n) {
    Uuid u;
    u.bytes[0] = 0xcc;
    u.bytes[15] = static_cast<uint8_t>(n);
    return u;
  }

  Registration add(const Uuid& id, const Caller& caller) {
    ProducerSpec spec;
    spec.id = id;
    spec.address = "127.0.0.1:9100";
    spec.route = "/collect";
    auto r = store.register_producer(*conn, spec, caller);
    REQUIRE_MESSAGE(r.ok(), r.error());
    return *r;
  }
  Registration add(const Uuid& id) { return add(id, admin); }

  ProducerRecord get(const Uuid& id) {
    auto p = store.get_producer(*conn, id);
    REQUIRE_MESSAGE(p.ok(), p.error());
    REQUIRE(p->has_value());
    return **p;
  }

  // Dead (silent longer than collector_ttl, 15 s) but not yet forgotten (150 s) by default.
  void kill(const Uuid& collector, const std::string& silent_for = "1 minute") {
    db.scalar("UPDATE tally.collectors SET last_seen = now() - interval '" + silent_for +
              "' WHERE id = '" + collector.to_string() + "'");
  }

  // Producers per collector, counted from the producers table.
  std::map<std::string, int> loads() {
    auto rows = conn->exec(
        "SELECT coalesce(collector_id::text, 'none'), count(*) FROM tally.producers GROUP BY 1");
    REQUIRE(rows.ok());
    std::map<std::string, int> out;
    for (int i = 0; i < rows->size(); ++i)
      out[std::string(rows->get(i, 0))] = std::stoi(std::string(rows->get(i, 1)));
    return out;
  }

  // Checks the counters the triggers keep against a real count.
  void check_counters() {
    CHECK(db.scalar("SELECT count(*) FROM tally.collectors c WHERE n_producers <>"
                    " (SELECT count(*) FROM tally.producers p WHERE p.collector_id = c.id)") ==
          "0");
  }
};

}  // namespace

TEST_CASE("registration picks the least-loaded live collector and renewal keeps it") {
  Fixture f;
  const Uuid a = f.heartbeat(1);
  const Uuid b = f.heartbeat(2);
  const Registration first = f.add(Uuid::random());
  CHECK(first.created);
  CHECK(first.assigned_to_live);
  CHECK(first.collector_id == a);  // tie: the smaller id
  CHECK(first.collector_address == std::optional<std::string>("127.0.0.1:12001"));
  const Registration second = f.add(Uuid::random());
  CHECK(second.collector_id == b);
  const ProducerRecord before = f.get(first.id);

  f.heartbeat(3);  // an empty collector appears: renewals still keep their collector
  const Registration renewed = f.add(first.id);
  CHECK_FALSE(renewed.created);
  CHECK(renewed.assigned_to_live);
  CHECK(renewed.collector_id == a);
  const ProducerRecord after = f.get(first.id);
  CHECK(after.collector_id == a);
  CHECK(after.registered_at == before.registered_at);
  CHECK(after.renewed_at > before.renewed_at);
  CHECK(after.lease_expires_at > before.lease_expires_at);
  f.check_counters();
}

TEST_CASE("without a live collector a producer is stored unassigned, then assigned by gc") {
  Fixture f;
  const Registration r = f.add(Uuid::random());
  CHECK_FALSE(r.assigned_to_live);
  CHECK_FALSE(r.collector_id.has_value());
  const Uuid c = f.heartbeat(1);
  auto report = f.store.gc(*f.conn, {});
  REQUIRE(report.ok());
  CHECK(report->assigned == 1);
  CHECK(report->reassigned == 0);
  CHECK(f.get(r.id).collector_id == c);
  f.check_counters();
}

TEST_CASE("gc moves a dead collector's producers evenly over the live ones") {
  Fixture f;
  const Uuid a = f.heartbeat(1);
  const Uuid b = f.heartbeat(2);
  const Uuid c = f.heartbeat(3);
  for (int i = 0; i < 30; ++i) f.add(Uuid::random());
  CHECK(f.loads() ==
        std::map<std::string, int>{{a.to_string(), 10}, {b.to_string(), 10}, {c.to_string(), 10}});

  f.kill(c);
  auto held = f.store.gc(*f.conn, {.move_from_dead = false});  // the start-up grace
  REQUIRE(held.ok());
  CHECK(held->reassigned == 0);
  CHECK(f.loads()[c.to_string()] == 10);

  auto report = f.store.gc(*f.conn, {});
  REQUIRE(report.ok());
  CHECK(report->reassigned == 10);
  REQUIRE(report->emptied.size() == 1);
  CHECK(report->emptied[0].id == c);
  CHECK(f.loads() == std::map<std::string, int>{{a.to_string(), 15}, {b.to_string(), 15}});
  f.check_counters();
}

TEST_CASE("gc spreads producers exactly as plan_assignments does, whatever the loads") {
  struct Case {
    std::vector<int> live;  // producers on each live collector
    int dead;               // on a dead one
    int unassigned;
  };
  const std::vector<Case> cases = {
      {{0, 0, 0}, 10, 0},   // equal: round robin by id
      {{5, 0, 12}, 7, 3},   // the emptiest fills first
      {{3, 3, 40}, 20, 5},  // the water level stays below the busiest
      {{100, 0}, 1, 0},     // one producer
      {{1, 2, 3}, 0, 0},    // nothing to do
      {{7}, 0, 4},          // unassigned only
  };
  for (const Case& c : cases) {
    CAPTURE(c.dead);
    CAPTURE(c.unassigned);
    Fixture f;
    // Rows written directly: the loads are the test's, not what registration would choose.
    const auto insert = [&](int n, const std::string& collector) {
      f.db.scalar(
          "INSERT INTO tally.producers (id, kind, address, route, interval_ms, format,"
          " collector_id, lease_expires_at) SELECT gen_random_uuid(), 'service',"
          " '127.0.0.1:9100', '/collect', 10000, 'oximeter', " +
          collector + ", now() + interval '1 hour' FROM generate_series(1, " + std::to_string(n) +
          ")");
    };
    std::vector<CollectorLoad> live;
    for (std::size_t i = 0; i < c.live.size(); ++i) {
      const Uuid id = f.heartbeat(static_cast<int>(i) + 1);
      insert(c.live[i], "'" + id.to_string() + "'");
      live.push_back({id, c.live[i]});
    }
    const Uuid dead = f.heartbeat(50);
    insert(c.dead, "'" + dead.to_string() + "'");
    f.kill(dead);
    insert(c.unassigned, "NULL");

    std::vector<Uuid> orphans;
    auto rows = f.conn->exec(
        "SELECT id FROM tally.producers WHERE collector_id IS NULL OR collector_id = $1::uuid"
        " ORDER BY id",
        {dead.to_string()});
    REQUIRE(rows.ok());
    for (int i = 0; i < rows->size(); ++i) orphans.push_back(*Uuid::parse(rows->get(i, 0)));
    const auto plan = plan_assignments(live, orphans);

    auto report = f.store.gc(*f.conn, {});
    REQUIRE(report.ok());
    CHECK(report->reassigned == c.dead);
    CHECK(report->assigned == c.unassigned);
    for (const auto& [producer, collector] : plan) CHECK(f.get(producer).collector_id == collector);
    f.check_counters();
  }
}

TEST_CASE("gc says how long until the first live collector's heartbeat is too old") {
  Fixture f;
  const RegistryStore store{StoreOptions{.collector_ttl = std::chrono::hours(1),
                                         .forget_collector_after = std::chrono::hours(10)}};
  auto report = store.gc(*f.conn, {});
  REQUIRE(report.ok());
  CHECK_FALSE(report->next_expiry.has_value());  // no collector

  const Uuid a = f.heartbeat(1);
  f.heartbeat(2);
  f.kill(a, "50 minutes");  // live for 10 more minutes, by the database's clock
  report = store.gc(*f.conn, {});
  REQUIRE(report.ok());
  REQUIRE(report->next_expiry.has_value());
  CHECK(*report->next_expiry > std::chrono::microseconds::zero());
  CHECK(*report->next_expiry <= std::chrono::minutes(10));

  f.kill(a, "2 hours");
  f.kill(f.collector_id(2), "2 hours");
  report = store.gc(*f.conn, {});
  REQUIRE(report.ok());
  CHECK_FALSE(report->next_expiry.has_value());  // none live: nothing to wait for
}

TEST_CASE("a renewal moves a producer off a dead collector") {
  Fixture f;
  const Uuid a = f.heartbeat(1);
  const Registration r = f.add(Uuid::random());
  REQUIRE(r.collector_id == a);
  f.kill(a);
  const Uuid b = f.heartbeat(2);
  const Registration renewed = f.add(r.id);
  CHECK(renewed.collector_id == b);
  CHECK(renewed.moved_from == std::optional<Uuid>(a));
  f.check_counters();
}

TEST_CASE("with no live collector producers stay put until their collector is forgotten") {
  Fixture f;
  const Uuid a = f.heartbeat(1);
  f.add(Uuid::random());
  f.kill(a);
  auto report = f.store.gc(*f.conn, {});
  REQUIRE(report.ok());
  CHECK(report->reassigned == 0);
  CHECK(report->forgotten.empty());
  CHECK(f.loads() == std::map<std::string, int>{{a.to_string(), 1}});

  f.kill(a, "1 hour");
  report = f.store.gc(*f.conn, {});
  REQUIRE(report.ok());
  CHECK(report->forgotten == std::vector<Uuid>{a});
  CHECK(f.loads() == std::map<std::string, int>{{"none", 1}});

  const Uuid b = f.heartbeat(2);
  report = f.store.gc(*f.conn, {});
  REQUIRE(report.ok());
  CHECK(report->assigned == 1);
  CHECK(f.loads() == std::map<std::string, int>{{b.to_string(), 1}});
  f.check_counters();
}

TEST_CASE("expired leases are deleted by gc") {
  Fixture f;
  f.heartbeat(1);
  const Registration keep = f.add(Uuid::random());
  const Registration old = f.add(Uuid::random());
  f.db.scalar(
      "UPDATE tally.producers SET lease_expires_at = now() - interval '1 second' WHERE id = '" +
      old.id.to_string() + "'");
  auto report = f.store.gc(*f.conn, {});
  REQUIRE(report.ok());
  REQUIRE(report->expired.size() == 1);
  CHECK(report->expired[0] == old.id);
  CHECK(f.store.get_producer(*f.conn, old.id)->has_value() == false);
  CHECK(f.store.get_producer(*f.conn, keep.id)->has_value());
  f.check_counters();
}

TEST_CASE("a producer token may change only what it registered") {
  Fixture f;
  f.heartbeat(1);
  const Caller app{std::string("app"), false};
  const Caller other{std::string("other"), false};
  const Registration r = f.add(Uuid::random(), app);
  CHECK(f.get(r.id).registered_by == std::optional<std::string>("app"));

  ProducerSpec spec = f.get(r.id).spec;
  auto conflict = f.store.register_producer(*f.conn, spec, other);
  REQUIRE_FALSE(conflict.ok());
  CHECK(conflict.status().code() == "conflict");
  CHECK(f.store.delete_producer(*f.conn, spec.id, other).code() == "forbidden");
  CHECK(f.store.register_producer(*f.conn, spec, app).ok());      // its own renewal
  CHECK(f.store.register_producer(*f.conn, spec, f.admin).ok());  // admin may
  CHECK(f.get(r.id).registered_by == std::optional<std::string>("app"));
  CHECK(f.store.delete_producer(*f.conn, spec.id, app).ok());
  CHECK(f.store.delete_producer(*f.conn, spec.id, app).code() == "not_found");
  f.check_counters();
}

TEST_CASE("the registration functions take the registry's assignment lock") {
  Fixture f;
  CHECK(f.db.scalar("SELECT count(*) FILTER (WHERE prosrc LIKE '%pg_advisory_xact_lock(" +
                    std::to_string(kAssignmentLockKey) +
                    ")%') FROM pg_proc WHERE proname IN ('register_producer', "
                    "'register_producers')") == "2");
}

TEST_CASE("a batch of registrations is decided item by item, each with its own result") {
  Fixture f;
  f.heartbeat(1);
  f.heartbeat(2);
  const Caller app{std::string("app"), false};
  const Caller other{std::string("other"), false};
  ProducerSpec theirs;
  theirs.id = Uuid::random();
  theirs.address = "127.0.0.1:9100";
  theirs.route = "/collect";
  REQUIRE(f.store.register_producer(*f.conn, theirs, other).ok());

  std::vector<RegistrationRequest> batch;
  for (int i = 0; i < 6; ++i) {
    ProducerSpec spec = theirs;
    spec.id = Uuid::random();
    spec.address = "127.0.0.1:" + std::to_string(9200 + i);
    spec.target_name = i % 2 ? std::optional<std::string>("a \"quoted\" name") : std::nullopt;
    batch.push_back({spec, app});
  }
  batch.insert(batch.begin() + 3, RegistrationRequest{theirs, app});  // not app's to change
  auto results = f.store.register_producers(*f.conn, batch);
  REQUIRE(results.ok());
  REQUIRE(results->size() == batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& r = (*results)[i];
    if (i == 3) {
      CHECK(r.status().code() == "conflict");
      continue;
    }
    REQUIRE(r.ok());
    CHECK(r->id == batch[i].spec.id);
    CHECK(r->created);
    CHECK(r->assigned_to_live);
    auto stored = f.store.get_producer(*f.conn, batch[i].spec.id);
    REQUIRE((stored.ok() && stored->has_value()));
    CHECK((*stored)->spec.address == batch[i].spec.address);
    CHECK((*stored)->spec.target_name == batch[i].spec.target_name);
    CHECK((*stored)->collector_id == r->collector_id);
  }
  // 1 + 6 producers on two collectors: the batch counted its own assignments as it went.
  const auto loads = f.loads();
  REQUIRE(loads.size() == 2);
  int64_t most = 0, least = 1'000'000;
  for (const auto& [collector, n] : loads) {
    most = std::max<int64_t>(most, n);
    least = std::min<int64_t>(least, n);
  }
  CHECK(most - least <= 1);
  f.check_counters();
}

TEST_CASE("pages follow ids and say when more follow") {
  Fixture f;
  f.heartbeat(1);
  for (int i = 0; i < 5; ++i) f.add(Uuid::random());
  std::vector<Uuid> seen;
  PageQuery q;
  q.limit = 2;
  int pages = 0;
  while (true) {
    auto page = f.store.list_producers(*f.conn, q, std::nullopt);
    REQUIRE(page.ok());
    ++pages;
    for (const auto& p : page->items) seen.push_back(p.spec.id);
    if (!page->next) break;
    CHECK(*page->next == page->items.back().spec.id);
    q.after = page->next;
  }
  CHECK(pages == 3);
  REQUIRE(seen.size() == 5);
  CHECK(std::is_sorted(seen.begin(), seen.end()));
}

TEST_CASE("concurrent registrations on separate connections keep the collectors balanced") {
  Fixture f;
  for (int i = 1; i <= 3; ++i) f.heartbeat(i);
  constexpr int kThreads = 6;
  constexpr int kPerThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto conn = pg::Connection::open(f.db.url());
      if (!conn.ok()) {
        ++failures;
        return;
      }
      RegistryStore store{StoreOptions{}};  // as if each thread were a registry of its own
      for (int i = 0; i < kPerThread; ++i) {
        ProducerSpec spec;
        spec.id = Uuid::random();
        spec.address = "127.0.0.1:9100";
        spec.route = "/collect";
        if (!store.register_producer(**conn, spec, {std::nullopt, true}).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  const auto loads = f.loads();
  REQUIRE(loads.size() == 3);
  for (const auto& [collector, n] : loads) CHECK(n == kThreads * kPerThread / 3);
  f.check_counters();
}

TEST_CASE("registrations through the batcher from many threads are all written and balanced") {
  Fixture f;
  for (int i = 1; i <= 3; ++i) f.heartbeat(i);
  ConnectionPool pool(ConnectionPoolOptions{.url = f.db.url(), .max_idle = 2});
  RegistrationBatcher batcher(f.store, pool, /*max_batch=*/4);
  ProducerSpec shared;  // re-registered by every thread: never twice in one batch
  shared.id = Uuid::random();
  shared.address = "127.0.0.1:9100";
  shared.route = "/collect";
  constexpr int kThreads = 8;
  constexpr int kPerThread = 15;
  std::atomic<int> failures{0};
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        ProducerSpec spec = shared;
        if (i > 0) spec.id = Uuid::random();
        auto r = batcher.register_producer(spec, f.admin);
        if (!r.ok() || !r->assigned_to_live) ++failures;
        if (r.ok() && r->created) ++created;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  constexpr int kProducers = kThreads * (kPerThread - 1) + 1;
  CHECK(created == kProducers);  // the shared id was created once, then renewed
  const auto loads = f.loads();
  REQUIRE(loads.size() == 3);
  for (const auto& [collector, n] : loads) {
    CHECK(n >= kProducers / 3);
    CHECK(n <= kProducers / 3 + 1);
  }
  f.check_counters();
}
