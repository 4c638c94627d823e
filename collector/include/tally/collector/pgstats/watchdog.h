// Enforces the Postgres monitor's query_timeout: a query is armed with a deadline and a cancel
// action (Connection::cancel()); if it is still armed when the deadline passes, the watchdog's
// thread runs the action. The query's thread then disarms it and learns that it fired, closes
// that connection and counts a timeout.
//
//   auto token = watchdog.arm(Clock::now() + timeout, [conn] { conn->cancel(); });
//   auto rows = conn->exec(sql);               // returns early once cancelled
//   if (watchdog.disarm(token)) …              // timed out: close the connection
//
// The action runs outside the watchdog's lock, so a slow cancel (PQcancel opens a connection of
// its own) holds up other cancels but never arm() or disarm(). It must keep whatever it uses
// alive (capture the connection by shared_ptr). Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "tally/collector/deps.h"

namespace tally::collector::pgstats {

class Watchdog {
 public:
  using Token = uint64_t;

  explicit Watchdog(const Clock& clock = steady_clock());
  ~Watchdog();  // stop()s
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts the thread that calls fire_expired() at each deadline. Tests may call it instead.
  void start();
  // Joins the thread; armed entries stay until disarmed. Idempotent.
  void stop();

  Token arm(Clock::time_point deadline, std::function<void()> cancel);
  // Forgets the entry; true when it fired (by its deadline or fire_now()).
  bool disarm(Token token);
  // Fires an armed entry at once (a target removed while its query runs). False if unknown.
  bool fire_now(Token token);

  // Runs the action of every entry whose deadline is ≤ now and marks it fired; returns how many.
  std::size_t fire_expired(Clock::time_point now);

 private:
  struct Entry {
    Clock::time_point deadline;
    std::function<void()> cancel;
    bool fired = false;
  };
  void run();

  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::map<Token, Entry> entries_;                           // mu_
  std::set<std::pair<Clock::time_point, Token>> deadlines_;  // mu_: armed, not fired
  Token next_token_ = 1;                                     // mu_
  bool stopping_ = false;                                    // mu_
  std::thread thread_;
};

}  // namespace tally::collector::pgstats
