#include "tally/schema/timeseries_schema.h"

#include <doctest/doctest.h>

#include <functional>

namespace tally::schema {
namespace {

Sample latency_sample() {
  return Sample{
      make_timeseries({"http_service", {{"name", std::string("api")}, {"instance_id", Uuid{}}}},
                      {"request_latency",
                       {{"status_code", uint16_t{200}}, {"route", std::string("/v1/items")}}},
                      3),
      Timestamp{}, 1.5};
}

TEST_CASE("derive_schema sorts target and metric fields together by name with their source") {
  const TimeseriesSchema schema = derive_schema(latency_sample());
  CHECK(schema.timeseries_name == "http_service:request_latency");
  CHECK(schema.version == 3);
  CHECK(schema.target_name == "http_service");
  CHECK(schema.metric_name == "request_latency");
  CHECK(schema.datum_type == DatumType::kF64);
  const std::vector<FieldSchema> expected = {
      {"instance_id", FieldType::kUuid, FieldSource::kTarget},
      {"name", FieldType::kString, FieldSource::kTarget},
      {"route", FieldType::kString, FieldSource::kMetric},
      {"status_code", FieldType::kU16, FieldSource::kMetric},
  };
  CHECK(schema.fields == expected);
  CHECK(schema.units.empty());
  CHECK(schema.description.empty());
}

TEST_CASE("derive_schema gives a missing datum the type it stands in for") {
  Sample s = latency_sample();
  s.datum = Missing{DatumType::kCumulativeU64, Timestamp{}};
  CHECK(derive_schema(s).datum_type == DatumType::kCumulativeU64);
}

TEST_CASE("describe_difference spells out every difference with the stored side first") {
  const TimeseriesSchema base = derive_schema(latency_sample());
  struct Case {
    const char* name;
    std::function<void(TimeseriesSchema&)> change;
    std::optional<std::string> expected;
  };
  const Case cases[] = {
      {"identical", [](TimeseriesSchema&) {}, std::nullopt},
      {"units and description are metadata",
       [](TimeseriesSchema& s) {
         s.units = "seconds";
         s.description = "latency";
       },
       std::nullopt},
      {"field type", [](TimeseriesSchema& s) { s.fields[2].type = FieldType::kU16; },
       "field 'route' is string in the stored schema but u16 in the new one"},
      {"field source", [](TimeseriesSchema& s) { s.fields[1].source = FieldSource::kMetric; },
       "field 'name' is a target field in the stored schema but a metric field in the new one"},
      {"field only in the new schema",
       [](TimeseriesSchema& s) {
         s.fields.push_back({"zone", FieldType::kString, FieldSource::kMetric});
       },
       "field 'zone' only in the new schema (metric)"},
      {"field only in the stored schema",
       [](TimeseriesSchema& s) { s.fields.erase(s.fields.begin()); },
       "field 'instance_id' only in the stored schema (target)"},
      {"datum type", [](TimeseriesSchema& s) { s.datum_type = DatumType::kCumulativeF64; },
       "datum type differs: f64 vs cumulative_f64"},
      {"version", [](TimeseriesSchema& s) { s.version = 4; }, "version differs: 3 vs 4"},
      {"several at once",
       [](TimeseriesSchema& s) {
         s.fields[2].type = FieldType::kU16;
         s.fields.push_back({"x", FieldType::kBool, FieldSource::kMetric});
         s.datum_type = DatumType::kCumulativeF64;
       },
       "field 'route' is string in the stored schema but u16 in the new one; field 'x' only in "
       "the new schema (metric); datum type differs: f64 vs cumulative_f64"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    TimeseriesSchema incoming = base;
    c.change(incoming);
    CHECK(describe_difference(base, incoming) == c.expected);
  }
}

TEST_CASE("format_schema names every field with type and source and then the datum type") {
  CHECK(format_schema(derive_schema(latency_sample())) ==
        "http_service:request_latency v3 (instance_id uuid target, name string target, "
        "route string metric, status_code u16 metric) f64");
}

TEST_CASE("field sources round-trip through their names") {
  for (FieldSource s : {FieldSource::kTarget, FieldSource::kMetric}) {
    CHECK(parse_field_source(to_string(s)) == s);
  }
  CHECK_FALSE(parse_field_source("Target").has_value());
}

}  // namespace
}  // namespace tally::schema
