// MetricSet: a Producer of ready-made metrics that share one target.
//
//   auto api = std::make_shared<tally::MetricSet>(tally::Target{
//       "http_service", {{"name", std::string("api")}, {"instance_id", tally::Uuid::random()}}});
//   registry.add(api);
//   tally::Counter& ok = api->counter("request_count", {{"route", std::string("/items")},
//                                                       {"status_code", uint16_t{200}}});
//   ok.add();  // the hot path: lock-free, cannot fail
//
// Each metric is keyed by its name and metric fields: asking again for the same name and field
// values returns the same object, so it is fine (but slower than keeping the reference) to look
// a metric up per request. All metrics of one name must have the same datum type and the same
// field names and types, as a timeseries schema demands; histograms of one name, the same edges.
//
// Names and fields are checked here, once, against DESIGN.md §2 (name pattern and length, field
// names unique across target and metric): a mistake throws std::invalid_argument with a message
// naming it, e.g. "metric 'Request-Count': must match [a-z][a-z0-9]*(_[a-z0-9]+)*".
//
// Thread-safe. Returned references stay valid as long as the MetricSet lives.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tally/common/collect_json.h"
#include "tally/common/datum.h"
#include "tally/common/sample.h"
#include "tally/producer/counter.h"
#include "tally/producer/gauge.h"
#include "tally/producer/histogram.h"
#include "tally/producer/producer.h"

namespace tally {

struct PrometheusSeries;  // producer/src/prometheus_encode.h

class MetricSet final : public Producer {
 public:
  // Throws std::invalid_argument when the target's name or fields break the rules.
  explicit MetricSet(Target target);
  ~MetricSet() override;

  const Target& target() const { return target_; }

  Counter& counter(std::string_view name, Fields fields = {});
  CounterI64& counter_i64(std::string_view name, Fields fields = {});
  CounterF64& counter_f64(std::string_view name, Fields fields = {});

  Gauge& gauge(std::string_view name, Fields fields = {});
  GaugeI64& gauge_i64(std::string_view name, Fields fields = {});
  GaugeU64& gauge_u64(std::string_view name, Fields fields = {});
  GaugeBool& gauge_bool(std::string_view name, Fields fields = {});
  StringGauge& string_gauge(std::string_view name, Fields fields = {});

  // `edges` as described in histogram.h.
  HistogramF64& histogram(std::string_view name, Fields fields, std::vector<double> edges);
  HistogramI64& histogram_i64(std::string_view name, Fields fields, std::vector<int64_t> edges);
  HistogramU64& histogram_u64(std::string_view name, Fields fields, std::vector<uint64_t> edges);

  // Every metric, in the order they were created, all with the same timestamp.
  Status produce(std::vector<Sample>& out) override;

 private:
  // collect_json() renders through append_samples_json(), collect_prometheus() through
  // read_prometheus().
  friend class ProducerRegistry;
  struct PrometheusCache;

  struct Entry {
    TimeseriesRef series;  // shared by the samples produce() makes
    DatumType type;
    std::unique_ptr<detail::MetricCell> cell;
    SampleJsonTemplate json;  // the series' constant JSON, rendered when it is created
  };

  // Appends every metric's sample JSON, comma-separated, as produce() + append_sample_json()
  // would, without building the samples.
  void append_samples_json(std::string& out) const;
  // Appends every metric's current value with the series' Prometheus text, which is made the
  // first time a metric is served this way and kept (stable addresses) for the MetricSet's life.
  void read_prometheus(std::vector<std::pair<const PrometheusSeries*, Datum>>& out) const;

  // Returns the metric called `name` with these field values, creating it with `make` after
  // checking the rules. `compatible` vets the first metric of the same name (histogram edges).
  template <class Cell, class Make, class Compatible>
  Cell& find_or_create(std::string_view name, Fields fields, DatumType type, Make make,
                       Compatible compatible);
  void check_schema(const Metric& metric, DatumType type) const;

  const Target target_;
  const std::shared_ptr<const TargetJson> target_json_;
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;   // metric key → entries_ position
  std::unordered_map<std::string, std::size_t> first_;   // metric name → its first entry
  mutable std::unique_ptr<PrometheusCache> prometheus_;  // under mu_; made by the first /metrics
};

}  // namespace tally
