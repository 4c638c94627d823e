#include "tally/config/registry_config.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <fstream>

#include "support/fixtures.h"

using tally::config::parse_registry_config;
using tally::config::Role;

namespace {

constexpr const char* kDb = "database: {url: \"postgresql://tally@127.0.0.1/tally\"}\n";

}  // namespace

TEST_CASE("registry defaults") {
  unsetenv("TALLY_DATABASE_URL");
  auto c = parse_registry_config(kDb, "registry.yaml");
  REQUIRE_MESSAGE(c.ok(), c.error());
  CHECK(c->listen == "127.0.0.1:12221");
  CHECK(c->collector_ttl == std::chrono::seconds(15));
  CHECK(c->producer_lease == std::chrono::minutes(10));
  CHECK(c->auth.none);
  CHECK(c->allowed_networks.empty());
}

TEST_CASE("TALLY_DATABASE_URL overrides database.url") {
  setenv("TALLY_DATABASE_URL", "postgresql://other/db", 1);
  auto c = parse_registry_config(kDb, "registry.yaml");
  unsetenv("TALLY_DATABASE_URL");
  REQUIRE(c.ok());
  CHECK(c->database_url == "postgresql://other/db");
}

TEST_CASE("tokens by digest and by file") {
  unsetenv("TALLY_DATABASE_URL");
  const std::string path = "/tmp/tally_registry_config_test.token";
  std::ofstream(path) << "s3cret\n";
  const std::string yaml = std::string(kDb) +
                           "listen: 0.0.0.0:12221\n"
                           "auth:\n"
                           "  tokens:\n"
                           "    - {name: ops, role: admin, sha256: "
                           "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b}\n"
                           "    - {name: app, role: producer, token_file: " +
                           path + "}\n";
  auto c = parse_registry_config(yaml, "registry.yaml");
  REQUIRE_MESSAGE(c.ok(), c.error());
  REQUIRE(c->auth.tokens.size() == 2);
  CHECK_FALSE(c->auth.none);
  CHECK(c->auth.tokens[0].role == Role::kAdmin);
  CHECK(c->auth.tokens[1].role == Role::kProducer);
  // sha256("secret") and sha256("s3cret"): the file's trailing newline is not part of the token.
  CHECK(tally::to_hex(c->auth.tokens[0].sha256) ==
        "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b");
  CHECK(c->auth.tokens[1].sha256 == tally::sha256("s3cret"));
}

TEST_CASE("bad registry configs name file, line and key") {
  unsetenv("TALLY_DATABASE_URL");
  struct Case {
    std::string yaml;
    std::string message;
  };
  const Case cases[] = {
      {"listen: 127.0.0.1:1\n", "registry.yaml: database.url: required"},
      {std::string(kDb) + "colector_ttl: 5s\n", "registry.yaml:2: colector_ttl: unknown key"},
      {std::string(kDb) + "collector_ttl: soon\n", "registry.yaml:2: collector_ttl: bad duration 'soon'"},
      {std::string(kDb) + "collector_ttl: 10ms\n", "collector_ttl: must be at least 1s"},
      {std::string(kDb) + "listen: nowhere\n", "registry.yaml:2: listen: 'nowhere' is not host:port"},
      {std::string(kDb) + "allowed_networks: [10.0.0.0/33]\n", "allowed_networks: '10.0.0.0/33'"},
      {std::string(kDb) + "listen: 0.0.0.0:12221\n", "auth: 'none' is allowed only on a loopback"},
      {std::string(kDb) + "auth: {tokens: [{name: a, role: root, sha256: x}]}\n",
       "auth.tokens[0].role: expected producer, collector, reader or admin, got 'root'"},
      {std::string(kDb) + "auth: {tokens: [{name: a, role: admin, sha256: abc}]}\n",
       "auth.tokens[0].sha256: expected 64 hex digits"},
      {std::string(kDb) + "auth: {tokens: [{name: a, role: admin, token_file: /nonexistent/t}]}\n",
       "cannot read token file /nonexistent/t"},
      {std::string(kDb) + "database: [1\n", "registry.yaml:3: invalid YAML"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.yaml);
    auto r = parse_registry_config(c.yaml, "registry.yaml");
    REQUIRE_FALSE(r.ok());
    CHECK_MESSAGE(r.error().find(c.message) != std::string::npos, r.error());
  }
}

// Found by tools/fuzz (config_yaml): the error named the key but not the file and line.
TEST_CASE("an unreadable token_file is an error naming the file, line and key") {
  unsetenv("TALLY_DATABASE_URL");
  auto c = parse_registry_config(
      tally::test::read_fixture("fuzz/config_yaml/token_file_unreadable.yaml"), "registry.yaml");
  REQUIRE_FALSE(c.ok());
  CHECK(c.error() ==
        "registry.yaml:12: auth.tokens[1].token_file: cannot read token file tally-no-such.token");
}
