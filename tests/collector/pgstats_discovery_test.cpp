// Where the Postgres monitor's targets come from: the API's answer, merging it with the static
// list, and keeping the last good list when the API fails. With a real HTTP server and real
// clusters in pgstats_db_test.cpp.
#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <thread>

#include "tally/collector/pgstats/discovery.h"

namespace tally::collector::pgstats {
namespace {

PgTarget api(std::string name, std::string url) {
  return PgTarget{std::move(name), std::move(url), TargetSource::kApi};
}
PgTarget fixed(std::string name, std::string url) {
  return PgTarget{std::move(name), std::move(url), TargetSource::kStatic};
}

TEST_CASE("parse_discovery_list reads [{name, url}] and ignores other keys") {
  auto list = parse_discovery_list(
      R"([{"name": "a", "url": "postgresql://mon@db1:5433/postgres", "zone": "x"},
          {"url": "postgres://db2/postgres", "name": "b"}])");
  REQUIRE_MESSAGE(list.ok(), list.error());
  CHECK(*list == std::vector<PgTarget>{api("a", "postgresql://mon@db1:5433/postgres"),
                                       api("b", "postgres://db2/postgres")});
  auto empty = parse_discovery_list("[]");
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

TEST_CASE("parse_discovery_list rejects garbage, naming what is wrong") {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {"", "not JSON"},
      {"<html>oops</html>", "not JSON"},
      {R"({"items": []})", "not a JSON list"},
      {R"([1])", "item 0: not an object"},
      {R"([{"url": "postgresql://h/d"}])", "item 0: 'name' must be"},
      {R"([{"name": "", "url": "postgresql://h/d"}])", "item 0: 'name' must be"},
      {R"([{"name": "a\nb", "url": "postgresql://h/d"}])", "item 0: 'name' must be"},
      {R"([{"name": 3, "url": "postgresql://h/d"}])", "item 0: 'name' must be"},
      {R"([{"name": "a"}])", "item 0: 'url' must be a postgresql:// URL"},
      {R"([{"name": "a", "url": "http://h/d"}])", "item 0: 'url' must be a postgresql:// URL"},
      {R"([{"name": "a", "url": "postgresql://h:99999/d"}])", "item 0: port '99999'"},
      {R"([{"name": "a", "url": "postgresql://h/d"}, {"name": "a", "url": "postgresql://i/d"}])",
       "item 1: name 'a' appears twice"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.json);
    auto list = parse_discovery_list(c.json);
    REQUIRE_FALSE(list.ok());
    CHECK(list.status().code() == "decode");
    CHECK(list.error().find(c.message) != std::string::npos);
  }
}

TEST_CASE("merge_targets: static and API targets together, a static name wins a clash") {
  std::vector<std::string> clashes;
  const auto merged =
      merge_targets({fixed("main", "postgresql://a/x"), fixed("b", "postgresql://b/x")},
                    {api("main", "postgresql://other/x"), api("c", "postgresql://c/x")}, &clashes);
  CHECK(merged == std::vector<PgTarget>{fixed("b", "postgresql://b/x"),
                                        api("c", "postgresql://c/x"),
                                        fixed("main", "postgresql://a/x")});
  CHECK(clashes == std::vector<std::string>{"main"});
}

// A fetch that answers what the test says, counting its calls.
struct FakeApi {
  Result<std::string> answer = std::string("[]");
  int calls = 0;
  DiscoveryFetch fetch() {
    return [this](const config::DiscoveryApiConfig&) {
      ++calls;
      return answer;
    };
  }
};

TEST_CASE("a failed or garbled fetch is counted and the last good list stays") {
  FakeApi fake;
  std::optional<std::vector<PgTarget>> last;
  int lists = 0;
  Discovery discovery({.url = "http://127.0.0.1:1/v1/postgres"}, fake.fetch(),
                      [&](std::vector<PgTarget> list) {
                        last = std::move(list);
                        ++lists;
                      });
  fake.answer = std::string(R"([{"name": "a", "url": "postgresql://h/d"}])");
  CHECK(discovery.refresh());
  REQUIRE(last.has_value());
  CHECK(*last == std::vector<PgTarget>{api("a", "postgresql://h/d")});

  fake.answer = Status::error("cannot connect to 127.0.0.1:1: connection refused", "unreachable");
  CHECK_FALSE(discovery.refresh());
  fake.answer = std::string("{not json");
  CHECK_FALSE(discovery.refresh());
  fake.answer = Status::error("answered 500: boom", "http_500");
  CHECK_FALSE(discovery.refresh());
  CHECK(lists == 1);  // the callback never heard of the failures: the last list stays
  CHECK(discovery.stats().refreshes == 4);
  CHECK(discovery.stats().failures == 3);

  fake.answer = std::string("[]");  // an empty list is a good list: every API target goes
  CHECK(discovery.refresh());
  CHECK(lists == 2);
  CHECK(last->empty());
}

TEST_CASE("the discovery thread fetches at once and stops promptly") {
  FakeApi fake;
  std::atomic<int> lists{0};
  Discovery discovery({.url = "http://127.0.0.1:1/x", .refresh_interval = std::chrono::hours(1)},
                      fake.fetch(), [&](std::vector<PgTarget>) { ++lists; });
  discovery.start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (lists == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  CHECK(lists == 1);
  discovery.stop();  // does not wait out the hour
  CHECK(discovery.stats().refreshes == 1);
}

}  // namespace
}  // namespace tally::collector::pgstats
