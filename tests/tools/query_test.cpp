// tallyctl query end to end: a known data set written with the collector's COPY writer, the real
// binary, exact numbers for each aggregation, step and grouping (worked out by hand below).
#include <doctest/doctest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <tuple>

#include "support/child_process.h"
#include "support/series.h"
#include "support/test_db.h"
#include "tally/collector/copy_writer.h"
#include "tally/schema/migrations.h"
#include "tally/schema/schema_store.h"

using namespace tally;
using namespace tally::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// Every sample of the fixed data set is near T0.
const Timestamp kT0 = *parse_rfc3339("2026-11-02T00:00:00Z");

Timestamp t0(int seconds) { return kT0 + std::chrono::seconds(seconds); }
std::string at(int seconds) { return format_rfc3339(t0(seconds)); }

Sample make(std::string target, Fields target_fields, std::string metric, Fields metric_fields,
            Timestamp t, Datum d) {
  Sample s;
  test::change_series(s, [&](Timeseries& t) {
    t.target = {std::move(target), std::move(target_fields)};
    t.metric = {std::move(metric), std::move(metric_fields)};
  });
  s.timestamp = t;
  s.datum = std::move(d);
  return s;
}

// Stores the samples as the collector does: schema check (which makes the views), COPY writer.
void store(const TestDatabase& db, const std::vector<Sample>& samples) {
  auto conn = db.connect();
  REQUIRE(schema::apply_migrations(*conn).ok());
  schema::SchemaStore schemas;
  for (const Sample& s : samples) {
    REQUIRE_MESSAGE(validate_sample(s).ok(), validate_sample(s).message());
    auto check = schemas.check(*conn, schema::derive_schema(s));
    REQUIRE_MESSAGE(check.ok(), check.error());
    REQUIRE(check->accepted);
  }
  collector::CopyWriter writer;
  auto written = writer.write(*conn, samples);
  REQUIRE_MESSAGE(written.ok(), written.error());
  REQUIRE(written->samples_written == samples.size());
}

// gauge_host:cpu (f64), fields host (target) and core (metric), a sample every 30 s for 4 min:
//   host a core 0: 1 3 | 5 7 | 2 2 | 10 0      (one "|" per minute)
//   host a core 1: 2 2 | 4 4 | 6 6 | 8 8
//   host b core 0: 10 20 | 10 20 | 10 20 | 10 20
std::vector<Sample> gauges() {
  const std::vector<std::tuple<std::string, uint8_t, std::vector<double>>> series = {
      {"a", 0, {1, 3, 5, 7, 2, 2, 10, 0}},
      {"a", 1, {2, 2, 4, 4, 6, 6, 8, 8}},
      {"b", 0, {10, 20, 10, 20, 10, 20, 10, 20}}};
  std::vector<Sample> out;
  for (const auto& [host, core, values] : series) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      out.push_back(make("gauge_host", {{"host", host}}, "cpu", {{"core", core}},
                         t0(30 * static_cast<int>(i)), values[i]));
    }
  }
  return out;
}

// counter_host:requests (cumulative_u64), field host; samples at T0-30s … T0+210s:
//   x: 90 105 120 150 195 | new start_time at +120s: 15 30 30 90
//      deltas from T0: 15 15 | 30 45 | 15 15 | 0 60   → per minute 30 75 30 60
//   y: 1000 1000 1060 1120 | falls at +90s: 30 60 90 90 90
//      deltas: 0 60 | 60 30 | 30 30 | 0 0            → 60 90 60 0
//   z: started at T0+45s (inside the range), from +60s: 15 30 45 60 75 90
//      deltas: the first is its value: 15 15 | 15 15 | 15 15 → - 30 30 30
std::vector<Sample> counters() {
  const Timestamp s0 = kT0 - 1h;
  const auto c = [](Timestamp start, uint64_t v) { return Cumulative<uint64_t>{start, v}; };
  std::vector<Sample> out;
  const auto add = [&](const std::string& host, int seconds, Cumulative<uint64_t> v) {
    out.push_back(make("counter_host", {{"host", host}}, "requests", {}, t0(seconds), v));
  };
  const std::vector<uint64_t> x = {90, 105, 120, 150, 195};
  for (std::size_t i = 0; i < x.size(); ++i) add("x", 30 * static_cast<int>(i) - 30, c(s0, x[i]));
  const std::vector<uint64_t> x2 = {15, 30, 30, 90};
  for (std::size_t i = 0; i < x2.size(); ++i) {
    add("x", 120 + 30 * static_cast<int>(i), c(t0(100), x2[i]));
  }
  const std::vector<uint64_t> y = {1000, 1000, 1060, 1120, 30, 60, 90, 90, 90};
  for (std::size_t i = 0; i < y.size(); ++i) add("y", 30 * static_cast<int>(i) - 30, c(s0, y[i]));
  for (int i = 0; i < 6; ++i) {
    add("z", 60 + 30 * i, c(t0(45), static_cast<uint64_t>(15 * (i + 1))));
  }
  return out;
}

