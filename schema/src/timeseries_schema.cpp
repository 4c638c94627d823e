#include "tally/schema/timeseries_schema.h"

#include <algorithm>

namespace tally::schema {
namespace {

void add_fields(std::vector<FieldSchema>& out, const Fields& fields, FieldSource source) {
  for (const Field& f : fields) out.push_back({f.name, field_type(f.value), source});
}

std::string_view side_name(FieldSource s) {
  return s == FieldSource::kTarget ? "a target field" : "a metric field";
}

void add_item(std::string& out, std::string_view item) {
  if (!out.empty()) out += "; ";
  out += item;
}

}  // namespace

std::string_view to_string(FieldSource s) {
  return s == FieldSource::kTarget ? "target" : "metric";
}

std::optional<FieldSource> parse_field_source(std::string_view name) {
  if (name == "target") return FieldSource::kTarget;
  if (name == "metric") return FieldSource::kMetric;
  return std::nullopt;
}

TimeseriesSchema derive_schema(const Sample& s) {
  TimeseriesSchema schema;
  schema.timeseries_name = s.timeseries_name();
  schema.version = s.timeseries_version();
  schema.target_name = s.target().name;
  schema.metric_name = s.metric().name;
  schema.fields.reserve(s.target().fields.size() + s.metric().fields.size());
  add_fields(schema.fields, s.target().fields, FieldSource::kTarget);
  add_fields(schema.fields, s.metric().fields, FieldSource::kMetric);
  std::sort(schema.fields.begin(), schema.fields.end(),
            [](const FieldSchema& a, const FieldSchema& b) { return a.name < b.name; });
  schema.datum_type = datum_type(s.datum);
  return schema;
}

std::optional<std::string> describe_difference(const TimeseriesSchema& stored,
                                               const TimeseriesSchema& incoming) {
  std::string out;
  if (stored.timeseries_name != incoming.timeseries_name) {
    add_item(out, "timeseries name differs: '" + stored.timeseries_name + "' vs '" +
                      incoming.timeseries_name + "'");
  }
  if (stored.version != incoming.version) {
    add_item(out, "version differs: " + std::to_string(stored.version) + " vs " +
                      std::to_string(incoming.version));
  }
  if (stored.target_name != incoming.target_name || stored.metric_name != incoming.metric_name) {
    add_item(out, "target/metric split differs: '" + stored.target_name + "'/'" +
                      stored.metric_name + "' vs '" + incoming.target_name + "'/'" +
                      incoming.metric_name + "'");
  }
  // Both lists are sorted by name: walk them together.
  auto a = stored.fields.begin();
  auto b = incoming.fields.begin();
  while (a != stored.fields.end() || b != incoming.fields.end()) {
    if (b == incoming.fields.end() || (a != stored.fields.end() && a->name < b->name)) {
      add_item(out, "field '" + a->name + "' only in the stored schema (" +
                        std::string(to_string(a->source)) + ")");
      ++a;
    } else if (a == stored.fields.end() || b->name < a->name) {
      add_item(out, "field '" + b->name + "' only in the new schema (" +
                        std::string(to_string(b->source)) + ")");
      ++b;
    } else {
      if (a->type != b->type) {
        add_item(out, "field '" + a->name + "' is " + std::string(to_string(a->type)) +
                          " in the stored schema but " + std::string(to_string(b->type)) +
                          " in the new one");
      }
      if (a->source != b->source) {
        add_item(out, "field '" + a->name + "' is " + std::string(side_name(a->source)) +
                          " in the stored schema but " + std::string(side_name(b->source)) +
                          " in the new one");
      }
      ++a;
      ++b;
    }
  }
  if (stored.datum_type != incoming.datum_type) {
    add_item(out, "datum type differs: " + std::string(to_string(stored.datum_type)) + " vs " +
                      std::string(to_string(incoming.datum_type)));
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::string format_schema(const TimeseriesSchema& schema) {
  std::string out = schema.timeseries_name + " v" + std::to_string(schema.version) + " (";
  for (std::size_t i = 0; i < schema.fields.size(); ++i) {
    const FieldSchema& f = schema.fields[i];
    if (i > 0) out += ", ";
    out += f.name;
    out += ' ';
    out += to_string(f.type);
    out += ' ';
    out += to_string(f.source);
  }
  out += ") ";
  out += to_string(schema.datum_type);
  return out;
}

}  // namespace tally::schema
