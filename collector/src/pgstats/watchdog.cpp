#include "tally/collector/pgstats/watchdog.h"

#include <vector>

namespace tally::collector::pgstats {

Watchdog::Watchdog(const Clock& clock) : clock_(clock) {}

Watchdog::~Watchdog() { stop(); }

void Watchdog::start() {
  thread_ = std::thread([this] { run(); });
}

void Watchdog::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Watchdog::Token Watchdog::arm(Clock::time_point deadline, std::function<void()> cancel) {
  std::lock_guard lock(mu_);
  const Token token = next_token_++;
  entries_.emplace(token, Entry{deadline, std::move(cancel)});
  const bool earliest = deadlines_.empty() || deadline < deadlines_.begin()->first;
  deadlines_.emplace(deadline, token);
  if (earliest) wake_.notify_all();
  return token;
}

bool Watchdog::disarm(Token token) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return false;
  const bool fired = it->second.fired;
  if (!fired) deadlines_.erase({it->second.deadline, token});
  entries_.erase(it);
  return fired;
}

bool Watchdog::fire_now(Token token) {
  std::function<void()> cancel;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(token);
    if (it == entries_.end() || it->second.fired) return false;
    it->second.fired = true;
    deadlines_.erase({it->second.deadline, token});
    cancel = it->second.cancel;
  }
  if (cancel) cancel();
  return true;
}

std::size_t Watchdog::fire_expired(Clock::time_point now) {
  std::vector<std::function<void()>> due;
  {
    std::lock_guard lock(mu_);
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      const Token token = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      Entry& e = entries_.at(token);
      e.fired = true;
      due.push_back(e.cancel);
    }
  }
  // Outside the lock: a cancel may take a network round trip, and the query's thread may want
  // to disarm meanwhile. Each action holds what it needs (the connection) by itself.
  for (auto& cancel : due) {
    if (cancel) cancel();
  }
  return due.size();
}

void Watchdog::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (deadlines_.empty()) {
      wake_.wait(lock);
    } else {
      // The condition variable waits on the steady clock; the Clock interface is for tests that
      // drive fire_expired() themselves. A copy: wait_until reads its deadline again after
      // waking, by which time disarm() may have freed the set's node (ASan found it).
      const Clock::time_point next = deadlines_.begin()->first;
      wake_.wait_until(lock, next);
    }
    if (stopping_) break;
    lock.unlock();
    (void)fire_expired(clock_.now());
    lock.lock();
  }
}

}  // namespace tally::collector::pgstats
