// COPY text-format rows for the measurement tables and the series staging table. Internal to
// the collector library; the column order is schema::table_columns().
#pragma once

#include <cstdint>
#include <string>

#include "tally/common/sample.h"
#include "tally/common/time.h"

namespace tally::collector {

// "2026-11-22 10:00:00.123456+00"; the year must be 1…9999 (check_storable).
void append_copy_timestamp(std::string& out, Timestamp t);

// The shortest text that reads back to the same double; "NaN", "Infinity", "-Infinity".
void append_copy_double(std::string& out, double v);

// One row of measurement_table(datum_type(s.datum)), newline-terminated.
void append_measurement_row(std::string& out, int64_t key, const Sample& s);

// One row of the series staging table: key, timeseries name, version, fields as JSON.
void append_series_row(std::string& out, int64_t key, const Sample& s);

}  // namespace tally::collector