Histogram<double> histogram(Timestamp start, std::vector<uint64_t> counts) {
  Histogram<double> h;
  h.start_time = start;
  const std::vector<std::optional<double>> lower = {std::nullopt, 0.0, 10.0, 20.0, 40.0};
  for (std::size_t i = 0; i < counts.size(); ++i) {
    h.bins.push_back({lower[i], counts[i]});
    h.n_samples += counts[i];
  }
  h.min = -1;
  h.max = 50;
  h.sum_of_samples = 100;
  return h;
}

// hist_service:latency (histogram_f64), field route; bins (-inf,0) [0,10) [10,20) [20,40) [40,inf).
// Snapshots at T0-30s, +30s, +90s, +150s; what each minute adds:
//   /a: [0,10,80,10,0]   [50,50,0,0,0]   new start_time at +120s: [0,0,2,4,2]
//   /b: [0,0,0,0,0]      [0,0,20,0,0]    [0,0,0,20,0]
// hist_service:sizes (histogram_u64), started at T0+10s, one snapshot at +30s: bins
// [0,100) [100,200) [200,inf) with counts 2 2 0.
std::vector<Sample> histograms() {
  const Timestamp s0 = kT0 - 1h;
  std::vector<Sample> out;
  const auto add = [&](const std::string& route, int seconds, Histogram<double> h) {
    out.push_back(make("hist_service", {}, "latency", {{"route", route}}, t0(seconds), h));
  };
  add("/a", -30, histogram(s0, {0, 5, 5, 0, 0}));
  add("/a", 30, histogram(s0, {0, 15, 85, 10, 0}));
  add("/a", 90, histogram(s0, {50, 65, 85, 10, 0}));
  add("/a", 150, histogram(t0(120), {0, 0, 2, 4, 2}));
  add("/b", -30, histogram(s0, {0, 0, 0, 0, 0}));
  add("/b", 30, histogram(s0, {0, 0, 0, 0, 0}));
  add("/b", 90, histogram(s0, {0, 0, 20, 0, 0}));
  add("/b", 150, histogram(s0, {0, 0, 20, 20, 0}));
  Histogram<uint64_t> sizes;
  sizes.start_time = t0(10);
  sizes.bins = {{0, 2}, {100, 2}, {200, 0}};
  sizes.n_samples = 4;
  sizes.min = 1;
  sizes.max = 150;
  sizes.sum_of_samples = 300;
  out.push_back(make("hist_service", {}, "sizes", {}, t0(30), sizes));
  return out;
}

// misc:state (string): up, down | up. misc:healthy (bool): true, false | true.
std::vector<Sample> others() {
  std::vector<Sample> out;
  const std::vector<std::string> states = {"up", "down", "up"};
  const std::vector<bool> healthy = {true, false, true};
  for (int i = 0; i < 3; ++i) {
    out.push_back(make("misc", {}, "state", {}, t0(30 * i), states[static_cast<std::size_t>(i)]));
    out.push_back(make("misc", {}, "healthy", {}, t0(30 * i),
                       static_cast<bool>(healthy[static_cast<std::size_t>(i)])));
  }
  return out;
}

