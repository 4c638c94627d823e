// Producer library benchmarks (DESIGN.md §10): counter increment ≤ 10 ns uncontended, serving
// 10,000 samples ≤ 5 ms. Run by tools/bench; built when TALLY_BUILD_BENCHMARKS is on.
#include <benchmark/benchmark.h>

#include <ctime>
#include <memory>
#include <string>

#include "prometheus_encode.h"
#include "tally/common/http_client.h"
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

void BM_Serve10kPrometheus(benchmark::State& state) {
  auto registry = registry_with_10k_samples(state.range(0) != 0);
  std::size_t bytes = 0;
  for (auto _ : state) bytes = tally::encode_prometheus(registry->collect()).size();
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Serve10kPrometheus)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("histograms")
    ->Unit(benchmark::kMillisecond);

double process_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

// The whole path a collector sees, one request per connection (the keep-alive scraper saves the
// connect).
void BM_Serve10kHttp(benchmark::State& state) {
  auto registry = registry_with_10k_samples(state.range(0) != 0);
  tally::ProducerServer server(registry, {.self_metrics = false});
  if (!server.start().ok()) {
    state.SkipWithError("cannot start the server");
    return;
  }
  const std::string url = "http://" + server.address() + "/collect";
  // Untimed: the first response sizes the registry's buffer and warms the threads' heaps, as
  // the first poll of a collector does; the figure is the steady state of later polls.
  if (auto r = tally::http_request({}, "GET", url); !r.ok() || r->status != 200) {
    state.SkipWithError("warm-up request failed");
    return;
  }
  const double cpu_start = process_cpu_ms();
  for (auto _ : state) {
    auto r = tally::http_request({}, "GET", url);
    if (!r.ok() || r->status != 200) {
      state.SkipWithError("request failed");
      break;
    }
  }
  // The CPU column is the client thread's alone, and on a loaded machine the wall time is
  // mostly waiting for a core: process_cpu_ms (server and client) is what one request costs.
  state.counters["process_cpu_ms"] =
      benchmark::Counter(process_cpu_ms() - cpu_start, benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_Serve10kHttp)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("histograms")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
