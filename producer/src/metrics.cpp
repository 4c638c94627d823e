// The out-of-line parts of the metric helpers: reads, striping, validation of histogram edges.
#include <atomic>
#include <cmath>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "tally/producer/counter.h"
#include "tally/producer/gauge.h"
#include "tally/producer/histogram.h"
#include "tally/producer/metric_cell.h"

namespace tally {
namespace detail {

MetricCell::~MetricCell() = default;

unsigned next_thread_slot() noexcept {
  static std::atomic<unsigned> next{0};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace detail

// ---- counters

template <class T>
BasicCounter<T>::~BasicCounter() {
  delete stripes_.load(std::memory_order_acquire);
}

template <class T>
typename BasicCounter<T>::Stripes* BasicCounter<T>::stripe() noexcept {
  auto* fresh = new (std::nothrow) Stripes;
  if (fresh == nullptr) return nullptr;
  Stripes* expected = nullptr;
  if (stripes_.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) return fresh;
  delete fresh;  // another thread striped first
  return expected;
}

template <class T>
T BasicCounter<T>::value() const noexcept {
  T total = base_.load(std::memory_order_relaxed);
  if (const Stripes* stripes = stripes_.load(std::memory_order_acquire)) {
    for (const Cell& cell : stripes->cells) total += cell.value.load(std::memory_order_relaxed);
  }
  return total;
}

template <class T>
Datum BasicCounter<T>::read() const {
  return Datum(Cumulative<T>{start_time_, value()});
}

template class BasicCounter<uint64_t>;
template class BasicCounter<int64_t>;
template class BasicCounter<double>;

// ---- gauges

template class BasicGauge<double>;
template class BasicGauge<int64_t>;
template class BasicGauge<uint64_t>;
template class BasicGauge<bool>;

void StringGauge::set(std::string_view value) {
  std::lock_guard lock(mu_);
  value_.assign(value);
}

std::string StringGauge::value() const {
  std::lock_guard lock(mu_);
  return value_;
}

Datum StringGauge::read() const { return Datum(value()); }

// ---- histograms

namespace {

template <class T>
void check_edges(const std::vector<T>& edges, std::size_t max_edges) {
  if (edges.empty()) throw std::invalid_argument("histogram edges: at least one edge is needed");
  if (edges.size() > max_edges) {
    throw std::invalid_argument("histogram edges: more than " + std::to_string(max_edges));
  }
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(edges[i])) {
        throw std::invalid_argument("histogram edges: edge " + std::to_string(i) +
                                    " is not finite");
      }
    }
    if (i > 0 && !(edges[i - 1] < edges[i])) {
      throw std::invalid_argument("histogram edges: must be strictly increasing (edge " +
                                  std::to_string(i) + ")");
    }
  }
}

}  // namespace

std::vector<double> linear_edges(double start, double width, std::size_t count) {
  if (count == 0 || !(width > 0) || !std::isfinite(start) || !std::isfinite(width)) {
    throw std::invalid_argument("linear_edges: needs count >= 1 and a finite width > 0");
  }
  std::vector<double> edges(count);
  // start + i·width rather than repeated addition, so edges do not drift (0.1 + 0.1 + …).
  for (std::size_t i = 0; i < count; ++i) edges[i] = start + static_cast<double>(i) * width;
  return edges;
}

std::vector<int64_t> linear_edges_i64(int64_t start, int64_t width, std::size_t count) {
  if (count == 0 || width <= 0) {
    throw std::invalid_argument("linear_edges_i64: needs count >= 1 and width > 0");
  }
  int64_t span = 0;
  int64_t last = 0;
  if (__builtin_mul_overflow(static_cast<int64_t>(count - 1), width, &span) ||
      __builtin_add_overflow(start, span, &last)) {
    throw std::invalid_argument("linear_edges_i64: the last edge overflows int64");
  }
  std::vector<int64_t> edges(count);
  for (std::size_t i = 0; i < count; ++i) edges[i] = start + static_cast<int64_t>(i) * width;
  return edges;
}

std::vector<double> exponential_edges(double start, double factor, std::size_t count) {
  if (count == 0 || !(start > 0) || !(factor > 1) || !std::isfinite(start) ||
      !std::isfinite(factor)) {
    throw std::invalid_argument("exponential_edges: needs count >= 1, start > 0 and factor > 1");
  }
  std::vector<double> edges(count);
  for (std::size_t i = 0; i < count; ++i) {
    edges[i] = start * std::pow(factor, static_cast<double>(i));
  }
  if (!std::isfinite(edges.back())) {
    throw std::invalid_argument("exponential_edges: the last edge overflows");
  }
  return edges;
}

template <class T>
BasicHistogram<T>::BasicHistogram(std::vector<T> edges, Timestamp start_time)
    : edges_((check_edges(edges, kMaxEdges), std::move(edges))),
      start_time_(start_time),
      shift_(static_cast<double>(edges_[edges_.size() / 2])),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(edges_.size() + 1)),
      min_(std::numeric_limits<T>::max()),
      max_(std::numeric_limits<T>::lowest()) {}

template <class T>
Histogram<T> BasicHistogram<T>::snapshot() const {
  Histogram<T> h;
  h.start_time = start_time_;
  h.bins.resize(edges_.size() + 1);
  for (std::size_t i = 0; i <= edges_.size(); ++i) {
    if (i > 0) h.bins[i].lower = edges_[i - 1];
    h.bins[i].count = counts_[i].load(std::memory_order_relaxed);
    h.n_samples += h.bins[i].count;
  }
  if (h.n_samples == 0) return h;  // min, max, sums stay zero, as oximeter's empty histogram
  h.min = min_.load(std::memory_order_relaxed);
  h.max = max_.load(std::memory_order_relaxed);
  // A read racing the first record() may see a count but not yet min/max: report zero rather
  // than the sentinels.
  if (h.min > h.max) h.min = h.max = T{};
  h.sum_of_samples = sum_.load(std::memory_order_relaxed);
  const double n = static_cast<double>(h.n_samples);
  const double s = shifted_sum_.load(std::memory_order_relaxed);
  const double m2 = shifted_squares_.load(std::memory_order_relaxed) - s * s / n;
  h.squared_mean = m2 > 0 ? m2 : 0;
  return h;
}

template <class T>
Datum BasicHistogram<T>::read() const {
  return Datum(snapshot());
}

template class BasicHistogram<double>;
template class BasicHistogram<int64_t>;
template class BasicHistogram<uint64_t>;

}  // namespace tally
