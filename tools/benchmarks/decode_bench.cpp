// Decode benchmarks (DESIGN.md §10: oximeter-JSON decode ≥ 500 MB/s on one core): the collect
// response of §3.1 and Prometheus text (§3.2), 10,000 samples of the bench mix per body.
// Baselines over the same bytes, same run: memcpy (reading the bytes at all), simdjson's DOM
// parse (simdjson's fastest full parse, with no model building: the physical limit) and an On
// Demand walk of every value (the API Tally's decoder is built on, with no model building).
// Run by tools/bench; never part of the tests.
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "collect_json_decode_paths.h"
#include "tally/collector/prometheus_parser.h"
#include "tally/common/collect_json.h"
#include "workload.h"

namespace {

constexpr std::size_t kSamples = 10'000;

const std::string& json_body() {
  static const std::string body = [] {
    std::vector<tally::CollectItem> items(1);
    items[0].samples = tally::bench::mix_samples(0, kSamples);
    return tally::encode_collect_response(items);
  }();
  return body;
}

const std::string& prometheus_body() {
  static const std::string body = tally::bench::mix_prometheus_text(kSamples);
  return body;
}

void report(benchmark::State& state, std::size_t bytes, std::size_t samples) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["samples_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * samples), benchmark::Counter::kIsRate);
  state.counters["body_bytes"] = static_cast<double>(bytes);
}

void BM_Memcpy(benchmark::State& state, const std::string& body) {
  std::vector<char> dst(body.size());
  for (auto _ : state) {
    std::memcpy(dst.data(), body.data(), body.size());
    benchmark::ClobberMemory();
  }
  report(state, body.size(), kSamples);
}
BENCHMARK_CAPTURE(BM_Memcpy, json, json_body());
BENCHMARK_CAPTURE(BM_Memcpy, prometheus, prometheus_body());

void BM_SimdjsonDomParse(benchmark::State& state) {
  const std::string& body = json_body();
  simdjson::padded_string padded(body);
  simdjson::dom::parser parser;
  for (auto _ : state) {
    auto doc = parser.parse(padded);
    if (doc.error()) {
      state.SkipWithError("simdjson parse failed");
      break;
    }
    benchmark::DoNotOptimize(doc.value_unsafe());
  }
  report(state, body.size(), kSamples);
}
BENCHMARK(BM_SimdjsonDomParse);

// Every value of the document visited once through simdjson's On Demand API, the one Tally's
// decoder is built on: keys and strings unescaped, numbers parsed, nothing built, nothing
// checked. The floor of any decoder on that API that reads every value, as Tally's must (it
// validates and stores them all): what is left above it is model building and validation.
simdjson::error_code walk_value(simdjson::ondemand::value v, std::size_t& scalars) {
  namespace od = simdjson::ondemand;
  od::json_type type;
  if (auto e = v.type().get(type)) return e;
  switch (type) {
    case od::json_type::array: {
      od::array array;
      if (auto e = v.get_array().get(array)) return e;
      for (auto element : array) {
        od::value child;
        if (auto e = element.get(child)) return e;
        if (auto e = walk_value(child, scalars)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::object: {
      od::object object;
      if (auto e = v.get_object().get(object)) return e;
      for (auto member : object) {
        od::field field;
        if (auto e = std::move(member).get(field)) return e;
        std::string_view key;
        if (auto e = field.unescaped_key().get(key)) return e;
        if (auto e = walk_value(field.value(), scalars)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::number: {
      double d = 0;
      ++scalars;
      return v.get_double().get(d);
    }
    case od::json_type::string: {
      std::string_view text;
      ++scalars;
      return v.get_string().get(text);
    }
    case od::json_type::boolean: {
      bool b = false;
      ++scalars;
      return v.get_bool().get(b);
    }
    case od::json_type::null:
      ++scalars;
      return v.is_null().error();
  }
  return simdjson::INCORRECT_TYPE;
}

void BM_SimdjsonOnDemandWalk(benchmark::State& state) {
  const std::string& body = json_body();
  simdjson::padded_string padded(body);
  simdjson::ondemand::parser parser;
  std::size_t scalars = 0;
  for (auto _ : state) {
    scalars = 0;
    simdjson::ondemand::document doc;
    simdjson::ondemand::value root;
    if (parser.iterate(padded).get(doc) || doc.get_value().get(root) || walk_value(root, scalars)) {
      state.SkipWithError("On Demand walk failed");
      break;
    }
    benchmark::DoNotOptimize(scalars);
  }
  report(state, body.size(), kSamples);
  state.counters["scalars"] = static_cast<double>(scalars);
}
BENCHMARK(BM_SimdjsonOnDemandWalk);

// Every field of every sample, so that a decode that built less than the whole model fails.
std::size_t count_fields(const std::vector<tally::Sample>& samples) {
  std::size_t n = 0;
  for (const tally::Sample& s : samples) n += s.target().fields.size() + s.metric().fields.size();
  return n;
}

// A decode of the whole body per iteration, its result checked and freed inside the timed loop.
// The decoder keeps its per-thread parser buffers across calls, as a collector's decode thread
// does while it polls producers of this size (the steady state).
template <class Decode>
void decode_json(benchmark::State& state, Decode&& decode) {
  const std::string& body = json_body();
  const std::size_t expected_fields = count_fields(tally::bench::mix_samples(0, kSamples));
  std::size_t samples = 0;
  for (auto _ : state) {
    auto items = decode(body);
    if (!items.ok() || items->size() != 1 || (*items)[0].samples.size() != kSamples ||
        count_fields((*items)[0].samples) != expected_fields) {
      state.SkipWithError("decode failed");
      break;
    }
    samples = (*items)[0].samples.size();
    benchmark::DoNotOptimize(items);
  }
  report(state, body.size(), samples);
}

// One memo kept across collections, as the collector keeps one per producer: the samples take
// the timeseries of the last response's (the same series in the same order).
void BM_DecodeJson(benchmark::State& state) {
  tally::CollectDecodeMemo memo;
  decode_json(state, [&](std::string_view body) {
    return tally::decode_collect_response(body, {}, &memo);
  });
}
BENCHMARK(BM_DecodeJson);

// No memo: every metric is decoded, checked and hashed, as on a producer's first collection or
// when all its series changed.
void BM_DecodeJsonFirstCollection(benchmark::State& state) {
  decode_json(state, [](std::string_view body) { return tally::decode_collect_response(body); });
}
BENCHMARK(BM_DecodeJsonFirstCollection);

// The general decoder alone, with a memo: what a response the canonical scanner refuses costs
// (one written with escapes, say), and what every response cost before the scanner.
void BM_DecodeJsonGeneral(benchmark::State& state) {
  tally::CollectDecodeMemo memo;
  decode_json(state, [&](std::string_view body) {
    auto items = tally::collect_json::decode_general(body, {}, memo);
    std::swap(memo.last, memo.next);
    memo.next.clear();
    return items;
  });
}
BENCHMARK(BM_DecodeJsonGeneral);

// The least any Prometheus parser does: split lines, skip comments, read each value. A floor,
// not a parser (no labels, no families, no validation).
void BM_PrometheusTokenize(benchmark::State& state) {
  const std::string& body = prometheus_body();
  std::size_t lines = 0;
  for (auto _ : state) {
    double sum = 0;
    lines = 0;
    std::string_view rest(body);
    while (!rest.empty()) {
      const std::size_t end = std::min(rest.find('\n'), rest.size());
      const std::string_view line = rest.substr(0, end);
      rest.remove_prefix(std::min(end + 1, rest.size()));
      if (line.empty() || line[0] == '#') continue;
      const std::size_t space = line.rfind(' ');
      double v = 0;
      std::from_chars(line.data() + space + 1, line.data() + line.size(), v);
      sum += v;
      ++lines;
    }
    benchmark::DoNotOptimize(sum);
  }
  report(state, body.size(), kSamples);
  state.counters["lines"] = static_cast<double>(lines);
}
BENCHMARK(BM_PrometheusTokenize);

// What the Prometheus decodes parse as; a new producer id each call, as for a new producer.
tally::collector::PrometheusSource bench_source() {
  return {
      .target_name = "bench", .producer_id = tally::Uuid::random(), .instance = "127.0.0.1:9100"};
}

// Times `parse(body, scrape_time)` on the whole Prometheus body, once an iteration, each
// result checked and freed inside the timed loop.
template <class Parse>
void decode_prometheus(benchmark::State& state, Parse parse) {
  const std::string& body = prometheus_body();
  const tally::Timestamp t = tally::bench::bench_time(0);
  std::size_t samples = 0;
  for (auto _ : state) {
    auto parsed = parse(body, t);
    if (!parsed.ok()) {
      state.SkipWithError(("parse failed: " + parsed.status().message()).c_str());
      break;
    }
    samples = parsed->size();
    benchmark::DoNotOptimize(parsed);
  }
  report(state, body.size(), samples);
}

// One parser kept across scrapes, as the collector keeps one per producer; the parse buffers it
// keeps per thread are reused from iteration to iteration, as on a collector's decode thread.
void BM_DecodePrometheus(benchmark::State& state) {
  tally::collector::PrometheusParser parser(bench_source());
  decode_prometheus(
      state, [&](std::string_view body, tally::Timestamp t) { return parser.parse(body, t); });
}
BENCHMARK(BM_DecodePrometheus);

// A new parser for every scrape (made and freed in the timed loop): every line is read whole
// (the series cache is empty), as on a producer's first scrape or when all its series changed.
void BM_DecodePrometheusFirstScrape(benchmark::State& state) {
  decode_prometheus(state, [](std::string_view body, tally::Timestamp t) {
    tally::collector::PrometheusParser parser(bench_source());
    return parser.parse(body, t);
  });
}
BENCHMARK(BM_DecodePrometheusFirstScrape);

}  // namespace

BENCHMARK_MAIN();
