// Sizes in the configs: "512B", "64KiB", "16MiB", "1GiB" (durations are in tally/common/time.h,
// which the producer library and the CLI share).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tally/common/result.h"

namespace tally::config {

Result<uint64_t> parse_size(std::string_view text);
std::string format_size(uint64_t bytes);

}  // namespace tally::config
