// Prometheus text exposition (0.0.4, and OpenMetrics text) → Tally samples, with the mapping of
// DESIGN.md §3.2:
//   target  = `target_name` with fields producer_id (uuid) and instance (the address);
//   metric  = the family name, lowercased, invalid characters turned into '_';
//   labels  → string metric fields (a label that clashes with a target field gets the prefix
//             "exported_", as Prometheus does);
//   counter → cumulative_f64, gauge/untyped → f64, histogram → histogram_f64 (bins from `le`),
//   summary → f64 per quantile (field `quantile`) plus cumulative_f64 `<name>_sum`/`_count`.
// Counters and histograms start at `_created` when given, else when this parser first saw the
// series (or saw it go down: a reset). The parser keeps that memory between scrapes, so use
// one per producer. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tally/common/field.h"
#include "tally/common/result.h"
#include "tally/common/sample.h"

namespace tally::collector {

struct PrometheusSource {
  std::string target_name = "prometheus";
  Uuid producer_id;
  std::string instance;  // host:port
};

class PrometheusParser {
 public:
  explicit PrometheusParser(PrometheusSource source) : source_(std::move(source)) {}

  // Parses one scrape taken at `scrape_time`. Malformed input is an error naming the line
  // (code "decode") and yields no samples; more than `max_samples` samples is an error with
  // code "too_many_samples", raised as soon as the text holds more series than that (each is at
  // least one sample), so a hostile scrape costs no more than max_samples series of memory.
  Result<std::vector<Sample>> parse(std::string_view text, Timestamp scrape_time,
                                    std::size_t max_samples = std::numeric_limits<std::size_t>::max());

 private:
  // A counter/histogram/summary series' start time as of the last successful parse, and the
  // one the parse in progress found (kept only if that parse succeeds).
  struct SeriesStart {
    Timestamp start_time;
    double last_value = 0;
    Timestamp next_start;
    double next_value = 0;
    uint64_t next_parse = 0;  // the parse that set next_*
    bool committed = false;   // start_time/last_value are set
  };
  // Lets starts_ be searched with a string_view, so that a lookup builds no string.
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  Status parse_into(std::string_view text, Timestamp scrape_time, std::size_t max_samples,
                    std::vector<Sample>& out);

  PrometheusSource source_;
  // Start times of counter/histogram/summary series by series identity.
  std::unordered_map<std::string, SeriesStart, StringHash, std::equal_to<>> starts_;
  uint64_t parse_number_ = 0;
  std::string line_id_;  // the identity of the line being read (its capacity is reused)
};

// "http_requests:rate5m" → "http_requests_rate5m"; "Foo__Bar_" → "foo_bar". Returns "" when
// nothing valid is left.
std::string sanitize_prometheus_name(std::string_view name);

}  // namespace tally::collector
