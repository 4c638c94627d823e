// End to end through the registry: real tally-registry, tally-collector(s) and producers, a
// producer registered with the tallyctl binary, and its samples in the measurement tables.
#include <doctest/doctest.h>

#include <algorithm>
#include <boost/json.hpp>

#include "e2e_support.h"
#include "support/test_db.h"
#include "tally/common/collect_json.h"

using namespace tally;
using namespace tally::test;
namespace json = boost::json;

namespace {

constexpr const char* kExampleId = "e2e00000-0000-4000-8000-000000000001";
constexpr const char* kPromId = "e2e00000-0000-4000-8000-000000000002";
constexpr const char* kMovingId = "e2e00000-0000-4000-8000-000000000003";

std::string registry_yaml(const RegistryProcess& registry) {
  return "registry: {url: \"" + registry.url() +
         "\", heartbeat_interval: 200ms, refresh_interval: 200ms}\n";
}

// The number of live collectors the registry knows.
std::size_t live_collectors(const RegistryProcess& registry) {
  const HttpResponse r = call("GET", registry.url() + "/v1/collectors");
  if (r.status != 200) return 0;
  const json::value v = json::parse(r.body);
  const json::array& items = v.is_array() ? v.as_array() : v.at("items").as_array();
  return std::count_if(items.begin(), items.end(),
                       [](const json::value& c) { return c.at("alive").as_bool(); });
}

std::vector<Sample> collect(const std::string& address) {
  const HttpResponse r = call("GET", "http://" + address + "/collect");
  REQUIRE(r.status == 200);
  auto items = decode_collect_response(r.body);
  REQUIRE_MESSAGE(items.ok(), items.error());
  std::vector<Sample> out;
  for (CollectItem& item : *items) {
    for (Sample& s : item.samples) out.push_back(std::move(s));
  }
  return out;
}

const Sample* find_series(const std::vector<Sample>& samples, const std::string& name,
                          int64_t key = 0) {
  const Sample* best = nullptr;
  for (const Sample& s : samples) {
    if (s.timeseries_name() != name) continue;
    if (key != 0 && s.key() != key) continue;
    // Of a counter, the busiest series: it changes between the polls the test compares.
    if (best == nullptr || (std::holds_alternative<Cumulative<uint64_t>>(s.datum) &&
                            std::get<Cumulative<uint64_t>>(s.datum).value >
                                std::get<Cumulative<uint64_t>>(best->datum).value)) {
      best = &s;
    }
  }
  return best;
}

int64_t micros(Timestamp t) { return t.time_since_epoch().count(); }

std::string epoch_us(const std::string& column) {
  return "(extract(epoch from " + column + ") * 1000000)::bigint";
}

}  // namespace

