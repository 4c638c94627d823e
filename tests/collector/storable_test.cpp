#include <doctest/doctest.h>

#include "support/series.h"
#include "tally/collector/copy_writer.h"

namespace tally::collector {
namespace {

Timestamp at(std::string_view rfc3339) { return parse_rfc3339(rfc3339).value(); }

TEST_CASE("check_storable rejects what Postgres cannot hold with code unstorable") {
  Histogram<uint64_t> huge_count;
  huge_count.bins = {{0, uint64_t{1} << 63}, {1, 0}};
  Histogram<uint64_t> huge_n;
  huge_n.bins = {{0, 1}, {1, 0}};
  huge_n.n_samples = uint64_t{1} << 63;
  struct Case {
    const char* name;
    Datum datum;
    std::string target_field;
    Timestamp timestamp;
    bool storable;
  };
  const Timestamp ok_time = at("2026-11-22T10:00:00Z");
  // Longer text: the ASCII fast path reads 8 bytes at a time before the byte-wise check.
  const std::string ascii16 = "0123456789abcdef";
  const Case cases[] = {
      {"plain", 1.0, "x", ok_time, true},
      {"long ASCII", std::string(ascii16 + ascii16 + "x"), ascii16 + "y", ok_time, true},
      {"long, then unicode", std::string(ascii16 + "é漢😀"), ascii16 + "é", ok_time, true},
      {"NUL in the 8th byte", std::string("abcdefg\0ijklmnop", 16), "x", ok_time, false},
      {"NUL in the 17th byte", 1.0, ascii16 + std::string(1, '\0'), ok_time, false},
      {"invalid UTF-8 in the 12th byte", std::string("abcdefghijk\xffmnop"), "x", ok_time, false},
      {"truncated UTF-8 at the end of 16", std::string("abcdefghijklmn\xe6\xbc"), "x", ok_time,
       false},
      {"unicode", std::string("é漢😀"), "é", ok_time, true},
      {"NUL in datum", std::string("a\0b", 3), "x", ok_time, false},
      {"NUL in field", 1.0, std::string("a\0b", 3), ok_time, false},
      {"invalid UTF-8", std::string("\xff"), "x", ok_time, false},
      {"truncated UTF-8", std::string("\xe6\xbc"), "x", ok_time, false},
      {"overlong UTF-8", std::string("\xc0\xaf"), "x", ok_time, false},
      {"surrogate", std::string("\xed\xa0\x80"), "x", ok_time, false},
      {"year 10000", 1.0, "x", at("9999-12-31T23:59:59.999999Z") + std::chrono::microseconds(1),
       false},
      {"year 0", 1.0, "x", at("0001-01-01T00:00:00Z") - std::chrono::microseconds(1), false},
      {"start_time year 0", Cumulative<double>{at("0001-01-01T00:00:00Z") - std::chrono::hours(1)},
       "x", ok_time, false},
      {"count above 2^63-1", huge_count, "x", ok_time, false},
      {"n_samples above 2^63-1", huge_n, "x", ok_time, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Sample s;
    tally::test::change_series(s, [&](Timeseries& t) {
      t.target = {"t", {{"f", c.target_field}}};
      t.metric.name = "m";
    });
    s.timestamp = c.timestamp;
    s.datum = c.datum;
    const Status st = check_storable(s);
    CHECK(st.ok() == c.storable);
    if (!c.storable) CHECK(st.code() == "unstorable");
  }
}

}  // namespace
}  // namespace tally::collector
