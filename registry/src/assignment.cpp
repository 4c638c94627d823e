#include "tally/registry/assignment.h"

#include <queue>

namespace tally::registry {

std::vector<std::pair<Uuid, Uuid>> plan_assignments(std::vector<CollectorLoad> collectors,
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

}  // namespace tally::registry
