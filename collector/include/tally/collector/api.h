// The collector's own HTTP API (DESIGN.md §5 "Own API"), as a function from request to response
// over a small backend interface, so it is tested without a daemon. docs/collector.md shows
// every answer.
//
//   GET  /producers               {"collector_id", "items": [producer, …]}  sorted by id
//   GET  /producers/{id}          producer, plus "schema_conflicts"
//   POST /producers/{id}/collect  202 {"id", "status": "started"}; 404, 409 in_progress, 503
//   GET  /healthz                 200 / 503 {"status", "database", "sink": {…}}
//   GET  /metrics                 Prometheus text (collector_metrics.h)
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tally/collector/producer_target.h"
#include "tally/collector/sample_pipeline.h"
#include "tally/common/field.h"
#include "tally/common/http_message.h"
#include "tally/common/result.h"
#include "tally/common/time.h"

namespace tally::collector {

struct ProducerView {
  ProducerState state;
  ProducerPipelineState pipeline;
};

struct HealthView {
  bool database_reachable = false;
  std::string database_error;  // when not reachable
  bool sink_database_up = true;
  uint64_t queue_depth = 0;
  uint64_t spool_files = 0;
  uint64_t spool_bytes = 0;
  uint64_t pending_schema = 0;
  bool stopping = false;
};

// What the API reads. Implementations are thread-safe (the HTTP workers call them at once).
class ApiBackend {
 public:
  virtual ~ApiBackend() = default;
  virtual Uuid collector_id() const = 0;
  virtual std::vector<ProducerView> producers() const = 0;  // sorted by id
  virtual std::optional<ProducerView> producer(const Uuid& id) const = 0;
  // Scheduler::collect_now: codes "not_found", "in_progress", anything else is "stopping".
  virtual Status collect_now(const Uuid& id) = 0;
  virtual HealthView health() = 0;  // may block briefly (a database probe)
  virtual std::string metrics_text() const = 0;
};

// Routes one request. Unknown paths get 404, known paths with the wrong method 405 with Allow,
// a malformed id 400; bodies are JSON except /metrics.
HttpResponse handle_api_request(ApiBackend& backend, const HttpRequest& request);

// One producer as JSON (the item of GET /producers; `detail` adds the schema conflicts).
std::string producer_json(const ProducerView& view, bool detail);

// Merges a pipeline failure into the scheduler's view: counts by reason, and last_failure
// becomes the later of the two. Used for both JSON answers.
ProducerCounts merged_counts(const ProducerView& view);
std::optional<CollectionFailure> merged_last_failure(const ProducerView& view);

}  // namespace tally::collector
