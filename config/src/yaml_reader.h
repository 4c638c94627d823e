// Reads one YAML mapping of a config file, key by key, so that every error names the file, the
// line and the full key ("collector.yaml:7: database.batch_size: expected a whole number") and
// unknown keys are errors. Internal to tally::config: it throws ConfigError, which the
// load_*_config functions turn into a Status.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace tally::config {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class MapReader {
 public:
  // `prefix` is the dotted key of this mapping ("" at the top, "database", "targets.static[0]").
  MapReader(const YAML::Node& node, std::string file, std::string prefix);

  bool has(const std::string& key) const;
  // The raw child (marks the key as known); nullopt when absent or null.
  std::optional<YAML::Node> child(const std::string& key);
  MapReader map(const std::string& key);  // an absent key reads as an empty mapping
  std::string key_path(const std::string& key) const;

  std::string string(const std::string& key, const std::string& fallback);
  std::optional<std::string> optional_string(const std::string& key);
  int64_t integer(const std::string& key, int64_t fallback, int64_t min, int64_t max);
  bool boolean(const std::string& key, bool fallback);
  std::chrono::microseconds duration(const std::string& key, std::chrono::microseconds fallback,
                                     std::chrono::microseconds min = std::chrono::microseconds(1));
  uint64_t size(const std::string& key, uint64_t fallback, uint64_t min = 1);
  std::vector<std::string> string_list(const std::string& key);

  // Throws for any key that no getter asked for.
  void reject_unknown_keys() const;
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  [[noreturn]] void fail_at(const YAML::Node& node, const std::string& key,
                            const std::string& message) const;
  const std::string& file() const { return file_; }
  const YAML::Node& node() const { return node_; }

 private:
  std::string scalar(const std::string& key, const YAML::Node& value, const char* expected);

  YAML::Node node_;
  std::string file_;
  std::string prefix_;
  std::set<std::string> known_;
};

// Parses `text` (named `file` in messages) and returns a reader over its top-level mapping.
MapReader read_top_level(const std::string& text, const std::string& file);
// Reads a whole file; throws ConfigError naming it when it cannot be read.
std::string read_file(const std::string& path);
// For token_file keys: the content of the file `path` that `key` of `map` names, without
// surrounding white space. An unreadable or empty file fails like a bad value of `key`.
std::string read_secret_file(const MapReader& map, const std::string& key, const std::string& path);

}  // namespace tally::config
