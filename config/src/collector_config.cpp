#include "tally/config/collector_config.h"

#include <set>

#include "common_keys.h"
#include "tally/common/names.h"
#include "yaml_reader.h"

namespace tally::config {
namespace {

std::optional<RegistryClientConfig> read_registry(MapReader& top) {
  if (!top.has("registry")) {
    (void)top.child("registry");
    return std::nullopt;
  }
  MapReader map = top.map("registry");
  RegistryClientConfig c;
  c.url = map.string("url", c.url);
  c.token = read_token(map);
  c.heartbeat_interval = map.duration("heartbeat_interval", c.heartbeat_interval);
  c.refresh_interval = map.duration("refresh_interval", c.refresh_interval);
  map.reject_unknown_keys();
  return c;
}

DatabaseConfig read_database(MapReader& top) {
  MapReader map = top.map("database");
  DatabaseConfig c;
  c.url = read_database_url(map);
  c.batch_size = map.integer("batch_size", c.batch_size, 1, 10'000'000);
  c.batch_interval = map.duration("batch_interval", c.batch_interval);
  c.max_queue_samples = map.integer("max_queue_samples", c.max_queue_samples, 1, INT64_MAX);
  c.max_queue_bytes = map.size("max_queue_bytes", c.max_queue_bytes, 1ull << 20);
  c.spool_max_bytes = map.size("spool_max_bytes", c.spool_max_bytes, 0);
  c.retention_days = map.integer("retention_days", c.retention_days, 1, 100'000);
  map.reject_unknown_keys();
  return c;
}

CollectionConfig read_collection(MapReader& top) {
  MapReader map = top.map("collection");
  CollectionConfig c;
  c.max_in_flight = map.integer("max_in_flight", c.max_in_flight, 1, 100'000);
  c.timeout = map.duration("timeout", c.timeout);
  c.max_body_bytes = map.size("max_body_bytes", c.max_body_bytes);
  c.max_samples_per_collection =
      map.integer("max_samples_per_collection", c.max_samples_per_collection, 1, INT64_MAX);
  c.allowed_networks = read_networks(map, "allowed_networks");
  map.reject_unknown_keys();
  return c;
}

StaticProducer read_static_producer(MapReader& p) {
  StaticProducer c;
  const std::string id = p.string("id", "");
  auto uuid = Uuid::parse(id);
  if (!uuid.ok()) p.fail("id", id.empty() ? "required: a UUID" : uuid.error());
  c.id = *uuid;
  c.address = p.string("address", "");
  if (auto hp = HostPort::parse(c.address); !hp.ok()) p.fail("address", hp.error());
  c.route = p.string("route", c.route);
  if (c.route.empty() || c.route[0] != '/') p.fail("route", "must start with '/'");
  const std::string format = p.string("format", "oximeter");
  auto parsed = parse_producer_format(format);
  if (!parsed) p.fail("format", "expected oximeter or prometheus, got '" + format + "'");
  c.format = *parsed;
  c.interval = p.duration("interval", c.interval, std::chrono::milliseconds(100));
  c.target_name = p.string("target_name", c.target_name);
  if (Status s = validate_name(c.target_name, kMaxTimeseriesNameLength, "target name"); !s.ok()) {
    p.fail("target_name", s.message());
  }
  p.reject_unknown_keys();
  return c;
}

std::vector<StaticProducer> read_static_producers(MapReader& top) {
  std::vector<StaticProducer> out;
  auto list = top.child("static_producers");
  if (!list) return out;
  if (!list->IsSequence()) top.fail_at(*list, "static_producers", "expected a list");
  std::set<Uuid> ids;
  for (std::size_t i = 0; i < list->size(); ++i) {
    MapReader p((*list)[i], top.file(), "static_producers[" + std::to_string(i) + "]");
    out.push_back(read_static_producer(p));
    if (!ids.insert(out.back().id).second) p.fail("id", "duplicate producer id");
  }
  return out;
}

std::vector<PostgresTarget> read_static_targets(MapReader& targets) {
  std::vector<PostgresTarget> out;
  auto list = targets.child("static");
  if (!list) return out;
  if (!list->IsSequence()) targets.fail_at(*list, "static", "expected a list of {name, url}");
  for (std::size_t i = 0; i < list->size(); ++i) {
    MapReader t((*list)[i], targets.file(), targets.key_path("static[" + std::to_string(i) + "]"));
    PostgresTarget target{t.string("name", ""), t.string("url", "")};
    if (target.name.empty()) t.fail("name", "required");
    if (target.url.empty()) t.fail("url", "required: a postgresql:// URL");
    t.reject_unknown_keys();
    out.push_back(std::move(target));
  }
  return out;
}

std::optional<PostgresMonitoringConfig> read_postgres_monitoring(MapReader& top) {
  if (!top.has("postgres_monitoring")) {
    (void)top.child("postgres_monitoring");
    return std::nullopt;
  }
  MapReader map = top.map("postgres_monitoring");
  PostgresMonitoringConfig c;
  c.interval = map.duration("interval", c.interval, std::chrono::milliseconds(100));
  c.query_timeout = map.duration("query_timeout", c.query_timeout, std::chrono::milliseconds(10));
  c.max_in_flight = map.integer("max_in_flight", c.max_in_flight, 1, 10'000);
  MapReader targets = map.map("targets");
  c.static_targets = read_static_targets(targets);
  if (targets.has("api")) {
    MapReader api = targets.map("api");
    DiscoveryApiConfig a;
    a.url = api.string("url", "");
    if (a.url.rfind("http://", 0) != 0) api.fail("url", "required: an http:// URL");
    a.token = read_token(api);
    a.refresh_interval = api.duration("refresh_interval", a.refresh_interval);
    api.reject_unknown_keys();
    c.api = a;
  } else {
    (void)targets.child("api");
  }
  targets.reject_unknown_keys();
  std::set<std::string> names;
  for (const PostgresTarget& t : c.static_targets) {
    if (!names.insert(t.name).second) {
      targets.fail("static", "duplicate target name '" + t.name + "'");
    }
  }
  map.reject_unknown_keys();
  return c;
}

}  // namespace

std::string_view to_string(ProducerFormat format) {
  return format == ProducerFormat::kOximeter ? "oximeter" : "prometheus";
}

std::optional<ProducerFormat> parse_producer_format(std::string_view name) {
  if (name == "oximeter") return ProducerFormat::kOximeter;
  if (name == "prometheus") return ProducerFormat::kPrometheus;
  return std::nullopt;
}

Result<CollectorConfig> parse_collector_config(const std::string& yaml, const std::string& file) {
  try {
    CollectorConfig c;
    MapReader top = read_top_level(yaml, file);
    c.listen = read_listen(top, c.listen);
    c.state_dir = top.string("state_dir", c.state_dir);
    c.registry = read_registry(top);
    c.database = read_database(top);
    c.collection = read_collection(top);
    c.static_producers = read_static_producers(top);
    c.postgres_monitoring = read_postgres_monitoring(top);
    top.reject_unknown_keys();
    return c;
  } catch (const ConfigError& e) {
    return Status::error(e.what(), "config");
  }
}

Result<CollectorConfig> load_collector_config(const std::string& path) {
  try {
    return parse_collector_config(read_file(path), path);
  } catch (const ConfigError& e) {
    return Status::error(e.what(), "config");
  }
}

}  // namespace tally::config
