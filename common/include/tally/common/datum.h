// Datums: the measured values (DESIGN.md §2) — gauges, cumulative counters, histograms and
// the missing datum.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "tally/common/result.h"
#include "tally/common/time.h"

namespace tally {

// The order matches Datum's alternatives: datum_type(d) == DatumType(d.index()) except for Missing.
enum class DatumType : uint8_t {
  kBool, kI8, kU8, kI16, kU16, kI32, kU32, kI64, kU64, kF32, kF64, kString, kBytes,
  kCumulativeI64, kCumulativeU64, kCumulativeF32, kCumulativeF64,
  kHistogramI8, kHistogramU8, kHistogramI16, kHistogramU16, kHistogramI32, kHistogramU32,
  kHistogramI64, kHistogramU64, kHistogramF32, kHistogramF64,
};
inline constexpr int kDatumTypeCount = 27;

using Bytes = std::vector<uint8_t>;

template <class T>
struct Cumulative {
  Timestamp start_time;
  T value{};
  bool operator==(const Cumulative&) const = default;
};

// One histogram bin: it covers [lower, next bin's lower). Only the first bin may be
// unbounded below (lower == nullopt, oximeter's "range_to"); the last bin is always
// unbounded above (oximeter's "range_from").
template <class T>
struct Bin {
  std::optional<T> lower;
  uint64_t count = 0;
  bool operator==(const Bin&) const = default;
};

// oximeter keeps the sum of samples in a wider type: f64 for floats, i64/u64 for integers.
template <class T>
using HistogramSum =
    std::conditional_t<std::is_floating_point_v<T>, double,
                       std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;

template <class T>
struct Histogram {
  Timestamp start_time;
  std::vector<Bin<T>> bins;
  uint64_t n_samples = 0;
  T min{};
  T max{};
  HistogramSum<T> sum_of_samples{};
  double squared_mean = 0;
  bool operator==(const Histogram&) const = default;
};

// A datum with no value: cumulative and histogram types need a start_time, gauges must not
// have one, and bytes cannot be missing (validate_datum checks this).
struct Missing {
  DatumType datum_type = DatumType::kF64;
  std::optional<Timestamp> start_time;
  bool operator==(const Missing&) const = default;
};

using Datum = std::variant<
    bool, int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, int64_t, uint64_t, float, double,
    std::string, Bytes, Cumulative<int64_t>, Cumulative<uint64_t>, Cumulative<float>,
    Cumulative<double>, Histogram<int8_t>, Histogram<uint8_t>, Histogram<int16_t>,
    Histogram<uint16_t>, Histogram<int32_t>, Histogram<uint32_t>, Histogram<int64_t>,
    Histogram<uint64_t>, Histogram<float>, Histogram<double>, Missing>;

// The declared type; for a Missing datum, the type it stands in for.
DatumType datum_type(const Datum& d);
inline bool is_missing(const Datum& d) { return std::holds_alternative<Missing>(d); }
bool is_cumulative(DatumType t);
bool is_histogram(DatumType t);
inline bool has_start_time(DatumType t) { return is_cumulative(t) || is_histogram(t); }
std::optional<Timestamp> start_time(const Datum& d);

std::string_view to_string(DatumType t);  // "f64", "cumulative_u64", "histogram_f64", …
std::optional<DatumType> parse_datum_type(std::string_view name);

// The rules of DESIGN.md §2 for one datum: missing-datum start_time rules, bytes not missing,
// histogram bins (at least one, only the first unbounded below, lower edges strictly
// increasing, no NaN edges).
Status validate_datum(const Datum& d);

// Equality that treats NaN as equal to NaN (bitwise for floats), for round-trip checks.
bool same_datum(const Datum& a, const Datum& b);

}  // namespace tally
