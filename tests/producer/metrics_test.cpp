// The metric helpers on their own: values, datums, and exact totals under concurrent updates.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tally/producer/counter.h"
#include "tally/producer/gauge.h"
#include "tally/producer/histogram.h"

namespace tally {
namespace {

const Timestamp kStart = Timestamp{} + std::chrono::seconds(1'700'000'000);

// Runs `body(thread_index)` on `n` threads at once and joins them.
template <class Body>
void on_threads(int n, Body body) {
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(body, i);
  for (auto& t : threads) t.join();
}

TEST_CASE("counter: adds, ignores decrements, reads as cumulative with its start time") {
  Counter c(kStart);
  c.add();
  c.add(41);
  CHECK(c.value() == 42);
  CHECK(c.read() == Datum(Cumulative<uint64_t>{kStart, 42}));

  CounterI64 i(kStart);
  i.add(5);
  i.add(-3);
  CHECK(i.value() == 5);

  CounterF64 f(kStart);
  f.add(1.5);
  f.add(-1);
  f.add(std::nan(""));
  CHECK(f.value() == 1.5);
  CHECK(f.read() == Datum(Cumulative<double>{kStart, 1.5}));
}

TEST_CASE("counter: concurrent adds from several threads add up exactly") {
  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 250'000;
  Counter c(kStart);
  CounterF64 f(kStart);
  on_threads(kThreads, [&](int) {
    for (uint64_t i = 0; i < kPerThread; ++i) {
      c.add();
      f.add(0.5);  // exact in binary, so the float total is exact too
    }
  });
  CHECK(c.value() == kThreads * kPerThread);
  CHECK(f.value() == kThreads * kPerThread * 0.5);
}

TEST_CASE("counter: reads while other threads add never go down") {
  Counter c(kStart);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done) {
      const uint64_t now_value = c.value();
      CHECK(now_value >= last);
      last = now_value;
    }
  });
  on_threads(3, [&](int) {
    for (int i = 0; i < 100'000; ++i) c.add();
  });
  done = true;
  reader.join();
  CHECK(c.value() == 300'000);
}

TEST_CASE("gauges: set, add, sub, datums of their own type") {
  Gauge g;
  g.set(2.5);
  g.add(1);
  g.sub(0.5);
  CHECK(g.value() == 3.0);
  CHECK(g.read() == Datum(3.0));

  GaugeI64 i;
  i.sub(2);
  CHECK(i.read() == Datum(int64_t{-2}));

  GaugeU64 u;
  u.set(7);
  CHECK(u.read() == Datum(uint64_t{7}));

  GaugeBool b;
  b.set(true);
  CHECK(b.read() == Datum(true));

  StringGauge s;
  CHECK(s.read() == Datum(std::string()));
  s.set("v1.2.3 (abc123)");
  CHECK(s.read() == Datum(std::string("v1.2.3 (abc123)")));
}

TEST_CASE("gauge: concurrent add and sub balance out exactly") {
  GaugeI64 in_flight;
  on_threads(4, [&](int) {
    for (int i = 0; i < 100'000; ++i) {
      in_flight.add(1);
      in_flight.sub(1);
    }
  });
  CHECK(in_flight.value() == 0);
}

TEST_CASE("histogram: bins hold their lower edge, statistics match the samples") {
  HistogramF64 h({1.0, 2.0, 4.0}, kStart);
  for (double v : {0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 10.0}) h.record(v);
  const Histogram<double> s = h.snapshot();
  CHECK(s.start_time == kStart);
  REQUIRE(s.bins.size() == 4);
  CHECK(s.bins[0] == Bin<double>{std::nullopt, 1});  // (-inf, 1): 0.5
  CHECK(s.bins[1] == Bin<double>{1.0, 2});           // [1, 2): 1.0 1.5
  CHECK(s.bins[2] == Bin<double>{2.0, 2});           // [2, 4): 2.0 3.0
  CHECK(s.bins[3] == Bin<double>{4.0, 2});           // [4, inf): 4.0 10.0
  CHECK(s.n_samples == 7);
  CHECK(s.min == 0.5);
  CHECK(s.max == 10.0);
  CHECK(s.sum_of_samples == 22.0);
  // oximeter's squared_mean is Welford's M2: the sum of squared deviations from the mean.
  const double mean = 22.0 / 7;
  double m2 = 0;
  for (double v : {0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 10.0}) m2 += (v - mean) * (v - mean);
  CHECK(s.squared_mean == doctest::Approx(m2).epsilon(1e-12));
  CHECK(validate_datum(h.read()).ok());
}

TEST_CASE("histogram: empty reads as zeros, non-finite samples are ignored") {
  HistogramF64 h({0.0}, kStart);
  h.record(std::nan(""));
  h.record(std::numeric_limits<double>::infinity());
  const Histogram<double> s = h.snapshot();
  CHECK(s.n_samples == 0);
  CHECK(s.min == 0);
  CHECK(s.max == 0);
  CHECK(s.sum_of_samples == 0);
  CHECK(s.squared_mean == 0);
}

TEST_CASE("histogram: integer samples, exact sums") {
  HistogramU64 h({10, 100, 1000}, kStart);
  for (uint64_t v : {1u, 10u, 99u, 5000u}) h.record(v);
  const Histogram<uint64_t> s = h.snapshot();
  CHECK(s.bins[0].count == 1);
  CHECK(s.bins[1].count == 2);
  CHECK(s.bins[2].count == 0);
  CHECK(s.bins[3].count == 1);
  CHECK(s.sum_of_samples == 5110);
  CHECK(s.min == 1);
  CHECK(s.max == 5000);

  HistogramI64 i({-5, 0, 5}, kStart);
  i.record(-100);
  i.record(7);
  CHECK(i.snapshot().min == -100);
  CHECK(i.snapshot().sum_of_samples == -93);
}

TEST_CASE("histogram: concurrent records count exactly") {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100'000;
  HistogramI64 h(linear_edges_i64(0, 10, 10), kStart);
  on_threads(kThreads, [&](int t) {
    for (int i = 0; i < kPerThread; ++i) h.record((i + t) % 120 - 10);
  });
  const Histogram<int64_t> s = h.snapshot();
  CHECK(s.n_samples == uint64_t{kThreads} * kPerThread);
  int64_t expected_sum = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) expected_sum += (i + t) % 120 - 10;
  }
  CHECK(s.sum_of_samples == expected_sum);
  CHECK(s.min == -10);
  CHECK(s.max == 109);
}

