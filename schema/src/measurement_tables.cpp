#include "tally/schema/measurement_tables.h"

#include <cstdio>

namespace tally::schema {
namespace {

constexpr std::string_view kSuffixes[kMeasurementTableCount] = {"bool",
                                                                "i64",
                                                                "u64",
                                                                "f64",
                                                                "string",
                                                                "bytes",
                                                                "cumulative_i64",
                                                                "cumulative_u64",
                                                                "cumulative_f64",
                                                                "histogram_i64",
                                                                "histogram_f64"};

constexpr std::string_view kGaugeColumns = "timeseries_key, \"timestamp\", datum";
constexpr std::string_view kCumulativeColumns = "timeseries_key, \"timestamp\", start_time, datum";
constexpr std::string_view kHistogramColumns =
    "timeseries_key, \"timestamp\", start_time, bins, counts, n_samples, min, max, sum, "
    "squared_mean";

bool is_histogram_table(MeasurementTable t) {
  return t == MeasurementTable::kHistogramI64 || t == MeasurementTable::kHistogramF64;
}

// "2026-11-22 00:00:00+00"
std::string day_literal(Day day) {
  const std::chrono::year_month_day ymd(day);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u 00:00:00+00", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

}  // namespace

MeasurementTable measurement_table(DatumType type) {
  switch (type) {
    case DatumType::kBool:
      return MeasurementTable::kBool;
    case DatumType::kI8:
    case DatumType::kU8:
    case DatumType::kI16:
    case DatumType::kU16:
    case DatumType::kI32:
    case DatumType::kU32:
    case DatumType::kI64:
      return MeasurementTable::kI64;
    case DatumType::kU64:
      return MeasurementTable::kU64;
    case DatumType::kF32:
    case DatumType::kF64:
      return MeasurementTable::kF64;
    case DatumType::kString:
      return MeasurementTable::kString;
    case DatumType::kBytes:
      return MeasurementTable::kBytes;
    case DatumType::kCumulativeI64:
      return MeasurementTable::kCumulativeI64;
    case DatumType::kCumulativeU64:
      return MeasurementTable::kCumulativeU64;
    case DatumType::kCumulativeF32:
    case DatumType::kCumulativeF64:
      return MeasurementTable::kCumulativeF64;
    case DatumType::kHistogramF32:
    case DatumType::kHistogramF64:
      return MeasurementTable::kHistogramF64;
    default:  // histogram_{i8…u64}
      return MeasurementTable::kHistogramI64;
  }
}

std::string_view table_suffix(MeasurementTable table) { return kSuffixes[static_cast<int>(table)]; }

std::string table_name(MeasurementTable table) {
  return "tally.measurements_" + std::string(table_suffix(table));
}

std::string_view table_columns(MeasurementTable table) {
  if (is_histogram_table(table)) return kHistogramColumns;
  return has_start_time(table) ? kCumulativeColumns : kGaugeColumns;
}

int datum_column_count(MeasurementTable table) { return is_histogram_table(table) ? 7 : 1; }

bool has_start_time(MeasurementTable table) { return table >= MeasurementTable::kCumulativeI64; }

Day day_of(Timestamp t) { return std::chrono::floor<std::chrono::days>(t); }

std::string partition_name(MeasurementTable table, Day day) {
  const std::chrono::year_month_day ymd(day);
  char buf[16];
  std::snprintf(buf, sizeof buf, "_p%04d%02u%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return table_name(table) + buf;
}

std::string partition_ddl(MeasurementTable table, Day day) {
  return "CREATE TABLE IF NOT EXISTS " + partition_name(table, day) + " PARTITION OF " +
         table_name(table) + " FOR VALUES FROM ('" + day_literal(day) + "') TO ('" +
         day_literal(day + std::chrono::days(1)) + "')";
}

}  // namespace tally::schema
