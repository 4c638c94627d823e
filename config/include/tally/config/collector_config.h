// tally-collector's configuration (DESIGN.md §5, §7). Every key has a default except the
// database URL.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tally/common/field.h"
#include "tally/common/network.h"
#include "tally/common/result.h"

namespace tally::config {

enum class ProducerFormat { kOximeter, kPrometheus };
std::string_view to_string(ProducerFormat format);
std::optional<ProducerFormat> parse_producer_format(std::string_view name);

struct RegistryClientConfig {
  std::string url = "http://127.0.0.1:12221";
  std::string token;  // from `token` or `token_file`; "" for none
  std::chrono::microseconds heartbeat_interval = std::chrono::seconds(5);
  std::chrono::microseconds refresh_interval = std::chrono::seconds(15);
};

struct DatabaseConfig {
  std::string url;  // required; TALLY_DATABASE_URL overrides
  int64_t batch_size = 5000;
  std::chrono::microseconds batch_interval = std::chrono::seconds(1);
  int64_t max_queue_samples = 1'000'000;
  uint64_t max_queue_bytes = 128ull << 20;  // the same queue bounded by memory (docs/decisions.md)
  uint64_t spool_max_bytes = 1ull << 30;
  int64_t retention_days = 30;  // day partitions older than this are dropped
};

struct CollectionConfig {
  int64_t max_in_flight = 64;
  std::chrono::microseconds timeout = std::chrono::seconds(10);
  uint64_t max_body_bytes = 16ull << 20;
  int64_t max_samples_per_collection = 200'000;
  std::vector<Network> allowed_networks;  // empty: any address
};

struct StaticProducer {
  Uuid id;
  std::string address;  // host:port
  std::string route = "/collect";
  ProducerFormat format = ProducerFormat::kOximeter;
  std::chrono::microseconds interval = std::chrono::seconds(10);
  std::string target_name = "prometheus";  // for Prometheus-format producers
};

struct PostgresTarget {
  std::string name;
  std::string url;
};

struct DiscoveryApiConfig {
  std::string url;
  std::string token;
  std::chrono::microseconds refresh_interval = std::chrono::seconds(60);
};

struct PostgresMonitoringConfig {
  std::chrono::microseconds interval = std::chrono::seconds(30);
  std::chrono::microseconds query_timeout = std::chrono::seconds(5);
  int64_t max_in_flight = 10;
  std::vector<PostgresTarget> static_targets;
  std::optional<DiscoveryApiConfig> api;
};

struct CollectorConfig {
  std::string listen = "127.0.0.1:12222";
  std::string state_dir = "/var/lib/tally/collector";
  std::optional<RegistryClientConfig> registry;  // absent: static producers only
  DatabaseConfig database;
  CollectionConfig collection;
  std::vector<StaticProducer> static_producers;
  std::optional<PostgresMonitoringConfig> postgres_monitoring;
};

Result<CollectorConfig> parse_collector_config(const std::string& yaml, const std::string& file);
Result<CollectorConfig> load_collector_config(const std::string& path);

}  // namespace tally::config