TEST_CASE("edge helpers") {
  CHECK(linear_edges(0, 0.1, 4) == std::vector<double>{0, 0.1, 0.2, 0.30000000000000004});
  CHECK(linear_edges_i64(-10, 5, 3) == std::vector<int64_t>{-10, -5, 0});
  CHECK(exponential_edges(0.001, 10, 4) == std::vector<double>{0.001, 0.01, 0.1, 1});
  CHECK_THROWS_AS(linear_edges(0, 0, 3), std::invalid_argument);
  CHECK_THROWS_AS(linear_edges(0, 1, 0), std::invalid_argument);
  CHECK_THROWS_AS(exponential_edges(0, 2, 3), std::invalid_argument);
  CHECK_THROWS_AS(exponential_edges(1, 1, 3), std::invalid_argument);
  CHECK_THROWS_AS(exponential_edges(1, 10, 400), std::invalid_argument);
}

TEST_CASE("histogram: invalid edges are refused with a clear message") {
  struct Case {
    std::vector<double> edges;
    const char* message;
  };
  const Case cases[] = {
      {{}, "histogram edges: at least one edge is needed"},
      {{1, 1}, "histogram edges: must be strictly increasing (edge 1)"},
      {{2, 1}, "histogram edges: must be strictly increasing (edge 1)"},
      {{0, std::nan("")}, "histogram edges: edge 1 is not finite"},
      {std::vector<double>(2000, 1.0), "histogram edges: more than 1024"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    CHECK_THROWS_WITH_AS(HistogramF64(c.edges, kStart), c.message, std::invalid_argument);
  }
}

}  // namespace
}  // namespace tally
