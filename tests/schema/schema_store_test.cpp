#include "tally/schema/schema_store.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "support/test_db.h"
#include "tally/schema/migrations.h"

namespace tally::schema {
namespace {

using test::TestDatabase;

TimeseriesSchema latency_schema() {
  TimeseriesSchema s;
  s.timeseries_name = "http_service:request_latency";
  s.target_name = "http_service";
  s.metric_name = "request_latency";
  s.fields = {{"name", FieldType::kString, FieldSource::kTarget},
              {"route", FieldType::kString, FieldSource::kMetric}};
  s.datum_type = DatumType::kHistogramF64;
  return s;
}

std::unique_ptr<pg::Connection> migrated(const TestDatabase& db) {
  auto conn = db.connect();
  REQUIRE(apply_migrations(*conn).ok());
  return conn;
}

TEST_CASE("a schema seen for the first time is stored and accepted") {
  TestDatabase db;
  auto conn = migrated(db);
  SchemaStore store;
  auto check = store.check(*conn, latency_schema());
  REQUIRE_MESSAGE(check.ok(), check.error());
  CHECK(check->accepted);
  CHECK(check->inserted);
  CHECK(check->conflict.empty());
  CHECK(db.scalar("SELECT datum_type || ' ' || target_name || ' ' || metric_name || ' ' || "
                  "(fields->1->>'name') || ' ' || (fields->1->>'source') "
                  "FROM tally.timeseries_schema WHERE timeseries_name = "
                  "'http_service:request_latency' AND version = 1") ==
        "histogram_f64 http_service request_latency route metric");
}

TEST_CASE("an identical schema is accepted without a second insert whether cached or not") {
  TestDatabase db;
  auto conn = migrated(db);
  SchemaStore store;
  REQUIRE(store.check(*conn, latency_schema()).ok());
  auto cached = store.check(*conn, latency_schema());
  REQUIRE(cached.ok());
  CHECK(cached->accepted);
  CHECK_FALSE(cached->inserted);
  SchemaStore fresh;  // another collector: reads the stored row
  auto loaded = fresh.check(*conn, latency_schema());
  REQUIRE(loaded.ok());
  CHECK(loaded->accepted);
  CHECK_FALSE(loaded->inserted);
  CHECK(loaded->stored == latency_schema());
  CHECK(db.scalar("SELECT count(*) FROM tally.timeseries_schema") == "1");
}

TEST_CASE("a different schema under the same name and version is a conflict showing both") {
  TestDatabase db;
  auto conn = migrated(db);
  SchemaStore first;
  REQUIRE(first.check(*conn, latency_schema()).ok());
  TimeseriesSchema changed = latency_schema();
  changed.fields[1].type = FieldType::kU16;
  changed.datum_type = DatumType::kF64;
  auto check_conflict = [&](SchemaStore& store) {
    auto check = store.check(*conn, changed);
    REQUIRE(check.ok());
    CHECK_FALSE(check->accepted);
    CHECK_FALSE(check->inserted);
    CHECK(check->stored == latency_schema());
    const std::string& text = check->conflict;
    CHECK(text.find("field 'route' is string in the stored schema but u16 in the new one") !=
          std::string::npos);
    CHECK(text.find("datum type differs: histogram_f64 vs f64") != std::string::npos);
    CHECK(text.find("stored: " + format_schema(latency_schema())) != std::string::npos);
    CHECK(text.find("new: " + format_schema(changed)) != std::string::npos);
  };
  check_conflict(first);  // from the cache
  SchemaStore fresh;
  check_conflict(fresh);  // from the database
  CHECK(db.scalar("SELECT datum_type FROM tally.timeseries_schema") == "histogram_f64");
}

TEST_CASE("a new version of a timeseries is a separate schema") {
  TestDatabase db;
  auto conn = migrated(db);
  SchemaStore store;
  REQUIRE(store.check(*conn, latency_schema()).ok());
  TimeseriesSchema v2 = latency_schema();
  v2.version = 2;
  v2.datum_type = DatumType::kF64;
  auto check = store.check(*conn, v2);
  REQUIRE(check.ok());
  CHECK(check->accepted);
  CHECK(check->inserted);
  CHECK(db.scalar("SELECT count(*) FROM tally.timeseries_schema") == "2");
}

TEST_CASE("stores racing to insert the same new schema all accept it and one inserts") {
  TestDatabase db;
  migrated(db);
  constexpr int kThreads = 4;
  std::vector<std::unique_ptr<pg::Connection>> conns;
  for (int i = 0; i < kThreads; ++i) conns.push_back(db.connect());
  SchemaStore shared;
  std::atomic<int> accepted{0}, inserted{0}, errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto check = shared.check(*conns[i], latency_schema());
      if (!check.ok()) {
        ++errors;
        return;
      }
      accepted += check->accepted;
      inserted += check->inserted;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(errors == 0);
  CHECK(accepted == kThreads);
  CHECK(inserted == 1);
}

TEST_CASE("load_schema returns stored units and description or nullopt when absent") {
  TestDatabase db;
  auto conn = migrated(db);
  TimeseriesSchema with_meta = latency_schema();
  with_meta.units = "seconds";
  with_meta.description = "time to first byte";
  SchemaStore store;
  REQUIRE(store.check(*conn, with_meta).ok());
  auto loaded = load_schema(*conn, with_meta.timeseries_name, 1);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->has_value());
  CHECK(**loaded == with_meta);
  auto absent = load_schema(*conn, with_meta.timeseries_name, 9);
  REQUIRE(absent.ok());
  CHECK_FALSE(absent->has_value());
}

TEST_CASE("a database error is returned and not cached") {
  TestDatabase db;
  auto conn = db.connect();  // no migrations: the table does not exist yet
  SchemaStore store;
  auto failed = store.check(*conn, latency_schema());
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == "sqlstate_42P01");
  REQUIRE(apply_migrations(*conn).ok());
  auto retried = store.check(*conn, latency_schema());
  REQUIRE(retried.ok());
  CHECK(retried->inserted);
}

}  // namespace
}  // namespace tally::schema
