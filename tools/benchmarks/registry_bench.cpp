// Registry benchmark (DESIGN.md §10: ≥ 2,000 registrations/s): several threads register new
// producers through the blocking HTTP client (one connection per request, as producers do)
// against a running tally-registry, which has one live collector so every registration is
// assigned (201). Baseline, same run, same client and threads: GET /healthz, which is an HTTP
// round trip plus one database query — the floor any registration pays.
//
// Then, with --reassign N (and --collector-ttl matching the registry's config): about N producers
// on a fake collector A (2N registered over A and B); A stops heartbeating, B and the first
// collector go on; the figure, labelled with what A held, is the time from A's last heartbeat
// until A holds no producer (target: collector_ttl + 1 s; baseline: collector_ttl,
// the wait any failure detector with that TTL has).
//
//   tally_registry_bench --registry http://127.0.0.1:12221 [--threads 8] [--seconds 5]
//                        [--reassign 10000 --collector-ttl 5]
//
// Prints one JSON line per figure on stdout (tools/bench collects them).
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

tally::Result<tally::HttpResponse> heartbeat(const std::string& registry, const std::string& id) {
  const std::string body = R"({"id": ")" + id + R"(", "address": "127.0.0.1:12222"})";
  return tally::http_request({}, "POST", registry + "/v1/collectors", body);
}

// How many producers the registry says a collector holds (GET /v1/collectors).
long producers_held(const std::string& registry, const std::string& id) {
  auto r = tally::http_request({}, "GET", registry + "/v1/collectors?limit=1000");
  if (!r.ok() || r->status != 200) die("listing collectors failed");
  const std::size_t at = r->body.find(id);
  const std::string key = "\"n_producers\":";
  const std::size_t n = at == std::string::npos ? at : r->body.find(key, at);
  if (n == std::string::npos) die("collector " + id + " not listed: " + r->body.substr(0, 200));
  return std::atol(r->body.c_str() + n + key.size());
}

struct Reassignment {
  double seconds = 0;
  long producers = 0;  // what A held when it died
};

// Seconds from collector A's last heartbeat until A holds no producer.
Reassignment reassignment(const std::string& registry, int threads, int producers,
                          double collector_ttl) {
  const std::string a = tally::Uuid::random().to_string();
  const std::string b = tally::Uuid::random().to_string();
  for (const std::string& id : {a, b}) {
    if (auto r = heartbeat(registry, id); !r.ok() || r->status / 100 != 2) die("heartbeat failed");
  }
  // Register 2N while both are live: the least-loaded rule splits them evenly between A and B
  // (the registrations/s phase's collector, kept live, already holds more than either), so A
  // holds about N when it dies.
  std::atomic<int> next{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < 2 * producers; i = next++) {
        const std::string body = R"({"id": ")" + tally::Uuid::random().to_string() +
                                 R"(", "kind": "service", "address": "127.0.0.1:)" +
                                 std::to_string(10000 + i % 50000) +
                                 R"(", "route": "/collect", "interval_ms": 10000})";
        auto r = tally::http_request({}, "POST", registry + "/v1/producers", body);
        if (!r.ok() || r->status != 201) die("registration failed");
        if (i % 500 == 0) {
          (void)heartbeat(registry, a);
          (void)heartbeat(registry, b);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  const long held = producers_held(registry, a);
  if (auto r = heartbeat(registry, b); !r.ok()) die("heartbeat failed");
  auto last_a = heartbeat(registry, a);
  if (!last_a.ok() || last_a->status / 100 != 2) die("heartbeat failed");
  const auto start = Clock::now();
  auto last_b = start;
  const std::string a_producers = registry + "/v1/collectors/" + a + "/producers?limit=1";
  while (true) {
    const auto now = Clock::now();
    if (now - last_b > std::chrono::milliseconds(500)) {
      (void)heartbeat(registry, b);
      last_b = now;
    }
    auto r = tally::http_request({}, "GET", a_producers);
    if (r.ok() && r->status == 200 && r->body.find("\"items\": []") != std::string::npos) break;
    if (r.ok() && r->status == 200 && r->body.find("\"items\":[]") != std::string::npos) break;
    if (now - start > std::chrono::duration<double>(collector_ttl * 10 + 30)) {
      die("collector A still holds producers: " + (r.ok() ? r->body.substr(0, 200) : r.error()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return {std::chrono::duration<double>(Clock::now() - start).count(), held};
}

}  // namespace

int main(int argc, char** argv) {
  std::string registry = "http://127.0.0.1:12221";
  int threads = 8;
  double seconds = 5;
  int reassign = 0;
  double collector_ttl = 15;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--registry")
      registry = argv[i + 1];
    else if (flag == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (flag == "--reassign")
      reassign = std::atoi(argv[i + 1]);
    else if (flag == "--collector-ttl")
      collector_ttl = std::atof(argv[i + 1]);
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

  // Keep that collector live through the phases (collector_ttl may be shorter than a phase),
  // the reassignment too: its producers must not land on A while A is being measured.
  const std::string collector_id = collector.substr(8, 36);
  std::atomic<bool> phases_done{false};
  std::thread keep_alive([&] {
    while (!phases_done) {
      (void)heartbeat(registry, collector_id);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
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
  if (reassign > 0) {
    const Reassignment moved = reassignment(registry, threads, reassign, collector_ttl);
    std::printf(
        "{\"figure\": \"registry: reassign a dead collector's producers (%ld producers)\", "
        "\"unit\": \"s\", \"value\": %.2f, \"baseline_name\": \"collector_ttl\", "
        "\"baseline\": %.2f, \"target\": \"<= collector_ttl + 1 s\", \"target_value\": %.2f, "
        "\"higher_is_better\": false}\n",
        moved.producers, moved.seconds, collector_ttl, collector_ttl + 1);
  }
  phases_done = true;
  keep_alive.join();
  return 0;
}
