// Registry benchmark (DESIGN.md §10: ≥ 2,000 registrations/s): several threads register new
// producers through the blocking HTTP client (one connection per request, as producers do)
// against a running tally-registry, which has one live collector so every registration is
// assigned (201). Baseline, same run, same client and threads: GET /healthz, which is an HTTP
// round trip plus one database query — the floor any registration pays.
//
//   tally_registry_bench --registry http://127.0.0.1:12221 [--threads 8] [--seconds 5]
//
// Prints one JSON line on stdout (tools/bench collects it).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tally/common/field.h"
#include "tally/common/http_client.h"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "tally_registry_bench: %s\n", what.c_str());
  std::exit(1);
}

// Runs `request` from `threads` threads for `seconds`; returns successful requests per second.
template <class F>
double rate(int threads, double seconds, int expected_status, F request) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> failed{0};
  std::string first_failure;
  std::atomic_flag failure_kept = ATOMIC_FLAG_INIT;
  std::vector<std::thread> workers;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        auto r = request();
        if (r.ok() && r->status == expected_status) {
          done.fetch_add(1, std::memory_order_relaxed);
        } else {
          failed.fetch_add(1, std::memory_order_relaxed);
          if (!failure_kept.test_and_set()) {
            first_failure =
                r.ok() ? "HTTP " + std::to_string(r->status) + " " + r->body : r.error();
          }
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  if (failed > done / 100)
    die("too many failures (" + std::to_string(failed.load()) + "): " + first_failure);
  return static_cast<double>(done.load()) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  std::string registry = "http://127.0.0.1:12221";
  int threads = 8;
  double seconds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--registry")
      registry = argv[i + 1];
    else if (flag == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (flag == "--seconds")
      seconds = std::atof(argv[i + 1]);
    else
      die("unknown flag " + flag);
  }
  const tally::HttpClientOptions http;

  // One live collector, so that registrations are assigned rather than answered 503.
  const std::string collector =
      R"({"id": ")" + tally::Uuid::random().to_string() + R"(", "address": "127.0.0.1:12222"})";
  auto hb = tally::http_request(http, "POST", registry + "/v1/collectors", collector);
  if (!hb.ok() || hb->status / 100 != 2) {
    die("collector heartbeat failed: " +
        (hb.ok() ? std::to_string(hb->status) + " " + hb->body : hb.error()));
  }

  const double baseline = rate(threads, seconds / 2, 200, [&] {
    return tally::http_request(http, "GET", registry + "/healthz");
  });
  std::atomic<uint32_t> port{10000};
  const double registrations = rate(threads, seconds, 201, [&] {
    const std::string body =
        R"({"id": ")" + tally::Uuid::random().to_string() +
        R"(", "kind": "service", "address": "127.0.0.1:)" +
        std::to_string(10000 + port.fetch_add(1) % 50000) +
        R"(", "route": "/collect", "interval_ms": 10000, "format": "oximeter"})";
    return tally::http_request(http, "POST", registry + "/v1/producers", body);
  });
  std::printf(
      "{\"figure\": \"registry: registrations/s (%d client threads)\", \"unit\": \"1/s\", "
      "\"value\": %.0f, \"baseline_name\": \"GET /healthz (HTTP + 1 query)\", \"baseline\": %.0f, "
      "\"target\": \">= 2000/s\", \"target_value\": 2000, \"higher_is_better\": true}\n",
      threads, registrations, baseline);
  return 0;
}
