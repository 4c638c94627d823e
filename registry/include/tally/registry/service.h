// A running registry: the HTTP API on its worker threads, the connection pool and the GC thread.
// main() builds one from the config; tests can too. Migrations are the caller's job
// (schema::apply_migrations) before start().
//
//   RegistryService service({.config = config});
//   if (Status s = service.start(); !s.ok()) …
//   service.address();  // "127.0.0.1:12221"
//   service.stop();
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "tally/common/result.h"
#include "tally/config/registry_config.h"

namespace tally::registry {

struct ServiceOptions {
  config::RegistryConfig config;
  int worker_threads = 8;  // HTTP handlers, each holding at most one database connection
  std::size_t body_limit = 64 * 1024;                 // larger request bodies get 413
  std::chrono::milliseconds request_timeout{10'000};  // reading and writing one request
  std::chrono::milliseconds database_timeout{5'000};  // statement_timeout and lock_timeout
  // A collector silent for this many collector_ttl is forgotten (its row deleted).
  int forget_collector_after_ttls = 10;
};

class RegistryService {
 public:
  explicit RegistryService(ServiceOptions options);
  ~RegistryService();  // stop()s
  RegistryService(const RegistryService&) = delete;
  RegistryService& operator=(const RegistryService&) = delete;

  // Starts listening and the GC thread. Errors: "listen".
  Status start();
  // The bound address ("127.0.0.1:12221"), also when the config asked for port 0.
  std::string address() const;
  uint16_t port() const;
  // Stops accepting, finishes requests in flight, stops the GC. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::registry
