// tally-registry's configuration (DESIGN.md §4, §7).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "tally/common/network.h"
#include "tally/common/result.h"
#include "tally/common/sha256.h"

namespace tally::config {

enum class Role { kProducer, kCollector, kReader, kAdmin };
std::string_view to_string(Role role);

struct Token {
  std::string name;
  Role role = Role::kReader;
  Sha256Digest sha256{};  // of the token; the token itself is never kept
};

struct AuthConfig {
  bool none = true;  // `auth: none`: no Authorization needed (loopback listen only)
  std::vector<Token> tokens;
};

struct RegistryConfig {
  std::string listen = "127.0.0.1:12221";
  std::string database_url;  // required; TALLY_DATABASE_URL overrides
  std::chrono::microseconds collector_ttl = std::chrono::seconds(15);
  std::chrono::microseconds producer_lease = std::chrono::minutes(10);
  // The longest the GC waits between passes (leases expired, dead collectors forgotten); a
  // collector that dies is acted on when its collector_ttl runs out, not at the next interval.
  std::chrono::microseconds gc_interval = std::chrono::seconds(1);
  std::vector<Network> allowed_networks;  // empty: any address
  AuthConfig auth;
};

// Parses YAML text; `file` names it in messages. Reads TALLY_DATABASE_URL. Also checks that
// `auth: none` goes with a loopback listen address.
Result<RegistryConfig> parse_registry_config(const std::string& yaml, const std::string& file);
Result<RegistryConfig> load_registry_config(const std::string& path);

}  // namespace tally::config
