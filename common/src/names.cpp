#include "tally/common/names.h"

#include <string>

namespace tally {

bool matches_name_pattern(std::string_view name) {
  if (name.empty() || name[0] < 'a' || name[0] > 'z') return false;
  char prev = name[0];
  for (char c : name.substr(1)) {
    const bool lower_or_digit = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (c == '_') {
      if (prev == '_') return false;
    } else if (!lower_or_digit) {
      return false;
    }
    prev = c;
  }
  return prev != '_';
}

Status validate_name(std::string_view name, std::size_t max_length, std::string_view what) {
  if (!matches_name_pattern(name)) {
    return Status::error(std::string(what) + ": must match " + std::string(kNamePattern),
                         "invalid");
  }
  if (name.size() > max_length) {
    return Status::error(std::string(what) + ": longer than " + std::to_string(max_length) +
                             " characters",
                         "invalid");
  }
  return {};
}

Status validate_timeseries_name(std::string_view name) {
  const std::string what = "timeseries name '" + std::string(name) + "'";
  const std::size_t colon = name.find(':');
  if (colon == std::string_view::npos) {
    return Status::error(what + ": must be target_name:metric_name", "invalid");
  }
  if (name.size() > kMaxTimeseriesNameLength) {
    return Status::error(what + ": longer than " + std::to_string(kMaxTimeseriesNameLength) +
                             " characters",
                         "invalid");
  }
  if (!matches_name_pattern(name.substr(0, colon)) || !matches_name_pattern(name.substr(colon + 1))) {
    return Status::error(what + ": both parts must match " + std::string(kNamePattern), "invalid");
  }
  return {};
}

}  // namespace tally
