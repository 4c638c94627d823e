// The part of every ready-made metric that MetricSet reads when it is collected.
#pragma once

#include "tally/common/datum.h"

namespace tally::detail {

class MetricCell {
 public:
  virtual ~MetricCell();
  // The current value as a datum. Safe to call while other threads update the metric.
  virtual Datum read() const = 0;
};

// A small number fixed for the calling thread's life, spreading threads over the stripes of a
// contended counter.
unsigned next_thread_slot() noexcept;
inline unsigned thread_slot() noexcept {
  static thread_local const unsigned slot = next_thread_slot();
  return slot;
}

}  // namespace tally::detail
