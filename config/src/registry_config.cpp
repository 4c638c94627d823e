#include "tally/config/registry_config.h"

#include <cstdlib>

#include "common_keys.h"
#include "yaml_reader.h"

namespace tally::config {
namespace {

Role parse_role(MapReader& token, const std::string& key) {
  const std::string name = token.string(key, "");
  if (name == "producer") return Role::kProducer;
  if (name == "collector") return Role::kCollector;
  if (name == "reader") return Role::kReader;
  if (name == "admin") return Role::kAdmin;
  token.fail(key, "expected producer, collector, reader or admin, got '" + name + "'");
}

AuthConfig read_auth(MapReader& top) {
  AuthConfig auth;
  auto node = top.child("auth");
  if (!node) return auth;
  if (node->IsScalar()) {
    if (node->Scalar() != "none") top.fail_at(*node, "auth", "expected 'none' or {tokens: [...]}");
    return auth;
  }
  MapReader map = top.map("auth");
  auth.none = false;
  auto tokens = map.child("tokens");
  if (!tokens || !tokens->IsSequence() || tokens->size() == 0) {
    map.fail("tokens", "expected a non-empty list of {name, role, sha256 | token_file}");
  }
  for (std::size_t i = 0; i < tokens->size(); ++i) {
    MapReader t((*tokens)[i], map.file(), map.key_path("tokens[" + std::to_string(i) + "]"));
    Token token;
    token.name = t.string("name", "");
    if (token.name.empty()) t.fail("name", "every token needs a name");
    token.role = parse_role(t, "role");
    const auto digest = t.optional_string("sha256");
    const auto file = t.optional_string("token_file");
    if (digest.has_value() == file.has_value()) {
      t.fail("sha256", "give exactly one of sha256 (hex digest of the token) or token_file");
    }
    if (digest && !parse_sha256_hex(*digest, token.sha256)) {
      t.fail("sha256", "expected 64 hex digits (sha256sum of the token)");
    }
    if (file) token.sha256 = sha256(read_secret_file(t, "token_file", *file));
    t.reject_unknown_keys();
    auth.tokens.push_back(std::move(token));
  }
  map.reject_unknown_keys();
  return auth;
}

}  // namespace

std::string_view to_string(Role role) {
  switch (role) {
    case Role::kProducer:
      return "producer";
    case Role::kCollector:
      return "collector";
    case Role::kReader:
      return "reader";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

Result<RegistryConfig> parse_registry_config(const std::string& yaml, const std::string& file) {
  try {
    RegistryConfig c;
    MapReader top = read_top_level(yaml, file);
    c.listen = read_listen(top, c.listen);
    MapReader db = top.map("database");
    c.database_url = read_database_url(db);
    db.reject_unknown_keys();
    c.collector_ttl = top.duration("collector_ttl", c.collector_ttl, std::chrono::seconds(1));
    c.producer_lease = top.duration("producer_lease", c.producer_lease, std::chrono::seconds(1));
    c.gc_interval = top.duration("gc_interval", c.gc_interval, std::chrono::milliseconds(100));
    c.allowed_networks = read_networks(top, "allowed_networks");
    c.auth = read_auth(top);
    top.reject_unknown_keys();
    if (c.auth.none) {
      const HostPort listen = *HostPort::parse(c.listen, true);
      auto ip = IpAddr::parse(listen.host);
      if (!(listen.host == "localhost" || (ip.ok() && is_loopback(*ip)))) {
        throw ConfigError(file + ": auth: 'none' is allowed only on a loopback listen address, not " +
                          c.listen + "; configure auth.tokens");
      }
    }
    return c;
  } catch (const ConfigError& e) {
    return Status::error(e.what(), "config");
  }
}

Result<RegistryConfig> load_registry_config(const std::string& path) {
  try {
    return parse_registry_config(read_file(path), path);
  } catch (const ConfigError& e) {
    return Status::error(e.what(), "config");
  }
}

}  // namespace tally::config
