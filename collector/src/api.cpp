#include "tally/collector/api.h"

#include <boost/json.hpp>
#include <string_view>

#include "tally/common/prometheus_text.h"

namespace tally::collector {
namespace {

namespace json = boost::json;

json::value time_json(const std::optional<Timestamp>& t) {
  if (!t) return nullptr;
  return json::string(format_rfc3339(*t));
}

json::object counts_json(const ProducerCounts& c, const ProducerPipelineState& p) {
  json::object failures;
  for (const auto& [reason, n] : c.failures) failures[reason] = n;
  return json::object{{"collections", c.collections},
                      {"successes", c.successes},
                      {"samples", c.samples},
                      {"failures", std::move(failures)},
                      {"missed_polls", c.missed_polls},
                      {"samples_rejected", json::object{{"schema", p.rejected_schema},
                                                        {"unstorable", p.rejected_unstorable},
                                                        {"timestamp", p.rejected_timestamp}}},
                      {"samples_deferred", p.deferred}};
}

// Splits the checker's "schema of 'a:b' v1 differs from the stored one: <difference>; stored:
// <schema>; new: <schema>" into its parts; the difference may itself contain "; ".
json::object conflict_json(const SchemaConflict& c) {
  json::object o{{"first_seen", format_rfc3339(c.first_seen)},
                 {"last_seen", format_rfc3339(c.last_seen)},
                 {"collections", c.collections},
                 {"message", c.message}};
  const std::string_view m = c.message;
  const std::size_t name_at = m.find('\'');
  const std::size_t name_end = name_at == m.npos ? m.npos : m.find('\'', name_at + 1);
  const std::size_t diff_at = m.find(": ");
  const std::size_t stored_at = m.rfind("; stored: ");
  const std::size_t new_at = m.rfind("; new: ");
  if (name_end != m.npos && diff_at != m.npos && stored_at != m.npos && new_at != m.npos &&
      diff_at < stored_at && stored_at < new_at) {
    o["timeseries_name"] = m.substr(name_at + 1, name_end - name_at - 1);
    o["difference"] = m.substr(diff_at + 2, stored_at - diff_at - 2);
    o["stored_schema"] = m.substr(stored_at + 10, new_at - stored_at - 10);
    o["new_schema"] = m.substr(new_at + 7);
  }
  return o;
}

json::object producer_object(const ProducerView& view, bool detail) {
  const ProducerState& st = view.state;
  const ProducerTarget& t = st.target;
  json::object o{{"id", t.id.to_string()},
                 {"address", t.address},
                 {"route", t.route},
                 {"format", config::to_string(t.format)},
                 {"interval", format_duration(t.interval)},
                 {"interval_ms", t.interval.count() / 1000},
                 {"source", view.pipeline.source}};
  if (t.format == config::ProducerFormat::kPrometheus) o["target_name"] = t.target_name;
  o["in_progress"] = st.in_progress;
  o["next_poll"] = time_json(st.next_poll);
  if (st.last_success) {
    o["last_success"] = json::object{{"time", format_rfc3339(st.last_success->time)},
                                     {"n_samples", st.last_success->n_samples},
                                     {"duration", format_duration(st.last_success->duration)},
                                     {"duration_us", st.last_success->duration.count()}};
  } else {
    o["last_success"] = nullptr;
  }
  if (auto f = merged_last_failure(view)) {
    o["last_failure"] = json::object{
        {"time", format_rfc3339(f->time)}, {"reason", f->reason}, {"message", f->message}};
  } else {
    o["last_failure"] = nullptr;
  }
  o["counts"] = counts_json(merged_counts(view), view.pipeline);
  if (detail) {
    json::array conflicts;
    for (const SchemaConflict& c : view.pipeline.conflicts) conflicts.push_back(conflict_json(c));
    o["schema_conflicts"] = std::move(conflicts);
  }
  return o;
}

HttpResponse method_not_allowed(std::string_view allow, const HttpRequest& req) {
  HttpResponse r =
      HttpResponse::error(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

HttpResponse health_response(ApiBackend& backend) {
  const HealthView h = backend.health();
  const bool ok = h.database_reachable && !h.stopping;
  json::object o{{"status", h.stopping ? "stopping" : (ok ? "ok" : "degraded")},
                 {"collector_id", backend.collector_id().to_string()},
                 {"database", h.database_reachable ? "reachable" : "unreachable"}};
  if (!h.database_reachable) o["database_error"] = h.database_error;
  o["sink"] = json::object{{"database_up", h.sink_database_up},
                           {"queue_depth", h.queue_depth},
                           {"spool_files", h.spool_files},
                           {"spool_bytes", h.spool_bytes},
                           {"pending_schema", h.pending_schema}};
  return HttpResponse::json(ok ? 200 : 503, json::serialize(o) + "\n");
}

HttpResponse producers_route(ApiBackend& backend, const HttpRequest& req) {
  // "/producers", "/producers/{id}" or "/producers/{id}/collect".
  std::string_view rest = std::string_view(req.path).substr(std::string_view("/producers").size());
  if (rest.empty() || rest == "/") {
    if (req.method != "GET") return method_not_allowed("GET", req);
    json::array items;
    for (const ProducerView& v : backend.producers()) items.push_back(producer_object(v, false));
    json::object o{{"collector_id", backend.collector_id().to_string()},
                   {"items", std::move(items)}};
    return HttpResponse::json(200, json::serialize(o) + "\n");
  }
  rest.remove_prefix(1);
  const std::size_t slash = rest.find('/');
  const std::string_view id_text = rest.substr(0, slash);
  const std::string_view action = slash == rest.npos ? "" : rest.substr(slash);
  if (!action.empty() && action != "/collect") {
    return HttpResponse::error(404, "not_found", "no route for " + req.path);
  }
  auto id = Uuid::parse(id_text);
  if (!id.ok()) {
    return HttpResponse::error(400, "bad_request",
                               "producer id '" + std::string(id_text) + "': " + id.error());
  }
  if (action.empty()) {
    if (req.method != "GET") return method_not_allowed("GET", req);
    auto view = backend.producer(*id);
    if (!view) {
      return HttpResponse::error(404, "not_found", "no producer " + id->to_string());
    }
    return HttpResponse::json(200, json::serialize(producer_object(*view, true)) + "\n");
  }
  if (req.method != "POST") return method_not_allowed("POST", req);
  const Status s = backend.collect_now(*id);
  if (s.ok()) {
    json::object o{{"id", id->to_string()}, {"status", "started"}};
    return HttpResponse::json(202, json::serialize(o) + "\n");
  }
  if (s.code() == "not_found") return HttpResponse::error(404, "not_found", s.message());
  if (s.code() == "in_progress") return HttpResponse::error(409, "in_progress", s.message());
  return HttpResponse::error(503, "stopping", s.message());
}

}  // namespace

ProducerCounts merged_counts(const ProducerView& view) {
  ProducerCounts c = view.state.counts;
  const ProducerPipelineState& p = view.pipeline;
  if (p.failures_schema > 0) c.failures["schema"] += p.failures_schema;
  if (p.failures_unstorable > 0) c.failures["unstorable"] += p.failures_unstorable;
  if (p.failures_timestamp > 0) c.failures["timestamp"] += p.failures_timestamp;
  if (p.failures_schema_unavailable > 0) {
    c.failures["schema_unavailable"] += p.failures_schema_unavailable;
  }
  return c;
}

std::optional<CollectionFailure> merged_last_failure(const ProducerView& view) {
  const auto& a = view.state.last_failure;
  const auto& b = view.pipeline.last_failure;
  if (!a) return b;
  if (!b) return a;
  return b->time > a->time ? b : a;
}

std::string producer_json(const ProducerView& view, bool detail) {
  return json::serialize(producer_object(view, detail));
}

HttpResponse handle_api_request(ApiBackend& backend, const HttpRequest& req) {
  const std::string_view path = req.path;
  if (path == "/producers" || path.starts_with("/producers/")) {
    return producers_route(backend, req);
  }
  if (path == "/healthz") {
    if (req.method != "GET") return method_not_allowed("GET", req);
    return health_response(backend);
  }
  if (path == "/metrics") {
    if (req.method != "GET") return method_not_allowed("GET", req);
    HttpResponse r = HttpResponse::text(200, backend.metrics_text());
    r.content_type = std::string(prometheus::kContentType);
    return r;
  }
  return HttpResponse::error(404, "not_found", "no route for " + req.path);
}

}  // namespace tally::collector
