#include "tally/registry/auth.h"

#include <doctest/doctest.h>

#include "tally/common/sha256.h"

using tally::registry::Action;
using tally::registry::Authenticator;
using tally::registry::role_permits;
using Role = tally::config::Role;

namespace {

tally::config::AuthConfig tokens() {
  tally::config::AuthConfig auth;
  auth.none = false;
  auth.tokens = {{"app", Role::kProducer, tally::sha256("p-secret")},
                 {"coll", Role::kCollector, tally::sha256("c-secret")},
                 {"ro", Role::kReader, tally::sha256("r-secret")},
                 {"root", Role::kAdmin, tally::sha256("a-secret")}};
  return auth;
}

}  // namespace

TEST_CASE("auth: none makes every request an anonymous admin") {
  Authenticator auth(tally::config::AuthConfig{});
  auto p = auth.authorize(std::nullopt, Action::kDeleteProducer);
  REQUIRE(p.ok());
  CHECK(p->anonymous);
  CHECK_FALSE(p->owner().has_value());
  CHECK(p->may_change_any_producer());
}

TEST_CASE("a configured token is recognised by its digest") {
  Authenticator auth(tokens());
  auto p = auth.authenticate("Bearer p-secret");
  REQUIRE(p.ok());
  CHECK(p->name == "app");
  CHECK(p->role == Role::kProducer);
  CHECK(p->owner() == std::optional<std::string>("app"));
  CHECK_FALSE(p->may_change_any_producer());
  CHECK(auth.authenticate("bearer   a-secret ").ok());  // scheme is case-insensitive
}

TEST_CASE("missing, malformed and unknown tokens are unauthorized, without echoing them") {
  Authenticator auth(tokens());
  const std::pair<std::optional<std::string_view>, std::string_view> cases[] = {
      {std::nullopt, "missing bearer token"},
      {"Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"},
      {"Bearer", "must be 'Bearer <token>'"},
      {"Bearer wrong-secret", "unknown bearer token"},
  };
  for (const auto& [header, message] : cases) {
    CAPTURE(header.value_or("(none)"));
    auto p = auth.authenticate(header);
    REQUIRE_FALSE(p.ok());
    CHECK(p.status().code() == "unauthorized");
    CHECK(p.error().find(message) != std::string::npos);
    CHECK(p.error().find("wrong-secret") == std::string::npos);
  }
}

TEST_CASE("each role is allowed exactly its actions") {
  struct Case {
    Role role;
    Action action;
    bool allowed;
  };
  const Case cases[] = {
      {Role::kProducer, Action::kRegisterProducer, true},
      {Role::kProducer, Action::kDeleteProducer, true},
      {Role::kProducer, Action::kReadProducers, false},
      {Role::kProducer, Action::kHeartbeat, false},
      {Role::kProducer, Action::kReadCollectors, false},
      {Role::kProducer, Action::kReadAssignments, false},
      {Role::kCollector, Action::kRegisterProducer, false},
      {Role::kCollector, Action::kDeleteProducer, false},
      {Role::kCollector, Action::kReadProducers, false},
      {Role::kCollector, Action::kHeartbeat, true},
      {Role::kCollector, Action::kReadCollectors, false},
      {Role::kCollector, Action::kReadAssignments, true},
      {Role::kReader, Action::kRegisterProducer, false},
      {Role::kReader, Action::kDeleteProducer, false},
      {Role::kReader, Action::kReadProducers, true},
      {Role::kReader, Action::kHeartbeat, false},
      {Role::kReader, Action::kReadCollectors, true},
      {Role::kReader, Action::kReadAssignments, true},
      {Role::kAdmin, Action::kRegisterProducer, true},
      {Role::kAdmin, Action::kDeleteProducer, true},
      {Role::kAdmin, Action::kReadProducers, true},
      {Role::kAdmin, Action::kHeartbeat, true},
      {Role::kAdmin, Action::kReadCollectors, true},
      {Role::kAdmin, Action::kReadAssignments, true},
  };
  for (const Case& c : cases) {
    CAPTURE(tally::config::to_string(c.role));
    CAPTURE(tally::registry::describe(c.action));
    CHECK(role_permits(c.role, c.action) == c.allowed);
  }
}

TEST_CASE("a role refusal is forbidden and names the token and role") {
  Authenticator auth(tokens());
  auto p = auth.authorize("Bearer r-secret", Action::kRegisterProducer);
  REQUIRE_FALSE(p.ok());
  CHECK(p.status().code() == "forbidden");
  CHECK(p.error() == "token 'ro' has the reader role, which may not register producers");
}
