// Bearer-token authentication and the roles of DESIGN.md §4.
//
// The configuration holds SHA-256 digests of the tokens, never the tokens. A request's token is
// hashed and compared with every configured digest in constant time. Messages never contain
// the token. Thread-safe (immutable after construction).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "tally/common/result.h"
#include "tally/config/registry_config.h"

namespace tally::registry {

// What a request does, for the role check.
enum class Action {
  kRegisterProducer,  // POST /v1/producers (register or renew)
  kDeleteProducer,    // DELETE /v1/producers/{id}
  kReadProducers,     // GET /v1/producers, GET /v1/producers/{id}
  kHeartbeat,         // POST /v1/collectors
  kReadCollectors,    // GET /v1/collectors
  kReadAssignments,   // GET /v1/collectors/{id}/producers
};

// Who sent a request.
struct Principal {
  std::string name;  // the token's name; empty under `auth: none`
  config::Role role = config::Role::kAdmin;
  bool anonymous = false;  // `auth: none`

  // The value stored in tally.producers.registered_by (nullopt when anonymous).
  std::optional<std::string> owner() const;
  // Whether this caller may change a producer registered by someone else.
  bool may_change_any_producer() const { return role == config::Role::kAdmin; }
};

// producer: register, renew, delete (its own); collector: heartbeat, read assignments;
// reader: every GET; admin: everything.
bool role_permits(config::Role role, Action action);
// "register producers", "read collectors", … for messages.
std::string_view describe(Action action);

class Authenticator {
 public:
  explicit Authenticator(config::AuthConfig config);

  // The principal for an Authorization header value (nullopt: no header). Under `auth: none`
  // every request is an anonymous admin. Errors have code "unauthorized".
  Result<Principal> authenticate(std::optional<std::string_view> authorization) const;

  // authenticate() and then the role check; role errors have code "forbidden".
  Result<Principal> authorize(std::optional<std::string_view> authorization, Action action) const;

 private:
  config::AuthConfig config_;
};

}  // namespace tally::registry
