// The sink's write-ahead journal (collector/spool_record.h): every queued sample is encoded as
// a journal record on the pushing thread, so the encoding is a cost per sample collected. A
// record of 10,000 samples of the bench mix, encoded and decoded (the replay), against the
// collect response JSON the records held up to format version 1, over the same samples in the
// same run. Run by tools/bench; never part of the tests.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "tally/collector/spool_record.h"
#include "tally/common/collect_json.h"
#include "workload.h"

namespace {

constexpr std::size_t kSamples = 10'000;

const std::vector<tally::Sample>& samples() {
  static const std::vector<tally::Sample> s = tally::bench::mix_samples(0, kSamples);
  return s;
}

void report(benchmark::State& state, std::size_t bytes) {
  state.counters["samples_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kSamples), benchmark::Counter::kIsRate);
  state.counters["record_bytes"] = static_cast<double>(bytes);
}

void BM_JournalEncode(benchmark::State& state) {
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string record = tally::collector::encode_record(samples());
    bytes = record.size();
    benchmark::DoNotOptimize(record.data());
  }
  report(state, bytes);
}
BENCHMARK(BM_JournalEncode);

// What a format-1 record held: the collect response JSON of one ok item.
void BM_JournalEncodeJson(benchmark::State& state) {
  const std::vector<tally::CollectItem> items = {{samples(), std::nullopt}};
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string json = tally::encode_collect_response(items);
    bytes = json.size();
    benchmark::DoNotOptimize(json.data());
  }
  report(state, bytes);
}
BENCHMARK(BM_JournalEncodeJson);

void BM_JournalDecode(benchmark::State& state) {
  const std::string record = tally::collector::encode_record(samples());
  for (auto _ : state) {
    std::vector<tally::Sample> out;
    auto n = tally::collector::decode_record(record, out);
    if (!n.ok() || out.size() != kSamples) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  report(state, record.size());
}
BENCHMARK(BM_JournalDecode);

void BM_JournalDecodeJson(benchmark::State& state) {
  const std::vector<tally::CollectItem> items = {{samples(), std::nullopt}};
  const std::string json = tally::encode_collect_response(items);
  for (auto _ : state) {
    auto decoded = tally::decode_collect_response(json);
    if (!decoded.ok() || (*decoded)[0].samples.size() != kSamples) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(decoded);
  }
  report(state, json.size());
}
BENCHMARK(BM_JournalDecodeJson);

}  // namespace

BENCHMARK_MAIN();
