// Tally samples as Prometheus text 0.0.4, for the producer server's GET /metrics.
//
// Family name <target>_<metric>; every target field, then every metric field, becomes a label
// (value as format_field_value writes it). Cumulative datums are counters, named with a
// "_total" suffix unless the metric name already ends in it. Numeric and bool gauges are gauges
// (bool as 0/1). Histograms become _bucket{le=…} (cumulative, ending in le="+Inf"), _sum and
// _count; a Tally bin holds its lower edge, so a sample exactly on an edge counts in the bucket
// above that edge. String gauges are info-style: the string goes in a "value" label and the
// sample value is 1. Bytes and missing datums have no Prometheus form and are left out, as is a
// sample whose family name was already used with another type. An "err" item becomes a comment.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tally/common/collect_json.h"

namespace tally {

std::string encode_prometheus(std::span<const CollectItem> items);

// The constant text of one timeseries — family name, HELP text, label pairs — rendered once for
// a producer that serves the same series at every collection (MetricSet does), so that a
// collection only writes the values. Immutable once made.
struct PrometheusSeries {
  enum class Kind { kCounter, kGauge, kHistogram, kInfo, kNone };

  Kind kind = Kind::kNone;  // of the datum it was made for; kNone: not served
  std::string family;       // "<target>_<metric>", "_total" added for a counter
  std::string help;         // "Tally timeseries <target>:<metric> (<datum type>)"
  std::string labels;       // a="x",b="y": target fields, then metric fields
  std::string timeseries_name;
  // The start of its lines, up to the value: "<family>{<labels>} " for a counter or gauge;
  // for a histogram "<family>_bucket{<labels>," (the le pair and "} " follow), "<family>_sum…"
  // and "<family>_count…". Empty for a string gauge, whose lines carry one more label.
  std::string value_prefix;
  std::string bucket_prefix;
  std::string sum_prefix;
  std::string count_prefix;
  bool has_value_field = false;  // a string gauge cannot add its "value" label
  bool has_le_field = false;     // a histogram cannot add its "le" label
};

// Makes the PrometheusSeries of samples; keeps the label text of the last target, so the
// samples of one producer format their target's fields once.
class PrometheusSeriesMaker {
 public:
  PrometheusSeries make(const Target& target, const Metric& metric, const Datum& datum);

 private:
  bool have_target_ = false;
  Fields target_fields_;
  std::string target_labels_;
  std::string scratch_;
};

// Writes one response: samples are added producer by producer, the text is written family by
// family (each family's samples together under one TYPE line), families in first-seen order.
// Holds pointers: the series, datums and samples added must outlive finish().
class PrometheusWriter {
 public:
  void add_error(const ProducerError& error);
  // A series made beforehand (a MetricSet's) and its current value.
  void add(const PrometheusSeries& series, const Datum& datum);
  // Any other producer's sample: its names and labels are formatted as it is written.
  void add(const Sample& sample);
  std::string finish();

 private:
  struct Line {
    const PrometheusSeries* series;  // with datum, or else
    const Datum* datum;
    const Sample* sample;
  };
  struct Family {
    std::string name;
    PrometheusSeries::Kind kind;
    std::string help;
    std::vector<Line> lines;
  };
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::string comments_;  // errors and skipped series, written before every family
  std::vector<Family> families_;
  std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>> by_name_;
  std::size_t lines_ = 0;
};

}  // namespace tally
