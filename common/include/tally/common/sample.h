// Targets, metrics and samples (DESIGN.md §2).
#pragma once

#include <cstdint>
#include <optional>
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

struct Sample {
  Target target;
  Metric metric;
  uint32_t timeseries_version = 1;
  Timestamp timestamp;
  Datum datum;
  // timeseries_key(*this), when whoever built the sample had it at hand: the Prometheus parser
  // keeps it with each cached series, so the writer does not hash the same series text at every
  // scrape. Empty means "not known" (the writer computes it). Whoever changes the target, the
  // metric or the version of a sample must reset it; same_sample and the journal ignore it.
  std::optional<int64_t> key;

  // "target_name:metric_name"
  std::string timeseries_name() const;
};

// Checks names, field names (rules, lengths, uniqueness across target and metric), the
// version (≥ 1) and the datum (validate_datum). Messages name the offending part, e.g.
// "field 'Bad-Name' of target 'x': must match [a-z][a-z0-9]*(_[a-z0-9]+)*".
Status validate_sample(const Sample& s);

// Equality of every part, with same_datum for the datum.
bool same_sample(const Sample& a, const Sample& b);

}  // namespace tally
