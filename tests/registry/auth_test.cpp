#include "tally/registry/auth.h"

#include <doctest/doctest.h>

#include <set>

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

// Every route of DESIGN.md §4 that needs a token, with the roles that may use it. The HTTP status
// of each outcome (401 unauthorized, 403 forbidden) is checked against the real binary in
// api_test.cpp ("every role is allowed and refused where it should be").
namespace {
struct Route {
  const char* route;
  Action action;
  std::set<Role> allowed;
};
const Route kRoutes[] = {
    {"POST /v1/producers", Action::kRegisterProducer, {Role::kProducer, Role::kAdmin}},
    {"GET /v1/producers", Action::kReadProducers, {Role::kReader, Role::kAdmin}},
    {"GET /v1/producers/{id}", Action::kReadProducers, {Role::kReader, Role::kAdmin}},
    {"DELETE /v1/producers/{id}", Action::kDeleteProducer, {Role::kProducer, Role::kAdmin}},
    {"POST /v1/collectors", Action::kHeartbeat, {Role::kCollector, Role::kAdmin}},
    {"GET /v1/collectors", Action::kReadCollectors, {Role::kReader, Role::kAdmin}},
    {"GET /v1/collectors/{id}/producers",
     Action::kReadAssignments,
     {Role::kCollector, Role::kReader, Role::kAdmin}},
};
}  // namespace

TEST_CASE("every route refuses a missing token, a wrong one and one of the wrong role") {
  Authenticator auth(tokens());
  const std::pair<Role, std::string_view> role_tokens[] = {{Role::kProducer, "Bearer p-secret"},
                                                           {Role::kCollector, "Bearer c-secret"},
                                                           {Role::kReader, "Bearer r-secret"},
                                                           {Role::kAdmin, "Bearer a-secret"}};
  // Near misses of real tokens: none of them may pass for the token it resembles.
  const std::optional<std::string_view> wrong[] = {
      std::nullopt,       "",
      "Bearer ",          "Bearer wrong-secret",
      "Bearer a-secretx", "Bearer A-SECRET",
      "Bearer a-secre",   "Bearer a-secret a-secret",
      "Token a-secret",   "a-secret",
  };
  for (const Route& r : kRoutes) {
    CAPTURE(r.route);
    for (const auto& header : wrong) {
      CAPTURE(header.value_or("(no header)"));
      auto p = auth.authorize(header, r.action);
      REQUIRE_FALSE(p.ok());
      CHECK(p.status().code() == "unauthorized");
    }
    // The stored digest is no token either (it is in the config file, the token is not).
    const std::string digest = "Bearer " + tally::to_hex(tally::sha256("a-secret"));
    CHECK(auth.authorize(digest, r.action).status().code() == "unauthorized");
    for (const auto& [role, header] : role_tokens) {
      CAPTURE(tally::config::to_string(role));
      auto p = auth.authorize(header, r.action);
      if (r.allowed.count(role)) {
        CHECK(p.ok());
      } else {
        REQUIRE_FALSE(p.ok());
        CHECK(p.status().code() == "forbidden");
        CHECK(role_permits(role, r.action) == false);
      }
    }
  }
}

TEST_CASE("a role refusal is forbidden and names the token and role") {
  Authenticator auth(tokens());
  auto p = auth.authorize("Bearer r-secret", Action::kRegisterProducer);
  REQUIRE_FALSE(p.ok());
  CHECK(p.status().code() == "forbidden");
  CHECK(p.error() == "token 'ro' has the reader role, which may not register producers");
}
