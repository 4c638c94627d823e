// Name rules of DESIGN.md §2.
#pragma once

#include <cstddef>
#include <string_view>

#include "tally/common/result.h"

namespace tally {

inline constexpr std::size_t kMaxTimeseriesNameLength = 128;
inline constexpr std::size_t kMaxFieldNameLength = 64;
inline constexpr std::string_view kNamePattern = "[a-z][a-z0-9]*(_[a-z0-9]+)*";

// True when `name` matches [a-z][a-z0-9]*(_[a-z0-9]+)* (no length check).
bool matches_name_pattern(std::string_view name);

// `what` names the thing in the message: "target 'x'", "metric", "field 'a' of target 'x'".
Status validate_name(std::string_view name, std::size_t max_length, std::string_view what);

// A whole "target:metric" name: both parts match the pattern, total ≤ 128 characters.
Status validate_timeseries_name(std::string_view name);

}  // namespace tally
