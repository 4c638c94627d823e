#include "renewal_schedule.h"

#include <algorithm>

namespace tally::detail {

RenewalSchedule::RenewalSchedule(Options options, uint64_t seed)
    : options_(options), random_(seed) {
  options_.initial_backoff = std::max(options_.initial_backoff, Millis(1));
  options_.max_backoff = std::max(options_.max_backoff, options_.initial_backoff);
  options_.jitter = std::clamp(options_.jitter, 0.0, 1.0);
}

RenewalSchedule::Millis RenewalSchedule::after_success(Millis lease) {
  streak_ = 0;
  return std::max(lease / 4, Millis(1));
}

RenewalSchedule::Millis RenewalSchedule::after_pending() { return next_backoff(); }

RenewalSchedule::Millis RenewalSchedule::after_failure() { return next_backoff(); }

RenewalSchedule::Millis RenewalSchedule::next_backoff() {
  ++streak_;
  // Doubling stops once past the cap; counting on would overflow the shift.
  double delay = static_cast<double>(options_.initial_backoff.count());
  const double cap = static_cast<double>(options_.max_backoff.count());
  for (int i = 1; i < streak_ && delay < cap; ++i) delay *= 2;
  delay = std::min(delay, cap);
  if (options_.jitter > 0) {
    std::uniform_real_distribution<double> spread(1 - options_.jitter, 1 + options_.jitter);
    delay = std::min(delay * spread(random_), cap);
  }
  return std::max(Millis(static_cast<int64_t>(delay)), Millis(1));
}

}  // namespace tally::detail
