#include "copy_format.h"

#include <doctest/doctest.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "support/series.h"

namespace tally::collector {
namespace {

Timestamp at(std::string_view rfc3339) { return parse_rfc3339(rfc3339).value(); }

std::string timestamp_text(Timestamp t) {
  std::string out;
  append_copy_timestamp(out, t);
  return out;
}

std::string double_text(double v) {
  std::string out;
  append_copy_double(out, v);
  return out;
}

std::string row_text(const Datum& d) {
  Sample s;
  tally::test::change_series(s, [&](Timeseries& t) {
    t.target.name = "t";
    t.metric.name = "m";
  });
  s.timestamp = at("2026-11-22T10:00:00Z");
  s.datum = d;
  std::string out;
  append_measurement_row(out, -5, s);
  return out;
}

TEST_CASE("COPY timestamps are UTC with six fractional digits") {
  const std::pair<const char*, const char*> cases[] = {
      {"1970-01-01T00:00:00Z", "1970-01-01 00:00:00.000000+00"},
      {"2026-11-22T10:00:00.123457Z", "2026-11-22 10:00:00.123457+00"},
      {"1969-12-31T23:59:59.999999Z", "1969-12-31 23:59:59.999999+00"},
      {"0001-01-01T00:00:00Z", "0001-01-01 00:00:00.000000+00"},
      {"9999-12-31T23:59:59.999999Z", "9999-12-31 23:59:59.999999+00"},
      {"2028-02-29T12:34:56.000001+02:00", "2028-02-29 10:34:56.000001+00"},
  };
  for (const auto& [in, out] : cases) {
    CAPTURE(in);
    CHECK(timestamp_text(at(in)) == out);
  }
}

TEST_CASE("COPY doubles are the shortest exact text with Postgres' special spellings") {
  using L = std::numeric_limits<double>;
  const std::pair<double, const char*> cases[] = {
      {L::quiet_NaN(), "NaN"},
      {L::infinity(), "Infinity"},
      {-L::infinity(), "-Infinity"},
      {-0.0, "-0"},
      {0.1, "0.1"},
      {L::denorm_min(), "5e-324"},
      {1e300, "1e+300"},
      {L::max(), "1.7976931348623157e+308"},
      {static_cast<double>(1.1f), "1.100000023841858"},
  };
  for (const auto& [in, out] : cases) {
    CAPTURE(out);
    CHECK(double_text(in) == out);
  }
}

TEST_CASE("gauge rows hold key and timestamp and the datum escaped for COPY") {
  CHECK(row_text(true) == "-5\t2026-11-22 10:00:00.000000+00\tt\n");
  CHECK(row_text(uint64_t{UINT64_MAX}) ==
        "-5\t2026-11-22 10:00:00.000000+00\t18446744073709551615\n");
  CHECK(row_text(std::string("a\tb\nc\\d")) ==
        "-5\t2026-11-22 10:00:00.000000+00\ta\\tb\\nc\\\\d\n");
  CHECK(row_text(Bytes{0x00, 0xff, 0x5c}) == "-5\t2026-11-22 10:00:00.000000+00\t\\\\x00ff5c\n");
  CHECK(row_text(Missing{DatumType::kI8, std::nullopt}) ==
        "-5\t2026-11-22 10:00:00.000000+00\t\\N\n");
}

TEST_CASE("cumulative and histogram rows carry start_time and arrays use NULL for range_to") {
  const Timestamp start = at("2026-11-22T09:00:00Z");
  CHECK(row_text(Cumulative<float>{start, 0.5f}) ==
        "-5\t2026-11-22 10:00:00.000000+00\t2026-11-22 09:00:00.000000+00\t0.5\n");
  Histogram<int64_t> h;
  h.start_time = start;
  h.bins = {{std::nullopt, 1}, {0, 2}, {10, 3}};
  h.n_samples = 6;
  h.min = -3;
  h.max = 12;
  h.sum_of_samples = INT64_MIN;
  h.squared_mean = 2.5;
  CHECK(row_text(h) ==
        "-5\t2026-11-22 10:00:00.000000+00\t2026-11-22 09:00:00.000000+00\t{NULL,0,10}\t"
        "{1,2,3}\t6\t-3\t12\t-9223372036854775808\t2.5\n");
  CHECK(row_text(Missing{DatumType::kHistogramF64, start}) ==
        "-5\t2026-11-22 10:00:00.000000+00\t2026-11-22 09:00:00.000000+00\t"
        "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n");
}

// The part of a histogram_f64 row holding the bin edges.
std::string edges_text(std::vector<std::optional<double>> edges) {
  Histogram<double> h;
  for (const auto& e : edges) h.bins.push_back({e, 1});
  const std::string row = row_text(h);
  const std::size_t at = row.find('{');
  return row.substr(at, row.find('}') - at + 1);
}

TEST_CASE("histogram bin edges are formatted right when layouts repeat and alternate") {
  // The formatter keeps the last layout's text: every change must show, bit for bit.
  CHECK(edges_text({std::nullopt, 0.001, 0.01}) == "{NULL,0.001,0.01}");
  CHECK(edges_text({std::nullopt, 0.001, 0.01}) == "{NULL,0.001,0.01}");
  CHECK(edges_text({std::nullopt, 0.001, 0.02}) == "{NULL,0.001,0.02}");
  CHECK(edges_text({std::nullopt, 0.001}) == "{NULL,0.001}");
  CHECK(edges_text({0.0, 0.001}) == "{0,0.001}");
  CHECK(edges_text({-0.0, 0.001}) == "{-0,0.001}");  // equal as doubles, not as text
  CHECK(edges_text({0.0, 0.001}) == "{0,0.001}");
  CHECK(edges_text({std::numeric_limits<double>::quiet_NaN()}) == "{NaN}");
  CHECK(edges_text({std::numeric_limits<double>::quiet_NaN()}) == "{NaN}");
  CHECK(edges_text({}) == "{}");
  Histogram<float> f;  // another type keeps its own layout
  f.bins = {{0.5f, 1}};
  CHECK(row_text(f).find("\t{0.5}\t{1}\t") != std::string::npos);
  CHECK(edges_text({std::nullopt, 0.001, 0.01}) == "{NULL,0.001,0.01}");
}

TEST_CASE("series staging rows hold the fields as escaped JSON") {
  Sample s;
  tally::test::change_series(s, [&](Timeseries& t) {
    t.target = {"svc", {{"name", std::string("a\tb")}}};
    t.metric = {"m", {{"code", uint16_t{7}}}};
    t.version = 2;
  });
  std::string out;
  append_series_row(out, 9, s);
  CHECK(out == "9\tsvc:m\t2\t{\"name\":\"a\\\\tb\",\"code\":7}\n");
}

}  // namespace
}  // namespace tally::collector
