#include "tally/config/collector_config.h"

#include <doctest/doctest.h>
#include <stdlib.h>

using tally::config::parse_collector_config;
using tally::config::ProducerFormat;

namespace {

// The example of DESIGN.md §7, with the token file left out.
constexpr const char* kDesignExample = R"(listen: 127.0.0.1:12222
state_dir: /var/lib/tally/collector      # collector id, spool
registry: {url: http://127.0.0.1:12221,
           heartbeat_interval: 5s, refresh_interval: 15s}
database: {url: "postgresql://tally@127.0.0.1:5432/tally", batch_size: 5000, batch_interval: 1s,
           max_queue_samples: 1000000, spool_max_bytes: 1GiB}
collection: {max_in_flight: 64, timeout: 10s, max_body_bytes: 16MiB,
             max_samples_per_collection: 200000, allowed_networks: [127.0.0.0/8]}
static_producers:
  - {id: 0b9d6f3e-4f0c-4a55-9d5b-2a8f4e2f8c11, address: 127.0.0.1:9100, route: /metrics,
     format: prometheus, interval: 10s, target_name: node}
postgres_monitoring:
  interval: 30s
  query_timeout: 5s
  max_in_flight: 10
  targets:
    static: [{name: main, url: "postgresql://postgres@127.0.0.1:5432/postgres"}]
    api: {url: http://127.0.0.1:8080/v1/postgres, refresh_interval: 60s}
)";

constexpr const char* kDb = "database: {url: \"postgresql://tally@127.0.0.1/tally\"}\n";

}  // namespace

TEST_CASE("the example of DESIGN.md parses") {
  unsetenv("TALLY_DATABASE_URL");
  auto c = parse_collector_config(kDesignExample, "collector.yaml");
  REQUIRE_MESSAGE(c.ok(), c.error());
  REQUIRE(c->registry.has_value());
  CHECK(c->registry->url == "http://127.0.0.1:12221");
  CHECK(c->database.spool_max_bytes == 1ull << 30);
  CHECK(c->collection.max_body_bytes == 16ull << 20);
  REQUIRE(c->collection.allowed_networks.size() == 1);
  REQUIRE(c->static_producers.size() == 1);
  CHECK(c->static_producers[0].format == ProducerFormat::kPrometheus);
  CHECK(c->static_producers[0].target_name == "node");
  CHECK(c->static_producers[0].route == "/metrics");
  REQUIRE(c->postgres_monitoring.has_value());
  CHECK(c->postgres_monitoring->static_targets.size() == 1);
  REQUIRE(c->postgres_monitoring->api.has_value());
  CHECK(c->postgres_monitoring->api->refresh_interval == std::chrono::seconds(60));
}

TEST_CASE("collector defaults") {
  unsetenv("TALLY_DATABASE_URL");
  auto c = parse_collector_config(kDb, "c.yaml");
  REQUIRE_MESSAGE(c.ok(), c.error());
  CHECK(c->listen == "127.0.0.1:12222");
  CHECK_FALSE(c->registry.has_value());
  CHECK(c->database.batch_size == 5000);
  CHECK(c->database.retention_days == 30);
  CHECK(c->database.max_queue_samples == 1'000'000);
  CHECK(c->database.max_queue_bytes == 128ull << 20);
  CHECK(c->collection.max_in_flight == 64);
  CHECK(c->collection.timeout == std::chrono::seconds(10));
  CHECK_FALSE(c->postgres_monitoring.has_value());
}

TEST_CASE("database.max_queue_bytes takes a size") {
  unsetenv("TALLY_DATABASE_URL");
  auto c = parse_collector_config("database: {url: x, max_queue_bytes: 64MiB}\n", "c.yaml");
  REQUIRE_MESSAGE(c.ok(), c.error());
  CHECK(c->database.max_queue_bytes == 64ull << 20);
  c = parse_collector_config("database: {url: x, max_queue_bytes: 1GiB}\n", "c.yaml");
  REQUIRE_MESSAGE(c.ok(), c.error());
  CHECK(c->database.max_queue_bytes == 1ull << 30);
}

