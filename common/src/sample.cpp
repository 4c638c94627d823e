#include "tally/common/sample.h"

#include <optional>
#include <string_view>
#include <unordered_set>

#include "tally/common/names.h"

namespace tally {
namespace {

// validate_sample runs on every decoded sample, so the checks below allocate nothing and the
// messages (naming the sample's parts) are built only once something is wrong.
bool valid_name(std::string_view name, std::size_t max_length) {
  return matches_name_pattern(name) && name.size() <= max_length;
}

std::string describe(std::string_view kind, std::string_view name) {
  return std::string(kind) + " '" + std::string(name) + "'";
}

// Tracks the field names met so far across target and metric: a scan of the earlier fields
// for the usual handful, a hash set beyond so that a hostile sample with thousands of fields
// costs linear time.
class SeenNames {
 public:
  explicit SeenNames(const Sample& s) : s_(s) {
    if (s.target.fields.size() + s.metric.fields.size() > kScanLimit) {
      set_.emplace();
      set_->reserve(s.target.fields.size() + s.metric.fields.size());
    }
  }

  // Records `f` (a field of s); false if an earlier field has the same name.
  bool insert(const Field& f) {
    if (set_) return set_->insert(f.name).second;
    for (const Fields* fields : {&s_.target.fields, &s_.metric.fields}) {
      for (const Field& earlier : *fields) {
        if (&earlier == &f) return true;
        if (earlier.name == f.name) return false;
      }
    }
    return true;
  }

 private:
  static constexpr std::size_t kScanLimit = 32;
  const Sample& s_;
  std::optional<std::unordered_set<std::string_view>> set_;
};

Status validate_fields(const Fields& fields, std::string_view kind, std::string_view owner,
                       SeenNames& seen) {
  for (const Field& f : fields) {
    auto what = [&] { return "field '" + f.name + "' of " + describe(kind, owner); };
    if (!valid_name(f.name, kMaxFieldNameLength)) {
      return validate_name(f.name, kMaxFieldNameLength, what());
    }
    if (!seen.insert(f)) {
      return Status::error(
          what() + ": duplicate field name (names are unique across target and metric)", "invalid");
    }
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
  if (!valid_name(s.target.name, kMaxTimeseriesNameLength)) {
    return validate_name(s.target.name, kMaxTimeseriesNameLength,
                         describe("target", s.target.name));
  }
  if (!valid_name(s.metric.name, kMaxTimeseriesNameLength)) {
    return validate_name(s.metric.name, kMaxTimeseriesNameLength,
                         describe("metric", s.metric.name));
  }
  // Both parts match the pattern, so only the joined length is left to check.
  if (s.target.name.size() + 1 + s.metric.name.size() > kMaxTimeseriesNameLength) {
    return validate_timeseries_name(s.timeseries_name());
  }
  if (s.timeseries_version == 0) {
    return Status::error("timeseries '" + s.timeseries_name() + "': version must be at least 1",
                         "invalid");
  }
  SeenNames seen(s);
  if (Status st = validate_fields(s.target.fields, "target", s.target.name, seen); !st.ok()) {
    return st;
  }
  if (Status st = validate_fields(s.metric.fields, "metric", s.metric.name, seen); !st.ok()) {
    return st;
  }
  if (Status st = validate_datum(s.datum); !st.ok()) {
    return st.with_context("timeseries '" + s.timeseries_name() + "'");
  }
  return {};
}

bool same_sample(const Sample& a, const Sample& b) {
  return a.target == b.target && a.metric == b.metric &&
         a.timeseries_version == b.timeseries_version && a.timestamp == b.timestamp &&
         same_datum(a.datum, b.datum);
}

}  // namespace tally
