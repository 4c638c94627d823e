// Spreading producers over live collectors: the pure part of assignment, without a database.
// RegistryStore::gc() does the same in one SQL statement on the server (so that 10,000 producers
// do not cross the wire twice); this is the rule it follows, and store_test checks that they
// agree.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "tally/common/field.h"

namespace tally::registry {

struct CollectorLoad {
  Uuid id;
  int64_t n_producers = 0;
};

// Gives each of `producers` (in order) to the collector that is least loaded at that moment,
// ties broken by the smaller id, counting the producers already given. The result is
// {producer, collector} in the order of `producers`; empty when `collectors` is empty.
// Filling the least-loaded collector first spreads N producers over collectors that start equal
// so that their counts differ by at most one.
std::vector<std::pair<Uuid, Uuid>> plan_assignments(std::vector<CollectorLoad> collectors,
                                                    const std::vector<Uuid>& producers);

}  // namespace tally::registry