TEST_CASE("bad collector configs name file, line and key") {
  unsetenv("TALLY_DATABASE_URL");
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::string db = kDb;
  const Case cases[] = {
      {"database: {url: x, batch_size: many}\n", "c.yaml:1: database.batch_size: expected a whole number"},
      {db + "database: {url: y}\n", "c.yaml:2: database: key given twice"},
      {"database: {url: x, batch_size: 0}\n", "c.yaml:1: database.batch_size: must be from 1"},
      {"database: {url: x, spool_max_bytes: 1GB}\n", "database.spool_max_bytes: bad size '1GB'"},
      {"database: {url: x, max_queue_bytes: 0}\n",
       "c.yaml:1: database.max_queue_bytes: must be at least 1MiB"},
      {"database: {url: x, max_queue_bytes: 512KiB}\n",
       "c.yaml:1: database.max_queue_bytes: must be at least 1MiB"},
      {"database: {url: x, max_queue_bytes: -128MiB}\n",
       "c.yaml:1: database.max_queue_bytes: bad size '-128MiB'"},
      {"database: {url: x, max_queue_bytes: lots}\n",
       "c.yaml:1: database.max_queue_bytes: bad size 'lots'"},
      {"database: {url: x, max_queue_bytes: 128MB}\n",
       "c.yaml:1: database.max_queue_bytes: bad size '128MB'"},
      {"database: {url: x, max_queue_bytes: [1]}\n", "c.yaml:1: database.max_queue_bytes: expected"},
      {"database: {url: x, flush: 1s}\n", "c.yaml:1: database.flush: unknown key"},
      {db + "collection: {timeout: 10}\n", "collection.timeout: bad duration '10'"},
      {db + "static_producers:\n  - {id: nope, address: 127.0.0.1:9}\n",
       "c.yaml:3: static_producers[0].id: 'nope' is not a hyphenated UUID"},
      {db + "static_producers:\n  - {id: 0b9d6f3e-4f0c-4a55-9d5b-2a8f4e2f8c11, address: x}\n",
       "static_producers[0].address: 'x' is not host:port"},
      {db + "static_producers:\n  - {id: 0b9d6f3e-4f0c-4a55-9d5b-2a8f4e2f8c11, address: a:1, "
            "format: json}\n",
       "static_producers[0].format: expected oximeter or prometheus, got 'json'"},
      {db + "static_producers:\n  - {id: 0b9d6f3e-4f0c-4a55-9d5b-2a8f4e2f8c11, address: a:1}\n"
            "  - {id: 0b9d6f3e-4f0c-4a55-9d5b-2a8f4e2f8c11, address: a:2}\n",
       "static_producers[1].id: duplicate producer id"},
      {db + "postgres_monitoring: {targets: {static: [{name: a, url: u}, {name: a, url: v}]}}\n",
       "postgres_monitoring.targets.static: duplicate target name 'a'"},
      {db + "postgres_monitoring: {targets: {api: {url: ftp://x}}}\n",
       "postgres_monitoring.targets.api.url: required: an http:// URL"},
      {db + "registry: {url: http://x:1, token: a, token_file: b}\n",
       "registry.token: give token or token_file, not both"},
      {db + "registry: {url: http://x:1, token_file: /nonexistent/t}\n",
       "c.yaml:2: registry.token_file: cannot read token file /nonexistent/t"},
      {db + "static_producers: 3\n", "c.yaml:2: static_producers: expected a list"},
      {db + "collection: 5\n", "c.yaml:2: collection: expected a mapping"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.yaml);
    auto r = parse_collector_config(c.yaml, "c.yaml");
    REQUIRE_FALSE(r.ok());
    CHECK_MESSAGE(r.error().find(c.message) != std::string::npos, r.error());
  }
}

TEST_CASE("a missing file is an error naming it") {
  auto r = tally::config::load_collector_config("/nonexistent/collector.yaml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().find("/nonexistent/collector.yaml: cannot read the file") != std::string::npos);
}
