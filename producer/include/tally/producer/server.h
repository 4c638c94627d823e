// The embedded HTTP server through which a collector (or Prometheus) reads a ProducerRegistry.
//
//   GET /collect   the oximeter-compatible JSON of DESIGN.md §3.1 (the route is configurable)
//   GET /metrics   the same samples as Prometheus text 0.0.4 (mapping in docs/producer.md)
//
// The server also measures itself in a MetricSet added to the registry while it runs: target
// tally_producer{producer_id}, metrics collections{format} (cumulative_u64), response_bytes{format}
// (cumulative_u64) and collection_latency{format} (histogram_f64, seconds from the request being
// read to the body being ready).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "tally/common/field.h"
#include "tally/common/result.h"
#include "tally/producer/producer.h"

namespace tally {

struct ProducerServerOptions {
  // "host:port" to listen on. Port 0 picks a free port: read it back with port()/address() and
  // register that. Listen on an address the collectors can reach.
  std::string listen = "127.0.0.1:0";
  std::string collect_route = "/collect";  // must match the route registered
  bool serve_prometheus = true;            // GET /metrics
  // Identifies this process in the self-metrics; use the id the producer registers with.
  Uuid producer_id = Uuid::random();
  bool self_metrics = true;
  int worker_threads = 2;  // concurrent collections
  std::chrono::milliseconds request_timeout{10'000};
};

// Thread-safe. The registry must outlive the server.
class ProducerServer {
 public:
  ProducerServer(std::shared_ptr<ProducerRegistry> registry, ProducerServerOptions options = {});
  ~ProducerServer();  // stop()s
  ProducerServer(const ProducerServer&) = delete;
  ProducerServer& operator=(const ProducerServer&) = delete;

  // Starts listening. Errors name the address ("cannot listen on 0.0.0.0:80: permission denied").
  Status start();
  uint16_t port() const;
  // "host:port" with the bound port, e.g. for RegistrationOptions::address. When listening on
  // 0.0.0.0 or ::, register an address the collectors can reach instead.
  std::string address() const;
  // Lets collections in progress finish, then stops. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally
