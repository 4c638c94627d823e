#include <doctest/doctest.h>

#include <map>

#include "assignment_model.h"

using tally::Uuid;
using tally::registry::model::CollectorLoad;
using tally::registry::model::plan_assignments;

namespace {

Uuid id(int n) {
  Uuid u;
  u.bytes[15] = static_cast<uint8_t>(n);
  return u;
}

std::vector<Uuid> producers(int n) {
  std::vector<Uuid> out;
  for (int i = 0; i < n; ++i) out.push_back(id(100 + i));
  return out;
}

std::map<Uuid, int> totals(const std::vector<CollectorLoad>& start,
                           const std::vector<std::pair<Uuid, Uuid>>& plan) {
  std::map<Uuid, int> out;
  for (const auto& c : start) out[c.id] = static_cast<int>(c.n_producers);
  for (const auto& [producer, collector] : plan) ++out[collector];
  return out;
}

}  // namespace

TEST_CASE("no live collector: nothing is planned") {
  CHECK(plan_assignments({}, producers(3)).empty());
}

TEST_CASE("equal collectors end within one of each other, ties to the smaller id") {
  const std::vector<CollectorLoad> start = {{id(2), 0}, {id(1), 0}, {id(3), 0}};
  const auto plan = plan_assignments(start, producers(10));
  REQUIRE(plan.size() == 10);
  CHECK(plan[0].second == id(1));
  CHECK(plan[1].second == id(2));
  CHECK(plan[2].second == id(3));
  const auto t = totals(start, plan);
  CHECK(t.at(id(1)) == 4);
  CHECK(t.at(id(2)) == 3);
  CHECK(t.at(id(3)) == 3);
}

TEST_CASE("the least-loaded collector is filled first") {
  const std::vector<CollectorLoad> start = {{id(1), 5}, {id(2), 0}, {id(3), 2}};
  const auto plan = plan_assignments(start, producers(6));
  CHECK(plan[0].second == id(2));
  CHECK(plan[1].second == id(2));
  const auto t = totals(start, plan);
  CHECK(t.at(id(1)) == 5);
  CHECK(t.at(id(2)) == 4);
  CHECK(t.at(id(3)) == 4);
}

TEST_CASE("the plan keeps the order of the producers") {
  const auto ps = producers(4);
  const auto plan = plan_assignments({{id(1), 0}}, ps);
  REQUIRE(plan.size() == 4);
  for (std::size_t i = 0; i < ps.size(); ++i) CHECK(plan[i].first == ps[i]);
}
