#include "tally/common/sample.h"

#include <optional>
#include <string_view>
#include <unordered_set>

#include "tally/common/names.h"
#include "tally/common/timeseries_key.h"

namespace tally {
namespace {

// validate_timeseries runs on every new series a decoder meets, so the checks below allocate
// nothing and the messages (naming the sample's parts) are built only once something is wrong.
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
  explicit SeenNames(const Timeseries& t) : t_(t) {
    if (t.target.fields.size() + t.metric.fields.size() > kScanLimit) {
      set_.emplace();
      set_->reserve(t.target.fields.size() + t.metric.fields.size());
    }
  }

  // Records `f` (a field of s); false if an earlier field has the same name.
  bool insert(const Field& f) {
    if (set_) return set_->insert(f.name).second;
    for (const Fields* fields : {&t_.target.fields, &t_.metric.fields}) {
      for (const Field& earlier : *fields) {
        if (&earlier == &f) return true;
        if (earlier.name == f.name) return false;
      }
    }
    return true;
  }

 private:
  static constexpr std::size_t kScanLimit = 32;
  const Timeseries& t_;
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

std::string Timeseries::name() const {
  std::string text;
  text.reserve(target.name.size() + 1 + metric.name.size());
  text += target.name;
  text += ':';
  text += metric.name;
  return text;
}

TimeseriesRef make_timeseries(Target target, Metric metric, uint32_t version) {
  // Decoders grow field vectors as they read; a series may live as long as its producer does,
  // so it keeps no spare capacity.
  target.fields.shrink_to_fit();
  metric.fields.shrink_to_fit();
  auto t = std::make_shared<Timeseries>();
  t->key = timeseries_key(target, metric, version);
  t->target = std::move(target);
  t->metric = std::move(metric);
  t->version = version;
  return t;
}

Status validate_timeseries(const Timeseries& t) {
  if (!valid_name(t.target.name, kMaxTimeseriesNameLength)) {
    return validate_name(t.target.name, kMaxTimeseriesNameLength,
                         describe("target", t.target.name));
  }
  if (!valid_name(t.metric.name, kMaxTimeseriesNameLength)) {
    return validate_name(t.metric.name, kMaxTimeseriesNameLength,
                         describe("metric", t.metric.name));
  }
  // Both parts match the pattern, so only the joined length is left to check.
  if (t.target.name.size() + 1 + t.metric.name.size() > kMaxTimeseriesNameLength) {
    return validate_timeseries_name(t.name());
  }
  if (t.version == 0) {
    return Status::error("timeseries '" + t.name() + "': version must be at least 1", "invalid");
  }
  SeenNames seen(t);
  if (Status st = validate_fields(t.target.fields, "target", t.target.name, seen); !st.ok()) {
    return st;
  }
  return validate_fields(t.metric.fields, "metric", t.metric.name, seen);
}

Status validate_sample(const Sample& s) {
  if (!s.series) return Status::error("sample without a timeseries", "invalid");
  if (Status st = validate_timeseries(*s.series); !st.ok()) return st;
  if (Status st = validate_datum(s.datum); !st.ok()) {
    return st.with_context("timeseries '" + s.timeseries_name() + "'");
  }
  return {};
}

bool same_sample(const Sample& a, const Sample& b) {
  const bool same_series =
      a.series == b.series ||
      (a.series && b.series && a.target() == b.target() && a.metric() == b.metric() &&
       a.timeseries_version() == b.timeseries_version());
  return same_series && a.timestamp == b.timestamp && same_datum(a.datum, b.datum);
}

}  // namespace tally
