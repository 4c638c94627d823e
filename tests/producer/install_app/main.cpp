// Uses the installed Tally::producer the way docs/producer.md shows: metrics, a custom producer,
// the embedded server on port 0. Exits 0 when the served JSON holds what was recorded.
#include <tally/producer.h>

#include <cstdio>
#include <memory>

namespace {

class Uptime : public tally::Producer {
 public:
  tally::Status produce(std::vector<tally::Sample>& out) override {
    out.push_back({series_, tally::now(), 42.0});
    return {};
  }

 private:
  const tally::TimeseriesRef series_ = tally::make_timeseries({"app", {}}, {"uptime_seconds", {}});
};

int fail(const char* what) {
  std::fprintf(stderr, "install_app: %s\n", what);
  return 1;
}

}  // namespace

int main() {
  auto registry = std::make_shared<tally::ProducerRegistry>();
  auto metrics = std::make_shared<tally::MetricSet>(
      tally::Target{"install_app", {{"instance_id", tally::Uuid::random()}}});
  registry->add(metrics);
  registry->add(std::make_shared<Uptime>());
  metrics->counter("requests", {{"route", std::string("/")}}).add(7);
  metrics->histogram("latency", {}, tally::exponential_edges(0.001, 2, 10)).record(0.01);

  tally::ProducerServer server(registry, {.listen = "127.0.0.1:0"});
  if (!server.start().ok()) return fail("cannot start the server");
  if (server.port() == 0) return fail("no port");

  const auto items = registry->collect();
  const std::string json = tally::encode_collect_response(items);
  if (items.size() != 3 || items[0].samples.size() != 2 || items[1].samples.size() != 1) {
    return fail("unexpected collect result");
  }
  if (json.find("\"uptime_seconds\"") == std::string::npos) return fail("uptime missing");
  server.stop();
  std::printf("install_app: ok, %zu bytes of JSON\n", json.size());
  return 0;
}
