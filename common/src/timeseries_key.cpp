#include "tally/common/timeseries_key.h"

#include <xxhash.h>

#include <algorithm>

namespace tally {

std::string canonical_series_text(std::string_view timeseries_name, uint32_t version,
                                  const Fields& target_fields, const Fields& metric_fields) {
  std::vector<const Field*> fields;
  fields.reserve(target_fields.size() + metric_fields.size());
  for (const Field& f : target_fields) fields.push_back(&f);
  for (const Field& f : metric_fields) fields.push_back(&f);
  std::sort(fields.begin(), fields.end(),
            [](const Field* a, const Field* b) { return a->name < b->name; });
  std::string text;
  text.reserve(64 + fields.size() * 32);
  text += timeseries_name;
  text += '@';
  text += std::to_string(version);
  for (const Field* f : fields) {
    text += '|';
    text += f->name;
    text += '=';
    text += to_string(field_type(f->value));
    text += ':';
    append_field_value(text, f->value);
  }
  return text;
}

int64_t timeseries_key(std::string_view timeseries_name, uint32_t version,
                       const Fields& target_fields, const Fields& metric_fields) {
  const std::string text =
      canonical_series_text(timeseries_name, version, target_fields, metric_fields);
  return static_cast<int64_t>(XXH64(text.data(), text.size(), 0));
}

int64_t timeseries_key(const Sample& s) {
  return timeseries_key(s.timeseries_name(), s.timeseries_version, s.target.fields,
                        s.metric.fields);
}

}  // namespace tally
