// JSON forms stored in jsonb columns: the fields list of tally.timeseries_schema and the flat
// field object of tally.timeseries (DESIGN.md §6).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tally/common/field.h"
#include "tally/common/result.h"
#include "tally/schema/timeseries_schema.h"

namespace tally::schema {

// [{"name":"instance_id","type":"uuid","source":"target"},…] in the order given.
std::string fields_to_json(const std::vector<FieldSchema>& fields);

// Parses the above (any key order and spacing, as jsonb prints it back); the result is sorted
// by name. Errors have code "decode".
Result<std::vector<FieldSchema>> parse_fields_json(std::string_view json);

// {"name":"api","port":8080,"up":true}: integers as JSON numbers, uuid/ip_addr/string as JSON
// strings, bool as JSON bool. Target fields first, then metric fields. Strings are written as
// they are (UTF-8) with only '"', '\\' and control characters escaped.
void append_series_fields_json(std::string& out, const Fields& target_fields,
                               const Fields& metric_fields);

}  // namespace tally::schema
