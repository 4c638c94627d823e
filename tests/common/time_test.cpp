#include "tally/common/time.h"

#include <doctest/doctest.h>

#include <random>
#include <string>

namespace tally {
namespace {

using std::chrono::microseconds;

int64_t micros(std::string_view text) {
  Result<Timestamp> t = parse_rfc3339(text);
  REQUIRE_MESSAGE(t.ok(), t.error());
  return t->time_since_epoch().count();
}

TEST_CASE("parse_rfc3339: accepted forms") {
  struct Case {
    std::string_view text;
    int64_t micros;
  };
  const Case cases[] = {
      {"1970-01-01T00:00:00Z", 0},
      {"1970-01-01T00:00:01Z", 1'000'000},
      {"1970-01-01T00:00:00.5Z", 500'000},
      {"1970-01-01T00:00:00.000001Z", 1},
      {"1970-01-01T00:00:00.123456Z", 123'456},
      // Up to nine digits, truncated (not rounded) to the microsecond.
      {"1970-01-01T00:00:00.123456789Z", 123'456},
      {"1970-01-01T00:00:00.999999999Z", 999'999},
      {"1970-01-01T00:00:00.0000009Z", 0},
      {"1969-12-31T23:59:59.999999Z", -1},
      {"1969-12-31T23:59:59Z", -1'000'000},
      {"2026-11-22T10:00:00Z", 1'795'341'600'000'000},
      // Offsets move the instant to UTC.
      {"2026-11-22T11:00:00+01:00", 1'795'341'600'000'000},
      {"2026-11-22T05:30:00-04:30", 1'795'341'600'000'000},
      {"2026-11-23T00:00:00+14:00", 1'795'341'600'000'000},
      {"2026-11-22T10:00:00.25+00:00", 1'795'341'600'250'000},
      // Lowercase separators and a space, as RFC 3339 allows.
      {"2026-11-22t10:00:00z", 1'795'341'600'000'000},
      {"2026-11-22 10:00:00Z", 1'795'341'600'000'000},
      {"2024-02-29T00:00:00Z", 1'709'164'800'000'000},
      {"2000-02-29T00:00:00Z", 951'782'400'000'000},
      // A leap second is folded onto the next second, as Postgres does.
      {"2016-12-31T23:59:60Z", 1'483'228'800'000'000},
      {"0001-01-01T00:00:00Z", -62'135'596'800'000'000},
      {"9999-12-31T23:59:59.999999Z", 253'402'300'799'999'999},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    CHECK(micros(c.text) == c.micros);
  }
}

TEST_CASE("parse_rfc3339: rejected forms name the problem") {
  struct Case {
    std::string_view text;
    std::string_view error;
  };
  const Case cases[] = {
      {"", "expected YYYY-MM-DDTHH:MM:SS"},
      {"2026-11-22", "expected YYYY-MM-DDTHH:MM:SS"},
      {"2026-11-22T10:00", "expected YYYY-MM-DDTHH:MM:SS"},
      {"26-11-22T10:00:00Z", "expected YYYY-MM-DDTHH:MM:SS"},
      {"2026/11/22T10:00:00Z", "expected YYYY-MM-DDTHH:MM:SS"},
      {"2026-11-22X10:00:00Z", "expected YYYY-MM-DDTHH:MM:SS"},
      {"2026-1a-22T10:00:00Z", "expected YYYY-MM-DDTHH:MM:SS"},
      {"2026-02-30T00:00:00Z", "no such date"},
      {"2025-02-29T00:00:00Z", "no such date"},
      {"1900-02-29T00:00:00Z", "no such date"},
      {"2026-13-01T00:00:00Z", "no such date"},
      {"2026-00-01T00:00:00Z", "no such date"},
      {"2026-04-31T00:00:00Z", "no such date"},
      {"2026-01-00T00:00:00Z", "no such date"},
      {"2026-01-01T24:00:00Z", "no such time of day"},
      {"2026-01-01T23:60:00Z", "no such time of day"},
      {"2026-01-01T23:59:61Z", "no such time of day"},
      {"2026-01-01T00:00:00", "missing time zone"},
      {"2026-01-01T00:00:00.Z", "empty fraction"},
      {"2026-01-01T00:00:00.1234567890Z", "more than nine fractional digits"},
      {"2026-01-01T00:00:00+0100", "bad UTC offset"},
      {"2026-01-01T00:00:00+01", "bad UTC offset"},
      {"2026-01-01T00:00:00+24:00", "bad UTC offset"},
      {"2026-01-01T00:00:00+01:60", "bad UTC offset"},
      {"2026-01-01T00:00:00ZZ", "trailing characters"},
      {"2026-01-01T00:00:00Z ", "trailing characters"},
      {"2026-01-01T00:00:00+01:00x", "trailing characters"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    Result<Timestamp> t = parse_rfc3339(c.text);
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().starts_with("bad timestamp '" + std::string(c.text) + "': "));
    CHECK_MESSAGE(t.error().find(c.error) != std::string::npos, t.error());
  }
}

TEST_CASE("format_rfc3339: always UTC with six fractional digits") {
  CHECK(format_rfc3339(Timestamp(microseconds(0))) == "1970-01-01T00:00:00.000000Z");
  CHECK(format_rfc3339(Timestamp(microseconds(-1))) == "1969-12-31T23:59:59.999999Z");
  CHECK(format_rfc3339(Timestamp(microseconds(1'795'341'600'123'456))) ==
        "2026-11-22T10:00:00.123456Z");
  CHECK(format_rfc3339(Timestamp(microseconds(951'782'400'000'001))) ==
        "2000-02-29T00:00:00.000001Z");
  std::string out = "at ";
  append_rfc3339(out, Timestamp(microseconds(1'000'000)));
  CHECK(out == "at 1970-01-01T00:00:01.000000Z");
}

TEST_CASE("format_rfc3339 and parse_rfc3339 round-trip across eras") {
  for (const int64_t us : {int64_t{0}, int64_t{-1}, int64_t{1}, int64_t{-62'135'596'800'000'000},
                           int64_t{253'402'300'799'999'999}, int64_t{1'709'164'799'999'999},
                           int64_t{-2'208'988'800'000'001}}) {
    CAPTURE(us);
    const Timestamp t{microseconds(us)};
    CHECK(micros(format_rfc3339(t)) == us);
  }
}

TEST_CASE("now() is a recent microsecond timestamp") {
  const int64_t us = now().time_since_epoch().count();
  CHECK(us > micros("2024-01-01T00:00:00Z"));
  CHECK(us < micros("2200-01-01T00:00:00Z"));
}

TEST_CASE("parse_duration: units and fractions") {
  struct Case {
    std::string_view text;
    int64_t micros;
  };
  const Case cases[] = {
      {"0s", 0},
      {"250us", 250},
      {"500ms", 500'000},
      {"1.5s", 1'500'000},
      {"10s", 10'000'000},
      {"5m", 300'000'000},
      {"1h", 3'600'000'000},
      {"2d", 172'800'000'000},
      {"0.5ms", 500},
      // Fractions are rounded to the microsecond: 1.005 * 1000 is 1004.999… in binary.
      {"1.005ms", 1005},
      {"4.35m", 261'000'000},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    Result<microseconds> d = parse_duration(c.text);
    REQUIRE_MESSAGE(d.ok(), d.error());
    CHECK(d->count() == c.micros);
  }
}

TEST_CASE("parse_duration: bad input") {
  for (std::string_view text :
       {"", "s", "10", "10 s", "-5s", "1e3s", "10sec", "1.2.3s", "ms10", "5M", "999999999999d"}) {
    CAPTURE(text);
    Result<microseconds> d = parse_duration(text);
    REQUIRE_FALSE(d.ok());
    CHECK(d.status().code() == "invalid");
    CHECK(d.error().starts_with("bad duration '" + std::string(text) + "'"));
  }
}

TEST_CASE("format_duration: the largest whole unit") {
  CHECK(format_duration(microseconds(0)) == "0us");
  CHECK(format_duration(microseconds(7)) == "7us");
  CHECK(format_duration(microseconds(1'500)) == "1500us");
  CHECK(format_duration(microseconds(500'000)) == "500ms");
  CHECK(format_duration(microseconds(1'500'000)) == "1500ms");
  CHECK(format_duration(microseconds(10'000'000)) == "10s");
  CHECK(format_duration(microseconds(90'000'000)) == "90s");
  CHECK(format_duration(microseconds(300'000'000)) == "5m");
  CHECK(format_duration(microseconds(3'600'000'000)) == "1h");
  CHECK(format_duration(microseconds(172'800'000'000)) == "2d");
  for (int64_t us : {int64_t{1}, int64_t{1'000}, int64_t{61'000'000}, int64_t{86'400'000'000}}) {
    Result<microseconds> back = parse_duration(format_duration(microseconds(us)));
    REQUIRE(back.ok());
    CHECK(back->count() == us);
  }
}

// parse_rfc3339 reads the form producers write ("…T…ffffffZ", 27 characters) by a fast path:
// it must agree with the general reading of the same text spelled so that the fast path does
// not apply ('t' for 'T'), on valid and corrupted inputs alike.
TEST_CASE("parse_rfc3339: the canonical form reads as the general parser reads it") {
  std::mt19937_64 rng(42);
  auto general = [](std::string text) {
    if (text[10] == 'T') text[10] = 't';
    return parse_rfc3339(text);
  };
  // The problem a message names, without the quoted input (which differs by design).
  auto problem = [](const std::string& message) { return message.substr(message.rfind("': ")); };
  std::size_t valid = 0;
  std::size_t invalid = 0;
  for (int i = 0; i < 20000; ++i) {
    // Instants from year 0 to 9999, at the microsecond.
    const int64_t us = static_cast<int64_t>(rng() % 315'537'897'600'000'000ULL) - 62'167'219'200'000'000LL;
    std::string text = format_rfc3339(Timestamp(microseconds(us)));
    REQUIRE(text.size() == 27);
    if (i % 2 == 1) {
      // A digit changed: impossible dates and times (month 13, hour 24, Feb 30…) among them.
      static constexpr std::size_t kDigits[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 25};
      text[kDigits[rng() % std::size(kDigits)]] = static_cast<char>('0' + rng() % 10);
    }
    if (i % 7 == 3) text[rng() % text.size()] = "x:-.TZ 9"[rng() % 8];
    CAPTURE(text);
    const Result<Timestamp> fast = parse_rfc3339(text);
    const Result<Timestamp> slow = general(text);
    REQUIRE(fast.ok() == slow.ok());
    if (fast.ok()) {
      CHECK(*fast == *slow);
      ++valid;
    } else {
      CHECK(problem(fast.error()) == problem(slow.error()));
      ++invalid;
    }
  }
  CHECK(valid > 10000);
  CHECK(invalid > 100);
}

}  // namespace
}  // namespace tally
