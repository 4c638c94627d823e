#include "tally/collector/schema_check.h"

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "sink_fakes.h"
#include "support/series.h"

namespace tally::collector {
namespace {

using schema::TimeseriesSchema;
using test::FakeClock;
using FakeSource = test::FakeSchemaSource;
using test::numbered;
using test::numbered_sample;
using test::numbers_of;
using test::range;

struct Fixture {
  FakeClock clock;
  FakeSource* source;
  std::unique_ptr<SchemaChecker> checker;
  Fixture() {
    auto s = std::make_unique<FakeSource>();
    source = s.get();
    checker = std::make_unique<SchemaChecker>(std::move(s), SchemaCheckerOptions{}, clock);
  }
};

Sample other_series(int64_t i) { return numbered_sample(i, "errors"); }

TEST_CASE("new schemas are stored once and known ones never reach the database") {
  Fixture f;
  auto first = f.checker->check(numbered(0, 100));
  CHECK(first.status.ok());
  CHECK(numbers_of(first.accepted) == range(0, 100));
  CHECK(first.rejections.total() == 0);
  CHECK(first.schemas_created == 1);
  CHECK(f.source->calls == 1);

  auto second = f.checker->check(numbered(100, 100));
  CHECK(second.accepted.size() == 100);
  CHECK(second.schemas_created == 0);
  CHECK(f.source->calls == 1);
  CHECK(f.checker->cached_schemas() == 1);
}

TEST_CASE("each distinct (name, version) is asked about once, samples keep their order") {
  Fixture f;
  std::vector<Sample> samples;
  for (int64_t i = 0; i < 30; ++i) {
    Sample s = i % 3 == 0 ? other_series(i) : numbered_sample(i);
    if (i % 5 == 0) tally::test::change_series(s, [](Timeseries& t) { t.version = 2; });
    samples.push_back(std::move(s));
  }
  auto result = f.checker->check(std::move(samples));
  CHECK(numbers_of(result.accepted) == range(0, 30));
  CHECK(result.schemas_created == 4);
  CHECK(f.source->calls == 4);
}

TEST_CASE("samples that differ from the stored schema are rejected with both schemas spelled out") {
  struct Case {
    const char* name;
    std::function<void(Sample&)> change;
    const char* difference;
  };
  const std::vector<Case> cases = {
      {"field type",
       [](Sample& s) {
         tally::test::change_series(
             s, [](Timeseries& t) { t.metric.fields[0].value = std::string("x"); });
       },
       "field 'shard' is i64 in the stored schema but string in the new one"},
      {"datum type", [](Sample& s) { s.datum = 1.5; }, "datum type differs: i64 vs f64"},
      {"extra field",
       [](Sample& s) {
         tally::test::change_series(s, [&](Timeseries& t) {
           t.metric.fields.push_back({"zone", std::string("b")});
         });
       },
       "field 'zone' only in the new schema (metric)"},
      {"missing field",
       [](Sample& s) {
         tally::test::change_series(s, [](Timeseries& t) { t.metric.fields.clear(); });
       },
       "field 'shard' only in the stored schema (metric)"},
      {"field source",
       [](Sample& s) {
         tally::test::change_series(s, [&](Timeseries& t) {
           t.target.fields.push_back(t.metric.fields[0]);
           t.metric.fields.clear();
         });
       },
       "field 'shard' is a metric field in the stored schema but a target field in the new one"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Fixture f;
    REQUIRE(f.checker->check(numbered(0, 1)).accepted.size() == 1);  // stores the schema

    std::vector<Sample> samples = numbered(1, 6);
    for (std::size_t i = 0; i < samples.size(); i += 2) c.change(samples[i]);
    auto result = f.checker->check(std::move(samples));
    CHECK(result.status.ok());
    CHECK(numbers_of(result.accepted) == std::vector<int64_t>{2, 4, 6});
    CHECK(result.rejections.schema == 3);
    REQUIRE(result.rejections.conflicts.size() == 1);  // one message per series per call
    const std::string& message = result.rejections.conflicts[0];
    CHECK(message.find("schema of 'sink_test:requests' v1 differs from the stored one") !=
          std::string::npos);
    CHECK_MESSAGE(message.find(c.difference) != std::string::npos, message);
    CHECK(message.find(
              "; stored: sink_test:requests v1 (host string target, shard i64 metric) i64") !=
          std::string::npos);
    CHECK(message.find("; new: sink_test:requests v1 (") != std::string::npos);
  }
}

TEST_CASE("fields are matched by name whatever order a sample lists them in") {
  // The checker walks a sample's fields in step with the order the first sample listed them,
  // and searches by name when the order differs.
  const auto with_fields = [](int64_t i, Fields metric_fields) {
    Sample s = numbered_sample(i);
    tally::test::change_series(s,
                               [&](Timeseries& t) { t.metric.fields = std::move(metric_fields); });
    return s;
  };
  const Fields listed = {{"shard", int64_t{1}}, {"zone", std::string("a")}};
  const Fields reversed = {{"zone", std::string("a")}, {"shard", int64_t{1}}};
  const Fields reversed_retyped = {{"zone", int64_t{7}}, {"shard", int64_t{1}}};
  const Fields renamed = {{"shard", int64_t{1}}, {"region", std::string("a")}};

  Fixture f;
  auto result = f.checker->check({with_fields(0, listed), with_fields(1, reversed),
                                  with_fields(2, reversed_retyped), with_fields(3, listed)});
  CHECK(numbers_of(result.accepted) == std::vector<int64_t>{0, 1, 3});
  CHECK(result.rejections.schema == 1);

  // The first sample of a series conflicting with a stored schema leaves no order to follow.
  Fixture g;
  g.source->store(schema::derive_schema(with_fields(0, reversed)));
  result = g.checker->check({with_fields(0, {{"shard", int64_t{1}}}), with_fields(1, listed),
                             with_fields(2, reversed), with_fields(3, renamed)});
  CHECK(numbers_of(result.accepted) == std::vector<int64_t>{1, 2});
  CHECK(result.rejections.schema == 2);
}

TEST_CASE("a schema stored by someone else is the one samples are checked against") {
  Fixture f;
  TimeseriesSchema theirs = schema::derive_schema(numbered_sample(0));
  theirs.datum_type = DatumType::kU64;
  f.source->store(theirs);
  auto result = f.checker->check(numbered(0, 4));
  CHECK(result.accepted.empty());
  CHECK(result.rejections.schema == 4);
  CHECK(result.schemas_created == 0);
  REQUIRE(result.rejections.conflicts.size() == 1);
  CHECK(result.rejections.conflicts[0].find("datum type differs: u64 vs i64") != std::string::npos);
  // The conflict is cached too: asking again costs no round trip.
  (void)f.checker->check(numbered(4, 4));
  CHECK(f.source->calls == 1);
}

TEST_CASE("samples Postgres cannot hold are rejected as unstorable") {
  Fixture f;
  std::vector<Sample> samples = numbered(0, 4);
  tally::test::change_series(
      samples[1], [&](Timeseries& t) { t.target.fields[0].value = std::string("bad \xff utf-8"); });
  samples[2].timestamp = Timestamp(std::chrono::sys_days(std::chrono::year(10000) / 1 / 1));
  auto result = f.checker->check(std::move(samples));
  CHECK(numbers_of(result.accepted) == std::vector<int64_t>{0, 3});
  CHECK(result.rejections.unstorable == 2);
  CHECK(result.rejections.schema == 0);
  CHECK(result.rejections.first_unstorable.find("timeseries 'sink_test:requests'") == 0);
}

TEST_CASE("while the schema store is down, known schemas pass and new ones are handed back") {
  Fixture f;
  REQUIRE(f.checker->check(numbered(0, 2)).accepted.size() == 2);
  f.source->down = true;

  std::vector<Sample> samples = numbered(2, 4);
  samples.push_back(other_series(6));
  samples.push_back(other_series(7));
  samples.push_back(numbered_sample(8));
  auto result = f.checker->check(std::move(samples));
  CHECK(result.status.code() == "database");
  CHECK(result.status.message().find("sink_test:errors") != std::string::npos);
  CHECK(numbers_of(result.accepted) == std::vector<int64_t>{2, 3, 4, 5, 8});
  CHECK(numbers_of(result.unchecked) == std::vector<int64_t>{6, 7});
  CHECK(result.rejections.total() == 0);
  CHECK(f.source->calls == 2);

  // Within retry_after nobody waits for the database again.
  auto again = f.checker->check({other_series(9)});
  CHECK(again.status.code() == "database");
  CHECK(numbers_of(again.unchecked) == std::vector<int64_t>{9});
  CHECK(f.source->calls == 2);

  // Later, and with the store back, the held-back samples go through.
  f.source->down = false;
  f.clock.advance(std::chrono::seconds(1));
  auto retried = f.checker->check(std::move(result.unchecked));
  CHECK(retried.status.ok());
  CHECK(numbers_of(retried.accepted) == std::vector<int64_t>{6, 7});
  CHECK(retried.schemas_created == 1);
}

TEST_CASE("several threads check at once") {
  Fixture f;
  constexpr int kThreads = 4;
  std::atomic<std::size_t> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        std::vector<Sample> samples;
        for (int64_t i = 0; i < 20; ++i) {
          Sample s = numbered_sample(i, "m" + std::to_string((i + t + round) % 7));
          samples.push_back(std::move(s));
        }
        accepted += f.checker->check(std::move(samples)).accepted.size();
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(accepted == kThreads * 50 * 20);
  CHECK(f.checker->cached_schemas() == 7);
  CHECK(f.source->calls <= 7 * kThreads);  // a race may ask twice; the store makes it harmless
}

}  // namespace
}  // namespace tally::collector
