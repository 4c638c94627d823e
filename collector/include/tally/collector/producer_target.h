// What the collector polls (a ProducerTarget) and what it remembers about each producer (a
// ProducerState, shown by the daemon's GET /producers and GET /producers/{id}, DESIGN.md §5).
// Plain structs; docs/collection.md describes how they change.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "tally/common/field.h"
#include "tally/common/time.h"
#include "tally/config/collector_config.h"

namespace tally::collector {

// One producer to poll: from `static_producers` in the YAML or from the registry's assignment.
struct ProducerTarget {
  Uuid id;
  std::string address;             // "host:port"
  std::string route = "/collect";  // sent as the request target
  config::ProducerFormat format = config::ProducerFormat::kOximeter;
  std::chrono::microseconds interval = std::chrono::seconds(10);  // > 0
  std::string target_name = "prometheus";                         // Prometheus format only
  bool operator==(const ProducerTarget&) const = default;
};

// The failure reasons (DESIGN.md §5, plus "forbidden" and "producer_error"; see
// docs/collection.md). http_<status> is built by http_failure_reason().
namespace reason {
inline constexpr std::string_view kUnreachable = "unreachable";  // resolve/connect/reset/EOF
inline constexpr std::string_view kTimeout = "timeout";          // the collection's deadline
inline constexpr std::string_view kDecode = "decode";            // body or HTTP framing malformed
inline constexpr std::string_view kTooLarge = "too_large";       // body over max_body_bytes
inline constexpr std::string_view kTooManySamples = "too_many_samples";
inline constexpr std::string_view kInProgress = "in_progress";  // poll skipped: one still runs
inline constexpr std::string_view kQueueFull = "queue_full";  // poll skipped: the sink is full
inline constexpr std::string_view kForbidden = "forbidden";     // address outside allowed_networks
inline constexpr std::string_view kProducerError = "producer_error";  // one oximeter "err" item
// The producer was removed or the collector is stopping; never recorded.
inline constexpr std::string_view kCancelled = "cancelled";
}  // namespace reason

// "http_404", "http_500".
std::string http_failure_reason(int status);

struct CollectionSuccess {
  Timestamp time;  // wall clock, when the collection started
  uint64_t n_samples = 0;
  std::chrono::microseconds duration{0};  // request sent (connection included) → body decoded
};

struct CollectionFailure {
  Timestamp time;      // wall clock, when the collection (or the skipped poll) started
  std::string reason;  // one of reason::* or http_<status>
  std::string message;
};

struct ProducerCounts {
  uint64_t collections = 0;  // collections started (skipped polls are not collections)
  uint64_t successes = 0;    // collections whose samples were delivered
  uint64_t samples = 0;      // samples delivered
  // Failed collections by reason, plus in_progress (skipped polls) and producer_error (err items
  // inside successful oximeter responses, one per item).
  std::map<std::string, uint64_t, std::less<>> failures;
  uint64_t missed_polls = 0;  // grid slots that passed while the scheduler could not run at all
};

// A copy, consistent at one moment. Everything the API shows about one producer.
struct ProducerState {
  ProducerTarget target;
  std::optional<CollectionSuccess> last_success;
  std::optional<CollectionFailure> last_failure;
  ProducerCounts counts;
  bool in_progress = false;            // a collection is queued or running
  std::optional<Timestamp> next_poll;  // wall clock estimate of the next scheduled poll
};

}  // namespace tally::collector
