#include "tally/collector/copy_writer.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <latch>
#include <limits>
#include <thread>

#include "support/series.h"
#include "support/test_db.h"
#include "tally/schema/measurement_reader.h"
#include "tally/schema/migrations.h"
#include "tally/schema/schema_store.h"

namespace tally::collector {
namespace {

using test::TestDatabase;

Timestamp at(std::string_view rfc3339) { return parse_rfc3339(rfc3339).value(); }

const Timestamp kT0 = at("2026-11-22T10:00:00.123457Z");
const Timestamp kStart = at("2026-11-22T09:00:00.000001Z");

// One field of every type, extremes included; sorted by name, as the reader returns them.
Fields every_field_type() {
  Fields fields = {
      {"f_str", std::string("tab\there \"q\" \\ new\nline é 漢字 😀")},
      {"f_i8", int8_t{-128}},
      {"f_u8", uint8_t{255}},
      {"f_i16", int16_t{-32768}},
      {"f_u16", uint16_t{65535}},
      {"f_i32", int32_t{INT32_MIN}},
      {"f_u32", uint32_t{UINT32_MAX}},
      {"f_i64", int64_t{INT64_MIN}},
      {"f_u64", uint64_t{UINT64_MAX}},
      {"f_ip4", IpAddr::parse("10.1.2.3").value()},
      {"f_ip6", IpAddr::parse("fe80::1").value()},
      {"f_uuid", Uuid::parse("6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f").value()},
      {"f_bool", false},
  };
  std::sort(fields.begin(), fields.end(),
            [](const Field& a, const Field& b) { return a.name < b.name; });
  return fields;
}

Sample sample(std::string metric, Datum datum, Timestamp t = kT0) {
  Sample s;
  tally::test::change_series(s, [&](Timeseries& t) {
    t.target = {"writer_test", every_field_type()};
    t.metric = {std::move(metric), {{"zone", std::string("a")}}};
  });
  s.timestamp = t;
  s.datum = std::move(datum);
  return s;
}

template <class T>
Histogram<T> histogram(std::vector<Bin<T>> bins, T min, T max, HistogramSum<T> sum) {
  Histogram<T> h;
  h.start_time = kStart;
  h.bins = std::move(bins);
  for (const auto& b : h.bins) h.n_samples += b.count;
  h.min = min;
  h.max = max;
  h.sum_of_samples = sum;
  h.squared_mean = 0.011;
  return h;
}

template <class T>
Histogram<T> int_histogram() {
  using L = std::numeric_limits<T>;
  return histogram<T>({{std::nullopt, 4}, {L::min(), 9}, {L::max() / 2, 0}, {L::max(), 1}},
                      L::min(), L::max(), L::max());
}

// A batch with every datum type, extremes, special floats, awkward text and missing datums.
std::vector<Sample> every_datum_type() {
  using F = std::numeric_limits<float>;
  using D = std::numeric_limits<double>;
  const uint64_t big = uint64_t{1} << 63;
  return {
      sample("bool_true", true),
      sample("bool_false", false),
      sample("i8_min", int8_t{INT8_MIN}),
      sample("i8_max", int8_t{INT8_MAX}),
      sample("u8_max", uint8_t{UINT8_MAX}),
      sample("i16_min", int16_t{INT16_MIN}),
      sample("u16_max", uint16_t{UINT16_MAX}),
      sample("i32_min", int32_t{INT32_MIN}),
      sample("u32_max", uint32_t{UINT32_MAX}),
      sample("i64_min", int64_t{INT64_MIN}),
      sample("i64_max", int64_t{INT64_MAX}),
      sample("u64_zero", uint64_t{0}),
      sample("u64_max", uint64_t{UINT64_MAX}),
      sample("f32_nan", F::quiet_NaN()),
      sample("f32_inf", F::infinity()),
      sample("f32_neg_inf", -F::infinity()),
      sample("f32_neg_zero", -0.0f),
      sample("f32_inexact", 1.1f),
      sample("f32_denorm", F::denorm_min()),
      sample("f32_max", F::max()),
      sample("f64_nan", D::quiet_NaN()),
      sample("f64_inf", D::infinity()),
      sample("f64_neg_inf", -D::infinity()),
      sample("f64_neg_zero", -0.0),
      sample("f64_tenth", 0.1),
      sample("f64_denorm", D::denorm_min()),
      sample("f64_max", D::max()),
      sample("f64_pre_epoch", 2.5, at("1969-12-31T23:59:59.999999Z")),
      sample("string_awkward", std::string("tab\tnl\ncr\rbs\\ \\N é 漢字 😀 \x7f")),
      sample("string_empty", std::string()),
      sample("bytes_all", Bytes{0x00, 0xff, 0x5c, 0x09, 0x0a, 0x4e}),
      sample("bytes_empty", Bytes{}),
      sample("cumulative_i64", Cumulative<int64_t>{kStart, INT64_MIN}),
      sample("cumulative_u64", Cumulative<uint64_t>{kStart, UINT64_MAX}),
      sample("cumulative_f32", Cumulative<float>{kStart, 1.1f}),
      sample("cumulative_f64", Cumulative<double>{kStart, D::quiet_NaN()}),
      sample("histogram_i8", int_histogram<int8_t>()),
      sample("histogram_u8", int_histogram<uint8_t>()),
      sample("histogram_i16", int_histogram<int16_t>()),
      sample("histogram_u16", int_histogram<uint16_t>()),
      sample("histogram_i32", int_histogram<int32_t>()),
      sample("histogram_u32", int_histogram<uint32_t>()),
      sample("histogram_i64", int_histogram<int64_t>()),
      sample("histogram_u64",
             histogram<uint64_t>({{0, 1}, {big, 2}, {UINT64_MAX, 3}}, 0, UINT64_MAX, UINT64_MAX)),
      sample("histogram_f32",
             histogram<float>({{std::nullopt, 4}, {-F::infinity(), 1}, {0.1f, 9}, {F::max(), 1}},
                              -0.0f, F::infinity(), 0.71)),
      sample("histogram_f64",
             histogram<double>({{std::nullopt, 4}, {0.01, 9}, {0.1, 1}}, 0.002, 0.3, 0.71)),
      sample("missing_bool", Missing{DatumType::kBool, std::nullopt}),
      sample("missing_i8", Missing{DatumType::kI8, std::nullopt}),
      sample("missing_u64", Missing{DatumType::kU64, std::nullopt}),
      sample("missing_f32", Missing{DatumType::kF32, std::nullopt}),
      sample("missing_string", Missing{DatumType::kString, std::nullopt}),
      sample("missing_cumulative_u64", Missing{DatumType::kCumulativeU64, kStart}),
      sample("missing_histogram_u8", Missing{DatumType::kHistogramU8, kStart}),
      sample("missing_histogram_f64", Missing{DatumType::kHistogramF64, kStart}),
  };
}

std::vector<Sample> shifted(std::vector<Sample> samples, std::chrono::microseconds by) {
  for (Sample& s : samples) s.timestamp += by;
  return samples;
}

// A migrated database whose schemas for `samples` are stored, as the collector's schema check
// does before samples reach the writer (the reader needs them).
struct Fixture {
  TestDatabase db;
  std::unique_ptr<pg::Connection> conn = db.connect();

