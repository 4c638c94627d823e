#include "tally/producer/metric_set.h"

#include <algorithm>
#include <deque>
#include <stdexcept>

#include "prometheus_encode.h"
#include "tally/common/time.h"

namespace tally {
namespace {

// "name|field=type:value|…": tells metrics of one name apart by their field values.
std::string metric_key(std::string_view name, const Fields& fields) {
  std::string key(name);
  for (const Field& f : fields) {
    key += '|';
    key += f.name;
    key += '=';
    key += to_string(field_type(f.value));
    key += ':';
    append_field_value(key, f.value);
  }
  return key;
}

// "(route string, status_code u16)", sorted by name, for schema comparisons and messages.
std::string field_signature(const Fields& fields) {
  std::vector<std::string> parts;
  for (const Field& f : fields)
    parts.push_back(f.name + " " + std::string(to_string(field_type(f.value))));
  std::sort(parts.begin(), parts.end());
  std::string out = "(";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += ", ";
    out += parts[i];
  }
  return out + ")";
}

void throw_if_error(const Status& status) {
  if (!status.ok()) throw std::invalid_argument(status.message());
}

}  // namespace

// The PrometheusSeries of entries_[i] is series[i] once made; a deque keeps their addresses while
// later ones are added.
struct MetricSet::PrometheusCache {
  std::deque<PrometheusSeries> series;
  PrometheusSeriesMaker maker;
};

MetricSet::MetricSet(Target target)
    : target_(std::move(target)), target_json_(std::make_shared<TargetJson>(target_)) {
  // A probe series reuses validate_timeseries's rules for the target part.
  throw_if_error(validate_timeseries(*make_timeseries(target_, Metric{"m", {}})));
}

MetricSet::~MetricSet() = default;

void MetricSet::check_schema(const Metric& metric, DatumType type) const {
  const auto first = first_.find(metric.name);
  if (first == first_.end()) return;
  const Entry& existing = entries_[first->second];
  const std::string have = field_signature(existing.series->metric.fields);
  const std::string want = field_signature(metric.fields);
  if (existing.type != type || have != want) {
    throw std::invalid_argument("metric '" + metric.name + "' of target '" + target_.name +
                                "' exists as " + std::string(to_string(existing.type)) +
                                " with fields " + have + "; asked for " +
                                std::string(to_string(type)) + " with fields " + want);
  }
}

template <class Cell, class Make, class Compatible>
Cell& MetricSet::find_or_create(std::string_view name, Fields fields, DatumType type, Make make,
                                Compatible compatible) {
  std::string key = metric_key(name, fields);
  std::lock_guard lock(mu_);
  if (const auto it = index_.find(key); it != index_.end()) {
    check_schema(entries_[it->second].series->metric, type);
    auto& cell = static_cast<Cell&>(*entries_[it->second].cell);
    if (!compatible(cell)) {
      throw std::invalid_argument("metric '" + std::string(name) + "' of target '" + target_.name +
                                  "' exists with other histogram edges");
    }
    return cell;
  }
  TimeseriesRef series = make_timeseries(target_, Metric{std::string(name), std::move(fields)});
  throw_if_error(validate_timeseries(*series));
  const Metric& metric = series->metric;
  check_schema(metric, type);
  const auto first = first_.find(metric.name);
  if (first != first_.end()) {
    if (!compatible(static_cast<const Cell&>(*entries_[first->second].cell))) {
      throw std::invalid_argument("metric '" + metric.name + "' of target '" + target_.name +
                                  "' exists with other histogram edges");
    }
  }
  std::unique_ptr<Cell> cell = make();
  Cell& ref = *cell;
  // Histograms of one name share their edges, and so the rendered bin ranges.
  SampleJsonTemplate json(target_json_, metric, 1, ref.read(),
                          first == first_.end() ? nullptr : &entries_[first->second].json);
  entries_.push_back(Entry{std::move(series), type, std::move(cell), std::move(json)});
  index_.emplace(std::move(key), entries_.size() - 1);
  first_.emplace(entries_.back().series->metric.name, entries_.size() - 1);
  return ref;
}

namespace {

constexpr auto kAny = [](const auto&) { return true; };

template <class Cell>
auto make_cumulative() {
  return [] { return std::make_unique<Cell>(now()); };
}

template <class Cell>
auto make_plain() {
  return [] { return std::make_unique<Cell>(); };
}

}  // namespace

