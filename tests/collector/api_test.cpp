#include "tally/collector/api.h"

#include <doctest/doctest.h>

#include <boost/json.hpp>

namespace tally::collector {
namespace {

namespace json = boost::json;

const Uuid kA = Uuid::parse("aaaaaaaa-0000-4000-8000-000000000001").value();
const Timestamp kT0 = parse_rfc3339("2026-11-22T10:00:00Z").value();

class FakeBackend final : public ApiBackend {
 public:
  FakeBackend() {
    ProducerView v;
    v.state.target = ProducerTarget{.id = kA,
                                    .address = "127.0.0.1:9100",
                                    .route = "/metrics",
                                    .format = config::ProducerFormat::kPrometheus,
                                    .interval = std::chrono::milliseconds(1500),
                                    .target_name = "node"};
    v.state.last_success = CollectionSuccess{kT0, 42, std::chrono::microseconds(1234)};
    v.state.last_failure = CollectionFailure{kT0 + std::chrono::seconds(1), "timeout", "slow"};
    v.state.counts.collections = 7;
    v.state.counts.successes = 6;
    v.state.counts.samples = 252;
    v.state.counts.failures = {{"timeout", 1}};
    v.pipeline.source = "registry";
    v.pipeline.rejected_schema = 3;
    v.pipeline.failures_schema = 2;
    v.pipeline.last_failure =
        CollectionFailure{kT0 + std::chrono::seconds(2), "schema", "conflict text"};
    v.pipeline.conflicts.push_back(SchemaConflict{
        kT0, kT0 + std::chrono::seconds(2),
        "schema of 'a:b' v1 differs from the stored one: field 'n' is u16 in the stored schema "
        "but string in the new one; datum type differs: f64 vs u64; stored: a:b v1 (n u16 "
        "metric) f64; new: a:b v1 (n string metric) u64",
        2});
    view = v;
  }

  Uuid collector_id() const override { return Uuid{}; }
  std::vector<ProducerView> producers() const override { return {view}; }
  std::optional<ProducerView> producer(const Uuid& id) const override {
    if (id == kA) return view;
    return std::nullopt;
  }
  Status collect_now(const Uuid& id) override {
    if (id != kA) return Status::error("no producer", "not_found");
    if (busy) return Status::error("already running", "in_progress");
    return Status();
  }
  HealthView health() override { return health_view; }
  std::string metrics_text() const override { return "tally_collector_producers 1\n"; }

  ProducerView view;
  bool busy = false;
  HealthView health_view;
};

HttpResponse request(ApiBackend& backend, std::string method, std::string path) {
  HttpRequest req;
  req.method = std::move(method);
  req.path = std::move(path);
  req.target = req.path;
  return handle_api_request(backend, req);
}

TEST_CASE("GET /producers lists each producer with its target, last results and counts") {
  FakeBackend backend;
  const HttpResponse r = request(backend, "GET", "/producers");
  REQUIRE(r.status == 200);
  const json::value v = json::parse(r.body);
  REQUIRE(v.at("items").as_array().size() == 1);
  const json::value& p = v.at("items").at(0);
  CHECK(p.at("id").as_string() == kA.to_string());
  CHECK(p.at("address").as_string() == "127.0.0.1:9100");
  CHECK(p.at("route").as_string() == "/metrics");
  CHECK(p.at("format").as_string() == "prometheus");
  CHECK(p.at("target_name").as_string() == "node");
  CHECK(p.at("interval_ms").as_int64() == 1500);
  CHECK(p.at("source").as_string() == "registry");
  CHECK(p.at("last_success").at("n_samples").as_int64() == 42);
  CHECK(p.at("last_success").at("duration_us").as_int64() == 1234);
  CHECK(p.at("last_success").at("time").as_string() == "2026-11-22T10:00:00.000000Z");
  // The pipeline's failure is later than the scheduler's, so it is the last one.
  CHECK(p.at("last_failure").at("reason").as_string() == "schema");
  CHECK(p.at("counts").at("failures").at("timeout").as_int64() == 1);
  CHECK(p.at("counts").at("failures").at("schema").as_int64() == 2);
  CHECK(p.at("counts").at("samples_rejected").at("schema").as_int64() == 3);
  CHECK_FALSE(p.as_object().contains("schema_conflicts"));
}

TEST_CASE("GET /producers/{id} spells out each schema conflict") {
  FakeBackend backend;
  const HttpResponse r = request(backend, "GET", "/producers/" + kA.to_string());
  REQUIRE(r.status == 200);
  const json::value c = json::parse(r.body).at("schema_conflicts").at(0);
  CHECK(c.at("timeseries_name").as_string() == "a:b");
  CHECK(c.at("difference").as_string() ==
        "field 'n' is u16 in the stored schema but string in the new one; datum type differs: "
        "f64 vs u64");
  CHECK(c.at("stored_schema").as_string() == "a:b v1 (n u16 metric) f64");
  CHECK(c.at("new_schema").as_string() == "a:b v1 (n string metric) u64");
  CHECK(c.at("collections").as_int64() == 2);
}

TEST_CASE("POST /producers/{id}/collect answers 202, 404 or 409") {
  FakeBackend backend;
  CHECK(request(backend, "POST", "/producers/" + kA.to_string() + "/collect").status == 202);
  backend.busy = true;
  CHECK(request(backend, "POST", "/producers/" + kA.to_string() + "/collect").status == 409);
  CHECK(request(backend, "POST", "/producers/" + Uuid::random().to_string() + "/collect").status ==
        404);
}

TEST_CASE("bad paths, ids and methods are answered as such") {
  FakeBackend backend;
  CHECK(request(backend, "GET", "/nothing").status == 404);
  CHECK(request(backend, "GET", "/producers/not-a-uuid").status == 400);
  CHECK(request(backend, "GET", "/producers/" + Uuid::random().to_string()).status == 404);
  CHECK(request(backend, "GET", "/producers/" + kA.to_string() + "/other").status == 404);
  const HttpResponse post = request(backend, "POST", "/producers");
  CHECK(post.status == 405);
  CHECK(post.header("Allow") == "GET");
  CHECK(request(backend, "GET", "/producers/" + kA.to_string() + "/collect").status == 405);
  CHECK(request(backend, "DELETE", "/metrics").status == 405);
}

TEST_CASE("GET /healthz is 200 while the database answers, 503 otherwise, and /metrics is text") {
  FakeBackend backend;
  backend.health_view.database_reachable = true;
  CHECK(request(backend, "GET", "/healthz").status == 200);
  backend.health_view.database_reachable = false;
  backend.health_view.database_error = "connection refused";
  const HttpResponse down = request(backend, "GET", "/healthz");
  CHECK(down.status == 503);
  CHECK(json::parse(down.body).at("status").as_string() == "degraded");
  const HttpResponse metrics = request(backend, "GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.content_type.find("version=0.0.4") != std::string::npos);
}

}  // namespace
}  // namespace tally::collector
