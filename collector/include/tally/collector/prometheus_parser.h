// Prometheus text exposition (0.0.4, and OpenMetrics text) → Tally samples, with the mapping of
// DESIGN.md §3.2:
//   target  = `target_name` with fields producer_id (uuid) and instance (the address);
//   metric  = the family name, lowercased, invalid characters turned into '_';
//   labels  → string metric fields (a label that clashes with a target field gets the prefix
//             "exported_", as Prometheus does);
//   counter → cumulative_f64, gauge/untyped → f64, histogram → histogram_f64 (bins from `le`),
//   summary → f64 per quantile (field `quantile`) plus cumulative_f64 `<name>_sum`/`_count`.
// Counters and histograms start at `_created` when given, else when this parser first saw the
// series (or saw it go down: a reset). The parser keeps that memory, and a cache of the series
// it read, between scrapes, so use one per producer. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
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
  explicit PrometheusParser(PrometheusSource source);
  ~PrometheusParser();
  PrometheusParser(PrometheusParser&&) noexcept;
  PrometheusParser& operator=(PrometheusParser&&) noexcept;

  // Parses one scrape taken at `scrape_time`. Malformed input is an error naming the line
  // (code "decode") and yields no samples; more than `max_samples` samples is an error with
  // code "too_many_samples", raised as soon as the text holds more series than that (each is at
  // least one sample), so a hostile scrape costs no more than max_samples series of memory.
  Result<std::vector<Sample>> parse(
      std::string_view text, Timestamp scrape_time,
      std::size_t max_samples = std::numeric_limits<std::size_t>::max());

  // The series cache (as Prometheus keeps one per target): a sample line whose `name{labels}`
  // text was read by the last successful parse reuses what that parse derived from it (series
  // identity, family and type, le/quantile, metric name and fields, the validation of its names)
  // instead of reading its labels again. It holds the series and lines of the last successful
  // parse only: after a successful parse, the ones it did not see are dropped; after a failed
  // one, the ones it added. These count what it holds (for tests and memory accounting).
  std::size_t cached_series() const;
  std::size_t cached_lines() const;

 private:
  struct Cache;

  Status parse_into(std::string_view text, Timestamp scrape_time, std::size_t max_samples,
                    std::vector<Sample>& out);

  PrometheusSource source_;
  std::unique_ptr<Cache> cache_;
  uint64_t parse_number_ = 0;
};

// "http_requests:rate5m" → "http_requests_rate5m"; "Foo__Bar_" → "foo_bar". Returns "" when
// nothing valid is left.
std::string sanitize_prometheus_name(std::string_view name);

}  // namespace tally::collector
