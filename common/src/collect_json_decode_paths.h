// The two decoders behind decode_collect_response (collect_json.h), internal to the common
// library and its tests:
// - decode_canonical, a scanner of the layout producers write (oximeter's serde output, Tally's
//   encoder): no escapes in the strings it reads, known keys, plain numbers. It decodes such a
//   response with no parse tree and no copy of the text, and refuses anything else, saying
//   nothing about why.
// - decode_general, simdjson's On Demand over any JSON, which reports what is wrong and where.
// decode_collect_response tries the first and falls back to the second. What the canonical
// scanner accepts, the general decoder decodes to the same items and memo (tests/common/
// collect_json_canonical_test.cpp and tests/fuzz/collect_json_fuzz.cpp check both ways).
#pragma once

#include <array>
#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tally/common/collect_json.h"

namespace tally::collect_json {

// The whole response, or nullopt when it is not in the canonical layout, is invalid or is over
// limits.max_samples (the general decoder then says why). memo.next must be empty on entry; on
// success it holds this response's entries (the caller swaps it into memo.last), on refusal the
// memo is as it was.
std::optional<std::vector<CollectItem>> decode_canonical(std::string_view json,
                                                         const DecodeLimits& limits,
                                                         CollectDecodeMemo& memo);

// The whole response, or the error naming its JSON path. memo.next must be empty on entry and
// holds this response's entries on success.
Result<std::vector<CollectItem>> decode_general(std::string_view json, const DecodeLimits& limits,
                                                CollectDecodeMemo& memo);

// Shared by both decoders.

// The keys of the objects both decoders read by walking their members: a member's position in
// its list is the case that reads it, and the bit it sets in the set of keys met.
inline constexpr std::array<std::string_view, 5> kSampleKeys = {
    "timeseries_name", "timeseries_version", "target", "metric", "measurement"};
inline constexpr std::array<std::string_view, 7> kHistogramKeys = {
    "start_time", "bins", "n_samples", "min", "max", "sum_of_samples", "squared_mean"};
inline constexpr std::array<std::string_view, 2> kBinKeys = {"range", "count"};

// A number as text for a message: "0.5", "-3".
template <class T>
std::string number_text(T value) {
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, ptr);
}

CollectDecodeMemo::TextHash hash_text(std::string_view text);

// The n-th sample's timeseries (n = memo.next.size()) when the n-th entry of memo.last has these
// hashes and version: the entry moves to memo.next. Null otherwise, and nothing moves.
TimeseriesRef reuse_series(CollectDecodeMemo& memo, const CollectDecodeMemo::TextHash& target,
                           const CollectDecodeMemo::TextHash& metric, uint32_t version);

// Whether a sample's timeseries_name is "<target name>:<metric name>" of its timeseries.
bool name_matches(std::string_view timeseries_name, const Timeseries& series);

// A target's or a metric's JSON object, decoded from its text alone ({"name":…,"fields":{…}}),
// as the general decoder decodes it; false when it would fail there.
bool decode_target_text(std::string_view text, Target& out);
bool decode_metric_text(std::string_view text, Metric& out);

// Calls read(bins) to gather a histogram's bins in a per-thread buffer, then copies them to
// `out` at their exact count: one allocation per histogram, and no slack kept in the samples.
template <class T>
std::vector<Bin<T>>& bin_buffer() {
  thread_local std::vector<Bin<T>> bins;  // one per T, whichever decoder reads
  return bins;
}

template <class T, class Read>
bool gather_bins(std::vector<Bin<T>>& out, Read&& read) {
  constexpr std::size_t kRetainedBins = 1024;
  std::vector<Bin<T>>& bins = bin_buffer<T>();
  bins.clear();
  const bool ok = read(bins);
  if (ok) out.assign(bins.begin(), bins.end());
  if (bins.capacity() > kRetainedBins) std::vector<Bin<T>>().swap(bins);  // a rare huge one
  return ok;
}

// The rules of a histogram's bins, which keep only lower edges: the first may be range_to, the
// last must be range_from, and each starts where the previous one ended. Fed each bin's range
// in order; a problem is the message for the bin's path.
template <class T>
class BinSequence {
 public:
  // Before a bin is read: whether one may come (not after range_from).
  std::optional<std::string> next() const;
  // A bin's range: both edges for "range", no start for "range_to", no end for "range_from".
  std::optional<std::string> add(std::optional<T> start, std::optional<T> end);
  std::optional<std::string> finish() const;

 private:
  std::size_t count_ = 0;
  std::optional<T> prev_end_;
  bool unbounded_above_ = false;
};

template <class T>
std::optional<std::string> BinSequence<T>::next() const {
  if (unbounded_above_) return "a bin follows the range_from bin, which must be the last";
  return std::nullopt;
}

template <class T>
std::optional<std::string> BinSequence<T>::add(std::optional<T> start, std::optional<T> end) {
  if constexpr (std::is_floating_point_v<T>) {
    if ((start && std::isnan(*start)) || (end && std::isnan(*end))) return "a bin edge is NaN";
  }
  if (!start && count_ != 0) return "only the first bin may be range_to";
  if (start && prev_end_ && *start != *prev_end_) {
    return "bins are not contiguous: this one starts at " + number_text(*start) +
           " but the previous one ends at " + number_text(*prev_end_);
  }
  if (start && end && !(*start < *end)) {
    return "empty range: start " + number_text(*start) + " is not below end " + number_text(*end);
  }
  if (end) prev_end_ = end;
  unbounded_above_ = !end;
  ++count_;
  return std::nullopt;
}

template <class T>
std::optional<std::string> BinSequence<T>::finish() const {
  if (count_ == 0) return "a histogram needs at least one bin";
  if (!unbounded_above_) return "the last bin must be range_from (unbounded above)";
  return std::nullopt;
}

}  // namespace tally::collect_json
