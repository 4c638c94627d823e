// The small interfaces the collector's logic is written against, so that the code that batches,
// retries and backs off is tested with fakes (a clock that only moves when told, a connection
// factory that fails on demand) instead of sleeps.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "tally/common/pg.h"
#include "tally/common/result.h"

namespace tally::collector {

// A monotonic time source. Implementations must be thread-safe.
class Clock {
 public:
  using duration = std::chrono::steady_clock::duration;
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point now() const = 0;
};

// std::chrono::steady_clock. The returned object lives for the whole program.
inline const Clock& steady_clock() {
  struct Steady final : Clock {
    time_point now() const override { return std::chrono::steady_clock::now(); }
  };
  static const Steady clock;
  return clock;
}

// Opens a new database connection; an error with code "connection" when Postgres cannot be
// reached. Called from the thread that will use the connection. Typically
//   [url] { return pg::Connection::open(url, std::chrono::seconds(5)); }
using ConnectionFactory = std::function<Result<std::unique_ptr<pg::Connection>>()>;

}  // namespace tally::collector
