// One line per event on stderr, as text or JSON (DESIGN.md §8). Thread-safe.
//
//   log_info("producer_registered", {{"id", id}, {"collector", address}});
//   text: 2026-11-22T10:00:00.000000Z info producer_registered id=… collector=127.0.0.1:12222
//   json: {"ts":"2026-11-22T10:00:00.000000Z","level":"info","event":"producer_registered",…}
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tally {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

std::optional<LogLevel> parse_log_level(std::string_view name);  // debug|info|warn|error
std::optional<LogFormat> parse_log_format(std::string_view name);  // text|json
void set_log_level(LogLevel level);
void set_log_format(LogFormat format);

using LogFields = std::initializer_list<std::pair<std::string_view, std::string_view>>;

void log(LogLevel level, std::string_view event, LogFields fields = {});
inline void log_debug(std::string_view event, LogFields fields = {}) { log(LogLevel::kDebug, event, fields); }
inline void log_info(std::string_view event, LogFields fields = {}) { log(LogLevel::kInfo, event, fields); }
inline void log_warn(std::string_view event, LogFields fields = {}) { log(LogLevel::kWarn, event, fields); }
inline void log_error(std::string_view event, LogFields fields = {}) { log(LogLevel::kError, event, fields); }

}  // namespace tally
