// Producers and the registry that holds them: what GET /collect serves.
//
// A Producer hands over its current samples when collected. Most apps never write one: a
// MetricSet (metric_set.h) is a ready-made Producer of counters, gauges and histograms. Write one
// when the values live elsewhere (a cache's statistics, a pool's state) and are read on demand.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tally/common/collect_json.h"
#include "tally/common/result.h"
#include "tally/common/sample.h"

namespace tally {

class Producer {
 public:
  virtual ~Producer();

  // Appends this producer's current samples to `out`. Returning an error (or throwing) turns
  // this producer's part of the collect response into an "err" item — {"type": status.code(),
  // "content": status.message()}, "datum_error" for the plain "error" code — and discards what
  // it appended; the other producers' samples are served as usual. Samples must pass
  // validate_sample(); a producer that emits an invalid one is reported as an error too.
  //
  // Called from the server's worker threads, never concurrently for the same producer.
  virtual Status produce(std::vector<Sample>& out) = 0;
};

// Holds any number of producers. Thread-safe: producers may be added and removed while the
// registry is being collected.
class ProducerRegistry {
 public:
  using Id = uint64_t;

  ProducerRegistry();
  ~ProducerRegistry();
  ProducerRegistry(const ProducerRegistry&) = delete;
  ProducerRegistry& operator=(const ProducerRegistry&) = delete;

  // Adds a producer (not null; throws std::invalid_argument otherwise) and returns the id that
  // removes it. The registry shares ownership.
  Id add(std::shared_ptr<Producer> producer);
  // Removes a producer; false when the id is unknown. A collection already running may still
  // call it once.
  bool remove(Id id);
  std::size_t size() const;

  // Collects every producer, in the order they were added: one item per producer.
  std::vector<CollectItem> collect() const;
  // The same collection encoded as the JSON of DESIGN.md §3.1: encode_collect_response(collect())
  // (the timestamps are those of this call), but a MetricSet's samples are written straight from
  // its metrics, without building Sample objects. What ProducerServer serves at GET /collect.
  std::string collect_json() const;
  // The same collection as Prometheus text 0.0.4 (the mapping of docs/producer.md), with a
  // MetricSet's series' names and labels rendered once and kept. What ProducerServer serves at
  // GET /metrics.
  std::string collect_prometheus() const;

 private:
  struct Entry;
  std::vector<std::shared_ptr<Entry>> entries() const;

  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Entry>> entries_;
  Id next_id_ = 1;
  // The size of the last collect_json(), reserved for the next one: a large response then needs
  // no growing (each growth copies what is written so far).
  mutable std::atomic<std::size_t> json_size_hint_{0};
};

}  // namespace tally
