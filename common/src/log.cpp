#include "tally/common/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "tally/common/json_text.h"
#include "tally/common/time.h"

namespace tally {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::atomic<LogFormat> g_format{LogFormat::kText};
std::mutex g_write_mu;

constexpr std::string_view kLevelNames[] = {"debug", "info", "warn", "error"};

void append_text_value(std::string& out, std::string_view v) {
  const bool plain = !v.empty() && v.find_first_of(" \"=\t\n\\") == std::string_view::npos;
  if (plain) {
    out += v;
  } else {
    append_json_string(out, v);
  }
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) {
  for (int i = 0; i < 4; ++i) {
    if (kLevelNames[i] == name) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

void set_log_level(LogLevel level) { g_level = level; }
void set_log_format(LogFormat format) { g_format = format; }

void log(LogLevel level, std::string_view event, LogFields fields) {
  if (level < g_level.load(std::memory_order_relaxed)) return;
  const std::string_view level_name = kLevelNames[static_cast<int>(level)];
  std::string line;
  line.reserve(128);
  if (g_format.load(std::memory_order_relaxed) == LogFormat::kJson) {
    line += "{\"ts\":\"";
    append_rfc3339(line, now());
    line += "\",\"level\":\"";
    line += level_name;
    line += "\",\"event\":";
    append_json_string(line, event);
    for (const auto& [key, value] : fields) {
      line += ',';
      append_json_string(line, key);
      line += ':';
      append_json_string(line, value);
    }
    line += '}';
  } else {
    append_rfc3339(line, now());
    line += ' ';
    line += level_name;
    line += ' ';
    line += event;
    for (const auto& [key, value] : fields) {
      line += ' ';
      line += key;
      line += '=';
      append_text_value(line, value);
    }
  }
  line += '\n';
  std::lock_guard lock(g_write_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace tally
