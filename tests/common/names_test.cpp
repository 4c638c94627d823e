#include "tally/common/names.h"

#include <doctest/doctest.h>

#include <string>

#include "support/series.h"
#include "tally/common/sample.h"

namespace tally {
namespace {

TEST_CASE("matches_name_pattern: [a-z][a-z0-9]*(_[a-z0-9]+)*") {
  struct Case {
    std::string_view name;
    bool valid;
  };
  const Case cases[] = {
      {"a", true},
      {"http_service", true},
      {"request_latency", true},
      {"a1", true},
      {"a_1", true},
      {"a_1_b2_c", true},
      {"x9_0", true},
      {"", false},
      {"1a", false},
      {"_a", false},
      {"a_", false},
      {"a__b", false},
      {"A", false},
      {"aB", false},
      {"Bad-Name", false},
      {"a-b", false},
      {"a.b", false},
      {"a b", false},
      {"a:b", false},
      {"caf\xC3\xA9", false},
      {std::string_view("a\0b", 3), false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(matches_name_pattern(c.name) == c.valid);
  }
}

TEST_CASE("validate_name: the pattern, then the length limit") {
  const std::string f64(64, 'f');
  const std::string f65(65, 'f');
  CHECK(validate_name(f64, kMaxFieldNameLength, "field").ok());
  Status too_long = validate_name(f65, kMaxFieldNameLength, "field 'x'");
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.message() == "field 'x': longer than 64 characters");
  CHECK(too_long.code() == "invalid");

  Status bad = validate_name("Bad-Name", kMaxFieldNameLength, "field 'Bad-Name' of target 'x'");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.message() == "field 'Bad-Name' of target 'x': must match [a-z][a-z0-9]*(_[a-z0-9]+)*");
}

TEST_CASE("validate_timeseries_name: two valid parts, at most 128 characters") {
  CHECK(validate_timeseries_name("http_service:request_latency").ok());
  CHECK(validate_timeseries_name("a:b").ok());

  const std::string at_limit = std::string(63, 't') + ":" + std::string(64, 'm');
  REQUIRE(at_limit.size() == 128);
  CHECK(validate_timeseries_name(at_limit).ok());
  const std::string over = at_limit + "m";
  Status long_name = validate_timeseries_name(over);
  REQUIRE_FALSE(long_name.ok());
  CHECK(long_name.message() == "timeseries name '" + over + "': longer than 128 characters");

  struct Case {
    std::string_view name;
    std::string_view error;
  };
  const Case cases[] = {
      {"ab", "timeseries name 'ab': must be target_name:metric_name"},
      {"", "timeseries name '': must be target_name:metric_name"},
      {":b", "timeseries name ':b': both parts must match [a-z][a-z0-9]*(_[a-z0-9]+)*"},
      {"a:", "timeseries name 'a:': both parts must match"},
      {"a:b:c", "timeseries name 'a:b:c': both parts must match"},
      {"A:b", "timeseries name 'A:b': both parts must match"},
      {"a:b_", "timeseries name 'a:b_': both parts must match"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Status s = validate_timeseries_name(c.name);
    REQUIRE_FALSE(s.ok());
    CHECK(s.message().starts_with(c.error));
  }
}

Sample valid_sample() {
  return Sample{make_timeseries({"x", {{"name", std::string("api")}}},
                                {"requests", {{"code", uint16_t{200}}}}),
                Timestamp{}, int64_t{1}};
}

TEST_CASE("validate_sample: names of the target, the metric and the fields") {
  CHECK(validate_sample(valid_sample()).ok());

  struct Case {
    std::string what;
    void (*change)(Sample&);
    std::string_view error;
  };
  const Case cases[] = {
      {"bad target field name",
       [](Sample& s) {
         test::change_series(s, [](Timeseries& t) {
           t.target.fields.push_back({"Bad-Name", true});
         });
       },
       "field 'Bad-Name' of target 'x': must match [a-z][a-z0-9]*(_[a-z0-9]+)*"},
      {"bad metric field name",
       [](Sample& s) {
         test::change_series(s, [](Timeseries& t) { t.metric.fields.push_back({"_a", true}); });
       },
       "field '_a' of metric 'requests': must match [a-z][a-z0-9]*(_[a-z0-9]+)*"},
      {"field name too long",
       [](Sample& s) {
         test::change_series(s, [](Timeseries& t) {
           t.metric.fields.push_back({std::string(65, 'a'), true});
         });
       },
       "longer than 64 characters"},
      {"duplicate across target and metric",
       [](Sample& s) {
         test::change_series(s, [](Timeseries& t) { t.metric.fields.push_back({"name", true}); });
       },
       "field 'name' of metric 'requests': duplicate field name"},
      {"duplicate inside the target",
       [](Sample& s) {
         test::change_series(s, [](Timeseries& t) { t.target.fields.push_back({"name", true}); });
       },
       "field 'name' of target 'x': duplicate field name"},
      {"bad target name",
       [](Sample& s) { test::change_series(s, [](Timeseries& t) { t.target.name = "X"; }); },
       "target 'X': must match [a-z][a-z0-9]*(_[a-z0-9]+)*"},
      {"bad metric name",
       [](Sample& s) { test::change_series(s, [](Timeseries& t) { t.metric.name = "a:b"; }); },
       "metric 'a:b': must match"},
      {"name too long",
       [](Sample& s) {
         test::change_series(s, [](Timeseries& t) { t.metric.name = std::string(127, 'm'); });
       },
       "longer than 128 characters"},
      {"version zero",
       [](Sample& s) { test::change_series(s, [](Timeseries& t) { t.version = 0; }); },
       "timeseries 'x:requests': version must be at least 1"},
      {"invalid datum",
       [](Sample& s) {
         s.datum = Missing{DatumType::kBytes, std::nullopt};
       },
       "timeseries 'x:requests': a bytes datum cannot be missing"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Sample s = valid_sample();
    c.change(s);
    Status st = validate_sample(s);
    REQUIRE_FALSE(st.ok());
    CHECK_MESSAGE(st.message().find(c.error) != std::string::npos, st.message());
  }
}

TEST_CASE("validate_sample: the exact message for a bad field name") {
  Sample s = valid_sample();
  test::change_series(s, [](Timeseries& t) { t.target.fields = {{"Bad-Name", std::string("v")}}; });
  Status st = validate_sample(s);
  REQUIRE_FALSE(st.ok());
  CHECK(st.message() == "field 'Bad-Name' of target 'x': must match [a-z][a-z0-9]*(_[a-z0-9]+)*");
}

TEST_CASE("Sample::timeseries_name joins target and metric names") {
  CHECK(valid_sample().timeseries_name() == "x:requests");
}

}  // namespace
}  // namespace tally
