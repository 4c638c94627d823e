// Histograms with explicit bin edges, served as histogram_f64 / _i64 / _u64 (DESIGN.md §2).
//
// Edges e0 < e1 < … < ek make k + 2 bins: (-inf, e0), [e0, e1), …, [ek, +inf) — a bin includes
// its lower edge, as in oximeter. linear_edges() and exponential_edges() build common edge sets.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "tally/common/datum.h"
#include "tally/common/time.h"
#include "tally/producer/metric_cell.h"

namespace tally {

// `count` edges: start, start + width, start + 2·width, …
// Throws std::invalid_argument unless count ≥ 1 and width > 0.
std::vector<double> linear_edges(double start, double width, std::size_t count);
std::vector<int64_t> linear_edges_i64(int64_t start, int64_t width, std::size_t count);
// `count` edges: start, start·factor, start·factor², … (latencies: exponential_edges(1e-4, 2, 20)
// spans 100 µs to 52 s). Throws std::invalid_argument unless count ≥ 1, start > 0, factor > 1.
std::vector<double> exponential_edges(double start, double factor, std::size_t count);

// Get one from MetricSet::histogram(); it lives as long as its MetricSet.
//
// record() is lock-free and cannot fail: one atomic add on the bin, atomic adds for the sums and
// compare-exchange loops for min and max (which rarely loop: only a new extreme writes). A read
// taken while other threads record is not one instant: a sample may show in its bin but not yet
// in the sum, or the other way round. The next read catches up; nothing is lost.
template <class T>
class BasicHistogram final : public detail::MetricCell {
  static_assert(std::is_same_v<T, double> || std::is_same_v<T, int64_t> ||
                    std::is_same_v<T, uint64_t>,
                "histograms are histogram_f64, histogram_i64 or histogram_u64");

 public:
  // Throws std::invalid_argument unless `edges` is non-empty, finite and strictly increasing,
  // with at most kMaxEdges edges.
  BasicHistogram(std::vector<T> edges, Timestamp start_time);
  BasicHistogram(const BasicHistogram&) = delete;
  BasicHistogram& operator=(const BasicHistogram&) = delete;

  static constexpr std::size_t kMaxEdges = 1024;

  // Records one sample. NaN and ±infinity are ignored (oximeter refuses them too).
  void record(T value) noexcept {
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(value)) return;
    }
    const auto bin = std::upper_bound(edges_.begin(), edges_.end(), value) - edges_.begin();
    counts_[bin].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(static_cast<HistogramSum<T>>(value), std::memory_order_relaxed);
    const double shifted = static_cast<double>(value) - shift_;
    shifted_sum_.fetch_add(shifted, std::memory_order_relaxed);
    shifted_squares_.fetch_add(shifted * shifted, std::memory_order_relaxed);
    T seen = min_.load(std::memory_order_relaxed);
    while (value < seen && !min_.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
    seen = max_.load(std::memory_order_relaxed);
    while (value > seen && !max_.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
  }

  const std::vector<T>& edges() const { return edges_; }
  Timestamp start_time() const { return start_time_; }
  // The histogram datum; n_samples is the sum of the bin counts read.
  Histogram<T> snapshot() const;
  Datum read() const override;

 private:
  const std::vector<T> edges_;
  const Timestamp start_time_;
  // oximeter's squared_mean is Welford's M2 (the sum of squared deviations from the mean), which
  // cannot be kept with atomics. We keep the sums of (x - shift) and (x - shift)² instead and
  // derive M2 when read; shifting by a value inside the edges keeps the subtraction accurate.
  const double shift_;
  // edges_.size() + 1 bins, packed: a line per bin would make a 20-bin histogram 1.3 KiB and
  // every read walk twenty lines, for a gain only when threads hit neighbouring bins at once.
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  alignas(64) std::atomic<HistogramSum<T>> sum_{};
  std::atomic<double> shifted_sum_{0};
  std::atomic<double> shifted_squares_{0};
  std::atomic<T> min_;
  std::atomic<T> max_;
};

using HistogramF64 = BasicHistogram<double>;  // latencies in seconds, sizes as floats
using HistogramI64 = BasicHistogram<int64_t>;
using HistogramU64 = BasicHistogram<uint64_t>;  // sizes in bytes

extern template class BasicHistogram<double>;
extern template class BasicHistogram<int64_t>;
extern template class BasicHistogram<uint64_t>;

}  // namespace tally
