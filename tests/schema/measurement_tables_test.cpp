#include "tally/schema/measurement_tables.h"

#include <doctest/doctest.h>

namespace tally::schema {
namespace {

Timestamp at(std::string_view rfc3339) { return parse_rfc3339(rfc3339).value(); }

TEST_CASE("every datum type maps to the table DESIGN.md §6 names") {
  const std::pair<DatumType, std::string_view> cases[] = {
      {DatumType::kBool, "tally.measurements_bool"},
      {DatumType::kI8, "tally.measurements_i64"},
      {DatumType::kU8, "tally.measurements_i64"},
      {DatumType::kI16, "tally.measurements_i64"},
      {DatumType::kU16, "tally.measurements_i64"},
      {DatumType::kI32, "tally.measurements_i64"},
      {DatumType::kU32, "tally.measurements_i64"},
      {DatumType::kI64, "tally.measurements_i64"},
      {DatumType::kU64, "tally.measurements_u64"},
      {DatumType::kF32, "tally.measurements_f64"},
      {DatumType::kF64, "tally.measurements_f64"},
      {DatumType::kString, "tally.measurements_string"},
      {DatumType::kBytes, "tally.measurements_bytes"},
      {DatumType::kCumulativeI64, "tally.measurements_cumulative_i64"},
      {DatumType::kCumulativeU64, "tally.measurements_cumulative_u64"},
      {DatumType::kCumulativeF32, "tally.measurements_cumulative_f64"},
      {DatumType::kCumulativeF64, "tally.measurements_cumulative_f64"},
      {DatumType::kHistogramI8, "tally.measurements_histogram_i64"},
      {DatumType::kHistogramU8, "tally.measurements_histogram_i64"},
      {DatumType::kHistogramI16, "tally.measurements_histogram_i64"},
      {DatumType::kHistogramU16, "tally.measurements_histogram_i64"},
      {DatumType::kHistogramI32, "tally.measurements_histogram_i64"},
      {DatumType::kHistogramU32, "tally.measurements_histogram_i64"},
      {DatumType::kHistogramI64, "tally.measurements_histogram_i64"},
      {DatumType::kHistogramU64, "tally.measurements_histogram_i64"},
      {DatumType::kHistogramF32, "tally.measurements_histogram_f64"},
      {DatumType::kHistogramF64, "tally.measurements_histogram_f64"},
  };
  static_assert(std::size(cases) == kDatumTypeCount);
  for (const auto& [type, table] : cases) {
    CAPTURE(to_string(type));
    CHECK(table_name(measurement_table(type)) == table);
  }
}

TEST_CASE("gauge tables carry the datum and cumulative or histogram tables a start_time too") {
  CHECK(table_columns(MeasurementTable::kF64) == "timeseries_key, \"timestamp\", datum");
  CHECK(table_columns(MeasurementTable::kCumulativeU64) ==
        "timeseries_key, \"timestamp\", start_time, datum");
  CHECK(table_columns(MeasurementTable::kHistogramI64) ==
        "timeseries_key, \"timestamp\", start_time, bins, counts, n_samples, min, max, sum, "
        "squared_mean");
  CHECK(datum_column_count(MeasurementTable::kHistogramF64) == 7);
  CHECK(datum_column_count(MeasurementTable::kBytes) == 1);
  CHECK_FALSE(has_start_time(MeasurementTable::kBytes));
  CHECK(has_start_time(MeasurementTable::kCumulativeI64));
  CHECK(has_start_time(MeasurementTable::kHistogramF64));
}

TEST_CASE("a partition covers one UTC day and is named after it") {
  const Day day = day_of(at("2026-11-22T23:59:59.999999Z"));
  CHECK(day == day_of(at("2026-11-22T00:00:00Z")));
  CHECK(day != day_of(at("2026-11-23T00:00:00Z")));
  CHECK(partition_name(MeasurementTable::kF64, day) == "tally.measurements_f64_p20261122");
  CHECK(partition_ddl(MeasurementTable::kF64, day) ==
        "CREATE TABLE IF NOT EXISTS tally.measurements_f64_p20261122 PARTITION OF "
        "tally.measurements_f64 FOR VALUES FROM ('2026-11-22 00:00:00+00') TO "
        "('2026-11-23 00:00:00+00')");
}

TEST_CASE("days before the epoch round down rather than toward zero") {
  const Day day = day_of(at("1969-12-31T23:59:59.999999Z"));
  CHECK(partition_name(MeasurementTable::kBool, day) == "tally.measurements_bool_p19691231");
}

TEST_CASE("the partition of the last day of a year ends on the next year's first day") {
  const Day day = day_of(at("2026-12-31T12:00:00Z"));
  CHECK(partition_ddl(MeasurementTable::kBool, day)
            .ends_with("FROM ('2026-12-31 00:00:00+00') TO ('2027-01-01 00:00:00+00')"));
}

}  // namespace
}  // namespace tally::schema
