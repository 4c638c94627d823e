#include "tally/schema/measurement_reader.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "support/test_db.h"
#include "tally/schema/measurement_tables.h"
#include "tally/schema/migrations.h"
#include "tally/schema/schema_store.h"

namespace tally::schema {
namespace {

using test::TestDatabase;

Timestamp at(std::string_view rfc3339) { return parse_rfc3339(rfc3339).value(); }

// A migrated database with one series (key 42) of `type`, fields name (target, string),
// port (metric, u16) and up (metric, bool), and the partition of 2026-11-22 for its table.
struct Fixture {
  TestDatabase db;
  std::unique_ptr<pg::Connection> conn = db.connect();

  explicit Fixture(DatumType type) {
    REQUIRE(apply_migrations(*conn).ok());
    TimeseriesSchema schema;
    schema.timeseries_name = "svc:m";
    schema.target_name = "svc";
    schema.metric_name = "m";
    schema.fields = {{"name", FieldType::kString, FieldSource::kTarget},
                     {"port", FieldType::kU16, FieldSource::kMetric},
                     {"up", FieldType::kBool, FieldSource::kMetric}};
    schema.datum_type = type;
    SchemaStore store;
    REQUIRE(store.check(*conn, schema).ok());
    exec(
        "INSERT INTO tally.timeseries (timeseries_key, timeseries_name, version, fields) "
        "VALUES (42, 'svc:m', 1, '{\"name\": \"api\", \"port\": 8080, \"up\": true}')");
    exec(partition_ddl(measurement_table(type), day_of(at("2026-11-22T00:00:00Z"))));
  }
  void exec(const std::string& sql) {
    auto r = conn->exec(sql);
    REQUIRE_MESSAGE(r.ok(), r.error());
  }
};

TEST_CASE("an unknown series reads as nothing") {
  Fixture f(DatumType::kF64);
  auto series = read_series(*f.conn, 7);
  REQUIRE(series.ok());
  CHECK_FALSE(series->has_value());
  auto samples = read_samples(*f.conn, 7);
  REQUIRE(samples.ok());
  CHECK(samples->empty());
}

TEST_CASE("read_series types the stored fields through the schema") {
  Fixture f(DatumType::kF64);
  auto series = read_series(*f.conn, 42);
  REQUIRE_MESSAGE(series.ok(), series.error());
  REQUIRE(series->has_value());
  const StoredSeries& s = **series;
  CHECK(s.key == 42);
  CHECK(s.schema.timeseries_name == "svc:m");
  CHECK(s.target == Target{"svc", {{"name", std::string("api")}}});
  CHECK(s.metric == Metric{"m", {{"port", uint16_t{8080}}, {"up", true}}});
}

TEST_CASE("a series whose schema is missing is a decode error") {
  Fixture f(DatumType::kF64);
  f.exec("DELETE FROM tally.timeseries_schema");
  auto series = read_series(*f.conn, 42);
  REQUIRE_FALSE(series.ok());
  CHECK(series.status().code() == "decode");
}

TEST_CASE("f64 rows read back in time order with NULL as missing and a half-open time range") {
  Fixture f(DatumType::kF64);
  f.exec(
      "INSERT INTO tally.measurements_f64 VALUES "
      "(42, '2026-11-22 10:00:01+00', '-Infinity'), "
      "(42, '2026-11-22 10:00:00.000001+00', 'NaN'), "
      "(42, '2026-11-22 10:00:00.5+00', NULL), "
      "(43, '2026-11-22 10:00:00.5+00', 1)");
  auto all = read_measurements(*f.conn, 42, DatumType::kF64);
  REQUIRE_MESSAGE(all.ok(), all.error());
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].timestamp == at("2026-11-22T10:00:00.000001Z"));
  CHECK(std::isnan(std::get<double>((*all)[0].datum)));
  CHECK(same_datum((*all)[1].datum, Missing{DatumType::kF64, std::nullopt}));
  CHECK(same_datum((*all)[2].datum, -std::numeric_limits<double>::infinity()));

  auto window = read_measurements(*f.conn, 42, DatumType::kF64,
                                  {at("2026-11-22T10:00:00.5Z"), at("2026-11-22T10:00:01Z")});
  REQUIRE(window.ok());
  REQUIRE(window->size() == 1);
  CHECK((*window)[0].timestamp == at("2026-11-22T10:00:00.5Z"));
}

TEST_CASE("a u64 histogram row with an unbounded first bin reads back exactly") {
  Fixture f(DatumType::kHistogramU64);
  f.exec(
      "INSERT INTO tally.measurements_histogram_i64 VALUES "
      "(42, '2026-11-22 10:00:00+00', '2026-11-22 09:00:00.25+00', "
      "'{NULL,0,18446744073709551615}', '{1,2,3}', 6, 0, 18446744073709551615, "
      "18446744073709551615, 0.5), "
      "(42, '2026-11-22 11:00:00+00', '2026-11-22 09:00:00+00', NULL, NULL, NULL, NULL, "
      "NULL, NULL, NULL)");
  auto rows = read_measurements(*f.conn, 42, DatumType::kHistogramU64);
  REQUIRE_MESSAGE(rows.ok(), rows.error());
  REQUIRE(rows->size() == 2);
  Histogram<uint64_t> expected;
  expected.start_time = at("2026-11-22T09:00:00.25Z");
  expected.bins = {{std::nullopt, 1}, {0, 2}, {UINT64_MAX, 3}};
  expected.n_samples = 6;
  expected.min = 0;
  expected.max = UINT64_MAX;
  expected.sum_of_samples = UINT64_MAX;
  expected.squared_mean = 0.5;
  CHECK(same_datum((*rows)[0].datum, expected));
  CHECK(
      same_datum((*rows)[1].datum, Missing{DatumType::kHistogramU64, at("2026-11-22T09:00:00Z")}));
}

TEST_CASE("a stored value that does not fit the schema's type is a decode error") {
  Fixture f(DatumType::kI8);
  f.exec("INSERT INTO tally.measurements_i64 VALUES (42, '2026-11-22 10:00:00+00', 300)");
  auto rows = read_measurements(*f.conn, 42, DatumType::kI8);
  REQUIRE_FALSE(rows.ok());
  CHECK(rows.status().code() == "decode");
}

TEST_CASE("read_samples joins the series and its measurements") {
  Fixture f(DatumType::kF64);
  f.exec("INSERT INTO tally.measurements_f64 VALUES (42, '2026-11-22 10:00:00+00', 2.5)");
  auto samples = read_samples(*f.conn, 42);
  REQUIRE_MESSAGE(samples.ok(), samples.error());
  REQUIRE(samples->size() == 1);
  const Sample& s = (*samples)[0];
  CHECK(s.timeseries_name() == "svc:m");
  CHECK(s.timeseries_version() == 1);
  CHECK(s.metric().fields.size() == 2);
  CHECK(s.timestamp == at("2026-11-22T10:00:00Z"));
  CHECK(same_datum(s.datum, 2.5));
}

}  // namespace
}  // namespace tally::schema
