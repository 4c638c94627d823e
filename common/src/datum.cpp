#include "tally/common/datum.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tally {
namespace {

// clang-format off
constexpr std::string_view kDatumTypeNames[kDatumTypeCount] = {
    "bool",           "i8",             "u8",             "i16",           "u16",
    "i32",            "u32",            "i64",            "u64",           "f32",
    "f64",            "string",         "bytes",          "cumulative_i64", "cumulative_u64",
    "cumulative_f32", "cumulative_f64", "histogram_i8",   "histogram_u8",  "histogram_i16",
    "histogram_u16",  "histogram_i32",  "histogram_u32",  "histogram_i64", "histogram_u64",
    "histogram_f32",  "histogram_f64"};
// clang-format on

template <class T>
bool same_value(const T& a, const T& b) {
  if constexpr (std::is_floating_point_v<T>) {
    // Any NaN equals any NaN (JSON carries no payload); otherwise bitwise, so 0.0 != -0.0.
    if (std::isnan(a) && std::isnan(b)) return true;
    return std::memcmp(&a, &b, sizeof(T)) == 0;
  } else {
    return a == b;
  }
}

template <class T>
Status validate_histogram(const Histogram<T>& h) {
  if (h.bins.empty()) return Status::error("histogram has no bins", "invalid");
  if (h.bins.size() == 1 && !h.bins[0].lower) {
    return Status::error("histogram has a single unbounded bin", "invalid");
  }
  for (std::size_t i = 0; i < h.bins.size(); ++i) {
    const auto& lower = h.bins[i].lower;
    if (!lower) {
      if (i != 0) {
        return Status::error(
            "histogram bin " + std::to_string(i) + ": only the first bin may be unbounded below",
            "invalid");
      }
      continue;
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(*lower)) {
        return Status::error("histogram bin " + std::to_string(i) + ": edge is NaN", "invalid");
      }
    }
    if (i > 0 && h.bins[i - 1].lower && !(*h.bins[i - 1].lower < *lower)) {
      return Status::error(
          "histogram bin " + std::to_string(i) + ": edges must be strictly increasing", "invalid");
    }
  }
  return {};
}

}  // namespace

DatumType datum_type(const Datum& d) {
  if (const auto* m = std::get_if<Missing>(&d)) return m->datum_type;
  return static_cast<DatumType>(d.index());
}

bool is_cumulative(DatumType t) {
  return t >= DatumType::kCumulativeI64 && t <= DatumType::kCumulativeF64;
}

bool is_histogram(DatumType t) { return t >= DatumType::kHistogramI8; }

std::optional<Timestamp> start_time(const Datum& d) {
  return std::visit(
      [](const auto& x) -> std::optional<Timestamp> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Missing>) {
          return x.start_time;
        } else if constexpr (requires { x.start_time; }) {
          return x.start_time;
        } else {
          return std::nullopt;
        }
      },
      d);
}

std::string_view to_string(DatumType t) { return kDatumTypeNames[static_cast<int>(t)]; }

std::optional<DatumType> parse_datum_type(std::string_view name) {
  for (int i = 0; i < kDatumTypeCount; ++i) {
    if (kDatumTypeNames[i] == name) return static_cast<DatumType>(i);
  }
  return std::nullopt;
}

Status validate_datum(const Datum& d) {
  return std::visit(
      [](const auto& x) -> Status {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Missing>) {
          const std::string type(to_string(x.datum_type));
          if (x.datum_type == DatumType::kBytes) {
            return Status::error("a bytes datum cannot be missing", "invalid");
          }
          if (has_start_time(x.datum_type) && !x.start_time) {
            return Status::error("missing " + type + " datum needs a start_time", "invalid");
          }
          if (!has_start_time(x.datum_type) && x.start_time) {
            return Status::error("missing " + type + " datum (a gauge) must not have a start_time",
                                 "invalid");
          }
          return {};
        } else if constexpr (requires { x.bins; }) {
          return validate_histogram(x);
        } else {
          return {};
        }
      },
      d);
}

bool same_datum(const Datum& a, const Datum& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&b](const auto& x) -> bool {
        using T = std::decay_t<decltype(x)>;
        const T& y = std::get<T>(b);
        if constexpr (std::is_floating_point_v<T>) {
          return same_value(x, y);
        } else if constexpr (requires { x.bins; }) {
          const auto same_bin = [](const auto& p, const auto& q) {
            return p.count == q.count && p.lower.has_value() == q.lower.has_value() &&
                   (!p.lower || same_value(*p.lower, *q.lower));
          };
          return x.start_time == y.start_time &&
                 std::equal(x.bins.begin(), x.bins.end(), y.bins.begin(), y.bins.end(), same_bin) &&
                 x.n_samples == y.n_samples && same_value(x.min, y.min) &&
                 same_value(x.max, y.max) && same_value(x.sum_of_samples, y.sum_of_samples) &&
                 same_value(x.squared_mean, y.squared_mean);
        } else if constexpr (requires { x.value; }) {
          return x.start_time == y.start_time && same_value(x.value, y.value);
        } else {
          return x == y;
        }
      },
      a);
}

}  // namespace tally
