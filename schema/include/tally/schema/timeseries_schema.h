// The schema of a timeseries (DESIGN.md §5 "Schema"): its name and version, the name, type and
// source of every field, and the datum type. Derived from each sample and checked against the
// one stored in tally.timeseries_schema; a sample whose schema differs is rejected.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tally/common/datum.h"
#include "tally/common/field.h"
#include "tally/common/sample.h"

namespace tally::schema {

enum class FieldSource : uint8_t { kTarget, kMetric };
std::string_view to_string(FieldSource s);  // "target" | "metric"
std::optional<FieldSource> parse_field_source(std::string_view name);

struct FieldSchema {
  std::string name;
  FieldType type = FieldType::kString;
  FieldSource source = FieldSource::kTarget;
  bool operator==(const FieldSchema&) const = default;
};

struct TimeseriesSchema {
  std::string timeseries_name;  // "target_name:metric_name"
  uint32_t version = 1;
  std::string target_name;
  std::string metric_name;
  std::vector<FieldSchema> fields;  // sorted by name
  DatumType datum_type = DatumType::kF64;
  // Metadata: stored, but not part of the identity (describe_difference ignores them), so they
  // can be filled in later without making every collector's samples conflict.
  std::string units;
  std::string description;
  bool operator==(const TimeseriesSchema&) const = default;
};

// The schema of the series `s` belongs to; a missing datum gives the type it stands in for.
// Units and description are empty. Assumes validate_sample(s) passed.
TimeseriesSchema derive_schema(const Sample& s);

// nullopt when `stored` and `incoming` describe the same series layout (name, version, fields
// with type and source, datum type). Otherwise every difference in words, stored side first:
// "field 'route' is string in the stored schema but u16 in the new one; datum type differs:
// f64 vs cumulative_f64; field 'x' only in the new schema (metric)".
std::optional<std::string> describe_difference(const TimeseriesSchema& stored,
                                               const TimeseriesSchema& incoming);

// The schema spelled out on one line, for conflict reports and logs:
// "http_service:request_latency v1 (name string target, route string metric) histogram_f64".
std::string format_schema(const TimeseriesSchema& schema);

}  // namespace tally::schema