TEST_CASE("e2e: an example producer registered with tallyctl is collected and stored as served") {
  TestDatabase db;
  RegistryProcess registry(db.url());
  TempDir state;
  CollectorProcess collector(collector_yaml(db.url(), state.path(), registry_yaml(registry)));
  REQUIRE(eventually([&] { return live_collectors(registry) == 1; }));

  ExampleProducer producer(kExampleId);
  const CommandResult reg =
      tallyctl(registry.url(), {"producer", "register", "--id", kExampleId, "--address",
                                producer.address(), "--interval", "300ms"});
  REQUIRE_MESSAGE(reg.exit_code == 0, reg.out << reg.err);

  // The assignment reaches the collector, which polls and stores.
  REQUIRE_MESSAGE(eventually([&] {
                    const json::value p = collector.producer(kExampleId);
                    return !p.is_null() && !p.at("last_success").is_null();
                  }),
                  collector.log());
  const json::value listed = collector.get_json("/producers");
  REQUIRE(listed.at("items").as_array().size() == 1);
  const json::value& item = listed.at("items").at(0);
  CHECK(item.at("address").as_string() == producer.address());
  CHECK(item.at("source").as_string() == "registry");
  CHECK(item.at("format").as_string() == "oximeter");
  CHECK(item.at("interval_ms").as_int64() == 300);

  // A string gauge: the stored value is the one served.
  const std::vector<Sample> first = collect(producer.address());
  const Sample* info = find_series(first, "http_service:build_info");
  REQUIRE(info != nullptr);
  const int64_t info_key = info->key();
  std::string stored_info;
  REQUIRE(eventually([&] {
    stored_info = query_scalar(db.url(),
                               "SELECT datum FROM tally.measurements_string WHERE "
                               "timeseries_key = " +
                                   std::to_string(info_key) + " ORDER BY timestamp DESC LIMIT 1");
    return !stored_info.empty();
  }));
  CHECK(stored_info == std::get<std::string>(info->datum));
  CHECK(query_scalar(db.url(),
                     "SELECT timeseries_name FROM tally.timeseries WHERE "
                     "timeseries_key = " +
                         std::to_string(info_key)) == "http_service:build_info");

  // A counter: a value stored after the test's first read lies between what the producer
  // served before and after it, under the same series key and start time.
  const Sample* counter = find_series(first, "http_service:request_count");
  REQUIRE(counter != nullptr);
  const int64_t key = counter->key();
  const auto& served_before = std::get<Cumulative<uint64_t>>(counter->datum);
  std::vector<std::vector<std::string>> rows;
  REQUIRE(eventually([&] {
    rows = query_rows(
        db.url(), "SELECT datum::text, " + epoch_us("start_time") +
                      " FROM tally.measurements_cumulative_u64 WHERE timeseries_key = " +
                      std::to_string(key) + " AND " + epoch_us("timestamp") + " > " +
                      std::to_string(micros(counter->timestamp)) + " ORDER BY timestamp LIMIT 1");
    return !rows.empty();
  }));
  const std::vector<Sample> after = collect(producer.address());  // `later` points into it
  const Sample* later = find_series(after, "http_service:request_count", key);
  REQUIRE(later != nullptr);
  const auto& served_after = std::get<Cumulative<uint64_t>>(later->datum);
  const uint64_t stored = std::stoull(rows[0][0]);
  CHECK(served_before.value <= stored);
  CHECK(stored <= served_after.value);
  CHECK(std::stoll(rows[0][1]) == micros(served_before.start_time));

  // The histogram series is stored too, under the key the producer's sample gives.
  const Sample* latency = find_series(first, "http_service:request_latency");
  REQUIRE(latency != nullptr);
  CHECK(eventually([&] {
    return query_scalar(db.url(),
                        "SELECT count(*) FROM tally.measurements_histogram_f64 WHERE "
                        "timeseries_key = " +
                            std::to_string(latency->key())) != "0";
  }));

  // Deleted from the registry: the next refresh removes it from the collector.
  const CommandResult deleted = tallyctl(registry.url(), {"producer", "delete", kExampleId});
  CHECK_MESSAGE(deleted.exit_code == 0, deleted.out << deleted.err);
  CHECK(eventually([&] { return collector.producer(kExampleId).is_null(); }));
  CHECK(collector.get_json("/producers").at("items").as_array().empty());
}

