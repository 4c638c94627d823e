// tally-collector assembled (DESIGN.md §5): migrations, the collector id from state_dir, the
// sink with its spool, the schema check, the scraper and scheduler, the registry link, the
// collector's own API and its self samples. main.cpp only parses arguments, starts a Daemon and
// stops it on a signal. docs/collector.md is the operator's guide.
//
//   auto daemon = Daemon::start({.config = config, .version = "0.1.0"});
//   if (!daemon.ok()) …                       // database, state_dir, spool or listen failed
//   log_info("listening", {{"address", (*daemon)->address()}});
//   …                                          // SIGTERM
//   (*daemon)->stop();                         // stop polling, flush the sink, stop serving
//
// Data path: scraper (I/O threads) → scheduler decode threads → SchemaChecker → Sink::push →
// the sink's writer thread. Samples the schema store could not check (database down) are set
// aside and checked again every second by the daemon's housekeeping thread, never on an I/O
// thread; that thread also turns the collector's counters into samples every self_interval.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "tally/common/field.h"
#include "tally/common/result.h"
#include "tally/config/collector_config.h"

namespace tally::collector {

struct DaemonOptions {
  config::CollectorConfig config;
  std::string version = "0.0.0";  // shown in /metrics (tally_collector_build_info)
  // How often the collector stores its own counters as samples of target tally_collector.
  std::chrono::milliseconds self_interval{10'000};
  // The most samples kept aside while the schema store is unreachable; beyond it they are
  // dropped and counted (dropped, reason schema_unavailable). 0: max_queue_samples / 4.
  std::size_t max_pending_schema_samples = 0;
};

class Daemon {
 public:
  // Creates state_dir, loads or creates the collector id, applies the migrations, opens the sink
  // and starts every thread and the API. Error codes: "state_dir" (not creatable, id file
  // unreadable), "database" (cannot connect or migrate at start), "spool_io", "listen".
  // Nothing is left running after an error.
  static Result<std::unique_ptr<Daemon>> start(DaemonOptions options);
  ~Daemon();  // stop()s
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  Uuid id() const;
  // The API's bound address, "host:port" (also with listen port 0); the address the registry
  // is given in heartbeats.
  std::string address() const;
  uint16_t port() const;

  // Stops the registry link and polling, checks the samples set aside one last time when
  // Postgres is up, stores a last round of self samples, flushes the sink (Sink::stop: written,
  // or spooled when Postgres is away) and stops the API. Idempotent; logs what it did.
  void stop();

 private:
  class Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::collector
