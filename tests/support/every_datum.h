// Samples of every shape for round-trip tests: a datum of every alternative of Datum, a target
// and metrics with a field of every type, values varied by a seed.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tally/common/sample.h"

namespace tally::test {

inline Timestamp ts(std::string_view text) {
  Result<Timestamp> t = parse_rfc3339(text);
  REQUIRE_MESSAGE(t.ok(), t.error());
  return *t;
}

inline Uuid uuid(std::string_view text) {
  Result<Uuid> u = Uuid::parse(text);
  REQUIRE_MESSAGE(u.ok(), u.error());
  return *u;
}

inline IpAddr ip(std::string_view text) {
  Result<IpAddr> a = IpAddr::parse(text);
  REQUIRE_MESSAGE(a.ok(), a.error());
  return *a;
}

template <class T>
Histogram<T> histogram(Timestamp start, std::vector<std::optional<T>> edges, uint64_t seed) {
  Histogram<T> h;
  h.start_time = start;
  for (const auto& e : edges) h.bins.push_back({e, seed++ * 3});
  h.n_samples = seed;
  h.min = edges.back() ? *edges.back() : T{};
  h.max = std::numeric_limits<T>::max();
  h.sum_of_samples = static_cast<HistogramSum<T>>(seed);
  h.squared_mean = 0.5 * static_cast<double>(seed);
  return h;
}

// One datum of every alternative of Datum (missing ones of gauge, cumulative and histogram
// types), values varied by `seed`.
inline std::vector<Datum> every_datum(uint64_t seed) {
  const Timestamp start = ts("2026-11-22T09:00:00.25Z") + std::chrono::microseconds(seed % 7);
  const auto n = static_cast<int64_t>(seed);
  const double x = std::ldexp(static_cast<double>(seed) + 0.1, static_cast<int>(seed % 40) - 20);
  return {
      seed % 2 == 0,
      static_cast<int8_t>(-n),
      static_cast<uint8_t>(n),
      static_cast<int16_t>(-n * 99),
      static_cast<uint16_t>(n * 99),
      static_cast<int32_t>(-n * 99'999),
      static_cast<uint32_t>(n * 99'999),
      std::numeric_limits<int64_t>::min() + n,
      std::numeric_limits<uint64_t>::max() - seed,
      static_cast<float>(x),
      seed % 5 == 0 ? std::numeric_limits<double>::quiet_NaN() : -x,
      std::string("v\"\\\n\x01 caf\xC3\xA9 #") + std::to_string(seed),
      Bytes{0, 255, static_cast<uint8_t>(seed)},
      Cumulative<int64_t>{start, n},
      Cumulative<uint64_t>{start, seed * 1000},
      Cumulative<float>{start, static_cast<float>(x)},
      Cumulative<double>{start, seed % 3 == 0 ? std::numeric_limits<double>::infinity() : x},
      histogram<int8_t>(start, {std::nullopt, int8_t{-128}, int8_t{0}, int8_t{127}}, seed),
      histogram<uint8_t>(start, {uint8_t{0}, uint8_t{10}, uint8_t{255}}, seed),
      histogram<int16_t>(start, {std::nullopt, int16_t{-5}, int16_t{5}}, seed),
      histogram<uint16_t>(start, {uint16_t{1}}, seed),
      histogram<int32_t>(start, {std::nullopt, int32_t{-70'000}, int32_t{70'000}}, seed),
      histogram<uint32_t>(start, {uint32_t{0}, uint32_t{4'000'000'000}}, seed),
      histogram<int64_t>(start, {std::numeric_limits<int64_t>::min(), int64_t{0}}, seed),
      histogram<uint64_t>(start, {uint64_t{0}, std::numeric_limits<uint64_t>::max()}, seed),
      histogram<float>(start, {std::nullopt, -0.5f, 0.1f, 3e38f}, seed),
      histogram<double>(start, {std::nullopt, 1e-4, 2e-4, 4e-4, 8e-4, 1.6e-3, 0.1, 1e300}, seed),
      Missing{DatumType::kI64, std::nullopt},
      Missing{DatumType::kCumulativeF64, start},
      Missing{DatumType::kHistogramU16, start},
  };
}

inline Target target_of(uint64_t seed) {
  return Target{"http_service",
                {{"name", std::string("api-") + std::to_string(seed % 3)},
                 {"instance_id", *Uuid::parse("6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f")}}};
}

// Every field type across target and metric.
inline Metric metric_of(uint64_t seed, std::size_t kind) {
  return Metric{"m" + std::to_string(kind),
                {{"route", "/v1/items/" + std::to_string(seed)},
                 {"i8", static_cast<int8_t>(-static_cast<int>(seed % 128))},
                 {"u8", static_cast<uint8_t>(seed)},
                 {"i16", int16_t{-300}},
                 {"u16", uint16_t{503}},
                 {"i32", int32_t{-70'000}},
                 {"u32", uint32_t{4'000'000'000}},
                 {"i64", std::numeric_limits<int64_t>::min()},
                 {"u64", std::numeric_limits<uint64_t>::max()},
                 {"ok", seed % 2 == 0},
                 {"peer", *IpAddr::parse(seed % 2 ? "10.0.0.1" : "2001:db8::1")}}};
}

}  // namespace tally::test
