// tally-example-producer: a simulated HTTP service that exposes its metrics to Tally.
//
//   tally-example-producer --listen 127.0.0.1:0 --registry http://127.0.0.1:12221 --interval 10s
//
// It serves GET /collect and GET /metrics, registers with the registry if --registry is given,
// and simulates traffic: request counts by route and status code, a latency histogram, an
// in-flight gauge and a build-info string gauge. SIGINT/SIGTERM stop it (unregistering first).
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tally/producer.h"

namespace {

constexpr std::string_view kVersion = "0.1.0";

constexpr std::string_view kUsage = R"(usage: tally-example-producer [options]

A simulated HTTP service exposing Tally metrics on GET /collect and GET /metrics.

  --listen HOST:PORT    address to serve on (default 127.0.0.1:0, a free port)
  --registry URL        register with this tally-registry (e.g. http://127.0.0.1:12221);
                        without it the producer only serves
  --interval DURATION   how often collectors should poll (default 10s)
  --id UUID             producer id (default: a random one)
  --token TOKEN         bearer token for the registry (or TALLY_TOKEN)
  --log-level LEVEL     debug|info|warn|error (default info)
  --log-format FORMAT   text|json (default text)
  --help, --version
)";

struct Args {
  std::string listen = "127.0.0.1:0";
  std::string registry;
  std::chrono::milliseconds interval{10'000};
  tally::Uuid id = tally::Uuid::random();
  std::string token;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "tally-example-producer: %s\n%s", message.c_str(), kUsage.data());
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args args;
  if (const char* token = std::getenv("TALLY_TOKEN")) args.token = token;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help") {
      std::fputs(kUsage.data(), stdout);
      std::exit(0);
    }
    if (flag == "--version") {
      std::printf("tally-example-producer %s\n", kVersion.data());
      std::exit(0);
    }
    constexpr std::string_view kValueFlags[] = {"--listen", "--registry",  "--interval",  "--id",
                                                "--token",  "--log-level", "--log-format"};
    if (std::find(std::begin(kValueFlags), std::end(kValueFlags), flag) == std::end(kValueFlags)) {
      usage_error("unknown option " + std::string(flag));
    }
    if (i + 1 >= argc) usage_error("missing value for " + std::string(flag));
    const std::string value = argv[++i];
    if (flag == "--listen") {
      args.listen = value;
    } else if (flag == "--registry") {
      args.registry = value;
    } else if (flag == "--interval") {
      auto d = tally::parse_duration(value);
      if (!d.ok() || d->count() <= 0) usage_error("--interval: '" + value + "' is not a duration");
      args.interval = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
    } else if (flag == "--id") {
      auto id = tally::Uuid::parse(value);
      if (!id.ok()) usage_error("--id: '" + value + "' is not a UUID");
      args.id = *id;
    } else if (flag == "--token") {
      args.token = value;
    } else if (flag == "--log-level") {
      auto level = tally::parse_log_level(value);
      if (!level) usage_error("--log-level: '" + value + "' is not debug|info|warn|error");
      tally::set_log_level(*level);
    } else if (flag == "--log-format") {
      auto format = tally::parse_log_format(value);
      if (!format) usage_error("--log-format: '" + value + "' is not text|json");
      tally::set_log_format(*format);
    }
  }
  return args;
}

// Pretends to serve requests, recording what a real service would.
class SimulatedService {
 public:
  explicit SimulatedService(tally::MetricSet& metrics) : metrics_(metrics) {
    metrics_.string_gauge("build_info").set("tally-example-producer " + std::string(kVersion));
    in_flight_ = &metrics_.gauge_i64("requests_in_flight");
  }

  void start() {
    thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
  }
  void stop() { thread_ = {}; }  // requests stop and joins

 private:
  struct Route {
    std::string path;
    double median_seconds;
  };

  void run(std::stop_token stop) {
    const std::vector<Route> routes = {
        {"/v1/items", 0.012}, {"/v1/items/{id}", 0.004}, {"/v1/orders", 0.045}};
    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<int> per_tick(0, 6);
    std::discrete_distribution<std::size_t> pick_route({6, 3, 1});
    std::discrete_distribution<int> pick_status({95, 3, 2});
    constexpr uint16_t kStatus[] = {200, 404, 500};
    std::normal_distribution<double> spread(0, 0.6);
    std::poisson_distribution<int64_t> concurrency(3);

    while (!stop.stop_requested()) {
      for (int n = per_tick(random); n > 0; --n) {
        const Route& route = routes[pick_route(random)];
        const uint16_t status = kStatus[pick_status(random)];
        // Looked up per request to show it works; a real service keeps the references.
        metrics_.counter("request_count", {{"route", route.path}, {"status_code", status}}).add();
        metrics_
            .histogram("request_latency", {{"route", route.path}},
                       tally::exponential_edges(0.001, 2, 14))
            .record(route.median_seconds * std::exp(spread(random)));
      }
      in_flight_->set(concurrency(random));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  tally::MetricSet& metrics_;
  tally::GaugeI64* in_flight_;
  std::jthread thread_;
};

int wait_for_signal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  int received = 0;
  sigwait(&signals, &received);
  return received;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);

  // Signals are taken by sigwait below; every thread started from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto registry = std::make_shared<tally::ProducerRegistry>();
  auto metrics = std::make_shared<tally::MetricSet>(
      tally::Target{"http_service", {{"name", std::string("example")}, {"instance_id", args.id}}});
  registry->add(metrics);

  tally::ProducerServer server(registry, {.listen = args.listen, .producer_id = args.id});
  if (tally::Status s = server.start(); !s.ok()) {
    tally::log_error("start_failed", {{"error", s.message()}});
    return 1;
  }
  tally::log_info("producer_serving", {{"address", server.address()},
                                       {"id", args.id.to_string()},
                                       {"collect", "http://" + server.address() + "/collect"}});

  SimulatedService service(*metrics);
  service.start();

  std::unique_ptr<tally::RegistrationClient> registration;
  if (!args.registry.empty()) {
    try {
      registration = std::make_unique<tally::RegistrationClient>(
          tally::RegistrationOptions{.registry_url = args.registry,
                                     .id = args.id,
                                     .address = server.address(),
                                     .interval = args.interval,
                                     .token = args.token});
    } catch (const std::invalid_argument& e) {
      tally::log_error("start_failed", {{"error", e.what()}});
      return 2;
    }
    registration->start();
  }

  const int signal = wait_for_signal();
  tally::log_info("stopping", {{"signal", signal == SIGINT ? "SIGINT" : "SIGTERM"}});
  if (registration) registration->stop();  // unregisters while the server still answers
  service.stop();
  server.stop();
  tally::log_info("stopped");
  return 0;
}