// fieldy:level (i64): three series with a field of every type; values 1, 2 and 4, so the sum of
// the selected series says which were selected.
std::vector<Sample> fieldy() {
  const auto series = [](std::string s, int8_t a, uint8_t b, int16_t c, uint16_t d, int32_t e,
                         uint32_t f, int64_t g, uint64_t h, std::string ip, std::string id, bool ok,
                         int64_t value) {
    Fields target = {{"s", s}, {"a", a}, {"b", b}, {"c", c}, {"d", d}, {"e", e}};
    Fields metric = {
        {"f", f},  {"g", g}, {"h", h}, {"ip", *IpAddr::parse(ip)}, {"id", *Uuid::parse(id)},
        {"ok", ok}};
    return make("fieldy", std::move(target), "level", std::move(metric), t0(0), value);
  };
  return {series("one", -1, 1, -300, 60000, -70000, 4000000000u, -5000000000, UINT64_MAX,
                 "10.0.0.1", "11111111-1111-4111-8111-111111111111", true, 1),
          series("two", 2, 2, 300, 2, 70000, 2, 5000000000, 2, "::1",
                 "22222222-2222-4222-8222-222222222222", false, 2),
          series("three", 3, 3, 3, 3, 3, 3, 3, 3, "2001:db8::5",
                 "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", false, 4)};
}

std::vector<Sample> data_set() {
  std::vector<Sample> all;
  for (auto part : {gauges(), counters(), histograms(), others(), fieldy()}) {
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

CommandResult tallyctl(const TestDatabase& db, std::vector<std::string> args) {
  args.insert(args.begin(), TALLY_TALLYCTL_PATH);
  return run_command(args, {{"TALLY_DATABASE_URL", db.url()}});
}

std::vector<std::string> split(const std::string& text, const std::string& sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t at = text.find(sep, start);
    out.push_back(text.substr(start, at - start));
    if (at == std::string::npos) return out;
    start = at + sep.size();
  }
}

// CSV output made short: "label: offset=value …" per series, " | " between series, where label
// is the series' field values joined by "," ("*" when there are none) and offset the seconds
// from T0.
std::string compact(const std::string& csv) {
  std::vector<std::string> lines = split(csv, "\r\n");
  std::string out, last_label;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    std::vector<std::string> cells = split(lines[i], ",");
    REQUIRE(cells.size() >= 2);
    const std::string value = cells.back();
    auto t = parse_rfc3339(cells[cells.size() - 2]);
    REQUIRE(t.ok());
    cells.resize(cells.size() - 2);
    std::string label;
    for (const std::string& c : cells) label += (label.empty() ? "" : ",") + c;
    if (label.empty()) label = "*";
    if (out.empty() || label != last_label) {
      out += (out.empty() ? "" : " | ") + label + ":";
      last_label = label;
    }
    out += " " +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(*t - kT0).count()) +
           "=" + value;
  }
  return out;
}

struct QueryCase {
  std::vector<std::string> args;  // after "query"; --from T0 --to T0+4m --format csv unless given
  std::string expected;           // compact()
};

