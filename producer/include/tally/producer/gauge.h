// Gauges: values that go up and down (queue depth, in-flight requests, temperature), served as
// the datum type of their value: f64, i64, u64, bool or string.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>

#include "tally/producer/metric_cell.h"

namespace tally {

// Get one from MetricSet::gauge() and friends; it lives as long as its MetricSet. Every
// operation is one atomic instruction (a compare-exchange loop for add() on a double): lock-free
// and it cannot fail.
template <class T>
class BasicGauge final : public detail::MetricCell {
  static_assert(std::is_same_v<T, double> || std::is_same_v<T, int64_t> ||
                    std::is_same_v<T, uint64_t> || std::is_same_v<T, bool>,
                "gauges hold f64, i64, u64 or bool (StringGauge holds strings)");

 public:
  BasicGauge() = default;
  BasicGauge(const BasicGauge&) = delete;
  BasicGauge& operator=(const BasicGauge&) = delete;

  void set(T value) noexcept { value_.store(value, std::memory_order_relaxed); }
  // add/sub wrap around for integers, as unsigned arithmetic does.
  void add(T delta) noexcept requires(!std::is_same_v<T, bool>) {
    value_.fetch_add(delta, std::memory_order_relaxed);
  }
  void sub(T delta) noexcept requires(!std::is_same_v<T, bool>) {
    value_.fetch_sub(delta, std::memory_order_relaxed);
  }
  T value() const noexcept { return value_.load(std::memory_order_relaxed); }
  Datum read() const override { return Datum(value()); }

 private:
  // A line of its own: gauges such as in-flight counts are written by every thread.
  alignas(64) std::atomic<T> value_{};
};

using Gauge = BasicGauge<double>;      // f64
using GaugeI64 = BasicGauge<int64_t>;  // i64: in-flight requests, queue depth
using GaugeU64 = BasicGauge<uint64_t>;
using GaugeBool = BasicGauge<bool>;

// A gauge whose datum is a string: build information, the current leader, a mode. Unlike the
// other metrics set() takes a short lock (copying a string cannot be one atomic step); set it
// when it changes, not per request.
class StringGauge final : public detail::MetricCell {
 public:
  StringGauge() = default;
  void set(std::string_view value);
  std::string value() const;
  Datum read() const override;

 private:
  mutable std::mutex mu_;
  std::string value_;
};

extern template class BasicGauge<double>;
extern template class BasicGauge<int64_t>;
extern template class BasicGauge<uint64_t>;
extern template class BasicGauge<bool>;

}  // namespace tally
