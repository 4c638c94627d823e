// Registering with tally-registry (DESIGN.md §4) and keeping the lease.
//
//   tally::RegistrationClient registration({.registry_url = "http://127.0.0.1:12221",
//                                           .id = id, .address = server.address()});
//   registration.start();  // returns at once; the registry may be down
//   …
//   registration.stop();   // unregisters if unregister_on_stop
//
// A background thread sends POST /v1/producers and renews the lease by re-registering every
// lease/4. While the registry is unreachable or failing it retries with capped exponential
// backoff (with jitter), never sooner than a Retry-After header asks. A 503 no_live_collector
// means the registry stored the producer and will assign it when a collector appears; it is
// asked again on the same backoff to learn the assignment. Problems are logged once per streak
// of failures, not once per attempt.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "tally/common/field.h"
#include "tally/common/time.h"

namespace tally {

struct RegistrationOptions {
  std::string registry_url = "http://127.0.0.1:12221";
  Uuid id = Uuid::random();  // the producer's id; keep it across restarts if you can
  std::string address;       // "host:port" collectors poll (required)
  std::string route = "/collect";
  std::chrono::milliseconds interval{10'000};  // how often collectors should poll
  std::string format = "oximeter";             // or "prometheus" (then route is usually /metrics)
  std::string target_name;                     // sent only when not empty (prometheus format)
  std::string token;                           // sent as "Authorization: Bearer <token>" if set
  bool unregister_on_stop = true;              // DELETE /v1/producers/{id} in stop()
  std::chrono::milliseconds request_timeout{5'000};
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30'000};
  double jitter = 0.2;  // backoff delays vary by ±jitter·delay
};

struct RegistrationState {
  bool registered = false;  // stored by the registry (201, or 503 no_live_collector)
  bool assigned = false;    // a collector has been assigned (201)
  std::string collector_id;
  std::string collector_address;
  std::chrono::milliseconds lease{0};
  uint64_t attempts = 0;   // requests sent, successful or not
  uint64_t renewals = 0;   // successful registrations after the first
  uint64_t failures = 0;   // failed attempts in total
  std::string last_error;  // empty after a success
  std::optional<Timestamp> last_success;
};

// Thread-safe.
class RegistrationClient {
 public:
  // Throws std::invalid_argument when address or registry_url is malformed.
  explicit RegistrationClient(RegistrationOptions options);
  ~RegistrationClient();  // stop()s
  RegistrationClient(const RegistrationClient&) = delete;
  RegistrationClient& operator=(const RegistrationClient&) = delete;

  // Starts the background thread; the first attempt happens right away. Never blocks.
  void start();
  // Stops retrying and, if asked and registered, unregisters (bounded by request_timeout).
  // Idempotent.
  void stop();
  RegistrationState state() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally
