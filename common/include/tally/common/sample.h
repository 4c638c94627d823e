// Targets, metrics and samples (DESIGN.md §2).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tally/common/datum.h"
#include "tally/common/field.h"
#include "tally/common/time.h"

namespace tally {

struct Target {
  std::string name;
  Fields fields;
  bool operator==(const Target&) const = default;
};

struct Metric {
  std::string name;
  Fields fields;
  bool operator==(const Metric&) const = default;
};

// What identifies a timeseries (DESIGN.md §2): its target, metric and version, with the key
// they hash to. Immutable once made, and shared by the samples of the series, so that a sample
// costs its timestamp and datum rather than copies of names and fields: decoders keep the
// timeseries of a producer's last response and hand the same one to the next response's samples
// (CollectDecodeMemo, the Prometheus parser's series cache).
struct Timeseries {
  Target target;
  Metric metric;
  uint32_t version = 1;
  int64_t key = 0;  // timeseries_key of the above (make_timeseries computes it)

  // "target_name:metric_name"
  std::string name() const;
};

using TimeseriesRef = std::shared_ptr<const Timeseries>;

// The one way to make a Timeseries: the key is computed here, from what it identifies.
TimeseriesRef make_timeseries(Target target, Metric metric, uint32_t version = 1);

struct Sample {
  TimeseriesRef series;  // never null in a sample that was made or decoded
  Timestamp timestamp;
  Datum datum;

  const Target& target() const { return series->target; }
  const Metric& metric() const { return series->metric; }
  uint32_t timeseries_version() const { return series->version; }
  int64_t key() const { return series->key; }
  std::string timeseries_name() const { return series->name(); }
};

// Checks names, field names (rules, lengths, uniqueness across target and metric) and the
// version (≥ 1). Messages name the offending part, e.g.
// "field 'Bad-Name' of target 'x': must match [a-z][a-z0-9]*(_[a-z0-9]+)*".
Status validate_timeseries(const Timeseries& t);
// validate_timeseries, then the datum (validate_datum); a sample without a timeseries fails.
Status validate_sample(const Sample& s);

// Equality of every part (the timeseries by value), with same_datum for the datum.
bool same_sample(const Sample& a, const Sample& b);

}  // namespace tally
