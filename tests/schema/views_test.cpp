#include "tally/schema/views.h"

#include <doctest/doctest.h>

#include "support/test_db.h"
#include "tally/schema/measurement_tables.h"
#include "tally/schema/migrations.h"
#include "tally/schema/schema_store.h"

namespace tally::schema {
namespace {

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

// The view's columns as "name type" in order.
std::string columns_of(const TestDatabase& db, const std::string& view) {
  return db.scalar(
      "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) "
      "FROM information_schema.columns WHERE table_schema = 'tally_ts' AND table_name = '" +
      view + "'");
}

// Every field type, as the target's and the metric's.
TimeseriesSchema all_fields_schema() {
  TimeseriesSchema s;
  s.timeseries_name = "svc:level";
  s.target_name = "svc";
  s.metric_name = "level";
  s.fields = {{"a_i8", FieldType::kI8, FieldSource::kTarget},
              {"b_u8", FieldType::kU8, FieldSource::kTarget},
              {"c_i16", FieldType::kI16, FieldSource::kTarget},
              {"d_u16", FieldType::kU16, FieldSource::kTarget},
              {"e_i32", FieldType::kI32, FieldSource::kTarget},
              {"f_u32", FieldType::kU32, FieldSource::kMetric},
              {"g_i64", FieldType::kI64, FieldSource::kMetric},
              {"h_u64", FieldType::kU64, FieldSource::kMetric},
              {"ip", FieldType::kIpAddr, FieldSource::kMetric},
              {"name", FieldType::kString, FieldSource::kTarget},
              {"ok", FieldType::kBool, FieldSource::kMetric},
              {"uid", FieldType::kUuid, FieldSource::kTarget}};
  s.datum_type = DatumType::kI32;
  return s;
}

TimeseriesSchema simple_schema(std::string name, DatumType type, uint32_t version = 1) {
  TimeseriesSchema s;
  s.timeseries_name = std::move(name);
  s.target_name = s.timeseries_name.substr(0, s.timeseries_name.find(':'));
  s.metric_name = s.timeseries_name.substr(s.timeseries_name.find(':') + 1);
  s.fields = {{"route", FieldType::kString, FieldSource::kMetric}};
  s.datum_type = type;
  s.version = version;
  return s;
}

void add_day_partitions(pg::Connection& conn, const std::string& day) {
  auto t = parse_rfc3339(day + "T00:00:00Z");
  REQUIRE(t.ok());
  for (int i = 0; i < kMeasurementTableCount; ++i) {
    exec(conn, partition_ddl(static_cast<MeasurementTable>(i), day_of(*t)));
  }
}

}  // namespace

TEST_CASE("view names are the timeseries names, long ones shortened with a hash") {
  CHECK(view_name("http_service:request_latency") == "http_service:request_latency");
  const std::string exactly63 = "a:" + std::string(61, 'b');
  CHECK(view_name(exactly63) == exactly63);
  const std::string long1 = "a:" + std::string(100, 'b');
  const std::string long2 = "a:" + std::string(99, 'b') + "c";
  CHECK(view_name(long1).size() == kMaxIdentifierBytes);
  CHECK(view_name(long1).starts_with("a:" + std::string(44, 'b') + "~"));
  CHECK(view_name(long1) != view_name(long2));
  CHECK(view_name(long1) == view_name(long1));
}

TEST_CASE("view columns: fields, then timestamp, start_time and the datum columns") {
  CHECK(view_columns(simple_schema("a:b", DatumType::kF64)) ==
        std::vector<std::string>{"route", "timestamp", "datum"});
  CHECK(view_columns(simple_schema("a:b", DatumType::kCumulativeU64)) ==
        std::vector<std::string>{"route", "timestamp", "start_time", "datum"});
  CHECK(view_columns(simple_schema("a:b", DatumType::kHistogramF64)) ==
        std::vector<std::string>{"route", "timestamp", "start_time", "bins", "counts", "n_samples",
                                 "min", "max", "sum", "squared_mean"});
  // A field named like a measurement column is renamed, without clashing with another field.
  TimeseriesSchema clash = simple_schema("a:b", DatumType::kHistogramI64);
  clash.fields = {{"max", FieldType::kU8, FieldSource::kMetric},
                  {"max_field", FieldType::kU8, FieldSource::kMetric},
                  {"timestamp", FieldType::kString, FieldSource::kTarget}};
  CHECK(view_columns(clash) == std::vector<std::string>{"max__field", "max_field",
                                                        "timestamp_field", "timestamp",
                                                        "start_time", "bins", "counts", "n_samples",
                                                        "min", "max", "sum", "squared_mean"});
}

TEST_CASE("storing a new schema creates its view, typed column per field, returning the rows") {
  TestDatabase db;
  auto conn = migrated(db);
  SchemaStore store;
  auto check = store.check(*conn, all_fields_schema());
  REQUIRE_MESSAGE(check.ok(), check.error());
  REQUIRE(check->inserted);
  CHECK(columns_of(db, "svc:level") ==
        "a_i8 smallint, b_u8 smallint, c_i16 smallint, d_u16 integer, e_i32 integer, "
        "f_u32 bigint, g_i64 bigint, h_u64 numeric, ip inet, name text, ok boolean, uid uuid, "
        "timestamp timestamp with time zone, datum bigint");
  CHECK(db.scalar("SELECT obj_description('tally_ts.\"svc:level\"'::regclass, 'pg_class')") ==
        "tally timeseries 'svc:level' version 1 (i32)");

  add_day_partitions(*conn, "2026-11-02");
  exec(*conn,
       "INSERT INTO tally.timeseries (timeseries_key, timeseries_name, version, fields) VALUES "
       "(1, 'svc:level', 1, '{\"a_i8\": -128, \"b_u8\": 255, \"c_i16\": -32768, \"d_u16\": 65535, "
       "\"e_i32\": -2147483648, \"f_u32\": 4294967295, \"g_i64\": -9223372036854775808, "
       "\"h_u64\": 18446744073709551615, \"ip\": \"2001:db8::1\", \"name\": \"it''s\", "
       "\"ok\": true, \"uid\": \"6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f\"}'), "
       // Another version and another name: not in the view.
       "(2, 'svc:level', 2, '{}'), (3, 'svc:other', 1, '{}')");
  exec(*conn,
       "INSERT INTO tally.measurements_i64 VALUES (1, '2026-11-02T10:00:00Z', 7), "
       "(1, '2026-11-02T10:00:10Z', NULL), (2, '2026-11-02T10:00:00Z', 8), "
       "(3, '2026-11-02T10:00:00Z', 9)");
  auto rows = conn->exec(
      "SELECT a_i8, b_u8, c_i16, d_u16, e_i32, f_u32, g_i64, h_u64, ip, name, ok, uid, "
      "extract(epoch FROM \"timestamp\"), datum FROM tally_ts.\"svc:level\" ORDER BY 13");
  REQUIRE_MESSAGE(rows.ok(), rows.error());
  REQUIRE(rows->size() == 2);
  const std::vector<std::string> expected = {"-128",
                                             "255",
                                             "-32768",
                                             "65535",
                                             "-2147483648",
                                             "4294967295",
                                             "-9223372036854775808",
                                             "18446744073709551615",
                                             "2001:db8::1",
                                             "it's",
                                             "t",
                                             "6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f",
                                             "1793613600.000000",
                                             "7"};
  for (int c = 0; c < rows->columns(); ++c) {
    CAPTURE(c);
    CHECK(rows->get(0, c) == expected[static_cast<std::size_t>(c)]);
  }
  CHECK(rows->is_null(1, 13));  // a missing datum is NULL
  // Typed columns filter as their type.
  CHECK(db.scalar("SELECT count(*) FROM tally_ts.\"svc:level\" WHERE ip << '2001:db8::/32' "
                  "AND h_u64 > 18446744073709551614 AND ok") == "2");
}

TEST_CASE("cumulative and histogram views carry start_time and every datum column") {
  TestDatabase db;
  auto conn = migrated(db);
  SchemaStore store;
  REQUIRE(store.check(*conn, simple_schema("web:requests", DatumType::kCumulativeU64)).ok());
  REQUIRE(store.check(*conn, simple_schema("web:latency", DatumType::kHistogramF64)).ok());
  CHECK(columns_of(db, "web:requests") ==
        "route text, timestamp timestamp with time zone, start_time timestamp with time zone, "
        "datum numeric");
  CHECK(columns_of(db, "web:latency") ==
        "route text, timestamp timestamp with time zone, start_time timestamp with time zone, "
        "bins ARRAY, counts ARRAY, n_samples bigint, min double precision, max double precision, "
        "sum double precision, squared_mean double precision");
  add_day_partitions(*conn, "2026-11-02");
  exec(*conn,
       "INSERT INTO tally.timeseries VALUES (1, 'web:requests', 1, '{\"route\": \"/a\"}'), "
       "(2, 'web:latency', 1, '{\"route\": \"/b\"}')");
  exec(*conn,
       "INSERT INTO tally.measurements_cumulative_u64 VALUES "
       "(1, '2026-11-02T10:00:00Z', '2026-11-02T09:00:00Z', 18446744073709551615)");
  exec(*conn,
       "INSERT INTO tally.measurements_histogram_f64 VALUES (2, '2026-11-02T10:00:00Z', "
       "'2026-11-02T09:00:00Z', '{NULL,0,10}', '{1,2,3}', 6, -1, 12.5, 30.5, 40)");
  CHECK(db.scalar("SELECT route || ' ' || (start_time = '2026-11-02T09:00:00Z') || ' ' || datum "
                  "FROM tally_ts.\"web:requests\"") == "/a true 18446744073709551615");
  CHECK(db.scalar("SELECT route || ' ' || bins::text || ' ' || counts::text || ' ' || n_samples "
                  "|| ' ' || min || ' ' || max || ' ' || sum || ' ' || squared_mean "
                  "FROM tally_ts.\"web:latency\"") == "/b {NULL,0,10} {1,2,3} 6 -1 12.5 30.5 40");
}

TEST_CASE("a new version replaces the view so it shows the latest version") {
  TestDatabase db;
  auto conn = migrated(db);
  SchemaStore store;
  REQUIRE(store.check(*conn, simple_schema("web:load", DatumType::kF64, 1)).ok());
  TimeseriesSchema v2 = simple_schema("web:load", DatumType::kCumulativeI64, 2);
  v2.fields.push_back({"code", FieldType::kU16, FieldSource::kMetric});
  std::sort(v2.fields.begin(), v2.fields.end(),
            [](const FieldSchema& a, const FieldSchema& b) { return a.name < b.name; });
  REQUIRE(store.check(*conn, v2).ok());
  CHECK(columns_of(db, "web:load") ==
        "code integer, route text, timestamp timestamp with time zone, "
        "start_time timestamp with time zone, datum bigint");
  // Storing version 1 again (another collector) leaves the view on version 2.
  SchemaStore other;
  REQUIRE(other.check(*conn, simple_schema("web:load", DatumType::kF64, 1)).ok());
  auto refreshed = refresh_view(*conn, "web:load");
  REQUIRE(refreshed.ok());
  CHECK(*refreshed);
  CHECK(db.scalar("SELECT obj_description('tally_ts.\"web:load\"'::regclass, 'pg_class')") ==
        "tally timeseries 'web:load' version 2 (cumulative_i64)");
  auto none = refresh_view(*conn, "web:nothing");
  REQUIRE(none.ok());
  CHECK_FALSE(*none);
}

TEST_CASE("refresh_views makes missing and outdated views, and leaves current ones") {
  TestDatabase db;
  auto conn = migrated(db);
  // Schemas stored behind the store's back, as before views existed.
  exec(*conn,
       "INSERT INTO tally.timeseries_schema (timeseries_name, version, target_name, metric_name, "
       "fields, datum_type) VALUES "
       "('a:one', 1, 'a', 'one', '[]', 'f64'), "
       "('a:two', 1, 'a', 'two', '[{\"name\":\"k\",\"type\":\"bool\",\"source\":\"target\"}]', "
       "'string'), "
       "('a:" +
           std::string(80, 'x') + "', 1, 'a', '" + std::string(80, 'x') + "', '[]', 'bytes')");
  auto made = refresh_views(*conn);
  REQUIRE_MESSAGE(made.ok(), made.error());
  CHECK(*made == 3);
  CHECK(columns_of(db, "a:two") == "k boolean, timestamp timestamp with time zone, datum text");
  CHECK(columns_of(db, view_name("a:" + std::string(80, 'x'))) ==
        "timestamp timestamp with time zone, datum bytea");
  auto again = refresh_views(*conn);
  REQUIRE(again.ok());
  CHECK(*again == 0);

  exec(*conn,
       "INSERT INTO tally.timeseries_schema (timeseries_name, version, target_name, metric_name, "
       "fields, datum_type) VALUES ('a:one', 2, 'a', 'one', '[]', 'u64')");
  exec(*conn, "DROP VIEW tally_ts.\"a:two\"");
  auto changed = refresh_views(*conn);
  REQUIRE(changed.ok());
  CHECK(*changed == 2);
  CHECK(columns_of(db, "a:one") == "timestamp timestamp with time zone, datum numeric");
  CHECK(columns_of(db, "a:two") == "k boolean, timestamp timestamp with time zone, datum text");
}

}  // namespace tally::schema
