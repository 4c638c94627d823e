// The registry's records (DESIGN.md §4) and the parsing and validation of request bodies.
//
// Request bodies are JSON; every error is a Status with code "bad_request" whose message names
// the field and says why ("interval_ms: must be between 100 and 86400000, got 0"), ready to be
// sent back to the client.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tally/common/field.h"
#include "tally/common/network.h"
#include "tally/common/result.h"
#include "tally/common/time.h"

namespace tally::registry {

inline constexpr int64_t kMinIntervalMs = 100;
inline constexpr int64_t kMaxIntervalMs = 86'400'000;  // one day
inline constexpr std::size_t kMaxKindLength = 64;
inline constexpr std::size_t kMaxRouteLength = 1024;
inline constexpr std::size_t kMaxTargetNameLength = 64;

// What a producer registers: POST /v1/producers.
struct ProducerSpec {
  Uuid id;
  std::string kind = "service";  // [a-z_]+
  std::string address;           // "host:port" as HostPort::to_string() writes it
  std::string route;             // starts with '/'; defaults to /collect (/metrics for prometheus)
  int64_t interval_ms = 10'000;
  std::string format = "oximeter";         // oximeter | prometheus
  std::optional<std::string> target_name;  // name rule of DESIGN.md §2
};

// A producer as stored, with its assignment.
struct ProducerRecord {
  ProducerSpec spec;
  std::optional<Uuid> collector_id;              // nullopt: unassigned
  std::optional<std::string> collector_address;  // of collector_id, while its row exists
  std::optional<std::string> registered_by;      // token name; nullopt under `auth: none`
  Timestamp registered_at;
  Timestamp renewed_at;
  Timestamp lease_expires_at;
};

// What a collector sends with every heartbeat: POST /v1/collectors.
struct CollectorSpec {
  Uuid id;
  std::string address;  // "host:port" of the collector's own API
};

struct CollectorRecord {
  Uuid id;
  std::string address;
  Timestamp first_seen;
  Timestamp last_seen;
  bool alive = false;  // last_seen younger than collector_ttl, by the database's clock
  int64_t n_producers = 0;
};

// Parses and checks a registration body. The address is checked for form only; see
// check_producer_address for resolution and allowed_networks.
Result<ProducerSpec> parse_producer_spec(std::string_view body);

// Resolves the producer's host and checks every address it resolves to against `allowed`
// (empty: any). Blocks on the system resolver for host names.
Status check_producer_address(const ProducerSpec& spec, const std::vector<Network>& allowed);

// Parses and checks a heartbeat body, including that the address resolves.
Result<CollectorSpec> parse_collector_spec(std::string_view body);
// The same without resolving the address (parse_collector_spec calls it; so does the fuzz
// harness, which must not wait on DNS).
Result<CollectorSpec> parse_collector_body(std::string_view body);

// The JSON objects the API returns (keys in the order DESIGN.md lists them).
std::string producer_json(const ProducerRecord& p);
std::string collector_json(const CollectorRecord& c);

}  // namespace tally::registry
