// common/src/json_text.cpp: the number formatting of the encoders, pinned byte for byte against
// std::to_chars (the general path it replaces) over edge cases and millions of values.
#include "tally/common/json_text.h"

#include <doctest/doctest.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace tally {
namespace {

template <class T>
std::string to_chars_text(T value) {
  char text[64];
  const auto [last, ec] = std::to_chars(text, text + sizeof text, value);
  REQUIRE(ec == std::errc());
  return std::string(text, last);
}

template <class T>
std::string shortest(T value) {
  std::string out = "x";  // appends: what is there stays
  append_shortest(out, value);
  return out.substr(1);
}

template <class T>
std::string decimal(T value) {
  std::string out = "x";
  append_decimal(out, value);
  return out.substr(1);
}

// Counts mismatches and shows the first few, so a broken fast path fails with examples rather
// than with a million lines.
struct Mismatches {
  int count = 0;
  template <class T>
  void check(T value) {
    const std::string want = to_chars_text(value);
    if constexpr (std::is_floating_point_v<T>) {
      const std::string got = shortest(value);
      if (got != want && ++count <= 10) {
        using Bits = std::conditional_t<std::is_same_v<T, double>, uint64_t, uint32_t>;
        char bits[17];
        const auto end = std::to_chars(bits, bits + sizeof bits, std::bit_cast<Bits>(value), 16);
        FAIL_CHECK("value bits 0x" << std::string(bits, end.ptr) << ": got " << got << ", to_chars "
                                   << want);
      }
    } else {
      const std::string got = decimal(value);
      if (got != want && ++count <= 10) FAIL_CHECK(value << ": got " << got);
    }
  }
};

TEST_CASE("append_shortest writes the edge cases as std::to_chars does") {
  CHECK(shortest(0.0) == "0");
  CHECK(shortest(-0.0) == "-0");
  CHECK(shortest(1.0) == "1");
  CHECK(shortest(-1.0) == "-1");
  CHECK(shortest(10.0) == "10");
  CHECK(shortest(100000.0) == "1e+05");
  CHECK(shortest(123456.0) == "123456");
  CHECK(shortest(1e21) == "1e+21");
  CHECK(shortest(1e-7) == "1e-07");
  CHECK(shortest(0.001) == "0.001");
  CHECK(shortest(0.0001) == "1e-04");
  CHECK(shortest(0.1) == "0.1");
  CHECK(shortest(0.1 + 0.2) == "0.30000000000000004");
  CHECK(shortest(1.5) == "1.5");
  CHECK(shortest(0x1p53) == "9007199254740992");
  CHECK(shortest(0x1p53 + 2) == "9007199254740994");
  CHECK(shortest(1e300) == "1e+300");
  CHECK(shortest(-2.5e-300) == "-2.5e-300");
  CHECK(shortest(1.0f) == "1");
  CHECK(shortest(0.1f) == "0.1");
  CHECK(shortest(-0.0f) == "-0");
  CHECK(shortest(1e10f) == "1e+10");

  Mismatches m;
  const double doubles[] = {0.0,
                            -0.0,
                            1.0,
                            0x1p53 - 1,
                            0x1p53,
                            0x1p53 + 2,
                            0x1p54,
                            0x1p63,
                            0x1p64,
                            1e15,
                            1e15 - 1,
                            1e15 + 1,
                            999999999999999.9,
                            99999999999999.99,
                            1e16,
                            1e17,
                            1e21,
                            1e22,
                            1e23,
                            1e-7,
                            1e-5,
                            1e-22,
                            1e-23,
                            0.5,
                            0.25,
                            0.125,
                            1.0 / 3,
                            2.0 / 3,
                            123.456,
                            0.000123456,
                            std::numeric_limits<double>::min(),
                            std::numeric_limits<double>::max(),
                            std::numeric_limits<double>::denorm_min(),
                            std::numeric_limits<double>::epsilon(),
                            std::nextafter(0x1p53, 0.0),
                            std::nextafter(1.0, 0.0),
                            std::nextafter(1.0, 2.0),
                            std::nextafter(0.1, 0.0),
                            std::nextafter(0.1, 1.0),
                            std::nextafter(1e15, 0.0),
                            std::nextafter(1e-22, 0.0),
                            0.09999999999999999,
                            9.999999999999999e22,
                            5e-324,
                            2.2e-308,
                            4.9406564584124654e-324,
                            1.7976931348623157e308,
                            0.30000000000000004};
  for (double d : doubles) {
    m.check(d);
    m.check(-d);
  }
  // NaN and infinities are not the fast path's, but what to_chars writes is kept.
  m.check(std::numeric_limits<double>::quiet_NaN());
  m.check(std::numeric_limits<double>::infinity());
  m.check(-std::numeric_limits<double>::infinity());
  m.check(std::numeric_limits<float>::infinity());
  m.check(std::numeric_limits<float>::denorm_min());
  m.check(std::numeric_limits<float>::max());
  m.check(0x1p24f);
  m.check(0x1p24f + 2);
  m.check(std::nextafter(0x1p24f, 0.0f));
  CHECK(m.count == 0);
}

TEST_CASE("append_shortest matches std::to_chars on integral doubles and floats") {
  Mismatches m;
  for (int64_t i = -200'000; i <= 200'000; ++i) {
    m.check(static_cast<double>(i));
    m.check(static_cast<float>(i));
  }
  // Every digit count and number of trailing zeros, up to and past 2^53 (and 2^24 for floats).
  std::mt19937_64 rng(1);
  for (int i = 0; i < 300'000; ++i) {
    const int digits = 1 + static_cast<int>(rng() % 17);
    uint64_t n = rng() % static_cast<uint64_t>(std::pow(10.0, digits));
    const int zeros = static_cast<int>(rng() % 8);
    for (int z = 0; z < zeros && n < 1'000'000'000'000'000'000u; ++z) n *= 10;
    m.check(static_cast<double>(n));
    m.check(-static_cast<double>(n));
    m.check(static_cast<float>(n));
  }
  for (int e = 0; e < 64; ++e) {
    for (int64_t delta = -3; delta <= 3; ++delta) {
      m.check(std::ldexp(1.0, e) + static_cast<double>(delta));
      m.check(std::ldexp(1.0f, e) + static_cast<float>(delta));
    }
  }
  for (int e = 0; e <= 22; ++e) {
    for (int d = 1; d <= 9; ++d) m.check(d * std::pow(10.0, e));
  }
  CHECK(m.count == 0);
}

TEST_CASE("append_shortest matches std::to_chars on short decimals and on random bits") {
  Mismatches m;
  std::mt19937_64 rng(2);
  // n·10^-k made three ways: exactly rounded, by a product (often one ulp off, so not short),
  // and as a bench histogram's values are (0.001 × route).
  for (int i = 0; i < 300'000; ++i) {
    const int digits = 1 + static_cast<int>(rng() % 17);
    const uint64_t n = 1 + rng() % static_cast<uint64_t>(std::pow(10.0, digits));
    const int k = static_cast<int>(rng() % 26);
    const double n_double = static_cast<double>(n);
    m.check(n_double / std::pow(10.0, k));
    m.check(-n_double / std::pow(10.0, k));
    m.check(n_double * std::pow(0.1, k));
    m.check(std::nextafter(n_double / std::pow(10.0, k), 0.0));
    m.check(static_cast<float>(n_double / std::pow(10.0, k)));
  }
  for (int route = 0; route < 100'000; ++route) {
    m.check(0.001 * route);
    m.check(1e-4 * std::pow(2.0, route % 40));
    m.check(route * 0.1);
  }
  // Every exponent, subnormals, NaNs and infinities included.
  for (int i = 0; i < 1'000'000; ++i) {
    m.check(std::bit_cast<double>(static_cast<uint64_t>(rng())));
    m.check(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  }
  CHECK(m.count == 0);
}

TEST_CASE("append_decimal matches std::to_chars on 64-bit integers") {
  Mismatches m;
  for (int64_t i = -100'000; i <= 100'000; ++i) {
    m.check(i);
    if (i >= 0) m.check(static_cast<uint64_t>(i));
  }
  uint64_t p = 1;
  for (int e = 0; e < 20; ++e, p *= 10) {
    for (uint64_t v : {p - 1, p, p + 1}) {
      m.check(v);
      m.check(static_cast<int64_t>(v));
      m.check(-static_cast<int64_t>(v));
    }
  }
  m.check(std::numeric_limits<uint64_t>::max());
  m.check(std::numeric_limits<int64_t>::max());
  m.check(std::numeric_limits<int64_t>::min());
  m.check(std::numeric_limits<int64_t>::min() + 1);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 300'000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    m.check(v);
    m.check(static_cast<int64_t>(v));
  }
  CHECK(m.count == 0);
}

}  // namespace
}  // namespace tally