  explicit Fixture(const std::vector<Sample>& samples) {
    REQUIRE(schema::apply_migrations(*conn).ok());
    schema::SchemaStore store;
    for (const Sample& s : samples) {
      const Status valid = validate_sample(s);
      REQUIRE_MESSAGE(valid.ok(), valid.message());
      auto check = store.check(*conn, schema::derive_schema(s));
      REQUIRE_MESSAGE(check.ok(), check.error());
      REQUIRE_MESSAGE(check->accepted, check->conflict);
    }
  }
  std::string count(const std::string& table) const {
    return db.scalar("SELECT count(*) FROM " + table);
  }
};

WriteStats must_write(CopyWriter& writer, pg::Connection& conn, const std::vector<Sample>& batch) {
  auto stats = writer.write(conn, batch);
  REQUIRE_MESSAGE(stats.ok(), stats.error());
  return *stats;
}

TEST_CASE("every datum type round-trips value for value") {
  const std::vector<Sample> batch = every_datum_type();
  Fixture f(batch);
  CopyWriter writer;
  const WriteStats stats = must_write(writer, *f.conn, batch);
  CHECK(stats.samples_written == batch.size());
  CHECK(stats.series_created == batch.size());
  for (const Sample& s : batch) {
    CAPTURE(s.metric().name);
    auto back = schema::read_samples(*f.conn, s.key());
    REQUIRE_MESSAGE(back.ok(), back.error());
    REQUIRE(back->size() == 1);
    CHECK(same_sample((*back)[0], s));
  }
}

TEST_CASE("a series is stored once across batches and writers and repeats within a batch") {
  const std::vector<Sample> batch = every_datum_type();
  Fixture f(batch);
  const std::string n = std::to_string(batch.size());
  CopyWriter writer;
  must_write(writer, *f.conn, batch);
  // The same series again, twice in one batch: the writer's cache knows them.
  std::vector<Sample> twice = shifted(batch, std::chrono::seconds(1));
  const auto later = shifted(batch, std::chrono::seconds(2));
  twice.insert(twice.end(), later.begin(), later.end());
  CHECK(must_write(writer, *f.conn, twice).series_created == 0);
  // A writer with an empty cache (another collector): ON CONFLICT keeps one row per series.
  CopyWriter other;
  CHECK(must_write(other, *f.conn, shifted(batch, std::chrono::seconds(3))).series_created == 0);
  CHECK(other.known_series() == batch.size());
  CHECK(f.count("tally.timeseries") == n);
  CHECK(f.db.scalar("SELECT count(*) FROM tally.timeseries_schema") == n);
  CHECK(f.count("tally.measurements_f64") ==
        std::to_string(4 * std::count_if(batch.begin(), batch.end(), [](const Sample& s) {
                         return schema::measurement_table(datum_type(s.datum)) ==
                                schema::MeasurementTable::kF64;
                       })));
  auto series = schema::read_samples(*f.conn, batch[0].key());
  REQUIRE(series.ok());
  REQUIRE(series->size() == 4);
  CHECK((*series)[3].timestamp == kT0 + std::chrono::seconds(3));
}

// Rows are sent in chunks of 64 KiB (copy_writer.cpp): a batch of many chunks, in each table,
// arrives whole and in order.
TEST_CASE("a batch larger than many COPY chunks is stored whole, value for value") {
  std::vector<Sample> batch;
  for (int i = 0; i < 3000; ++i) {
    batch.push_back(sample("gauge", 0.5 + i, kT0 + std::chrono::microseconds(i)));
    batch.push_back(sample("counter", Cumulative<uint64_t>{kStart, static_cast<uint64_t>(i)},
                           kT0 + std::chrono::microseconds(i)));
  }
  Fixture f(batch);
  CopyWriter writer;
  CHECK(must_write(writer, *f.conn, batch).samples_written == batch.size());
  CHECK(f.count("tally.measurements_f64") == "3000");
  CHECK(f.count("tally.measurements_cumulative_u64") == "3000");
  auto gauges = schema::read_samples(*f.conn, batch[0].key());
  REQUIRE_MESSAGE(gauges.ok(), gauges.error());
  REQUIRE(gauges->size() == 3000);
  for (int i = 0; i < 3000; i += 599) {
    CAPTURE(i);
    CHECK(same_sample((*gauges)[i], batch[2 * i]));
  }
  CHECK(same_sample(gauges->back(), batch[2 * 2999]));
}

TEST_CASE("samples on two days create one partition per day and land in it") {
  const std::vector<Sample> batch = {sample("gauge", 1.0, at("2026-11-22T23:59:59.999999Z")),
                                     sample("gauge", 2.0, at("2026-11-23T00:00:00Z"))};
  Fixture f(batch);
  CopyWriter writer;
  must_write(writer, *f.conn, batch);
  CHECK(f.db.scalar("SELECT string_agg(inhrelid::regclass::text, ',' ORDER BY 1) "
                    "FROM pg_inherits WHERE inhparent = 'tally.measurements_f64'::regclass") ==
        "tally.measurements_f64_p20261122,tally.measurements_f64_p20261123");
  CHECK(f.db.scalar("SELECT datum FROM tally.measurements_f64_p20261122") == "1");
  CHECK(f.db.scalar("SELECT datum FROM tally.measurements_f64_p20261123") == "2");
  // Only the tables the batch used got partitions (indexes of partitions are in pg_inherits too).
  CHECK(f.db.scalar("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE c.relkind = 'r'") == "2");
}

TEST_CASE("two writers writing the same new batch at once both succeed") {
  std::vector<Sample> batch = every_datum_type();
  const auto next_day = shifted(batch, std::chrono::hours(24));
  batch.insert(batch.end(), next_day.begin(), next_day.end());
  Fixture f(batch);
  auto conn2 = f.db.connect();
  CopyWriter a, b;
  std::latch start(2);
  Result<WriteStats> result_a = Status::error("not run"), result_b = Status::error("not run");
  std::thread ta([&] {
    start.arrive_and_wait();
    result_a = a.write(*f.conn, batch);
  });
  std::thread tb([&] {
    start.arrive_and_wait();
    result_b = b.write(*conn2, batch);
  });
  ta.join();
  tb.join();
  REQUIRE_MESSAGE(result_a.ok(), result_a.error());
  REQUIRE_MESSAGE(result_b.ok(), result_b.error());
  CHECK(result_a->series_created + result_b->series_created == every_datum_type().size());
  CHECK(f.count("tally.timeseries") == std::to_string(every_datum_type().size()));
  // Every row twice: the tables have no unique key, duplicates are the reader's concern.
  CHECK(f.count("tally.measurements_histogram_i64") ==
        std::to_string(2 * 2 * 9));  // 8 int histograms + 1 missing, two days, two writers
}

TEST_CASE("a broken connection fails with code connection and caches only committed series") {
  const std::vector<Sample> first = {sample("old_series", 1.0)};
  const std::vector<Sample> second = {sample("old_series", 2.0, kT0 + std::chrono::seconds(1)),
                                      sample("new_series", 3.0, kT0 + std::chrono::seconds(1))};
  std::vector<Sample> all = first;
  all.push_back(second[1]);
  Fixture f(all);
  CopyWriter writer;
  must_write(writer, *f.conn, first);

  auto victim = f.db.connect();
  auto pid = victim->exec("SELECT pg_backend_pid()");
  REQUIRE(pid.ok());
  REQUIRE(f.db.scalar("SELECT pg_terminate_backend(" + std::string(pid->get(0, 0)) + ", 5000)") ==
          "t");
  auto failed = writer.write(*victim, second);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() == "connection");
  CHECK(writer.known_series() == 1);

