// Reading stored series and measurements back into the data model, for tallyctl and tests.
// Every value comes back exactly as written (timestamps to the microsecond, u64 and floats
// bit for bit). Floats assume the server's default extra_float_digits (≥ 1: shortest exact).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tally/common/datum.h"
#include "tally/common/pg.h"
#include "tally/common/result.h"
#include "tally/common/sample.h"
#include "tally/common/time.h"
#include "tally/schema/timeseries_schema.h"

namespace tally::schema {

// [from, to); an unset bound is open.
struct TimeRange {
  std::optional<Timestamp> from;
  std::optional<Timestamp> to;
};

struct Measurement {
  Timestamp timestamp;
  Datum datum;
};

// The measurements of one series in timestamp order. `type` is the series' datum type (from
// its schema): it picks the table and the C++ type the values are converted back to.
Result<std::vector<Measurement>> read_measurements(pg::Connection& conn, int64_t key,
                                                   DatumType type, const TimeRange& range = {});

// A row of tally.timeseries with its fields typed through the stored schema.
struct StoredSeries {
  int64_t key = 0;
  TimeseriesSchema schema;
  Target target;
  Metric metric;
};

// nullopt when no series has that key; an error (code "decode") when its schema is missing or
// its fields do not match the schema.
Result<std::optional<StoredSeries>> read_series(pg::Connection& conn, int64_t key);

// The series' measurements as Samples (empty when the series does not exist).
Result<std::vector<Sample>> read_samples(pg::Connection& conn, int64_t key,
                                         const TimeRange& range = {});

}  // namespace tally::schema
