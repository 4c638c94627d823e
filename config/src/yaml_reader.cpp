#include "yaml_reader.h"

#include <fstream>
#include <sstream>

#include "tally/common/time.h"
#include "tally/config/units.h"

namespace tally::config {
namespace {

std::string where(const std::string& file, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0) return file;
  return file + ":" + std::to_string(mark.line + 1);
}

}  // namespace

MapReader::MapReader(const YAML::Node& node, std::string file, std::string prefix)
    : node_(node), file_(std::move(file)), prefix_(std::move(prefix)) {
  if (node_ && !node_.IsNull() && !node_.IsMap()) {
    throw ConfigError(where(file_, node_) + ": " + (prefix_.empty() ? "the file" : prefix_) +
                      ": expected a mapping of keys to values");
  }
  // yaml-cpp keeps one of two equal keys silently; a config with both is a mistake.
  std::set<std::string> seen;
  for (const auto& entry : node_ ? node_ : YAML::Node()) {
    if (!seen.insert(entry.first.Scalar()).second) {
      fail_at(entry.first, entry.first.Scalar(), "key given twice");
    }
  }
}

std::string MapReader::key_path(const std::string& key) const {
  return prefix_.empty() ? key : prefix_ + "." + key;
}

void MapReader::fail(const std::string& key, const std::string& message) const {
  const YAML::Node value = node_ && node_.IsMap() ? node_[key] : YAML::Node();
  fail_at(value && value.IsDefined() ? value : node_, key, message);
}

void MapReader::fail_at(const YAML::Node& node, const std::string& key,
                        const std::string& message) const {
  throw ConfigError(where(file_, node) + ": " + key_path(key) + ": " + message);
}

bool MapReader::has(const std::string& key) const {
  return node_ && node_.IsMap() && node_[key] && !node_[key].IsNull();
}

std::optional<YAML::Node> MapReader::child(const std::string& key) {
  known_.insert(key);
  if (!has(key)) return std::nullopt;
  return node_[key];
}

MapReader MapReader::map(const std::string& key) {
  auto value = child(key);
  return MapReader(value ? *value : YAML::Node(), file_, key_path(key));
}

std::string MapReader::scalar(const std::string& key, const YAML::Node& value,
                              const char* expected) {
  if (!value.IsScalar()) fail_at(value, key, std::string("expected ") + expected);
  return value.Scalar();
}

std::string MapReader::string(const std::string& key, const std::string& fallback) {
  auto value = child(key);
  return value ? scalar(key, *value, "a string") : fallback;
}

std::optional<std::string> MapReader::optional_string(const std::string& key) {
  auto value = child(key);
  if (!value) return std::nullopt;
  return scalar(key, *value, "a string");
}

int64_t MapReader::integer(const std::string& key, int64_t fallback, int64_t min, int64_t max) {
  auto value = child(key);
  if (!value) return fallback;
  const std::string text = scalar(key, *value, "a whole number");
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty()) fail_at(*value, key, "expected a whole number, got '" + text + "'");
  if (n < min || n > max) {
    fail_at(*value, key,
            "must be from " + std::to_string(min) + " to " + std::to_string(max) + ", got " + text);
  }
  return n;
}

bool MapReader::boolean(const std::string& key, bool fallback) {
  auto value = child(key);
  if (!value) return fallback;
  const std::string text = scalar(key, *value, "true or false");
  if (text == "true") return true;
  if (text == "false") return false;
  fail_at(*value, key, "expected true or false, got '" + text + "'");
}

std::chrono::microseconds MapReader::duration(const std::string& key,
                                              std::chrono::microseconds fallback,
                                              std::chrono::microseconds min) {
  auto value = child(key);
  if (!value) return fallback;
  auto parsed = parse_duration(scalar(key, *value, "a duration such as 10s"));
  if (!parsed.ok()) fail_at(*value, key, parsed.error());
  if (*parsed < min) fail_at(*value, key, "must be at least " + format_duration(min));
  return *parsed;
}

uint64_t MapReader::size(const std::string& key, uint64_t fallback, uint64_t min) {
  auto value = child(key);
  if (!value) return fallback;
  auto parsed = parse_size(scalar(key, *value, "a size such as 16MiB"));
  if (!parsed.ok()) fail_at(*value, key, parsed.error());
  if (*parsed < min) fail_at(*value, key, "must be at least " + format_size(min));
  return *parsed;
}

std::vector<std::string> MapReader::string_list(const std::string& key) {
  auto value = child(key);
  std::vector<std::string> out;
  if (!value) return out;
  if (!value->IsSequence()) fail_at(*value, key, "expected a list");
  for (std::size_t i = 0; i < value->size(); ++i) {
    const YAML::Node item = (*value)[i];
    if (!item.IsScalar()) fail_at(item, key + "[" + std::to_string(i) + "]", "expected a string");
    out.push_back(item.Scalar());
  }
  return out;
}

void MapReader::reject_unknown_keys() const {
  if (!node_ || !node_.IsMap()) return;
  for (const auto& entry : node_) {
    const std::string key = entry.first.Scalar();
    if (!known_.count(key)) fail_at(entry.first, key, "unknown key");
  }
}

MapReader read_top_level(const std::string& text, const std::string& file) {
  try {
    return MapReader(YAML::Load(text), file, "");
  } catch (const YAML::Exception& e) {
    throw ConfigError(file + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot read the file");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string read_secret_file(const MapReader& map, const std::string& key,
                             const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) map.fail(key, "cannot read token file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  const auto begin = s.find_first_not_of(" \t\r\n");
  const auto end = s.find_last_not_of(" \t\r\n");
  if (begin == std::string::npos) map.fail(key, "token file " + path + " is empty");
  return s.substr(begin, end - begin + 1);
}

}  // namespace tally::config
