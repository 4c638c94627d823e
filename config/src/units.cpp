#include "tally/config/units.h"

#include <charconv>

namespace tally::config {

Result<uint64_t> parse_size(std::string_view text) {
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view unit(ptr, text.data() + text.size() - ptr);
  uint64_t scale = 0;
  if (unit == "B" || unit.empty()) {
    scale = 1;
  } else if (unit == "KiB") {
    scale = 1ull << 10;
  } else if (unit == "MiB") {
    scale = 1ull << 20;
  } else if (unit == "GiB") {
    scale = 1ull << 30;
  } else if (unit == "TiB") {
    scale = 1ull << 40;
  }
  if (ec != std::errc() || ptr == text.data() || scale == 0 || value > UINT64_MAX / scale) {
    return Status::error("bad size '" + std::string(text) +
                             "': expected a whole number and a unit (B, KiB, MiB, GiB), e.g. 64KiB",
                         "invalid");
  }
  return value * scale;
}

std::string format_size(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"TiB", "GiB", "MiB", "KiB"};
  static constexpr int kShifts[] = {40, 30, 20, 10};
  for (int i = 0; i < 4; ++i) {
    const uint64_t unit = 1ull << kShifts[i];
    if (bytes != 0 && bytes % unit == 0) return std::to_string(bytes / unit) + kUnits[i];
  }
  return std::to_string(bytes) + "B";
}

}  // namespace tally::config
