// A small pool of Postgres connections for the registry's request handlers.
//
// The HttpServer runs handlers on a few worker threads; each takes a connection for the length
// of one request and gives it back. Broken connections are dropped and replaced on the next
// acquire, so a database restart costs the requests in flight, not the process. Every
// connection gets a statement and lock timeout: the database part of a request's deadline.
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tally/common/pg.h"
#include "tally/common/result.h"

namespace tally::registry {

struct ConnectionPoolOptions {
  std::string url;
  std::size_t max_idle = 8;  // connections kept open between requests
  std::chrono::seconds connect_timeout{5};
  // statement_timeout and lock_timeout of every session: no request waits longer than this on
  // the database (the assignment lock included).
  std::chrono::milliseconds statement_timeout{5'000};
  std::string application_name = "tally-registry";
};

class ConnectionPool {
 public:
  explicit ConnectionPool(ConnectionPoolOptions options);

  // Runs `fn` with a connection. When a connection that sat idle in the pool turns out to be
  // dead (the server restarted), `fn` runs once more on a fresh one: callers pass operations
  // that are safe to repeat. Errors opening a connection have code "connection".
  Status with_connection(const std::function<Status(pg::Connection&)>& fn);

  // Opens a connection with the session settings (for the GC thread, which keeps its own).
  Result<std::unique_ptr<pg::Connection>> open() const;

 private:
  std::unique_ptr<pg::Connection> take_idle();
  void give_back(std::unique_ptr<pg::Connection> conn);

  const ConnectionPoolOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<pg::Connection>> idle_;
};

// True for errors that mean "the database is unreachable or too slow" rather than a bug:
// connection failures, timeouts, shutdowns, too many connections, a missing database.
bool is_unavailable(const Status& s);

}  // namespace tally::registry
