#include "tally/common/datum.h"

#include <doctest/doctest.h>

#include <limits>
#include <string>

namespace tally {
namespace {

const Timestamp kStart{std::chrono::microseconds(1'700'000'000'000'000)};

TEST_CASE("datum types: names, parsing and the variant order") {
  const std::string_view names[] = {"bool",
                                    "i8",
                                    "u8",
                                    "i16",
                                    "u16",
                                    "i32",
                                    "u32",
                                    "i64",
                                    "u64",
                                    "f32",
                                    "f64",
                                    "string",
                                    "bytes",
                                    "cumulative_i64",
                                    "cumulative_u64",
                                    "cumulative_f32",
                                    "cumulative_f64",
                                    "histogram_i8",
                                    "histogram_u8",
                                    "histogram_i16",
                                    "histogram_u16",
                                    "histogram_i32",
                                    "histogram_u32",
                                    "histogram_i64",
                                    "histogram_u64",
                                    "histogram_f32",
                                    "histogram_f64"};
  for (int i = 0; i < kDatumTypeCount; ++i) {
    const auto t = static_cast<DatumType>(i);
    CAPTURE(names[i]);
    CHECK(to_string(t) == names[i]);
    CHECK(parse_datum_type(names[i]) == t);
  }
  CHECK_FALSE(parse_datum_type("missing"));
  CHECK_FALSE(parse_datum_type("f65"));
  CHECK_FALSE(parse_datum_type("F64"));
  // The index of each alternative is its DatumType.
  CHECK(datum_type(Datum(true)) == DatumType::kBool);
  CHECK(datum_type(Datum(uint8_t{1})) == DatumType::kU8);
  CHECK(datum_type(Datum(1.0f)) == DatumType::kF32);
  CHECK(datum_type(Datum(std::string())) == DatumType::kString);
  CHECK(datum_type(Datum(Bytes{})) == DatumType::kBytes);
  CHECK(datum_type(Datum(Cumulative<float>{})) == DatumType::kCumulativeF32);
  CHECK(datum_type(Datum(Histogram<int8_t>{})) == DatumType::kHistogramI8);
  CHECK(datum_type(Datum(Histogram<double>{})) == DatumType::kHistogramF64);
  CHECK(datum_type(Datum(Missing{DatumType::kCumulativeU64, kStart})) == DatumType::kCumulativeU64);
}

TEST_CASE("datum types: kinds") {
  for (int i = 0; i < kDatumTypeCount; ++i) {
    const auto t = static_cast<DatumType>(i);
    const std::string_view name = to_string(t);
    CAPTURE(name);
    CHECK(is_cumulative(t) == name.starts_with("cumulative_"));
    CHECK(is_histogram(t) == name.starts_with("histogram_"));
    CHECK(has_start_time(t) == (is_cumulative(t) || is_histogram(t)));
  }
}

TEST_CASE("start_time of each kind of datum") {
  CHECK_FALSE(start_time(Datum(int64_t{1})));
  CHECK(start_time(Datum(Cumulative<uint64_t>{kStart, 1})) == kStart);
  Histogram<double> h;
  h.start_time = kStart;
  CHECK(start_time(Datum(h)) == kStart);
  CHECK(start_time(Datum(Missing{DatumType::kCumulativeF64, kStart})) == kStart);
  CHECK_FALSE(start_time(Datum(Missing{DatumType::kF64, std::nullopt})));
}

TEST_CASE("validate_datum: the missing-datum rules") {
  CHECK(validate_datum(Missing{DatumType::kI64, std::nullopt}).ok());
  CHECK(validate_datum(Missing{DatumType::kString, std::nullopt}).ok());
  CHECK(validate_datum(Missing{DatumType::kCumulativeI64, kStart}).ok());
  CHECK(validate_datum(Missing{DatumType::kHistogramF32, kStart}).ok());

  struct Case {
    Missing missing;
    std::string_view error;
  };
  const Case cases[] = {
      {{DatumType::kI64, kStart}, "missing i64 datum (a gauge) must not have a start_time"},
      {{DatumType::kBool, kStart}, "missing bool datum (a gauge) must not have a start_time"},
      {{DatumType::kCumulativeU64, std::nullopt},
       "missing cumulative_u64 datum needs a start_time"},
      {{DatumType::kHistogramU8, std::nullopt}, "missing histogram_u8 datum needs a start_time"},
      {{DatumType::kBytes, std::nullopt}, "a bytes datum cannot be missing"},
      {{DatumType::kBytes, kStart}, "a bytes datum cannot be missing"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.error);
    Status s = validate_datum(c.missing);
    REQUIRE_FALSE(s.ok());
    CHECK(s.message() == c.error);
  }
}

Histogram<int64_t> histogram(std::vector<std::optional<int64_t>> edges) {
  Histogram<int64_t> h;
  h.start_time = kStart;
  for (const auto& e : edges) h.bins.push_back({e, 1});
  return h;
}

TEST_CASE("validate_datum: histogram bins") {
  CHECK(validate_datum(histogram({std::nullopt, 0, 10})).ok());
  CHECK(validate_datum(histogram({0})).ok());
  CHECK(validate_datum(histogram({-5, 0})).ok());

  struct Case {
    std::vector<std::optional<int64_t>> edges;
    std::string_view error;
  };
  const Case cases[] = {
      {{}, "histogram has no bins"},
      {{std::nullopt}, "histogram has a single unbounded bin"},
      {{0, std::nullopt}, "histogram bin 1: only the first bin may be unbounded below"},
      {{0, 0}, "histogram bin 1: edges must be strictly increasing"},
      {{std::nullopt, 5, 3}, "histogram bin 2: edges must be strictly increasing"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.error);
    Status s = validate_datum(histogram(c.edges));
    REQUIRE_FALSE(s.ok());
    CHECK(s.message() == c.error);
  }

  Histogram<double> nan_edge;
  nan_edge.bins = {{0.0, 1}, {std::numeric_limits<double>::quiet_NaN(), 1}};
  Status s = validate_datum(nan_edge);
  REQUIRE_FALSE(s.ok());
  CHECK(s.message() == "histogram bin 1: edge is NaN");
}

TEST_CASE("validate_datum: plain values are always valid") {
  CHECK(validate_datum(std::numeric_limits<double>::quiet_NaN()).ok());
  CHECK(validate_datum(Bytes{}).ok());
  CHECK(validate_datum(Cumulative<int64_t>{kStart, -1}).ok());
}

TEST_CASE("same_datum: NaN equals NaN, -0.0 differs from 0.0, types must match") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(same_datum(nan, nan));
  CHECK(same_datum(nan, -nan));  // JSON carries no NaN sign or payload
  CHECK(same_datum(std::numeric_limits<float>::quiet_NaN(),
                   std::numeric_limits<float>::signaling_NaN()));
  CHECK_FALSE(same_datum(0.0, -0.0));
  CHECK_FALSE(same_datum(0.0f, -0.0f));
  CHECK(same_datum(1.5, 1.5));
  CHECK_FALSE(same_datum(1.5, 2.5));
  CHECK_FALSE(same_datum(nan, 1.0));
  CHECK_FALSE(same_datum(1.0, 1.0f));  // f64 is not f32
  CHECK_FALSE(same_datum(int64_t{1}, uint64_t{1}));
  CHECK(same_datum(Bytes{1, 2}, Bytes{1, 2}));
  CHECK_FALSE(same_datum(Bytes{1, 2}, Bytes{1}));
  CHECK(same_datum(std::string("a"), std::string("a")));

  CHECK(same_datum(Cumulative<double>{kStart, nan}, Cumulative<double>{kStart, nan}));
  CHECK_FALSE(same_datum(Cumulative<double>{kStart, 0.0}, Cumulative<double>{kStart, -0.0}));
  CHECK_FALSE(same_datum(Cumulative<uint64_t>{kStart, 1},
                         Cumulative<uint64_t>{kStart + std::chrono::microseconds(1), 1}));

  Histogram<double> a;
  a.start_time = kStart;
  a.bins = {{std::nullopt, 1}, {0.5, 2}};
  a.min = nan;
  a.sum_of_samples = nan;
  Histogram<double> b = a;
  CHECK(same_datum(a, b));
  b.bins[1].count = 3;
  CHECK_FALSE(same_datum(a, b));
  b = a;
  b.squared_mean = -0.0;
  CHECK_FALSE(same_datum(a, b));
  // Bin edges too: NaN equals NaN, -0.0 differs from 0.0, a missing edge differs from any.
  a.bins = {{nan, 1}, {0.0, 2}};
  b = a;
  CHECK(same_datum(a, b));
  b.bins[1].lower = -0.0;
  CHECK_FALSE(same_datum(a, b));
  b.bins[1].lower = std::nullopt;
  CHECK_FALSE(same_datum(a, b));
  b = a;
  b.bins.pop_back();
  CHECK_FALSE(same_datum(a, b));

  CHECK(same_datum(Missing{DatumType::kI64, std::nullopt}, Missing{DatumType::kI64, std::nullopt}));
  CHECK_FALSE(
      same_datum(Missing{DatumType::kI64, std::nullopt}, Missing{DatumType::kU64, std::nullopt}));
  CHECK_FALSE(same_datum(Missing{DatumType::kI64, std::nullopt}, int64_t{0}));
}

}  // namespace
}  // namespace tally
