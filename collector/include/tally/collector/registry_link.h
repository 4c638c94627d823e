// The collector's side of the registry (DESIGN.md §5 "On start"): a heartbeat every
// heartbeat_interval and, every refresh_interval, the paginated list of the producers the
// registry assigned to this collector. A failed refresh keeps the last good list: the
// collector goes on polling what it had while the registry is away.
//
// Runs one thread of its own (blocking HTTP calls never touch the collector's I/O threads).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tally/common/field.h"
#include "tally/common/result.h"
#include "tally/config/collector_config.h"

namespace tally::collector {

// A producer as the registry hands it to its collector.
struct AssignedProducer {
  Uuid id;
  std::string address;
  std::string route;
  config::ProducerFormat format = config::ProducerFormat::kOximeter;
  std::chrono::microseconds interval{};
  std::string target_name;  // "" → the default ("prometheus")
  bool operator==(const AssignedProducer&) const = default;
};

// Parses one page of GET /v1/collectors/{id}/producers: {"items": [...], "next": id|null}.
Result<std::vector<AssignedProducer>> parse_assignment_page(std::string_view json,
                                                            std::string& next);

// The collector's id, kept in <state_dir>/collector_id so that a restart keeps its identity
// (and its producers); created on first start.
Result<Uuid> load_or_create_collector_id(const std::string& state_dir);

struct RegistryLinkStats {
  std::atomic<uint64_t> heartbeats{0};
  std::atomic<uint64_t> heartbeat_failures{0};
  std::atomic<uint64_t> refreshes{0};
  std::atomic<uint64_t> refresh_failures{0};
};

class RegistryLink {
 public:
  using OnAssignments = std::function<void(std::vector<AssignedProducer>)>;

  // `advertised_address` is this collector's API (host:port) as the registry should list it.
  RegistryLink(config::RegistryClientConfig config, Uuid collector_id,
               std::string advertised_address, OnAssignments on_assignments);
  ~RegistryLink();

  void start();
  void stop();
  // Wakes the loop for an immediate heartbeat and refresh (tests, and after a registry 404).
  void refresh_now();
  const RegistryLinkStats& stats() const { return stats_; }

 private:
  void run();
  Status heartbeat();
  Result<std::vector<AssignedProducer>> fetch_assignments();

  config::RegistryClientConfig config_;
  Uuid collector_id_;
  std::string advertised_address_;
  OnAssignments on_assignments_;
  RegistryLinkStats stats_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool refresh_requested_ = false;
  std::thread thread_;
};

}  // namespace tally::collector
