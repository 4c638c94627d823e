#include "tally/schema/migrations.h"

#include <doctest/doctest.h>

#include <thread>

#include "support/test_db.h"

namespace tally::schema {
namespace {

using test::TestDatabase;

std::string embedded_count() { return std::to_string(embedded_migrations().size()); }

TEST_CASE("the embedded migrations start at 001_initial and increase") {
  const auto& migrations = embedded_migrations();
  REQUIRE_FALSE(migrations.empty());
  CHECK(migrations[0].version == 1);
  CHECK(migrations[0].name == "001_initial");
  CHECK(migrations[0].sql.find("CREATE TABLE tally.timeseries_schema") != std::string_view::npos);
  for (std::size_t i = 1; i < migrations.size(); ++i) {
    CHECK(migrations[i - 1].version < migrations[i].version);
  }
}

TEST_CASE("apply_migrations creates the tables of DESIGN.md §6") {
  TestDatabase db;
  auto conn = db.connect();
  REQUIRE(apply_migrations(*conn).ok());
  for (const char* table :
       {"tally.schema_migrations", "tally.producers", "tally.collectors", "tally.timeseries_schema",
        "tally.timeseries", "tally.measurements_bool", "tally.measurements_i64",
        "tally.measurements_u64", "tally.measurements_f64", "tally.measurements_string",
        "tally.measurements_bytes", "tally.measurements_cumulative_i64",
        "tally.measurements_cumulative_u64", "tally.measurements_cumulative_f64",
        "tally.measurements_histogram_i64", "tally.measurements_histogram_f64"}) {
    CAPTURE(table);
    CHECK(db.scalar(std::string("SELECT to_regclass('") + table + "') IS NOT NULL") == "t");
  }
  CHECK(db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'tally_ts'") == "1");
  CHECK(db.scalar("SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c "
                  "ON c.oid = p.partrelid WHERE c.relnamespace = 'tally'::regnamespace") == "11");
  // No sequences anywhere in the schema (Citus-friendly, §11).
  CHECK(db.scalar("SELECT count(*) FROM pg_class WHERE relkind = 'S' "
                  "AND relnamespace = 'tally'::regnamespace") == "0");
}

TEST_CASE("applying the migrations twice applies each once") {
  TestDatabase db;
  auto conn = db.connect();
  REQUIRE(apply_migrations(*conn).ok());
  const std::string first = db.scalar(
      "SELECT string_agg(applied_at::text, ',') "
      "FROM tally.schema_migrations");
  const Status again = apply_migrations(*conn);
  CHECK_MESSAGE(again.ok(), again.message());
  CHECK(db.scalar("SELECT count(*) FROM tally.schema_migrations") == embedded_count());
  CHECK(db.scalar("SELECT string_agg(applied_at::text, ',') FROM tally.schema_migrations") ==
        first);
}

TEST_CASE("concurrent migrators on separate connections apply each migration once") {
  TestDatabase db;
  constexpr int kMigrators = 4;
  std::vector<std::unique_ptr<pg::Connection>> conns;
  for (int i = 0; i < kMigrators; ++i) conns.push_back(db.connect());
  std::vector<Status> results(kMigrators);
  std::vector<std::thread> threads;
  for (int i = 0; i < kMigrators; ++i) {
    threads.emplace_back([&, i] { results[i] = apply_migrations(*conns[i]); });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) CHECK_MESSAGE(s.ok(), s.message());
  CHECK(db.scalar("SELECT count(*) FROM tally.schema_migrations") == embedded_count());
  CHECK(db.scalar("SELECT count(DISTINCT version) FROM tally.schema_migrations") ==
        embedded_count());
}

TEST_CASE("a failing migration leaves nothing behind and releases the lock") {
  TestDatabase db;
  auto conn = db.connect();
  const std::vector<Migration> migrations = {
      {1, "001_good", "CREATE SCHEMA IF NOT EXISTS tally; CREATE TABLE tally.good (x int)"},
      {2, "002_bad", "CREATE TABLE tally.half_done (x int); SELECT no_such_function()"},
  };
  const Status s = apply_migrations(*conn, migrations);
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("002_bad") != std::string::npos);
  CHECK(db.scalar("SELECT string_agg(version::text, ',') FROM tally.schema_migrations") == "1");
  CHECK(db.scalar("SELECT to_regclass('tally.good') IS NOT NULL") == "t");
  CHECK(db.scalar("SELECT to_regclass('tally.half_done') IS NULL") == "t");
  // Another session can take the migration lock, so nobody would wait forever on it.
  auto other = db.connect();
  auto locked =
      other->exec("SELECT pg_try_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
  REQUIRE(locked.ok());
  CHECK(locked->get(0, 0) == "t");
}

}  // namespace
}  // namespace tally::schema
