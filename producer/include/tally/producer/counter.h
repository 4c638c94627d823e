// Counters: cumulative values that only go up, served as cumulative_u64 / _i64 / _f64 with the
// time the counter was created as their start_time.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "tally/common/time.h"
#include "tally/producer/metric_cell.h"

namespace tally {

// Get one from MetricSet::counter(); it lives as long as its MetricSet.
//
// add() is lock-free and cannot fail. Like Java's LongAdder, a counter is one
// atomic until two threads collide on it; from then on each thread adds to its own cache-line
// stripe and reads sum the stripes, so a hot counter does not bounce one cache line between
// cores. Reads are exact once the writers have stopped, and never lose an increment.
template <class T>
class BasicCounter final : public detail::MetricCell {
  static_assert(std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t> ||
                    std::is_same_v<T, double>,
                "counters are cumulative_u64, cumulative_i64 or cumulative_f64");

 public:
  explicit BasicCounter(Timestamp start_time) : start_time_(start_time) {}
  ~BasicCounter() override;
  BasicCounter(const BasicCounter&) = delete;
  BasicCounter& operator=(const BasicCounter&) = delete;

  // Adds `n`. Negative and NaN amounts are ignored: a counter only goes up.
  void add(T n = 1) noexcept {
    if constexpr (!std::is_unsigned_v<T>) {
      if (!(n >= 0)) return;
    }
    Stripes* stripes = stripes_.load(std::memory_order_acquire);
    if (stripes == nullptr) {
      T current = base_.load(std::memory_order_relaxed);
      // A failed exchange means another thread is adding right now: time to stripe.
      if (base_.compare_exchange_weak(current, current + n, std::memory_order_relaxed)) return;
      stripes = stripe();
      if (stripes == nullptr) {  // out of memory: stay on the single atomic
        base_.fetch_add(n, std::memory_order_relaxed);
        return;
      }
    }
    stripes->cells[detail::thread_slot() % kStripes].value.fetch_add(n, std::memory_order_relaxed);
  }
  void increment() noexcept { add(1); }

  T value() const noexcept;
  Timestamp start_time() const { return start_time_; }
  Datum read() const override;

 private:
  static constexpr unsigned kStripes = 16;
  struct alignas(64) Cell {
    std::atomic<T> value{};
  };
  struct Stripes {
    Cell cells[kStripes];
  };

  Stripes* stripe() noexcept;

  alignas(64) std::atomic<T> base_{};
  std::atomic<Stripes*> stripes_{nullptr};
  const Timestamp start_time_;
};

using Counter = BasicCounter<uint64_t>;    // cumulative_u64: requests, bytes, errors
using CounterI64 = BasicCounter<int64_t>;  // cumulative_i64
using CounterF64 = BasicCounter<double>;   // cumulative_f64: seconds of CPU, joules

extern template class BasicCounter<uint64_t>;
extern template class BasicCounter<int64_t>;
extern template class BasicCounter<double>;

}  // namespace tally
