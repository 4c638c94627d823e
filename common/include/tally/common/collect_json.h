// The collect response of DESIGN.md §3.1 (oximeter-compatible JSON): decode and encode.
#pragma once

#include <cstddef>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tally/common/result.h"
#include "tally/common/sample.h"

namespace tally {

// An "err" item: {"status": "err", "info": {"type": "...", "content": "..."}}.
struct ProducerError {
  std::string type;
  std::string content;
  bool operator==(const ProducerError&) const = default;
};

// One item of the response list: the samples of one producer, or its error.
struct CollectItem {
  std::vector<Sample> samples;
  std::optional<ProducerError> error;  // set: an "err" item (samples are then empty)
};

struct DecodeLimits {
  std::size_t max_samples = std::numeric_limits<std::size_t>::max();
};

// What decoding a producer's response keeps for decoding its next one: each sample's
// timeseries, with the 128-bit hashes of the target's and the metric's JSON text it was decoded
// from. Producers serve their series in the same order at every collection, so the n-th sample
// of a response whose target text, metric text and version hash and compare as those of the
// n-th sample of the last response shares its timeseries: no metric fields are decoded, checked,
// hashed into a key or copied again. One per producer (the collector keeps one with each), used
// by one decode at a time; it keeps the last successful response's timeseries alive.
struct CollectDecodeMemo {
  struct TextHash {  // XXH3-128 of a JSON text
    uint64_t low = 0;
    uint64_t high = 0;
    bool operator==(const TextHash&) const = default;
  };
  struct Entry {
    TextHash target;
    TextHash metric;
    uint32_t version = 1;  // series->version, beside the hashes: a comparison reads this entry only
    uint32_t metric_size = 0;  // of the metric's text: how much text to hash for the next match
    TimeseriesRef series;
  };
  std::vector<Entry> last;  // the samples of the last successful decode, in order
  std::vector<Entry> next;  // filled by the decode under way, empty between decodes
};

// Decodes a whole response. Every sample is validated (validate_sample). On malformed input
// nothing is returned but an error naming the JSON path and the problem, e.g.
// "[0].info[3].measurement.datum: unknown type 'f65'" (code "decode"), or code
// "too_many_samples" when the response holds more than limits.max_samples samples. With a memo
// (see above) the samples share the timeseries of the last response's where they can. The layout
// producers write is read by a one-pass scanner, anything else by simdjson's On Demand, with the
// same result (common/src/collect_json_decode_paths.h).
Result<std::vector<CollectItem>> decode_collect_response(std::string_view json,
                                                         const DecodeLimits& limits = {},
                                                         CollectDecodeMemo* memo = nullptr);

// Encodes items as the JSON of §3.1. Floats that are NaN/±Inf become "NaN"/"Infinity"/"-Infinity".
std::string encode_collect_response(std::span<const CollectItem> items);
// Appends one item of the response list (no separating comma).
void append_collect_item_json(std::string& out, const CollectItem& item);
// Appends one sample's JSON object (an element of an "info" list).
void append_sample_json(std::string& out, const Sample& s);

// The text around the samples of an "ok" item, for writers that append the samples themselves.
inline constexpr std::string_view kOkItemJsonOpen = "{\"status\":\"ok\",\"info\":[";
inline constexpr std::string_view kOkItemJsonClose = "]}";

// A timestamp as a JSON string, quotes included: "\"2026-11-22T10:00:00.123456Z\"".
std::string timestamp_json(Timestamp t);

// A target rendered as JSON once, shared by the SampleJsonTemplates of its series.
class TargetJson {
 public:
  explicit TargetJson(const Target& target);

 private:
  friend class SampleJsonTemplate;
  std::string name_;
  std::string json_;  // {"name":…,"fields":{…}}
};

// The constant JSON of one timeseries' samples — names, fields, version, datum type, start time
// and histogram bin ranges — rendered once for a producer that serves the same series at every
// collection (MetricSet does), so that a collection writes only the timestamp and the values.
// Immutable once made: append() may run on several threads at once.
class SampleJsonTemplate {
 public:
  // `shape` is a datum of the series: its type, start time and histogram bin edges are rendered,
  // its values ignored. `same_bins`, when not null, is a template whose rendered bin ranges are
  // shared if its edges are the same (histograms of one metric name), to save memory.
  SampleJsonTemplate(std::shared_ptr<const TargetJson> target, const Metric& metric,
                     uint32_t version, const Datum& shape,
                     const SampleJsonTemplate* same_bins = nullptr);

  // Appends exactly what append_sample_json(out, {target, metric, version, t, datum}) does, given
  // timestamp_json(t). A datum whose type, start time or bin edges differ from the shape's is
  // rendered in full, so the output is right whatever the datum.
  void append(std::string& out, std::string_view quoted_timestamp, const Datum& datum) const;

  struct BinRanges;  // the rendered bins of a histogram shape (collect_json_encode.cpp)

 private:
  std::shared_ptr<const TargetJson> target_;
  std::string head_;        // {"timeseries_name":…,"timeseries_version":…,"target":
  std::string metric_;      // ,"metric":{…},"measurement":{"timestamp":
  std::string datum_open_;  // ,"datum":{"type":…,"datum": up to the first value
  std::size_t index_;       // the shape's alternative of Datum
  std::optional<Timestamp> start_time_;
  std::shared_ptr<const BinRanges> bins_;  // histograms only
};

}  // namespace tally
