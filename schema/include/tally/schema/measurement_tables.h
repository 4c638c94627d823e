// Where each datum type is stored (DESIGN.md §6): the measurement table, its columns and its
// daily partitions. Shared by the writer (collector) and the readers (CLI, tests).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "tally/common/datum.h"
#include "tally/common/time.h"

namespace tally::schema {

enum class MeasurementTable : uint8_t {
  kBool,
  kI64,
  kU64,
  kF64,
  kString,
  kBytes,
  kCumulativeI64,
  kCumulativeU64,
  kCumulativeF64,
  kHistogramI64,
  kHistogramF64,
};
inline constexpr int kMeasurementTableCount = 11;

// bool → bool; i8…u32, i64 → i64; u64 → u64; f32, f64 → f64; cumulative_f32 → cumulative_f64;
// histogram_{i8…u64} → histogram_i64; histogram_{f32,f64} → histogram_f64.
MeasurementTable measurement_table(DatumType type);

// "f64", "cumulative_u64", "histogram_i64".
std::string_view table_suffix(MeasurementTable table);
// "tally.measurements_f64" (schema-qualified, needs no quoting).
std::string table_name(MeasurementTable table);
// The columns a row carries, in COPY order: "timeseries_key, \"timestamp\", datum", with
// start_time for cumulative and histogram tables and the histogram columns.
std::string_view table_columns(MeasurementTable table);
// The datum columns alone (what is NULL for a missing datum).
int datum_column_count(MeasurementTable table);
bool has_start_time(MeasurementTable table);

// Partitions cover one UTC day: [day 00:00, day+1 00:00).
using Day = std::chrono::sys_days;
Day day_of(Timestamp t);
// "tally.measurements_f64_p20261122".
std::string partition_name(MeasurementTable table, Day day);
// CREATE TABLE IF NOT EXISTS <partition> PARTITION OF <table> FOR VALUES FROM (…) TO (…).
std::string partition_ddl(MeasurementTable table, Day day);

}  // namespace tally::schema
