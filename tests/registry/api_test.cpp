// The tally-registry binary over real HTTP, on a database of its own per test.
#include <doctest/doctest.h>

#include <atomic>
#include <boost/json.hpp>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "registry_process.h"
#include "support/test_db.h"
#include "tally/common/field.h"
#include "tally/common/http_client.h"
#include "tally/common/sha256.h"

using namespace tally;
using namespace tally::test;
namespace json = boost::json;

namespace {

// Short enough to watch collectors die within a test, long enough for heartbeats every 200 ms
// on a loaded machine.
constexpr const char* kFastGc = "collector_ttl: 2s\ngc_interval: 100ms\n";

json::value parse(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  REQUIRE_MESSAGE(!ec, "not JSON: " << body);
  return v;
}

std::string str(const json::value& v, std::string_view key) {
  const json::value* field = v.as_object().if_contains(key);
  if (field == nullptr || field->is_null()) return "";
  if (field->is_string()) return std::string(field->as_string());
  return json::serialize(*field);
}

std::string producer_body(const std::string& id, const std::string& extra = "") {
  return "{\"id\":\"" + id + "\",\"address\":\"127.0.0.1:9100\"" + extra + "}";
}

Uuid collector_id(int n) {
  Uuid u;
  u.bytes[0] = 0xcc;
  u.bytes[15] = static_cast<uint8_t>(n);
  return u;
}

HttpResponse heartbeat(const std::string& url, const Uuid& id, const std::string& token = "") {
  return call("POST", url + "/v1/collectors",
              "{\"id\":\"" + id.to_string() + "\",\"address\":\"127.0.0.1:12222\"}", token);
}

HttpResponse register_producer(const std::string& url, const std::string& id,
                               const std::string& token = "") {
  return call("POST", url + "/v1/producers", producer_body(id), token);
}

// collector id → n_producers, for the live collectors.
std::map<std::string, int64_t> live_loads(const std::string& url) {
  HttpResponse r = call("GET", url + "/v1/collectors");
  REQUIRE(r.status == 200);
  std::map<std::string, int64_t> out;
  const json::value page = parse(r.body);
  for (const json::value& c : page.at("items").as_array()) {
    if (c.at("alive").as_bool()) out[str(c, "id")] = c.at("n_producers").as_int64();
  }
  return out;
}

// Heartbeats for a set of collectors every 200 ms, on a thread of its own, until silenced.
class Heartbeats {
 public:
  Heartbeats(std::string url, std::vector<Uuid> ids) : url_(std::move(url)) {
    for (const Uuid& id : ids) {
      heartbeat(url_, id);  // live before the constructor returns
      live_.insert(id);
    }
    thread_ = std::thread([this] {
      while (!stop_) {
        std::vector<Uuid> ids;
        {
          std::lock_guard lock(mu_);
          ids.assign(live_.begin(), live_.end());
        }
        for (const Uuid& id : ids) {
          (void)http_request({}, "POST", url_ + "/v1/collectors",
                             "{\"id\":\"" + id.to_string() + "\",\"address\":\"127.0.0.1:12222\"}");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
  }
  ~Heartbeats() {
    stop_ = true;
    thread_.join();
  }
  void silence(const Uuid& id) {
    std::lock_guard lock(mu_);
    live_.erase(id);
  }

 private:
  std::string url_;
  std::mutex mu_;
  std::set<Uuid> live_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("a new producer goes to the least-loaded live collector") {
  TestDatabase db;
  RegistryProcess registry(db.url());
  const std::string url = registry.url();
  const Uuid a = collector_id(1), b = collector_id(2), c = collector_id(3);
  for (const Uuid& id : {a, b}) REQUIRE(heartbeat(url, id).status == 200);
  for (int i = 0; i < 4; ++i)
    REQUIRE(register_producer(url, Uuid::random().to_string()).status == 201);
  CHECK(live_loads(url) == std::map<std::string, int64_t>{{a.to_string(), 2}, {b.to_string(), 2}});

  HttpResponse hb = heartbeat(url, c);
  REQUIRE(hb.status == 200);
  CHECK(parse(hb.body) == parse("{\"id\":\"" + c.to_string() +
                                "\",\"address\":\"127.0.0.1:12222\",\"n_producers\":0}"));
  const std::string id = Uuid::random().to_string();
  HttpResponse r = register_producer(url, id);
  REQUIRE(r.status == 201);
  const json::value answer = parse(r.body);
  CHECK(str(answer, "id") == id);
  CHECK(str(answer, "collector_id") == c.to_string());
  CHECK(str(answer, "collector_address") == "127.0.0.1:12222");
  CHECK(answer.at("lease_ms").as_int64() == 600000);
  // C is still the least loaded; then all are equal and the tie goes to the smaller id.
  for (const Uuid& expected : {c, a}) {
    HttpResponse next = register_producer(url, Uuid::random().to_string());
    REQUIRE(next.status == 201);
    CHECK(str(parse(next.body), "collector_id") == expected.to_string());
  }
  CHECK(live_loads(url) ==
        std::map<std::string, int64_t>{{a.to_string(), 3}, {b.to_string(), 2}, {c.to_string(), 2}});
}

TEST_CASE("re-registering renews the lease and keeps the assignment") {
  TestDatabase db;
  RegistryProcess registry(db.url());
  const std::string url = registry.url();
  REQUIRE(heartbeat(url, collector_id(1)).status == 200);
  const std::string id = Uuid::random().to_string();
  REQUIRE(register_producer(url, id).status == 201);
  const json::value before = parse(call("GET", url + "/v1/producers/" + id).body);

  REQUIRE(heartbeat(url, collector_id(2)).status == 200);  // emptier, but not a reason to move
  HttpResponse again =
      call("POST", url + "/v1/producers", producer_body(id, ",\"interval_ms\":5000"));
  REQUIRE(again.status == 201);
  CHECK(str(parse(again.body), "collector_id") == collector_id(1).to_string());
  const json::value after = parse(call("GET", url + "/v1/producers/" + id).body);
  CHECK(str(after, "collector_id") == collector_id(1).to_string());
  CHECK(str(after, "registered_at") == str(before, "registered_at"));
  CHECK(str(after, "lease_expires_at") > str(before, "lease_expires_at"));
  CHECK(after.at("interval_ms").as_int64() == 5000);
}

TEST_CASE("a collector that stops heartbeating loses its producers to the others, evenly") {
  TestDatabase db;
  RegistryProcess registry(db.url(), kFastGc);
  const std::string url = registry.url();
  const Uuid a = collector_id(1), b = collector_id(2), c = collector_id(3);
  Heartbeats beats(url, {a, b, c});
  for (int i = 0; i < 30; ++i)
    REQUIRE(register_producer(url, Uuid::random().to_string()).status == 201);
  CHECK(live_loads(url) == std::map<std::string, int64_t>{
                               {a.to_string(), 10}, {b.to_string(), 10}, {c.to_string(), 10}});

  beats.silence(c);
  const std::map<std::string, int64_t> expected = {{a.to_string(), 15}, {b.to_string(), 15}};
  CHECK(eventually([&] { return live_loads(url) == expected; }));
  HttpResponse dead = call("GET", url + "/v1/collectors/" + c.to_string() + "/producers");
  REQUIRE(dead.status == 200);
  CHECK(parse(dead.body).at("items").as_array().empty());
  const std::string metrics = call("GET", url + "/metrics").body;
  CHECK(metrics.find("tally_registry_reassignments_total 10\n") != std::string::npos);
  CHECK(metrics.find("tally_registry_live_collectors 2\n") != std::string::npos);
}

TEST_CASE("gc wakes when a collector's ttl runs out, not only every gc_interval") {
  TestDatabase db;
  // No pass would come for an hour: the producers can only move if the GC wakes at the expiry.
  RegistryProcess registry(db.url(), "collector_ttl: 2s\ngc_interval: 1h\n");
  const std::string url = registry.url();
  const Uuid a = collector_id(1), b = collector_id(2), c = collector_id(3);
  Heartbeats beats(url, {a, b, c});
  for (int i = 0; i < 30; ++i)
    REQUIRE(register_producer(url, Uuid::random().to_string()).status == 201);

  beats.silence(c);
  CHECK(eventually([&] {
    return live_loads(url) ==
           std::map<std::string, int64_t>{{a.to_string(), 15}, {b.to_string(), 15}};
  }));
  // By now the registry judges (its first collector_ttl is over), so this one can only be moved
  // by the pass due at b's expiry.
  beats.silence(b);
  CHECK(eventually([&] {
    return live_loads(url) == std::map<std::string, int64_t>{{a.to_string(), 30}};
  }));
  CHECK(call("GET", url + "/metrics").body.find("tally_registry_reassignments_total 25\n") !=
        std::string::npos);
  const std::string log = registry.log();
  CHECK(log.find("collector_dead id=" + c.to_string()) != std::string::npos);
  CHECK(log.find("collector_dead id=" + b.to_string()) != std::string::npos);
}

TEST_CASE("with no live collector registration answers 503, then the producer is assigned") {
  TestDatabase db;
  RegistryProcess registry(db.url(), kFastGc);
  const std::string url = registry.url();
  const std::string id = Uuid::random().to_string();
  HttpResponse r = register_producer(url, id);
  CHECK(r.status == 503);
  const json::value error = parse(r.body);
  CHECK(str(error, "error") == "no_live_collector");
  CHECK(str(error, "message").find(id + " is stored") != std::string::npos);
  HttpResponse stored = call("GET", url + "/v1/producers/" + id);
  REQUIRE(stored.status == 200);
  CHECK(parse(stored.body).at("collector_id").is_null());

  REQUIRE(heartbeat(url, collector_id(7)).status == 200);
  CHECK(eventually([&] {
    return str(parse(call("GET", url + "/v1/producers/" + id).body), "collector_id") ==
           collector_id(7).to_string();
  }));
}

TEST_CASE("two registries on one database keep the collectors balanced under concurrency") {
  TestDatabase db;
  RegistryProcess one(db.url());
  RegistryProcess two(db.url());
  const std::vector<std::string> urls = {one.url(), two.url()};
  for (int i = 1; i <= 3; ++i) REQUIRE(heartbeat(urls[i % 2], collector_id(i)).status == 200);

  constexpr int kThreads = 8;
  constexpr int kPerThread = 30;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = http_request({.timeout = std::chrono::seconds(30)}, "POST",
                              urls[(t + i) % 2] + "/v1/producers",
                              producer_body(Uuid::random().to_string()));
        if (!r.ok() || r->status != 201) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  for (const std::string& url : urls) {
    const auto loads = live_loads(url);
    REQUIRE(loads.size() == 3);
    int64_t total = 0, low = INT64_MAX, high = 0;
    for (const auto& [id, n] : loads) {
      total += n;
      low = std::min(low, n);
      high = std::max(high, n);
    }
    CHECK(total == kThreads * kPerThread);
    CHECK(high - low <= 1);
  }
}

TEST_CASE("a producer whose lease runs out is removed") {
  TestDatabase db;
  RegistryProcess registry(db.url(), std::string(kFastGc) + "producer_lease: 1s\n");
  const std::string url = registry.url();
  REQUIRE(heartbeat(url, collector_id(1)).status == 200);
  const std::string id = Uuid::random().to_string();
  HttpResponse r = register_producer(url, id);
  REQUIRE(r.status == 201);
  CHECK(parse(r.body).at("lease_ms").as_int64() == 1000);
  CHECK(eventually([&] { return call("GET", url + "/v1/producers/" + id).status == 404; }));
  CHECK(call("GET", url + "/metrics").body.find("tally_registry_expired_producers_total 1\n") !=
        std::string::npos);
  CHECK(registry.log().find("producer_expired id=" + id) != std::string::npos);
}

TEST_CASE("every role is allowed and refused where it should be") {
  TestDatabase db;
  TempDir dir;
  const std::string token_file = dir.write("collector.token", "collector-secret\n");
  RegistryProcess registry(db.url(),
                           "auth:\n  tokens:\n"
                           "    - {name: app, role: producer, sha256: " +
                               to_hex(sha256("producer-secret")) +
                               "}\n"
                               "    - {name: coll, role: collector, token_file: " +
                               token_file +
                               "}\n"
                               "    - {name: ro, role: reader, sha256: " +
                               to_hex(sha256("reader-secret")) +
                               "}\n"
                               "    - {name: root, role: admin, sha256: " +
                               to_hex(sha256("admin-secret")) + "}\n");
  const std::string url = registry.url();
  REQUIRE(heartbeat(url, collector_id(1), "collector-secret").status == 200);
  const std::string existing = Uuid::random().to_string();
  REQUIRE(register_producer(url, existing, "admin-secret").status == 201);
  const std::string cid = collector_id(1).to_string();

  struct Case {
    std::string method, path, body;
    std::map<std::string, int> status;  // token → expected status
  };
  const std::string hb = "{\"id\":\"" + cid + "\",\"address\":\"127.0.0.1:12222\"}";
  const std::vector<Case> cases = {
      {"POST",
       "/v1/producers",
       "",
       {{"producer-secret", 201},
        {"collector-secret", 403},
        {"reader-secret", 403},
        {"admin-secret", 201}}},
      {"GET",
       "/v1/producers",
       "",
       {{"producer-secret", 403},
        {"collector-secret", 403},
        {"reader-secret", 200},
        {"admin-secret", 200}}},
      {"GET",
       "/v1/producers/" + existing,
       "",
       {{"producer-secret", 403},
        {"collector-secret", 403},
        {"reader-secret", 200},
        {"admin-secret", 200}}},
      {"POST",
       "/v1/collectors",
       hb,
       {{"producer-secret", 403},
        {"collector-secret", 200},
        {"reader-secret", 403},
        {"admin-secret", 200}}},
      {"GET",
       "/v1/collectors",
       "",
       {{"producer-secret", 403},
        {"collector-secret", 403},
        {"reader-secret", 200},
        {"admin-secret", 200}}},
      {"GET",
       "/v1/collectors/" + cid + "/producers",
       "",
       {{"producer-secret", 403},
        {"collector-secret", 200},
        {"reader-secret", 200},
        {"admin-secret", 200}}},
      {"DELETE",
       "/v1/producers/" + Uuid::random().to_string(),
       "",
       {{"producer-secret", 404},
        {"collector-secret", 403},
        {"reader-secret", 403},
        {"admin-secret", 404}}},
  };
  for (const Case& c : cases) {
    for (const auto& [token, expected] : c.status) {
      CAPTURE(c.method + " " + c.path + " as " + token);
      const std::string body =
          c.body.empty() && c.method == "POST" ? producer_body(Uuid::random().to_string()) : c.body;
      HttpResponse r = call(c.method, url + c.path, body, token);
      CHECK(r.status == expected);
      if (expected == 403) CHECK(str(parse(r.body), "error") == "forbidden");
    }
    for (const std::string& bad : {std::string(), std::string("wrong-secret")}) {
      CAPTURE(c.method + " " + c.path + " with token '" + bad + "'");
      HttpResponse r = call(c.method, url + c.path, c.body, bad);
      CHECK(r.status == 401);
      CHECK(str(parse(r.body), "error") == "unauthorized");
      CHECK(r.header("WWW-Authenticate").has_value());
      if (!bad.empty()) CHECK(r.body.find(bad) == std::string::npos);
    }
  }
  // Health and metrics stay open to probes and scrapers.
  CHECK(call("GET", url + "/healthz").status == 200);
  CHECK(call("GET", url + "/metrics").status == 200);
  CHECK(registry.log().find("secret") == std::string::npos);
}

TEST_CASE("a producer token changes only the producers it registered") {
  TestDatabase db;
  RegistryProcess registry(db.url(),
                           "auth:\n  tokens:\n"
                           "    - {name: app, role: producer, sha256: " +
                               to_hex(sha256("one")) +
                               "}\n"
                               "    - {name: other, role: producer, sha256: " +
                               to_hex(sha256("two")) +
                               "}\n"
                               "    - {name: root, role: admin, sha256: " +
                               to_hex(sha256("admin")) + "}\n");
  const std::string url = registry.url();
  REQUIRE(heartbeat(url, collector_id(1), "admin").status == 200);
  const std::string id = Uuid::random().to_string();
  REQUIRE(register_producer(url, id, "one").status == 201);
  CHECK(register_producer(url, id, "one").status == 201);  // its own renewal

  HttpResponse conflict = register_producer(url, id, "two");
  CHECK(conflict.status == 409);
  CHECK(str(parse(conflict.body), "error") == "conflict");
  HttpResponse forbidden = call("DELETE", url + "/v1/producers/" + id, "", "two");
  CHECK(forbidden.status == 403);
  CHECK(str(parse(call("GET", url + "/v1/producers/" + id, "", "admin").body), "registered_by") ==
        "app");
  CHECK(call("DELETE", url + "/v1/producers/" + id, "", "one").status == 204);
  CHECK(call("GET", url + "/v1/producers/" + id, "", "admin").status == 404);
}

TEST_CASE("bad requests get their status and a message that says what is wrong") {
  TestDatabase db;
  RegistryProcess registry(db.url(), "allowed_networks: [127.0.0.0/8]\n");
  const std::string url = registry.url();
  REQUIRE(heartbeat(url, collector_id(1)).status == 200);
  const std::string id = Uuid::random().to_string();
  struct Case {
    std::string method, path, body;
    int status;
    std::string error, message;
  };
  const std::vector<Case> cases = {
      {"POST", "/v1/producers", "{\"id\":\"nope\",\"address\":\"127.0.0.1:9100\"}", 400,
       "bad_request", "id: 'nope' is not a UUID"},
      {"POST", "/v1/producers", "{\"id\":\"" + id + "\",\"address\":\"127.0.0.1\"}", 400,
       "bad_request", "address: '127.0.0.1' is not host:port"},
      {"POST", "/v1/producers", "{\"id\":\"" + id + "\",\"address\":\"no-such-host.invalid:80\"}",
       400, "bad_request", "address: cannot resolve 'no-such-host.invalid'"},
      {"POST", "/v1/producers", "{\"id\":\"" + id + "\",\"address\":\"10.1.2.3:80\"}", 400,
       "bad_request", "address: 10.1.2.3 is outside allowed_networks (127.0.0.0/8)"},
      {"POST", "/v1/producers", producer_body(id, ",\"format\":\"statsd\""), 400, "bad_request",
       "format: must be oximeter or prometheus, got 'statsd'"},
      {"POST", "/v1/producers", producer_body(id, ",\"interval_ms\":0"), 400, "bad_request",
       "interval_ms: must be between 100 and 86400000, got 0"},
      {"POST", "/v1/producers", producer_body(id, ",\"route\":\"metrics\""), 400, "bad_request",
       "route: must start with '/'"},
      {"POST", "/v1/producers", "{\"id\": \"" + id + "\",", 400, "bad_request", "malformed JSON"},
      {"POST", "/v1/producers",
       producer_body(id, ",\"pad\":\"" + std::string(70 * 1024, 'x') + "\""), 413, "too_large",
       "request body over 65536 bytes"},
      {"POST", "/v1/collectors", "{\"id\":\"" + id + "\",\"address\":\"nowhere\"}", 400,
       "bad_request", "address: 'nowhere' is not host:port"},
      {"GET", "/v1/producers/not-a-uuid", "", 400, "bad_request",
       "producer id: 'not-a-uuid' is not a UUID"},
      {"GET", "/v1/producers/" + id, "", 404, "not_found", "no producer " + id},
      {"DELETE", "/v1/producers/" + id, "", 404, "not_found", "no producer " + id},
      {"GET", "/v1/producers?limit=0", "", 400, "bad_request",
       "limit: expected a whole number from 1 to 1000"},
      {"GET", "/v1/producers?limit=ten", "", 400, "bad_request", "limit: expected a whole number"},
      {"GET", "/v1/producers?after=xyz", "", 400, "bad_request", "after: 'xyz' is not a UUID"},
      {"GET", "/v1/producers?collector_id=xyz", "", 400, "bad_request",
       "collector_id: 'xyz' is not a UUID"},
      {"GET", "/v1/collectors/" + id + "/producers", "", 404, "not_found", "no collector " + id},
      {"GET", "/v2/producers", "", 404, "not_found", "no route for GET /v2/producers"},
      {"PUT", "/v1/producers", "", 405, "method_not_allowed",
       "PUT is not allowed on /v1/producers"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.method + " " + c.path + " " + c.body.substr(0, 120));
    HttpResponse r = call(c.method, url + c.path, c.body);
    CHECK(r.status == c.status);
    const json::value error = parse(r.body);
    CHECK(str(error, "error") == c.error);
    CHECK_MESSAGE(str(error, "message").find(c.message) != std::string::npos,
                  str(error, "message"));
  }
  // Nothing bad was stored.
  CHECK(parse(call("GET", url + "/v1/producers").body).at("items").as_array().empty());
}

TEST_CASE("lists are sorted by id and paginated with after and next") {
  TestDatabase db;
  RegistryProcess registry(db.url());
  const std::string url = registry.url();
  REQUIRE(heartbeat(url, collector_id(1)).status == 200);
  std::set<std::string> ids;
  while (ids.size() < 25) ids.insert(Uuid::random().to_string());
  for (const std::string& id : ids) REQUIRE(register_producer(url, id).status == 201);

  const std::string assigned = "/v1/collectors/" + collector_id(1).to_string() + "/producers";
  for (const std::string& base : {std::string("/v1/producers?limit=10"), assigned + "?limit=10"}) {
    CAPTURE(base);
    std::vector<std::string> seen;
    std::string after;
    int pages = 0;
    while (true) {
      HttpResponse r = call("GET", url + base + (after.empty() ? "" : "&after=" + after));
      REQUIRE(r.status == 200);
      const json::value page = parse(r.body);
      ++pages;
      for (const json::value& p : page.at("items").as_array()) seen.push_back(str(p, "id"));
      if (page.at("next").is_null()) break;
      after = str(page, "next");
      CHECK(after == seen.back());
    }
    CHECK(pages == 3);
    CHECK(seen == std::vector<std::string>(ids.begin(), ids.end()));
  }
  const json::value all = parse(call("GET", url + "/v1/producers?limit=5000").body);
  CHECK(all.at("items").as_array().size() == ids.size());
  CHECK(all.at("next").is_null());
}

TEST_CASE("healthz and metrics report the database and the registry's work") {
  TestDatabase db;
  RegistryProcess registry(db.url());
  const std::string url = registry.url();
  HttpResponse health = call("GET", url + "/healthz");
  CHECK(health.status == 200);
  CHECK(parse(health.body) == parse("{\"status\":\"ok\",\"database\":\"ok\"}"));
  REQUIRE(heartbeat(url, collector_id(1)).status == 200);
  REQUIRE(register_producer(url, Uuid::random().to_string()).status == 201);

  HttpResponse metrics = call("GET", url + "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.content_type.find("text/plain; version=0.0.4") == 0);
  for (const char* line : {
           "tally_registry_requests_total{route=\"/v1/producers\",status=\"201\"} 1\n",
           "tally_registry_requests_total{route=\"/healthz\",status=\"200\"} 1\n",
           "tally_registry_request_duration_seconds_count{route=\"/v1/producers\"} 1\n",
           "tally_registry_request_duration_seconds_bucket{route=\"/v1/producers\",le=\"+Inf\"} "
           "1\n",
           "tally_registry_producers 1\n",
           "tally_registry_live_collectors 1\n",
           "tally_registry_reassignments_total 0\n",
           "tally_registry_database_up 1\n",
       }) {
    CHECK_MESSAGE(metrics.body.find(line) != std::string::npos, line);
  }

  // The database goes away: the registry says so instead of hanging or crashing.
  auto admin = pg::Connection::open(server_url());
  REQUIRE(admin.ok());
  REQUIRE((*admin)->exec("DROP DATABASE " + db.name() + " WITH (FORCE)").ok());
  HttpResponse down = call("GET", url + "/healthz");
  CHECK(down.status == 503);
  CHECK(str(parse(down.body), "error") == "database_unavailable");
  HttpResponse reg = register_producer(url, Uuid::random().to_string());
  CHECK(reg.status == 503);
  CHECK(str(parse(reg.body), "error") == "database_unavailable");
  CHECK(call("GET", url + "/metrics").body.find("tally_registry_database_up 0\n") !=
        std::string::npos);
}

TEST_CASE("the registry stops cleanly on SIGTERM and logs its address") {
  TestDatabase db;
  RegistryProcess registry(db.url());
  CHECK(registry.stop() == 0);
  const std::string log = registry.log();
  CHECK(log.find("listening address=127.0.0.1:" + std::to_string(registry.port())) !=
        std::string::npos);
  CHECK(log.find("registry_stopped") != std::string::npos);
}

TEST_CASE("command line: help, version, usage and config errors") {
  CommandResult help = run_command({TALLY_REGISTRY_PATH, "--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("usage: tally-registry --config FILE") != std::string::npos);
  CommandResult version = run_command({TALLY_REGISTRY_PATH, "--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.out.find("tally-registry ") == 0);
  CommandResult none = run_command({TALLY_REGISTRY_PATH});
  CHECK(none.exit_code == 2);
  CHECK(none.err.find("--config FILE is required") != std::string::npos);

  TempDir dir;
  const std::string bad = dir.write(
      "bad.yaml", "database: {url: \"postgresql://x@127.0.0.1/x\"}\ncollector_ttl: soon\n");
  CommandResult config = run_command({TALLY_REGISTRY_PATH, "--config", bad});
  CHECK(config.exit_code == 2);
  CHECK_MESSAGE(config.err.find(bad + ":2: collector_ttl") != std::string::npos, config.err);

  const std::string open = dir.write(
      "open.yaml", "listen: 0.0.0.0:0\ndatabase: {url: \"postgresql://x@127.0.0.1/x\"}\n");
  CommandResult refused = run_command({TALLY_REGISTRY_PATH, "--config", open});
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("auth: 'none' is allowed only on a loopback listen address") !=
        std::string::npos);
}
