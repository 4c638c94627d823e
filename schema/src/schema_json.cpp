#include "tally/schema/schema_json.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>

#include "tally/common/json_text.h"

namespace tally::schema {
namespace {

Status decode_error(std::string_view what) {
  return Status::error("bad schema fields JSON: " + std::string(what), "decode");
}

void append_field_json_value(std::string& out, const FieldValue& v) {
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          append_json_string(out, x);
        } else if constexpr (std::is_same_v<T, bool>) {
          out += x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, Uuid> || std::is_same_v<T, IpAddr>) {
          append_json_string(out, x.to_string());
        } else {
          char buf[24];
          const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
          out.append(buf, end);
        }
      },
      v);
}

void append_fields_object(std::string& out, const Fields& fields, bool& first) {
  for (const Field& f : fields) {
    if (!first) out += ',';
    first = false;
    append_json_string(out, f.name);
    out += ':';
    append_field_json_value(out, f.value);
  }
}

}  // namespace

std::string fields_to_json(const std::vector<FieldSchema>& fields) {
  std::string out = "[";
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"name\":";
    append_json_string(out, fields[i].name);
    out += ",\"type\":\"";
    out += to_string(fields[i].type);
    out += "\",\"source\":\"";
    out += to_string(fields[i].source);
    out += "\"}";
  }
  out += ']';
  return out;
}

Result<std::vector<FieldSchema>> parse_fields_json(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::array array;
  if (parser.parse(json.data(), json.size()).get_array().get(array) != simdjson::SUCCESS) {
    return decode_error("expected a JSON array");
  }
  std::vector<FieldSchema> fields;
  for (simdjson::dom::element item : array) {
    simdjson::dom::object object;
    std::string_view name, type, source;
    if (item.get_object().get(object) != simdjson::SUCCESS ||
        object["name"].get_string().get(name) != simdjson::SUCCESS ||
        object["type"].get_string().get(type) != simdjson::SUCCESS ||
        object["source"].get_string().get(source) != simdjson::SUCCESS) {
      return decode_error("each item needs string members name, type and source");
    }
    const auto field_type = parse_field_type(type);
    if (!field_type)
      return decode_error("field '" + std::string(name) + "': unknown type '" + std::string(type) +
                          "'");
    const auto field_source = parse_field_source(source);
    if (!field_source)
      return decode_error("field '" + std::string(name) + "': unknown source '" +
                          std::string(source) + "'");
    fields.push_back({std::string(name), *field_type, *field_source});
  }
  std::sort(fields.begin(), fields.end(),
            [](const FieldSchema& a, const FieldSchema& b) { return a.name < b.name; });
  const auto dup = std::adjacent_find(
      fields.begin(), fields.end(),
      [](const FieldSchema& a, const FieldSchema& b) { return a.name == b.name; });
  if (dup != fields.end()) return decode_error("field '" + dup->name + "' appears twice");
  return fields;
}

void append_series_fields_json(std::string& out, const Fields& target_fields,
                               const Fields& metric_fields) {
  out += '{';
  bool first = true;
  append_fields_object(out, target_fields, first);
  append_fields_object(out, metric_fields, first);
  out += '}';
}

}  // namespace tally::schema