  const WriteStats retried = must_write(writer, *f.conn, second);
  CHECK(retried.series_created == 1);  // the failed write cached nothing
  CHECK(f.count("tally.timeseries") == "2");
  CHECK(f.count("tally.measurements_f64") == "3");
}

TEST_CASE("a failed COPY rolls back the new series and the writer recovers on retry") {
  const std::vector<Sample> first = {sample("first", 1.0)};
  const std::vector<Sample> second = {sample("second", 2.0)};
  std::vector<Sample> all = first;
  all.push_back(second[0]);
  Fixture f(all);
  CopyWriter writer;
  must_write(writer, *f.conn, first);
  // Retention drops the partition behind the writer's cache.
  REQUIRE(f.conn->exec("DROP TABLE tally.measurements_f64_p20261122").ok());

  auto failed = writer.write(*f.conn, second);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.status().code() != "connection");
  CHECK(f.count("tally.timeseries") == "1");  // "second" was rolled back

  const WriteStats retried = must_write(writer, *f.conn, second);
  CHECK(retried.series_created == 1);
  CHECK(f.count("tally.timeseries") == "2");
  CHECK(f.count("tally.measurements_f64_p20261122") == "1");
}

// check_storable runs before the sink (schema check, decode_record), not in the writer. What gets
// past it anyway fails the batch with a data error, which the sink splits down to the sample.
TEST_CASE("a sample Postgres cannot hold fails the batch with a data error, storing nothing") {
  const std::vector<Sample> batch = {sample("text", std::string("fine")),
                                     sample("text", std::string("nul\0inside", 10))};
  Fixture f({batch[0]});
  CopyWriter writer;
  const auto written = writer.write(*f.conn, batch);
  REQUIRE_FALSE(written.ok());
  CHECK(written.status().code().starts_with("sqlstate_22"));
  CHECK(f.count("tally.measurements_string") == "0");
  CHECK(f.count("tally.timeseries") == "0");
}

TEST_CASE("an empty batch touches no database") {
  TestDatabase db;  // not even migrated
  auto conn = db.connect();
  CopyWriter writer;
  auto stats = writer.write(*conn, {});
  REQUIRE(stats.ok());
  CHECK(stats->samples_written == 0);
}

TEST_CASE("ensure_partitions creates a day's partition for every measurement table") {
  Fixture f({});
  CopyWriter writer;
  const auto day = schema::day_of(at("2027-01-05T00:00:00Z"));
  REQUIRE(writer.ensure_partitions(*f.conn, day).ok());
  REQUIRE(writer.ensure_partitions(*f.conn, day).ok());
  CHECK(f.db.scalar("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE c.relkind = 'r' AND c.relname LIKE '%\\_p20270105'") ==
        std::to_string(schema::kMeasurementTableCount));
}

}  // namespace
}  // namespace tally::collector
