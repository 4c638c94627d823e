// When the registration client tries next: a pure function of the outcomes so far, so the
// schedule is tested without clocks or sleeps.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace tally::detail {

class RenewalSchedule {
 public:
  using Millis = std::chrono::milliseconds;

  struct Options {
    Millis initial_backoff{500};
    Millis max_backoff{30'000};
    double jitter = 0.2;  // each backoff delay is scaled by a random factor in [1-j, 1+j]
  };

  explicit RenewalSchedule(Options options, uint64_t seed = std::random_device{}());

  // Registered with a lease: renew at a quarter of it, so three renewals can fail before it
  // runs out. The backoff starts over.
  Millis after_success(Millis lease);
  // 503, stored but no collector yet: ask again on the backoff schedule to learn the
  // assignment soon after a collector appears.
  Millis after_pending();
  // Unreachable, timed out or refused: initial_backoff doubling per consecutive failure, capped
  // at max_backoff.
  Millis after_failure();

  // Consecutive failed or pending attempts since the last success.
  int streak() const { return streak_; }

 private:
  Millis next_backoff();

  Options options_;
  std::mt19937_64 random_;
  int streak_ = 0;
};

}  // namespace tally::detail