void run_cases(const TestDatabase& db, const std::vector<QueryCase>& cases) {
  for (const QueryCase& c : cases) {
    std::vector<std::string> args = {"query"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const auto has = [&](const std::string& option) {
      return std::any_of(c.args.begin(), c.args.end(),
                         [&](const std::string& a) { return a.rfind(option, 0) == 0; });
    };
    if (!has("--from")) args.insert(args.end(), {"--from", at(0)});
    if (!has("--to")) args.insert(args.end(), {"--to", at(240)});
    args.insert(args.end(), {"--format", "csv"});
    std::string command;
    for (const std::string& a : args) command += a + " ";
    CAPTURE(command);
    CommandResult r = tallyctl(db, args);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(compact(r.out) == c.expected);
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("gauges: each aggregation per series, by group, over steps, aligned to --from") {
  TestDatabase db;
  store(db, data_set());
  const std::string cpu = "gauge_host:cpu";
  run_cases(
      db,
      {
          // Each series on its own (labels: core,host).
          {{cpu, "--step", "1m", "--agg", "mean"},
           "0,a: 0=2 60=6 120=2 180=5 | 0,b: 0=15 60=15 120=15 180=15 | 1,a: 0=2 60=4 120=6 180=8"},
          {{cpu, "--step", "1m", "--agg", "min"},
           "0,a: 0=1 60=5 120=2 180=0 | 0,b: 0=10 60=10 120=10 180=10 | 1,a: 0=2 60=4 120=6 180=8"},
          {{cpu, "--step", "1m", "--agg", "max"},
           "0,a: 0=3 60=7 120=2 180=10 | 0,b: 0=20 60=20 120=20 180=20 | 1,a: 0=2 60=4 120=6 "
           "180=8"},
          {{cpu, "--step", "1m", "--agg", "sum"},
           "0,a: 0=4 60=12 120=4 180=10 | 0,b: 0=30 60=30 120=30 180=30 | 1,a: 0=4 60=8 120=12 "
           "180=16"},
          {{cpu, "--step", "1m", "--agg", "count"},
           "0,a: 0=2 60=2 120=2 180=2 | 0,b: 0=2 60=2 120=2 180=2 | 1,a: 0=2 60=2 120=2 180=2"},
          {{cpu, "--step", "1m", "--agg", "last"},
           "0,a: 0=3 60=7 120=2 180=0 | 0,b: 0=20 60=20 120=20 180=20 | 1,a: 0=2 60=4 120=6 180=8"},
          // Grouped by host: the samples of a's two series together; last adds each series' last.
          {{cpu, "--step", "1m", "--agg", "mean", "--group-by", "host"},
           "a: 0=2 60=5 120=4 180=6.5 | b: 0=15 60=15 120=15 180=15"},
          {{cpu, "--step", "1m", "--agg", "min", "--group-by", "host"},
           "a: 0=1 60=4 120=2 180=0 | b: 0=10 60=10 120=10 180=10"},
          {{cpu, "--step", "1m", "--agg", "max", "--group-by", "host"},
           "a: 0=3 60=7 120=6 180=10 | b: 0=20 60=20 120=20 180=20"},
          {{cpu, "--step", "1m", "--agg", "sum", "--group-by", "host"},
           "a: 0=8 60=20 120=16 180=26 | b: 0=30 60=30 120=30 180=30"},
          {{cpu, "--step", "1m", "--agg", "count", "--group-by", "host"},
           "a: 0=4 60=4 120=4 180=4 | b: 0=2 60=2 120=2 180=2"},
          {{cpu, "--step", "1m", "--agg", "last", "--group-by", "host"},
           "a: 0=5 60=11 120=8 180=8 | b: 0=20 60=20 120=20 180=20"},
          // Grouped by core (a u8, ordered as a number), by both, and everything in one group.
          {{cpu, "--step", "1m", "--agg", "mean", "--group-by", "core"},
           "0: 0=8.5 60=10.5 120=8.5 180=10 | 1: 0=2 60=4 120=6 180=8"},
          {{cpu, "--step", "1m", "--agg", "sum", "--group-by", "host,core"},
           "a,0: 0=4 60=12 120=4 180=10 | a,1: 0=4 60=8 120=12 180=16 | b,0: 0=30 60=30 120=30 "
           "180=30"},
          {{cpu, "--step", "1m", "--agg", "sum", "--group-by="}, "*: 0=38 60=50 120=46 180=56"},
          {{cpu, "--step", "1m", "--agg", "max", "--group-by", ""}, "*: 0=20 60=20 120=20 180=20"},
          // Two-minute steps.
          {{cpu, "--step", "2m", "--agg", "mean"},
           "0,a: 0=4 120=3.5 | 0,b: 0=15 120=15 | 1,a: 0=3 120=7"},
          {{cpu, "--step", "2m", "--agg", "sum", "--group-by", "host"},
           "a: 0=28 120=42 | b: 0=60 120=60"},
          // Buckets start at --from: +30s, +90s, +150s, +210s.
          {{cpu, "--from", at(30), "--step", "1m", "--agg", "mean", "--where", "core=1"},
           "1,a: 30=3 90=5 150=7 210=8"},
          // Filters together; the defaults: mean, and 4 min / 60 rounded up to a 5 s step.
          {{cpu, "--where", "host=a", "--where", "core!=0"},
           "1,a: 0=2 30=2 60=4 90=4 120=6 150=6 180=8 210=8"},
          // --to is exclusive.
          {{cpu, "--to", at(60), "--step", "1m", "--agg", "count", "--group-by="}, "*: 0=6"},
      });
}

TEST_CASE("counters: delta and rate per series across resets, then summed by group") {
  TestDatabase db;
  store(db, data_set());
  const std::string req = "counter_host:requests";
  run_cases(
      db,
      {
          {{req, "--step", "1m", "--agg", "delta"},
           "x: 0=30 60=75 120=30 180=60 | y: 0=60 60=90 120=60 180=0 | z: 60=30 120=30 180=30"},
          {{req, "--step", "1m", "--agg", "rate"},
           "x: 0=0.5 60=1.25 120=0.5 180=1 | y: 0=1 60=1.5 120=1 180=0 | z: 60=0.5 120=0.5 "
           "180=0.5"},
          {{req, "--step", "1m"},  // rate is the default for cumulative series
           "x: 0=0.5 60=1.25 120=0.5 180=1 | y: 0=1 60=1.5 120=1 180=0 | z: 60=0.5 120=0.5 "
           "180=0.5"},
          {{req, "--step", "1m", "--agg", "rate", "--group-by="}, "*: 0=1.5 60=3.25 120=2 180=1.5"},
          {{req, "--step", "1m", "--agg", "delta", "--group-by="}, "*: 0=90 60=195 120=120 180=90"},
          {{req, "--step", "2m", "--agg", "rate"},
           "x: 0=0.875 120=0.75 | y: 0=1.25 120=0.5 | z: 0=0.25 120=0.5"},
          {{req, "--step", "1m", "--agg", "count"},
           "x: 0=2 60=2 120=2 180=2 | y: 0=2 60=2 120=2 180=2 | z: 60=2 120=2 180=2"},
          {{req, "--step", "1m", "--agg", "last"},
           "x: 0=120 60=195 120=30 180=90 | y: 0=1060 60=30 120=90 180=90 | z: 60=30 120=60 "
           "180=90"},
          {{req, "--step", "1m", "--agg", "last", "--group-by="},
           "*: 0=1180 60=255 120=180 180=270"},
          // Starting mid-way: the sample one step before --from gives the first delta.
          {{req, "--from", at(90), "--step", "1m", "--agg", "delta"},
           "x: 90=60 150=15 210=60 | y: 90=60 150=30 210=0 | z: 90=30 150=30 210=15"},
          {{req, "--step", "1m", "--agg", "delta", "--where", "host!=y", "--group-by", "host"},
           "x: 0=30 60=75 120=30 180=60 | z: 60=30 120=30 180=30"},
      });
}

TEST_CASE("histograms: quantiles from the bins added over the step and the group") {
  TestDatabase db;
  store(db, data_set());
  const std::string lat = "hist_service:latency";
  run_cases(
      db,
      {
          // /a minute 0 adds [0,10,80,10,0]: p50 = 10 + 10·(50−10)/80; p95 = 20 + 20·(95−90)/10.
          // /a minute 1 adds [50,50,0,0,0]: p50 falls in the first bin → its upper edge, 0.
          // /a minute 2 (after a reset) is [0,0,2,4,2]: p90 falls in the last bin → its lower edge.
          {{lat, "--step", "1m", "--agg", "p50"}, "/a: 0=15 60=0 120=30 | /b: 60=15 120=30"},
          {{lat, "--step", "1m"}, "/a: 0=15 60=0 120=30 | /b: 60=15 120=30"},  // p50 by default
          {{lat, "--step", "1m", "--agg", "p90"}, "/a: 0=20 60=8 120=40 | /b: 60=19 120=38"},
          {{lat, "--step", "1m", "--agg", "p95"}, "/a: 0=30 60=9 120=40 | /b: 60=19.5 120=39"},
          {{lat, "--step", "1m", "--agg", "p99", "--where", "route=/a"}, "/a: 0=38 60=9.8 120=40"},
          {{lat, "--step", "1m", "--agg", "count"},
           "/a: 0=100 60=100 120=8 | /b: 0=0 60=20 120=20"},
          // Both routes: minute 1 is [50,50,20,0,0], minute 2 [0,0,2,24,2].
          {{lat, "--step", "1m", "--agg", "p50", "--group-by="}, "*: 0=15 60=2 120=30"},
          {{lat, "--step", "1m", "--agg", "p90", "--group-by=", "--to", at(120)}, "*: 0=20 60=14"},
          // Two minutes: /a adds [50,60,80,10,0] (200): p90 = 10 + 10·(180−110)/80 = 18.75.
          {{lat, "--step", "2m", "--agg", "p90", "--where", "route=/a"}, "/a: 0=18.75 120=40"},
          // Integer histogram that started inside the range: its first snapshot counts whole.
          {{"hist_service:sizes", "--step", "1m", "--agg", "p50"}, "*: 0=100"},
          {{"hist_service:sizes", "--step", "1m", "--agg", "p90"}, "*: 0=180"},
          {{"hist_service:sizes", "--step", "1m", "--agg", "count"}, "*: 0=4"},
      });
}

TEST_CASE("strings, bools and every field type in --where, typed by the schema") {
  TestDatabase db;
  store(db, data_set());
  run_cases(db, {
                    {{"misc:state", "--step", "1m"}, "*: 0=down 60=up"},  // last by default
                    {{"misc:state", "--step", "1m", "--agg", "count"}, "*: 0=2 60=1"},
                    {{"misc:healthy", "--step", "1m", "--agg", "mean"}, "*: 0=0.5 60=1"},
                    {{"misc:healthy", "--step", "1m", "--agg", "sum"}, "*: 0=1 60=1"},
                });
  const std::vector<std::pair<std::string, std::string>> filters = {
      {"s=one", "1"},
      {"s!=one", "6"},
      {"a=-1", "1"},
      {"a!=-1", "6"},
      {"b=2", "2"},
      {"c=-300", "1"},
      {"d=60000", "1"},
      {"e=70000", "2"},
      {"f=4000000000", "1"},
      {"g=-5000000000", "1"},
      {"h=18446744073709551615", "1"},
      {"h!=18446744073709551615", "6"},
      {"ip=10.0.0.1", "1"},
      {"ip=0:0:0:0:0:0:0:1", "2"},  // any spelling of the address
      {"ip!=2001:db8::5", "3"},
      {"id=AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA", "4"},  // either case
      {"id!=11111111-1111-4111-8111-111111111111", "6"},
      {"ok=true", "1"},
      {"ok=false", "6"},
      {"ok!=true", "6"},
  };
  std::vector<QueryCase> cases;
  for (const auto& [where, sum] : filters) {
    cases.push_back(
        {{"fieldy:level", "--where", where, "--step", "4m", "--agg", "sum", "--group-by="},
         "*: 0=" + sum});
  }
  cases.push_back({{"fieldy:level", "--where", "ok=false", "--where", "c=3", "--step", "4m",
                    "--agg", "sum", "--group-by="},
                   "*: 0=4"});
  // Ordered by the u64's value, not its text.
  cases.push_back({{"fieldy:level", "--step", "4m", "--agg", "sum", "--group-by", "h"},
                   "2: 0=2 | 3: 0=4 | 18446744073709551615: 0=1"});
  cases.push_back({{"fieldy:level", "--where", "s=nobody", "--step", "4m"}, ""});
  run_cases(db, cases);

  // JSON carries each field with its JSON type.
  CommandResult r = tallyctl(db, {"query", "fieldy:level", "--where", "s=one", "--from", at(0),
                                  "--to", at(240), "--step", "4m", "--format", "json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const json::value v = json::parse(r.out);
  REQUIRE(v.as_array().size() == 1);
  const json::object& series = v.at(0).as_object();
  CHECK(series.at("timeseries_name").as_string() == "fieldy:level");
  CHECK(series.at("agg").as_string() == "mean");
  CHECK(series.at("step").as_string() == "4m");
  const json::object& fields = series.at("fields").as_object();
  CHECK(fields.at("s").as_string() == "one");
  CHECK(fields.at("a").as_int64() == -1);
  CHECK(fields.at("g").as_int64() == -5000000000);
  CHECK(fields.at("h").as_uint64() == UINT64_MAX);
  CHECK(fields.at("ip").as_string() == "10.0.0.1");
  CHECK(fields.at("id").as_string() == "11111111-1111-4111-8111-111111111111");
  CHECK(fields.at("ok").as_bool());
  const json::array& points = series.at("points").as_array();
  REQUIRE(points.size() == 1);
  CHECK(points.at(0).at("timestamp").as_string() == "2026-11-02T00:00:00.000000Z");
  CHECK(points.at(0).at("value").to_number<double>() == 1);
}

TEST_CASE("table and chart formats and relative times") {
  TestDatabase db;
  std::vector<Sample> samples = gauges();
  const Timestamp now = tally::now();
  samples.push_back(make("rel", {}, "gauge", {}, now - 10min, 3.0));
  samples.push_back(make("rel", {}, "gauge", {}, now - 2h, 5.0));
  store(db, samples);

  CommandResult table = tallyctl(db, {"query", "gauge_host:cpu", "--from", at(0), "--to", at(240),
                                      "--step", "2m", "--group-by", "host"});
  REQUIRE_MESSAGE(table.exit_code == 0, table.err);
  CHECK(table.out ==
        "HOST  TIMESTAMP                    MEAN\n"
        "a     2026-11-02T00:00:00.000000Z  3.5\n"
        "a     2026-11-02T00:02:00.000000Z  5.25\n"
        "b     2026-11-02T00:00:00.000000Z  15\n"
        "b     2026-11-02T00:02:00.000000Z  15\n");

  CommandResult chart = tallyctl(db, {"query", "gauge_host:cpu", "--from", at(0), "--to", at(240),
                                      "--step", "30s", "--where", "core=1", "--format", "chart"});
  REQUIRE_MESSAGE(chart.exit_code == 0, chart.err);
  INFO(chart.out);
  CHECK(contains(chart.out, "gauge_host:cpu mean core=1 host=a (step 30s)"));
  CHECK(contains(chart.out, "8 ┤"));  // the highest value, top left
  CHECK(contains(chart.out, "2 ┤"));  // the lowest, bottom left
  CHECK(contains(chart.out, "5 ┤"));  // the middle
  CHECK(contains(chart.out, "└──"));
  CHECK(contains(chart.out, "2026-11-02T00:00:00Z"));
  CHECK(contains(chart.out, "2026-11-02T00:04:00Z"));
  CHECK(contains(chart.out, "\xE2\xA0"));  // braille (U+2800…U+28FF)

  // --since 1h: only the sample 10 minutes ago; --from/--to relative to now.
  const auto total = [&](std::vector<std::string> args) {
    args.insert(args.begin(),
                {"query", "rel:gauge", "--agg", "sum", "--group-by=", "--format", "csv"});
    CommandResult r = tallyctl(db, args);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    double sum = 0;
    for (const std::string& line : split(r.out, "\r\n")) {
      const auto comma = line.rfind(',');
      if (line.empty() || line.starts_with("timestamp")) continue;
      sum += std::stod(line.substr(comma + 1));
    }
    return sum;
  };
  CHECK(total({"--since", "1h"}) == 3);
  CHECK(total({}) == 3);  // the default range is the last hour
  CHECK(total({"--since", "3h"}) == 8);
  CHECK(total({"--from", "now-3h", "--to", "now-1h"}) == 5);
  CHECK(total({"--from", "3h", "--to", "now"}) == 8);
  CHECK(total({"--from", "-3h"}) == 8);
}

TEST_CASE("bad input is refused with exit code 2 and a message naming the bad piece") {
  TestDatabase db;
  store(db, data_set());
  const std::string cpu = "gauge_host:cpu";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"nope:missing"}, "unknown timeseries 'nope:missing'"},
      {{"NotAName"}, "'NotAName' is not a timeseries name"},
      {{}, "'query' needs a timeseries NAME"},
      {{cpu, "--where", "bogus=1"}, "'gauge_host:cpu' has no field 'bogus' (fields: core, host)"},
      {{cpu, "--group-by", "host,bogus"}, "--group-by: 'gauge_host:cpu' has no field 'bogus'"},
      {{cpu, "--where", "core=abc"}, "--where core=abc: 'abc' is not a valid u8"},
      {{cpu, "--where", "core=256"}, "'256' is not a valid u8"},
      {{cpu, "--where", "core"}, "--where 'core': expected FIELD=VALUE or FIELD!=VALUE"},
      {{"fieldy:level", "--where", "a=128"}, "'128' is not a valid i8"},
      {{"fieldy:level", "--where", "b=-1"}, "'-1' is not a valid u8"},
      {{"fieldy:level", "--where", "c=40000"}, "'40000' is not a valid i16"},
      {{"fieldy:level", "--where", "d=70000"}, "'70000' is not a valid u16"},
      {{"fieldy:level", "--where", "e=3000000000"}, "'3000000000' is not a valid i32"},
      {{"fieldy:level", "--where", "f=-1"}, "'-1' is not a valid u32"},
      {{"fieldy:level", "--where", "g=9223372036854775808"},
       "'9223372036854775808' is not a valid i64"},
      {{"fieldy:level", "--where", "h=-1"}, "'-1' is not a valid u64"},
      {{"fieldy:level", "--where", "ip=1.2.3"}, "'1.2.3' is not a valid ip_addr"},
      {{"fieldy:level", "--where", "id=not-a-uuid"}, "'not-a-uuid' is not a valid uuid"},
      {{"fieldy:level", "--where", "ok=yes"}, "'yes' is not a valid bool"},
      {{cpu, "--from", "yesterday"}, "--from: 'yesterday' is not a time"},
      {{cpu, "--to", "2026-13-01T00:00:00Z"}, "--to: '2026-13-01T00:00:00Z' is not a time"},
      {{cpu, "--from", at(240), "--to", at(0)}, "must be before --to"},
      {{cpu, "--since", "1h", "--from", at(0)}, "give --since or --from/--to, not both"},
      {{cpu, "--since", "-5m"}, "--since: '-5m' is not a duration"},
      {{cpu, "--step", "0s"}, "--step: '0s' must be longer than zero"},
      {{cpu, "--step", "often"}, "--step: 'often' is not a duration"},
      {{cpu, "--since", "1d", "--step", "1s"},
       "--step 1s makes 86400 steps over 1d; at most 10000"},
      {{cpu, "--agg", "p99"},
       "--agg p99 does not apply to 'gauge_host:cpu' (f64); use one of "
       "mean, min, max, sum, count, last"},
      {{cpu, "--agg", "rate"}, "--agg rate does not apply"},
      {{"counter_host:requests", "--agg", "mean"},
       "--agg mean does not apply to 'counter_host:requests' (cumulative_u64); use one of rate, "
       "delta, count, last"},
      {{"hist_service:latency", "--agg", "sum"}, "use one of p50, p90, p95, p99, count"},
      {{"misc:state", "--agg", "max"}, "use one of last, count"},
      {{cpu, "--agg", "median"}, "--agg: unknown aggregation 'median'"},
      {{cpu, "--format", "xml"}, "--format must be table, csv, json or chart, got 'xml'"},
      {{cpu, "--colour", "red"}, "unknown option --colour for 'query'"},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> argv = {"query"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = tallyctl(db, argv);
    CAPTURE(message);
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(contains(r.err, message), r.err);
  }

  CommandResult no_db = run_command({TALLY_TALLYCTL_PATH, "query", cpu});
  CHECK(no_db.exit_code == 2);
  CHECK(contains(no_db.err, "'query' reads the database: give --db URL or TALLY_DATABASE_URL"));
  CommandResult down = run_command(
      {TALLY_TALLYCTL_PATH, "--db", "postgresql://postgres@127.0.0.1:1/none", "query", cpu});
  CHECK(down.exit_code == 1);
  CHECK_MESSAGE(contains(down.err, "cannot connect"), down.err);
}

TEST_CASE("the views read back what the collector's writer stored") {
  TestDatabase db;
  store(db, data_set());
  CHECK(db.scalar("SELECT count(*) || ' ' || sum(datum) FROM tally_ts.\"gauge_host:cpu\" "
                  "WHERE host = 'a' AND core = 1") == "8 40");
  CHECK(db.scalar("SELECT string_agg(datum::text, ',' ORDER BY \"timestamp\") FROM "
                  "tally_ts.\"counter_host:requests\" WHERE host = 'z'") == "15,30,45,60,75,90");
  CHECK(db.scalar("SELECT bins::text || ' ' || counts::text FROM tally_ts.\"hist_service:latency\" "
                  "WHERE route = '/a' ORDER BY \"timestamp\" DESC LIMIT 1") ==
        "{NULL,0,10,20,40} {0,0,2,4,2}");
  CHECK(db.scalar("SELECT sum(level.datum) FROM tally_ts.\"fieldy:level\" level "
                  "WHERE h = 18446744073709551615 OR ip = '::1'") == "3");
}
