// Timestamps: microseconds since the Unix epoch, UTC. Postgres keeps microseconds, so Tally
// does too; RFC 3339 input may carry up to nine fractional digits and is truncated.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "tally/common/result.h"

namespace tally {

using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

Timestamp now();

// "2026-11-22T10:00:00.123456Z" (always six fractional digits, always UTC).
std::string format_rfc3339(Timestamp t);
void append_rfc3339(std::string& out, Timestamp t);

// Accepts "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)"; 't'/'z' and a space separator too.
Result<Timestamp> parse_rfc3339(std::string_view text);

// "1.5s", "500ms", "10s", "5m", "1h", "2d" (as in the configs and the CLI).
Result<std::chrono::microseconds> parse_duration(std::string_view text);
std::string format_duration(std::chrono::microseconds d);

}  // namespace tally
