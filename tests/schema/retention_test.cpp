#include "tally/schema/retention.h"

#include <doctest/doctest.h>

#include "support/test_db.h"
#include "tally/schema/migrations.h"

namespace tally::schema {
namespace {

using std::chrono::days;
using test::TestDatabase;

std::unique_ptr<pg::Connection> migrated(const TestDatabase& db) {
  auto conn = db.connect();
  REQUIRE(apply_migrations(*conn).ok());
  return conn;
}

void exec(pg::Connection& conn, const std::string& sql) {
  auto r = conn.exec(sql);
  REQUIRE_MESSAGE(r.ok(), r.error() << "\n" << sql);
}

Timestamp at(const std::string& text) {
  auto t = parse_rfc3339(text);
  REQUIRE(t.ok());
  return *t;
}

Day day(const std::string& date) { return day_of(at(date + "T00:00:00Z")); }

// The partitions of the measurement tables, sorted by name.
std::string partitions(const TestDatabase& db, const std::string& parent) {
  return db.scalar(
      "SELECT coalesce(string_agg(c.relname, ' ' ORDER BY c.relname), '') FROM pg_inherits i "
      "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'tally." +
      parent + "'::regclass");
}

// 12:00 UTC on 31 March 2026; a 30-day retention keeps what is younger than 1 March 12:00.
const char* const kNow = "2026-03-31T12:00:00Z";

}  // namespace

TEST_CASE("retention drops partitions wholly older than retention_days and keeps the rest") {
  TestDatabase db;
  auto conn = migrated(db);
  for (const char* d : {"2026-01-15", "2026-02-28", "2026-03-01", "2026-03-30", "2026-03-31"}) {
    exec(*conn, partition_ddl(MeasurementTable::kF64, day(d)));
  }
  exec(*conn, partition_ddl(MeasurementTable::kHistogramI64, day("2026-02-01")));
  // A partition Tally did not name is not Tally's to drop, however old.
  exec(*conn,
       "CREATE TABLE tally.measurements_f64_archive PARTITION OF tally.measurements_f64 "
       "FOR VALUES FROM ('2025-01-01T00:00:00Z') TO ('2025-02-01T00:00:00Z')");
  exec(*conn,
       "INSERT INTO tally.measurements_f64 VALUES (1, '2025-01-10T00:00:00Z', 1), "
       "(1, '2026-02-28T23:59:59Z', 2), (1, '2026-03-01T00:00:00Z', 3), "
       "(1, '2026-03-31T11:00:00Z', 4)");

  auto result = run_retention(*conn, at(kNow), {.retention_days = 30, .create_ahead_days = 2});
  REQUIRE_MESSAGE(result.ok(), result.error());
  CHECK(result->dropped == 3);
  CHECK(result->dropped_partitions ==
        std::vector<std::string>{"tally.measurements_f64_p20260115",
                                 "tally.measurements_f64_p20260228",
                                 "tally.measurements_histogram_i64_p20260201"});
  CHECK(result->failed == 0);
  // Today and two days ahead for each of the 11 tables, less the f64 partition of today.
  CHECK(result->created == 11 * 3 - 1);
  CHECK(partitions(db, "measurements_f64") ==
        "measurements_f64_archive measurements_f64_p20260301 measurements_f64_p20260330 "
        "measurements_f64_p20260331 measurements_f64_p20260401 measurements_f64_p20260402");
  CHECK(partitions(db, "measurements_histogram_i64") ==
        "measurements_histogram_i64_p20260331 measurements_histogram_i64_p20260401 "
        "measurements_histogram_i64_p20260402");
  CHECK(db.scalar("SELECT string_agg(datum::text, ',' ORDER BY datum) FROM "
                  "tally.measurements_f64") == "1,3,4");

  // A second pass has nothing left to do.
  auto again = run_retention(*conn, at(kNow), {.retention_days = 30, .create_ahead_days = 2});
  REQUIRE(again.ok());
  CHECK(again->created == 0);
  CHECK(again->dropped == 0);

  // The next day the 1 March partition ends more than 30 days ago.
  auto next_day = run_retention(*conn, at(kNow) + days(1), {.retention_days = 30});
  REQUIRE(next_day.ok());
  CHECK(next_day->dropped_partitions ==
        std::vector<std::string>{"tally.measurements_f64_p20260301"});
  CHECK(next_day->created == 11);  // 3 April
}

TEST_CASE("retention_days 0 keeps every partition and partitions are still created ahead") {
  TestDatabase db;
  auto conn = migrated(db);
  exec(*conn, partition_ddl(MeasurementTable::kBool, day("2020-01-01")));
  auto result = run_retention(*conn, at(kNow), {.retention_days = 0, .create_ahead_days = 0});
  REQUIRE(result.ok());
  CHECK(result->dropped == 0);
  CHECK(result->created == 11);
  CHECK(partitions(db, "measurements_bool") ==
        "measurements_bool_p20200101 measurements_bool_p20260331");
}

TEST_CASE("a partition in use past the lock timeout is left for the next pass and counted") {
  TestDatabase db;
  auto conn = migrated(db);
  exec(*conn, partition_ddl(MeasurementTable::kI64, day("2026-01-01")));
  exec(*conn, partition_ddl(MeasurementTable::kU64, day("2026-01-01")));
  auto reader = db.connect();
  exec(*reader, "BEGIN; SELECT count(*) FROM tally.measurements_i64_p20260101");
  auto result = run_retention(
      *conn, at(kNow), {.retention_days = 30, .lock_timeout = std::chrono::milliseconds(100)});
  REQUIRE_MESSAGE(result.ok(), result.error());
  CHECK(result->failed == 1);
  CHECK(result->first_error.find("measurements_i64_p20260101") != std::string::npos);
  CHECK(result->first_error.find("lock timeout") != std::string::npos);
  CHECK(result->dropped_partitions == std::vector<std::string>{"tally.measurements_u64_p20260101"});
  exec(*reader, "COMMIT");
  auto later = run_retention(*conn, at(kNow), {.retention_days = 30});
  REQUIRE(later.ok());
  CHECK(later->dropped_partitions == std::vector<std::string>{"tally.measurements_i64_p20260101"});
}

}  // namespace tally::schema
