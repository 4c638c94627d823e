// The rule by which the registry spreads producers over live collectors, as a plain function:
// a model for the tests. RegistryStore::gc() applies it in one SQL statement on the server (so
// that 10,000 producers do not cross the wire twice); assignment_test checks the rule's
// properties here, and store_test that the statement gives every producer the same collector.
#pragma once

#include <cstdint>
#include <queue>
#include <utility>
#include <vector>

#include "tally/common/field.h"

namespace tally::registry::model {

struct CollectorLoad {
  Uuid id;
  int64_t n_producers = 0;
};

// Gives each of `producers` (in order) to the collector that is least loaded at that moment,
// ties broken by the smaller id, counting the producers already given. The result is
// {producer, collector} in the order of `producers`; empty when `collectors` is empty.
// Filling the least-loaded collector first spreads N producers over collectors that start equal
// so that their counts differ by at most one.
inline std::vector<std::pair<Uuid, Uuid>> plan_assignments(std::vector<CollectorLoad> collectors,
                                                           const std::vector<Uuid>& producers) {
  std::vector<std::pair<Uuid, Uuid>> plan;
  if (collectors.empty()) return plan;
  plan.reserve(producers.size());
  const auto heavier = [](const CollectorLoad& a, const CollectorLoad& b) {
    if (a.n_producers != b.n_producers) return a.n_producers > b.n_producers;
    return a.id > b.id;
  };
  std::priority_queue<CollectorLoad, std::vector<CollectorLoad>, decltype(heavier)> least(
      heavier, std::move(collectors));
  for (const Uuid& producer : producers) {
    CollectorLoad c = least.top();
    least.pop();
    plan.emplace_back(producer, c.id);
    ++c.n_producers;
    least.push(c);
  }
  return plan;
}

}  // namespace tally::registry::model
