// Producer library benchmarks (DESIGN.md §10): counter increment ≤ 10 ns uncontended, serving
// 10,000 samples ≤ 5 ms. Run by tools/bench; built when TALLY_BUILD_BENCHMARKS is on.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "prometheus_encode.h"
#include "tally/common/http_client.h"
#include "tally/common/http_server.h"
#include "tally/producer.h"

namespace {

tally::Target bench_target() {
  return tally::Target{"bench_service",
                       {{"name", std::string("bench")}, {"instance_id", tally::Uuid::random()}}};
}

void BM_CounterAdd(benchmark::State& state) {
  // Every thread adds to the same counter: Threads(1) is the uncontended figure of §10.
  static tally::MetricSet metrics(bench_target());
  tally::Counter& counter = metrics.counter("requests");
  for (auto _ : state) counter.add();
}
BENCHMARK(BM_CounterAdd)->Threads(1)->Threads(2)->UseRealTime();

void BM_GaugeSet(benchmark::State& state) {
  tally::MetricSet metrics(bench_target());
  tally::Gauge& gauge = metrics.gauge("temperature");
  double v = 0;
  for (auto _ : state) gauge.set(v += 1);
}
BENCHMARK(BM_GaugeSet);

void BM_HistogramRecord(benchmark::State& state) {
  tally::MetricSet metrics(bench_target());
  tally::HistogramF64& h = metrics.histogram("latency", {}, tally::exponential_edges(1e-4, 2, 20));
  double v = 1e-4;
  for (auto _ : state) {
    h.record(v);
    v = v > 10 ? 1e-4 : v * 1.1;
  }
}
BENCHMARK(BM_HistogramRecord);

// 10,000 samples over 2,500 routes × 4 status codes: with `histograms`, a 17-bin latency
// histogram per route and status (5,000 of them) and a counter for the rest; without, all
// counters (the usual shape of a service's metrics).
std::shared_ptr<tally::ProducerRegistry> registry_with_10k_samples(bool histograms) {
  auto registry = std::make_shared<tally::ProducerRegistry>();
  auto metrics = std::make_shared<tally::MetricSet>(bench_target());
  registry->add(metrics);
  const uint16_t statuses[] = {200, 404, 500, 503};
  const int routes = histograms ? 1250 : 2500;
  for (int route = 0; route < routes; ++route) {
    for (uint16_t status : statuses) {
      tally::Fields fields{{"route", "/v1/route/" + std::to_string(route)},
                           {"status_code", status}};
      metrics->counter("request_count", fields).add(route + status);
      if (histograms) {
        metrics->histogram("request_latency", fields, tally::exponential_edges(1e-4, 2, 16))
            .record(0.001 * route);
      }
    }
  }
  return registry;
}

void BM_Collect10k(benchmark::State& state) {
  auto registry = registry_with_10k_samples(state.range(0) != 0);
  for (auto _ : state) benchmark::DoNotOptimize(registry->collect());
}
BENCHMARK(BM_Collect10k)->Arg(0)->Arg(1)->ArgName("histograms")->Unit(benchmark::kMillisecond);

// What GET /collect serves, without the HTTP: the registry's collect_json().
void BM_Serve10kJson(benchmark::State& state) {
  auto registry = registry_with_10k_samples(state.range(0) != 0);
  std::size_t bytes = 0;
  for (auto _ : state) bytes = registry->collect_json().size();
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Serve10kJson)->Arg(0)->Arg(1)->ArgName("histograms")->Unit(benchmark::kMillisecond);

// The generic encoder alone, on samples collected beforehand (custom Producers' path).
void BM_Encode10kSamples(benchmark::State& state) {
  const auto items = registry_with_10k_samples(state.range(0) != 0)->collect();
  std::size_t bytes = 0;
  for (auto _ : state) bytes = tally::encode_collect_response(items).size();
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Encode10kSamples)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("histograms")
    ->Unit(benchmark::kMillisecond);

// What GET /metrics serves, without the HTTP: the registry's collect_prometheus().
void BM_Serve10kPrometheus(benchmark::State& state) {
  auto registry = registry_with_10k_samples(state.range(0) != 0);
  std::size_t bytes = 0;
  for (auto _ : state) bytes = registry->collect_prometheus().size();
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Serve10kPrometheus)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("histograms")
    ->Unit(benchmark::kMillisecond);

// The generic Prometheus encoder, on samples collected beforehand (custom Producers' path).
void BM_Encode10kPrometheus(benchmark::State& state) {
  const auto items = registry_with_10k_samples(state.range(0) != 0)->collect();
  std::size_t bytes = 0;
  for (auto _ : state) bytes = tally::encode_prometheus(items).size();
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Encode10kPrometheus)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("histograms")
    ->Unit(benchmark::kMillisecond);

double cpu_ms(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

// CPU time of the server and of the client, per request. The client is this (the benchmark's)
// thread, the server every other thread of the process: its I/O thread and its workers. On a
// loaded machine the wall time is mostly waiting for a core; these say what a request costs.
class CpuSplit {
 public:
  CpuSplit()
      : process_start_(cpu_ms(CLOCK_PROCESS_CPUTIME_ID)),
        client_start_(cpu_ms(CLOCK_THREAD_CPUTIME_ID)) {}

  void report(benchmark::State& state) const {
    const double process = cpu_ms(CLOCK_PROCESS_CPUTIME_ID) - process_start_;
    const double client = cpu_ms(CLOCK_THREAD_CPUTIME_ID) - client_start_;
    const auto per_request = [](double v) {
      return benchmark::Counter(v, benchmark::Counter::kAvgIterations);
    };
    state.counters["process_cpu_ms"] = per_request(process);
    state.counters["server_cpu_ms"] = per_request(process - client);
    state.counters["client_cpu_ms"] = per_request(client);
  }

 private:
  double process_start_;
  double client_start_;
};

// Starts `server` and GETs its /collect with one connection per request, through the blocking
// client of common/src/http_client.cpp. Untimed, the first response sizes the server's buffer
// and warms the threads' heaps, as the first poll of a collector does; the figure is the steady
// state of later polls.
template <class Server>
void get_per_connection(benchmark::State& state, Server& server) {
  if (!server.start().ok()) {
    state.SkipWithError("cannot start the server");
    return;
  }
  const std::string url = "http://" + server.address() + "/collect";
  if (auto r = tally::http_request({}, "GET", url); !r.ok() || r->status != 200) {
    state.SkipWithError("warm-up request failed");
    return;
  }
  const CpuSplit cpu;
  for (auto _ : state) {
    auto r = tally::http_request({}, "GET", url);
    if (!r.ok() || r->status != 200) {
      state.SkipWithError("request failed");
      break;
    }
  }
  cpu.report(state);
}

// The whole path a collector sees, one request per connection (the keep-alive scraper saves the
// connect).
void BM_Serve10kHttp(benchmark::State& state) {
  auto registry = registry_with_10k_samples(state.range(0) != 0);
  tally::ProducerServer server(registry, {.self_metrics = false});
  get_per_connection(state, server);
}
BENCHMARK(BM_Serve10kHttp)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("histograms")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The floor of BM_Serve10kHttp: the same server, client and bytes, but the body is made by
// copying one rendered beforehand instead of by encoding the metrics (a copy is the least any
// encoder does). What is left is moving the bytes: the server's and the kernel's copies, the
// client's parse.
void BM_Serve10kHttpPrerendered(benchmark::State& state) {
  const std::string body = registry_with_10k_samples(state.range(0) != 0)->collect_json();
  tally::HttpServer server({.server_name = "tally-producer"}, [&body](const tally::HttpRequest&) {
    return tally::HttpResponse::json(200, body);
  });
  get_per_connection(state, server);
}
BENCHMARK(BM_Serve10kHttpPrerendered)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("histograms")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The cheapest client there is, so that the figure is the server's: one keep-alive connection
// (as a collector keeps), blocking reads straight into a buffer kept between requests, no parser
// beyond finding Content-Length.
class RawHttpClient {
 public:
  explicit RawHttpClient(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      close();
    }
  }
  ~RawHttpClient() { close(); }
  RawHttpClient(const RawHttpClient&) = delete;
  RawHttpClient& operator=(const RawHttpClient&) = delete;

  // GET `path`; returns the body's size, or 0 when the exchange failed or the status is not 200.
  std::size_t get(std::string_view path) {
    if (fd_ < 0) return 0;
    const std::string request = "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      return 0;
    }
    // The header: read until its end; what follows it is the body's start.
    std::size_t have = 0;
    std::size_t header_end = std::string_view::npos;
    while (header_end == std::string_view::npos) {
      if (buffer_.size() < have + 64 * 1024) buffer_.resize(have + 64 * 1024);
      const ssize_t n = recv(fd_, buffer_.data() + have, buffer_.size() - have, 0);
      if (n <= 0) return 0;
      have += static_cast<std::size_t>(n);
      header_end = std::string_view(buffer_.data(), have).find("\r\n\r\n");
    }
    const std::string_view header(buffer_.data(), header_end);
    if (!header.starts_with("HTTP/1.1 200 ")) return 0;
    const std::size_t at = header.find("Content-Length: ");
    if (at == std::string_view::npos) return 0;
    const std::size_t length = std::strtoull(header.data() + at + 16, nullptr, 10);
    const std::size_t total = header_end + 4 + length;
    if (buffer_.size() < total) buffer_.resize(total);  // grows once: later bodies fit
    while (have < total) {
      const ssize_t n = recv(fd_, buffer_.data() + have, total - have, 0);
      if (n <= 0) return 0;
      have += static_cast<std::size_t>(n);
    }
    return length;
  }

 private:
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int fd_ = -1;
  std::vector<char> buffer_;
};

// The server's side of serving: GET /collect (or /metrics with prometheus:1) on a keep-alive
// connection read by RawHttpClient. server_cpu_ms is the figure to hold against §10's 5 ms.
void BM_Serve10kHttpKeepAlive(benchmark::State& state) {
  auto registry = registry_with_10k_samples(state.range(0) != 0);
  const std::string path = state.range(1) != 0 ? "/metrics" : "/collect";
  tally::ProducerServer server(registry, {.self_metrics = false});
  if (!server.start().ok()) {
    state.SkipWithError("cannot start the server");
    return;
  }
  RawHttpClient client(server.port());
  std::size_t bytes = client.get(path);  // untimed warm-up, as in BM_Serve10kHttp
  if (bytes == 0) {
    state.SkipWithError("warm-up request failed");
    return;
  }
  const CpuSplit cpu;
  for (auto _ : state) {
    bytes = client.get(path);
    if (bytes == 0) {
      state.SkipWithError("request failed");
      break;
    }
  }
  cpu.report(state);
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Serve10kHttpKeepAlive)
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->ArgNames({"histograms", "prometheus"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
