// Baselines for the producer figures of DESIGN.md §10, run in the same tools/bench run as
// tally_producer_bench: a bare relaxed atomic add on one shared cache line (what a counter
// increment cannot beat), uncontended and with 2 threads. Never part of the tests.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>

namespace {

void BM_AtomicAdd(benchmark::State& state) {
  alignas(64) static std::atomic<uint64_t> value{0};
  for (auto _ : state) value.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_AtomicAdd)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
