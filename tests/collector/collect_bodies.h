// Collect-response bodies for the scheduler and scraper tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "support/series.h"
#include "tally/common/collect_json.h"
#include "tally/common/sample.h"
#include "tally/common/time.h"

namespace tally::collector::test {

// Sample `i`: an i64 gauge of series shard=i, at 2026-11-22T10:00:00Z + i µs.
inline Sample shard_sample(int64_t i) {
  Sample s;
  tally::test::change_series(s, [&](Timeseries& t) {
    t.target = {"collector_test", {{"host", std::string("a")}}};
    t.metric = {"requests", {{"shard", int64_t{i}}}};
  });
  s.timestamp = parse_rfc3339("2026-11-22T10:00:00Z").value() + std::chrono::microseconds(i);
  s.datum = int64_t{i};
  return s;
}

// An oximeter response: one ok item with `n_samples` samples, then `n_errors` err items.
inline std::string oximeter_body(int n_samples, int n_errors = 0) {
  std::vector<CollectItem> items(1);
  for (int i = 0; i < n_samples; ++i) items[0].samples.push_back(shard_sample(i));
  for (int i = 0; i < n_errors; ++i) {
    CollectItem err;
    err.error = ProducerError{"datum_error", "disk stats unavailable"};
    items.push_back(err);
  }
  return encode_collect_response(items);
}

}  // namespace tally::collector::test