Counter& MetricSet::counter(std::string_view name, Fields fields) {
  return find_or_create<Counter>(name, std::move(fields), DatumType::kCumulativeU64,
                                 make_cumulative<Counter>(), kAny);
}
CounterI64& MetricSet::counter_i64(std::string_view name, Fields fields) {
  return find_or_create<CounterI64>(name, std::move(fields), DatumType::kCumulativeI64,
                                    make_cumulative<CounterI64>(), kAny);
}
CounterF64& MetricSet::counter_f64(std::string_view name, Fields fields) {
  return find_or_create<CounterF64>(name, std::move(fields), DatumType::kCumulativeF64,
                                    make_cumulative<CounterF64>(), kAny);
}

Gauge& MetricSet::gauge(std::string_view name, Fields fields) {
  return find_or_create<Gauge>(name, std::move(fields), DatumType::kF64, make_plain<Gauge>(), kAny);
}
GaugeI64& MetricSet::gauge_i64(std::string_view name, Fields fields) {
  return find_or_create<GaugeI64>(name, std::move(fields), DatumType::kI64, make_plain<GaugeI64>(),
                                  kAny);
}
GaugeU64& MetricSet::gauge_u64(std::string_view name, Fields fields) {
  return find_or_create<GaugeU64>(name, std::move(fields), DatumType::kU64, make_plain<GaugeU64>(),
                                  kAny);
}
GaugeBool& MetricSet::gauge_bool(std::string_view name, Fields fields) {
  return find_or_create<GaugeBool>(name, std::move(fields), DatumType::kBool,
                                   make_plain<GaugeBool>(), kAny);
}
StringGauge& MetricSet::string_gauge(std::string_view name, Fields fields) {
  return find_or_create<StringGauge>(name, std::move(fields), DatumType::kString,
                                     make_plain<StringGauge>(), kAny);
}

namespace {

template <class Cell, class T>
auto make_histogram(const std::vector<T>& edges) {
  return [&edges] { return std::make_unique<Cell>(edges, now()); };
}

template <class T>
auto same_edges(const std::vector<T>& edges) {
  return [&edges](const BasicHistogram<T>& h) { return h.edges() == edges; };
}

}  // namespace

HistogramF64& MetricSet::histogram(std::string_view name, Fields fields,
                                   std::vector<double> edges) {
  return find_or_create<HistogramF64>(name, std::move(fields), DatumType::kHistogramF64,
                                      make_histogram<HistogramF64>(edges), same_edges(edges));
}
HistogramI64& MetricSet::histogram_i64(std::string_view name, Fields fields,
                                       std::vector<int64_t> edges) {
  return find_or_create<HistogramI64>(name, std::move(fields), DatumType::kHistogramI64,
                                      make_histogram<HistogramI64>(edges), same_edges(edges));
}
HistogramU64& MetricSet::histogram_u64(std::string_view name, Fields fields,
                                       std::vector<uint64_t> edges) {
  return find_or_create<HistogramU64>(name, std::move(fields), DatumType::kHistogramU64,
                                      make_histogram<HistogramU64>(edges), same_edges(edges));
}

void MetricSet::append_samples_json(std::string& out) const {
  std::lock_guard lock(mu_);
  const std::string timestamp = timestamp_json(now());
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (i > 0) out.push_back(',');
    entries_[i].json.append(out, timestamp, entries_[i].cell->read());
  }
}

void MetricSet::read_prometheus(std::vector<std::pair<const PrometheusSeries*, Datum>>& out) const {
  std::lock_guard lock(mu_);
  if (!prometheus_) prometheus_ = std::make_unique<PrometheusCache>();
  PrometheusCache& cache = *prometheus_;
  out.reserve(out.size() + entries_.size());
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    Datum datum = entries_[i].cell->read();
    // Entries are only ever added, so the cache is a prefix of them.
    if (i == cache.series.size()) {
      cache.series.push_back(cache.maker.make(target_, entries_[i].series->metric, datum));
    }
    out.emplace_back(&cache.series[i], std::move(datum));
  }
}

Status MetricSet::produce(std::vector<Sample>& out) {
  std::lock_guard lock(mu_);
  const Timestamp timestamp = now();
  out.reserve(out.size() + entries_.size());
  for (const Entry& entry : entries_) {
    out.push_back(Sample{entry.series, timestamp, entry.cell->read()});
  }
  return {};
}

}  // namespace tally
