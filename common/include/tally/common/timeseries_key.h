// The timeseries key (DESIGN.md §2): the signed 64-bit XXH64 (seed 0) of the canonical text
// "name@version" followed, for each field sorted by name, by "|field=type:value".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tally/common/field.h"
#include "tally/common/sample.h"

namespace tally {

std::string canonical_series_text(std::string_view timeseries_name, uint32_t version,
                                  const Fields& target_fields, const Fields& metric_fields);
int64_t timeseries_key(std::string_view timeseries_name, uint32_t version,
                       const Fields& target_fields, const Fields& metric_fields);
// What make_timeseries stores in Timeseries::key.
int64_t timeseries_key(const Target& target, const Metric& metric, uint32_t version);

// A set of timeseries keys, for the writer's "series already stored" check that every sample
// goes through: open addressing with linear probing, at most half full: 8 to 16 bytes per key
// and a probe or two per lookup, where a node-based set costs a division and two cache misses.
// Not thread-safe.
class TimeseriesKeySet {
 public:
  bool contains(int64_t key) const;
  // Asks the CPU to fetch the cache line where `key` would be: a writer looking up a batch of
  // keys prefetches a few ahead, since each lookup in a set of many series is a cache miss.
  void prefetch(int64_t key) const;
  bool insert(int64_t key);  // false when it was there already
  void clear();              // and gives the memory back
  std::size_t size() const { return size_ + (has_zero_ ? 1 : 0); }

 private:
  void grow();
  std::vector<uint64_t> slots_;  // a power of two; 0 = empty (key 0 is has_zero_)
  int shift_ = 64;               // 64 - log2(slots_.size())
  std::size_t size_ = 0;         // keys in slots_
  bool has_zero_ = false;
};

}  // namespace tally
