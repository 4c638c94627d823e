#include "tally/registry/auth.h"

#include <cctype>

#include "tally/common/sha256.h"

namespace tally::registry {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string> Principal::owner() const {
  if (anonymous) return std::nullopt;
  return name;
}

bool role_permits(config::Role role, Action action) {
  using config::Role;
  switch (role) {
    case Role::kAdmin:
      return true;
    case Role::kProducer:
      return action == Action::kRegisterProducer || action == Action::kDeleteProducer;
    case Role::kCollector:
      return action == Action::kHeartbeat || action == Action::kReadAssignments;
    case Role::kReader:
      return action == Action::kReadProducers || action == Action::kReadCollectors ||
             action == Action::kReadAssignments;
  }
  return false;
}

std::string_view describe(Action action) {
  switch (action) {
    case Action::kRegisterProducer:
      return "register producers";
    case Action::kDeleteProducer:
      return "delete producers";
    case Action::kReadProducers:
      return "read producers";
    case Action::kHeartbeat:
      return "send collector heartbeats";
    case Action::kReadCollectors:
      return "read collectors";
    case Action::kReadAssignments:
      return "read collector assignments";
  }
  return "do this";
}

Authenticator::Authenticator(config::AuthConfig config) : config_(std::move(config)) {}

Result<Principal> Authenticator::authenticate(std::optional<std::string_view> authorization) const {
  if (config_.none) return Principal{"", config::Role::kAdmin, true};
  if (!authorization) {
    return Status::error("missing bearer token: send 'Authorization: Bearer <token>'",
                         "unauthorized");
  }
  const std::string_view value = trim(*authorization);
  const std::size_t space = value.find(' ');
  if (space == std::string_view::npos || !iequals(value.substr(0, space), "bearer")) {
    return Status::error("the Authorization header must be 'Bearer <token>'", "unauthorized");
  }
  const std::string_view token = trim(value.substr(space + 1));
  if (token.empty()) return Status::error("empty bearer token", "unauthorized");

  const Sha256Digest digest = sha256(token);
  const config::Token* match = nullptr;
  // Every digest is compared, so the time taken does not tell which one matched.
  for (const config::Token& t : config_.tokens) {
    if (constant_time_equal(digest, t.sha256) && match == nullptr) match = &t;
  }
  if (match == nullptr) return Status::error("unknown bearer token", "unauthorized");
  return Principal{match->name, match->role, false};
}

Result<Principal> Authenticator::authorize(std::optional<std::string_view> authorization,
                                           Action action) const {
  auto principal = authenticate(authorization);
  if (!principal.ok()) return principal;
  if (!role_permits(principal->role, action)) {
    return Status::error("token '" + principal->name + "' has the " +
                             std::string(config::to_string(principal->role)) +
                             " role, which may not " + std::string(describe(action)),
                         "forbidden");
  }
  return principal;
}

}  // namespace tally::registry
