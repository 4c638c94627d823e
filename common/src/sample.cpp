#include "tally/common/sample.h"

#include <algorithm>

#include "tally/common/names.h"

namespace tally {
namespace {

Status validate_fields(const Fields& fields, std::string_view owner,
                       std::vector<std::string_view>& seen) {
  for (const Field& f : fields) {
    const std::string what = "field '" + f.name + "' of " + std::string(owner);
    if (Status s = validate_name(f.name, kMaxFieldNameLength, what); !s.ok()) return s;
    if (std::find(seen.begin(), seen.end(), f.name) != seen.end()) {
      return Status::error(what + ": duplicate field name (names are unique across target and metric)",
                           "invalid");
    }
    seen.push_back(f.name);
  }
  return {};
}

}  // namespace

std::string Sample::timeseries_name() const {
  std::string name;
  name.reserve(target.name.size() + 1 + metric.name.size());
  name += target.name;
  name += ':';
  name += metric.name;
  return name;
}

Status validate_sample(const Sample& s) {
  const std::string target_what = "target '" + s.target.name + "'";
  const std::string metric_what = "metric '" + s.metric.name + "'";
  if (Status st = validate_name(s.target.name, kMaxTimeseriesNameLength, target_what); !st.ok()) {
    return st;
  }
  if (Status st = validate_name(s.metric.name, kMaxTimeseriesNameLength, metric_what); !st.ok()) {
    return st;
  }
  if (Status st = validate_timeseries_name(s.timeseries_name()); !st.ok()) return st;
  if (s.timeseries_version == 0) {
    return Status::error("timeseries '" + s.timeseries_name() + "': version must be at least 1",
                         "invalid");
  }
  std::vector<std::string_view> seen;
  if (Status st = validate_fields(s.target.fields, target_what, seen); !st.ok()) return st;
  if (Status st = validate_fields(s.metric.fields, metric_what, seen); !st.ok()) return st;
  return validate_datum(s.datum).with_context("timeseries '" + s.timeseries_name() + "'");
}

bool same_sample(const Sample& a, const Sample& b) {
  return a.target == b.target && a.metric == b.metric &&
         a.timeseries_version == b.timeseries_version && a.timestamp == b.timestamp &&
         same_datum(a.datum, b.datum);
}

}  // namespace tally
