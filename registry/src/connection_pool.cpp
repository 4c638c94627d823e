#include "tally/registry/connection_pool.h"

namespace tally::registry {

ConnectionPool::ConnectionPool(ConnectionPoolOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<pg::Connection>> ConnectionPool::open() const {
  auto conn = pg::Connection::open(options_.url, options_.connect_timeout);
  if (!conn.ok()) return conn.status();
  const std::string ms = std::to_string(options_.statement_timeout.count());
  auto set = (*conn)->exec("SET statement_timeout = " + ms + "; SET lock_timeout = " + ms +
                           "; SET TimeZone = 'UTC'; SET application_name = '" +
                           options_.application_name + "'");
  if (!set.ok()) return set.status().with_context("setting up the session");
  return std::move(conn).value();
}

std::unique_ptr<pg::Connection> ConnectionPool::take_idle() {
  std::lock_guard lock(mu_);
  if (idle_.empty()) return nullptr;
  auto conn = std::move(idle_.back());
  idle_.pop_back();
  return conn;
}

void ConnectionPool::give_back(std::unique_ptr<pg::Connection> conn) {
  if (conn->broken()) return;
  std::lock_guard lock(mu_);
  if (idle_.size() < options_.max_idle) idle_.push_back(std::move(conn));
}

Status ConnectionPool::with_connection(const std::function<Status(pg::Connection&)>& fn) {
  if (auto conn = take_idle()) {
    Status s = fn(*conn);
    if (!conn->broken()) {
      give_back(std::move(conn));
      return s;
    }
    // The idle connection was dead before we used it (or died under us): try a fresh one.
  }
  auto fresh = open();
  if (!fresh.ok()) return fresh.status();
  Status s = fn(**fresh);
  give_back(std::move(fresh).value());
  return s;
}

bool is_unavailable(const Status& s) {
  if (s.ok()) return false;
  const std::string& code = s.code();
  if (code == "connection") return true;
  if (code.rfind("sqlstate_08", 0) == 0) return true;  // connection exceptions
  if (code.rfind("sqlstate_57", 0) == 0) return true;  // cancelled (timeouts), shutting down
  if (code.rfind("sqlstate_53", 0) == 0) return true;  // too many connections, out of resources
  return code == "sqlstate_55P03" ||                   // lock_timeout
         code == "sqlstate_3D000" ||                   // the database does not exist
         code == "sqlstate_40001" || code == "sqlstate_40P01";  // serialization, deadlock
}

}  // namespace tally::registry
