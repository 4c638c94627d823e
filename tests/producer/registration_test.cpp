// The registration client: its schedule as a pure function, then the client against a fake
// registry on port 0 (tiny leases and backoffs; conditions are polled, never slept for).
#include "tally/producer/registration.h"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>

#include "renewal_schedule.h"
#include "support/test_db.h"
#include "tally/common/http_server.h"

namespace tally {
namespace {

using detail::RenewalSchedule;
using std::chrono::milliseconds;

TEST_CASE("schedule: renew at a quarter of the lease") {
  RenewalSchedule schedule({.jitter = 0});
  CHECK(schedule.after_success(milliseconds(600'000)) == milliseconds(150'000));
  CHECK(schedule.after_success(milliseconds(40)) == milliseconds(10));
  CHECK(schedule.after_success(milliseconds(2)) == milliseconds(1));  // never zero
}

TEST_CASE("schedule: failures back off exponentially up to the cap, success resets") {
  RenewalSchedule schedule(
      {.initial_backoff = milliseconds(500), .max_backoff = milliseconds(5000), .jitter = 0});
  const milliseconds expected[] = {milliseconds(500),  milliseconds(1000), milliseconds(2000),
                                   milliseconds(4000), milliseconds(5000), milliseconds(5000)};
  for (const milliseconds e : expected) CHECK(schedule.after_failure() == e);
  CHECK(schedule.streak() == 6);
  for (int i = 0; i < 100; ++i) CHECK(schedule.after_failure() == milliseconds(5000));
  schedule.after_success(milliseconds(1000));
  CHECK(schedule.streak() == 0);
  CHECK(schedule.after_failure() == milliseconds(500));
}

TEST_CASE("schedule: 503 (pending) follows the same backoff") {
  RenewalSchedule schedule(
      {.initial_backoff = milliseconds(100), .max_backoff = milliseconds(1000), .jitter = 0});
  CHECK(schedule.after_pending() == milliseconds(100));
  CHECK(schedule.after_pending() == milliseconds(200));
  CHECK(schedule.after_failure() == milliseconds(400));
}

TEST_CASE("schedule: jitter stays within its bounds and under the cap") {
  RenewalSchedule schedule(
      {.initial_backoff = milliseconds(1000), .max_backoff = milliseconds(4000), .jitter = 0.2},
      /*seed=*/42);
  const milliseconds first = schedule.after_failure();
  CHECK(first >= milliseconds(800));
  CHECK(first <= milliseconds(1200));
  const milliseconds second = schedule.after_failure();
  CHECK(second >= milliseconds(1600));
  CHECK(second <= milliseconds(2400));
  bool varied = false;
  for (int i = 0; i < 200; ++i) {
    const milliseconds d = schedule.after_failure();
    CHECK(d >= milliseconds(3200));
    CHECK(d <= milliseconds(4000));
    varied = varied || d != milliseconds(4000);
  }
  CHECK(varied);
}

// A registry speaking the §4 API, with an outcome the test controls.
class FakeRegistry {
 public:
  enum class Mode { kAssign, kNoCollector, kDatabaseDown, kFail };

  explicit FakeRegistry(uint16_t port = 0)
      : server_({.listen = "127.0.0.1:" + std::to_string(port)},
                [this](const HttpRequest& r) { return handle(r); }) {
    REQUIRE(server_.start().ok());
  }

  std::string url() const { return "http://" + server_.address(); }
  void set_mode(Mode mode) { mode_ = mode; }
  int posts() const { return posts_; }
  std::vector<HttpRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  HttpResponse handle(const HttpRequest& r) {
    {
      std::lock_guard lock(mu_);
      requests_.push_back(r);
    }
    if (r.method == "DELETE") return HttpResponse{204, "application/json", {}, ""};
    ++posts_;
    switch (mode_.load()) {
      case Mode::kAssign:
        return HttpResponse::json(201, R"({"id":"x","collector_id":"c1",)"
                                       R"("collector_address":"127.0.0.1:12222","lease_ms":40})");
      case Mode::kNoCollector:
        return HttpResponse::error(503, "no_live_collector", "no collector is live");
      case Mode::kDatabaseDown:
        return HttpResponse::error(503, "database_unavailable", "cannot reach the database");
      case Mode::kFail:
        break;
    }
    return HttpResponse::error(500, "internal", "database down");
  }

  mutable std::mutex mu_;
  std::vector<HttpRequest> requests_;
  std::atomic<Mode> mode_{Mode::kAssign};
  std::atomic<int> posts_{0};
  HttpServer server_;  // last: stopped before the state its handler uses goes away
};

const Uuid kId = *Uuid::parse("6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f");

RegistrationOptions options_for(const std::string& registry_url) {
  return RegistrationOptions{.registry_url = registry_url,
                             .id = kId,
                             .address = "127.0.0.1:9999",
                             .token = "s3cret",
                             .initial_backoff = milliseconds(5),
                             .max_backoff = milliseconds(20),
                             .jitter = 0};
}

uint16_t unused_port() {
  HttpServer probe({}, [](const HttpRequest&) { return HttpResponse{}; });
  REQUIRE(probe.start().ok());
  return probe.port();  // released when probe stops
}

TEST_CASE("registers with the §4 body and renews every lease/4") {
  FakeRegistry registry;
  RegistrationClient client(options_for(registry.url()));
  client.start();
  REQUIRE(test::eventually([&] { return registry.posts() >= 4; }));
  client.stop();

  const HttpRequest first = registry.requests().front();
  CHECK(first.method == "POST");
  CHECK(first.path == "/v1/producers");
  CHECK(first.header("Authorization") == "Bearer s3cret");
  CHECK(first.header("Content-Type") == "application/json");
  CHECK(first.body == R"({"id":"6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f","kind":"service",)"
                      R"("address":"127.0.0.1:9999","route":"/collect","interval_ms":10000,)"
                      R"("format":"oximeter"})");

  const RegistrationState state = client.state();
  CHECK(state.registered);
  CHECK(state.assigned);
  CHECK(state.collector_id == "c1");
  CHECK(state.collector_address == "127.0.0.1:12222");
  CHECK(state.lease == milliseconds(40));
  CHECK(state.renewals >= 3);
  CHECK(state.failures == 0);
  CHECK(state.last_success.has_value());
}

TEST_CASE("sends target_name and the prometheus format when configured") {
  FakeRegistry registry;
  RegistrationOptions options = options_for(registry.url());
  options.format = "prometheus";
  options.route = "/metrics";
  options.target_name = "node";
  options.interval = milliseconds(15'000);
  RegistrationClient client(options);
  client.start();
  REQUIRE(test::eventually([&] { return registry.posts() >= 1; }));
  client.stop();
  CHECK(registry.requests().front().body ==
        R"({"id":"6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f","kind":"service",)"
        R"("address":"127.0.0.1:9999","route":"/metrics","interval_ms":15000,)"
        R"("format":"prometheus","target_name":"node"})");
}

TEST_CASE("backs off while the registry fails, then recovers") {
  FakeRegistry registry;
  registry.set_mode(FakeRegistry::Mode::kFail);
  RegistrationClient client(options_for(registry.url()));
  client.start();
  REQUIRE(test::eventually([&] { return client.state().failures >= 3; }));
  RegistrationState state = client.state();
  CHECK_FALSE(state.registered);
  CHECK(state.last_error == "registry answered 500: database down");

  registry.set_mode(FakeRegistry::Mode::kAssign);
  REQUIRE(test::eventually([&] { return client.state().assigned; }));
  state = client.state();
  CHECK(state.last_error.empty());
  CHECK(state.collector_id == "c1");
}

TEST_CASE("start() does not wait for an unreachable registry, it registers once one appears") {
  const uint16_t port = unused_port();
  RegistrationClient client(options_for("http://127.0.0.1:" + std::to_string(port)));
  client.start();  // returns at once: the app goes on starting up
  REQUIRE(test::eventually([&] { return client.state().failures >= 2; }));
  CHECK(client.state().last_error ==
        "cannot connect to 127.0.0.1:" + std::to_string(port) + ": connection refused");

  FakeRegistry registry(port);
  REQUIRE(test::eventually([&] { return client.state().assigned; }));
  client.stop();  // while the registry still answers the DELETE
}

TEST_CASE("503 no_live_collector means stored but unassigned, the assignment follows") {
  FakeRegistry registry;
  registry.set_mode(FakeRegistry::Mode::kNoCollector);
  RegistrationClient client(options_for(registry.url()));
  client.start();
  REQUIRE(test::eventually([&] { return registry.posts() >= 2; }));
  RegistrationState state = client.state();
  CHECK(state.registered);
  CHECK_FALSE(state.assigned);
  CHECK(state.failures == 0);
  CHECK(state.last_error == "registry answered 503: no collector is live");

  registry.set_mode(FakeRegistry::Mode::kAssign);
  REQUIRE(test::eventually([&] { return client.state().assigned; }));
}

TEST_CASE("503 database_unavailable is a failure: nothing was stored") {
  FakeRegistry registry;
  registry.set_mode(FakeRegistry::Mode::kDatabaseDown);
  RegistrationClient client(options_for(registry.url()));
  client.start();
  REQUIRE(test::eventually([&] { return client.state().failures >= 2; }));
  const RegistrationState state = client.state();
  CHECK_FALSE(state.registered);
  CHECK(state.last_error == "registry answered 503: cannot reach the database");
}

TEST_CASE("stop() unregisters when asked to") {
  FakeRegistry registry;
  {
    RegistrationClient client(options_for(registry.url()));
    client.start();
    REQUIRE(test::eventually([&] { return client.state().registered; }));
    client.stop();
    client.stop();  // idempotent
  }
  const std::vector<HttpRequest> requests = registry.requests();
  const HttpRequest& last = requests.back();
  CHECK(last.method == "DELETE");
  CHECK(last.path == "/v1/producers/6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f");
  CHECK(last.header("Authorization") == "Bearer s3cret");
}

TEST_CASE("stop() leaves the registration in place when unregister_on_stop is off") {
  FakeRegistry registry;
  RegistrationOptions options = options_for(registry.url());
  options.unregister_on_stop = false;
  RegistrationClient client(options);
  client.start();
  REQUIRE(test::eventually([&] { return client.state().registered; }));
  client.stop();
  for (const HttpRequest& r : registry.requests()) CHECK(r.method == "POST");
}

TEST_CASE("malformed options are refused up front") {
  RegistrationOptions bad_address = options_for("http://127.0.0.1:1");
  bad_address.address = "localhost";
  CHECK_THROWS_AS(RegistrationClient{bad_address}, std::invalid_argument);
  RegistrationOptions bad_url = options_for("https://registry");
  CHECK_THROWS_AS(RegistrationClient{bad_url}, std::invalid_argument);
}

}  // namespace
}  // namespace tally