TEST_CASE("e2e: a Prometheus-format producer is stored with the DESIGN.md 3.2 mapping") {
  TestDatabase db;
  RegistryProcess registry(db.url());
  TempDir state;
  CollectorProcess collector(collector_yaml(db.url(), state.path(), registry_yaml(registry)));
  REQUIRE(eventually([&] { return live_collectors(registry) == 1; }));

  ExampleProducer producer(kExampleId);
  const CommandResult reg = tallyctl(
      registry.url(), {"producer", "register", "--id", kPromId, "--address", producer.address(),
                       "--format", "prometheus", "--interval", "300ms"});
  REQUIRE_MESSAGE(reg.exit_code == 0, reg.out << reg.err);

  const std::string schema_of =
      "SELECT datum_type FROM tally.timeseries_schema WHERE timeseries_name = ";
  // Rows of the counter family arrive (its schema, its series and its measurements).
  REQUIRE_MESSAGE(eventually([&] {
                    return query_scalar(db.url(),
                                        "SELECT count(*) FROM tally.measurements_cumulative_f64 m "
                                        "JOIN tally.timeseries t USING (timeseries_key) WHERE "
                                        "t.timeseries_name = "
                                        "'prometheus:http_service_request_count_total'") != "0";
                  }),
                  collector.log());
  const json::value p = collector.producer(kPromId);
  CHECK(p.at("route").as_string() == "/metrics");
  CHECK(p.at("format").as_string() == "prometheus");
  CHECK(p.at("target_name").as_string() == "prometheus");

  // counter → cumulative_f64 (the family keeps its _total), histogram → histogram_f64, gauge → f64.
  CHECK(query_scalar(db.url(), schema_of + "'prometheus:http_service_request_latency'") ==
        "histogram_f64");
  CHECK(query_scalar(db.url(), schema_of + "'prometheus:http_service_request_count_total'") ==
        "cumulative_f64");
  CHECK(query_scalar(db.url(), schema_of + "'prometheus:http_service_requests_in_flight'") ==
        "f64");

  // Target fields producer_id (uuid) and instance (the address); labels as string metric fields.
  const std::string fields =
      query_scalar(db.url(),
                   "SELECT fields::text FROM tally.timeseries_schema WHERE timeseries_name = "
                   "'prometheus:http_service_request_count_total'");
  CHECK_MESSAGE(fields.find(R"({"name": "producer_id", "type": "uuid", "source": "target"})") !=
                    std::string::npos,
                fields);
  CHECK_MESSAGE(fields.find(R"({"name": "instance", "type": "string", "source": "target"})") !=
                    std::string::npos,
                fields);
  CHECK_MESSAGE(fields.find(R"({"name": "route", "type": "string", "source": "metric"})") !=
                    std::string::npos,
                fields);
  CHECK(query_scalar(db.url(),
                     "SELECT count(*) FROM tally.timeseries WHERE timeseries_name LIKE "
                     "'prometheus:%' AND fields->>'producer_id' = '" +
                         std::string(kPromId) + "' AND fields->>'instance' = '" +
                         producer.address() + "'") != "0");
}

TEST_CASE("e2e: the producers of a collector killed with SIGKILL move to another collector") {
  TestDatabase db;
  RegistryProcess registry(db.url(), "collector_ttl: 1s\ngc_interval: 100ms\n");
  TempDir state_a, state_b;
  auto a = std::make_unique<CollectorProcess>(
      collector_yaml(db.url(), state_a.path(), registry_yaml(registry)));
  auto b = std::make_unique<CollectorProcess>(
      collector_yaml(db.url(), state_b.path(), registry_yaml(registry)));
  REQUIRE(eventually([&] { return live_collectors(registry) == 2; }));

  CounterProducer producer("e2e_moving", 1);
  const CommandResult reg =
      tallyctl(registry.url(), {"producer", "register", "--id", kMovingId, "--address",
                                producer.address(), "--interval", "200ms"});
  REQUIRE_MESSAGE(reg.exit_code == 0, reg.out << reg.err);

  // Whichever collector got it polls it; the other one is the survivor.
  CollectorProcess* owner = nullptr;
  REQUIRE(eventually([&] {
    for (CollectorProcess* c : {a.get(), b.get()}) {
      const json::value p = c->producer(kMovingId);
      if (!p.is_null() && !p.at("last_success").is_null()) owner = c;
    }
    return owner != nullptr;
  }));
  std::unique_ptr<CollectorProcess>& dead = owner == a.get() ? a : b;
  CollectorProcess& survivor = owner == a.get() ? *b : *a;
  CHECK(survivor.producer(kMovingId).is_null());

  dead->kill();
  const Timestamp killed_at = tally::now();

  // The registry notices, the survivor picks the producer up and new rows arrive.
  REQUIRE_MESSAGE(eventually([&] {
                    const json::value p = survivor.producer(kMovingId);
                    return !p.is_null() && !p.at("last_success").is_null();
                  }),
                  survivor.log());
  CHECK(survivor.producer(kMovingId).at("source").as_string() == "registry");
  CHECK(eventually([&] {
    return query_scalar(db.url(),
                        "SELECT count(*) FROM tally.measurements_cumulative_u64 m JOIN "
                        "tally.timeseries t USING (timeseries_key) WHERE t.timeseries_name = "
                        "'e2e_moving:ticks' AND " +
                            epoch_us("m.timestamp") + " > " + std::to_string(micros(killed_at))) !=
           "0";
  }));
  const json::value moved =
      json::parse(call("GET", registry.url() + "/v1/producers/" + kMovingId).body);
  CHECK(moved.at("collector_id").as_string() ==
        survivor.get_json("/producers").at("collector_id").as_string());
}
