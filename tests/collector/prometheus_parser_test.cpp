#include "tally/collector/prometheus_parser.h"

#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "support/fixtures.h"
#include "tally/common/timeseries_key.h"

using tally::Cumulative;
using tally::Histogram;
using tally::Sample;
using tally::Timestamp;
using tally::collector::PrometheusParser;
using tally::collector::PrometheusSource;
using tally::collector::sanitize_prometheus_name;

namespace {

const Timestamp kScrape = *tally::parse_rfc3339("2026-11-22T10:00:00Z");
const tally::Uuid kProducer = *tally::Uuid::parse("0b9d6f3e-4f0c-4a55-9d5b-2a8f4e2f8c11");

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(TALLY_FIXTURES_DIR) + "/prometheus/" + name);
  REQUIRE_MESSAGE(in, "missing fixture " << name);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

PrometheusParser parser() {
  return PrometheusParser(PrometheusSource{"node", kProducer, "127.0.0.1:9100"});
}

std::string field(const Sample& s, const std::string& name) {
  for (const auto* fields : {&s.target().fields, &s.metric().fields}) {
    for (const auto& f : *fields) {
      if (f.name == name) return tally::format_field_value(f.value);
    }
  }
  return "<none>";
}

const Sample& find(const std::vector<Sample>& samples, const std::string& metric,
                   const std::string& field_name = "", const std::string& value = "") {
  for (const Sample& s : samples) {
    if (s.metric().name == metric && (field_name.empty() || field(s, field_name) == value))
      return s;
  }
  FAIL("no sample " << metric << " " << field_name << "=" << value);
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("names are lowercased and invalid characters become underscores") {
  CHECK(sanitize_prometheus_name("http_requests_total") == "http_requests_total");
  CHECK(sanitize_prometheus_name("job:up:sum") == "job_up_sum");
  CHECK(sanitize_prometheus_name("Foo__Bar_") == "foo_bar");
  CHECK(sanitize_prometheus_name("__name") == "name");
  CHECK(sanitize_prometheus_name("_9lives") == "m_9lives");
  CHECK(sanitize_prometheus_name("::") == "");
}

TEST_CASE("every text-format feature maps as DESIGN.md 3.2 says") {
  auto p = parser();
  auto r = p.parse(fixture("every_feature.prom"), kScrape);
  REQUIRE_MESSAGE(r.ok(), r.error());
  const auto& samples = *r;
  // 2 counters + 1 gauge + 1 untyped + 1 weird + 2 temperature + 1 histogram + 3 quantiles +
  // sum + count + 1 clash.
  CHECK(samples.size() == 14);

  const Sample& post200 = find(samples, "http_requests_total", "code", "200");
  CHECK(post200.target().name == "node");
  CHECK(field(post200, "producer_id") == kProducer.to_string());
  CHECK(field(post200, "instance") == "127.0.0.1:9100");
  CHECK(field(post200, "method") == "post");
  CHECK(post200.timestamp == Timestamp(std::chrono::milliseconds(1395066363000)));
  const auto& counter = std::get<Cumulative<double>>(post200.datum);
  CHECK(counter.value == 1027);
  CHECK(counter.start_time == kScrape);  // no _created: first seen now

  const Sample& msdos = find(samples, "msdos_file_access_time_seconds");
  CHECK(field(msdos, "path") == "C:\\DIR\\FILE.TXT");
  CHECK(field(msdos, "error") == "Cannot find file:\n\"FILE.TXT\"");
  CHECK(std::get<double>(msdos.datum) == 1.458255915e9);

  CHECK(std::get<double>(find(samples, "metric_without_timestamp_and_labels").datum) == 12.47);
  const Sample& weird = find(samples, "something_weird");
  CHECK(std::isinf(std::get<double>(weird.datum)));
  CHECK(weird.timestamp == Timestamp(std::chrono::milliseconds(-3982045)));
  CHECK(std::isnan(std::get<double>(find(samples, "temperature", "sensor", "a").datum)));
  CHECK(std::get<double>(find(samples, "temperature", "sensor", "b").datum) == -INFINITY);

  const auto& h = std::get<Histogram<double>>(find(samples, "http_request_duration_seconds").datum);
  REQUIRE(h.bins.size() == 6);
  CHECK_FALSE(h.bins[0].lower.has_value());
  CHECK(h.bins[0].count == 24054);
  CHECK(*h.bins[1].lower == 0.05);
  CHECK(h.bins[1].count == 33444 - 24054);
  CHECK(*h.bins[5].lower == 1);
  CHECK(h.bins[5].count == 144320 - 133988);
  CHECK(h.n_samples == 144320);
  CHECK(h.sum_of_samples == 53423);
  CHECK(std::isnan(h.min));

  CHECK(std::get<double>(find(samples, "rpc_duration_seconds", "quantile", "0.99").datum) == 76656);
  CHECK(std::get<Cumulative<double>>(find(samples, "rpc_duration_seconds_sum").datum).value ==
        1.7560473e+07);
  CHECK(std::get<Cumulative<double>>(find(samples, "rpc_duration_seconds_count").datum).value ==
        2693);

  const Sample& clash = find(samples, "job_up_sum");
  CHECK(field(clash, "exported_instance") == "10.0.0.1:9100");
  CHECK(field(clash, "instance") == "127.0.0.1:9100");
}

TEST_CASE("OpenMetrics: _total, _created, exemplars and # EOF") {
  auto p = parser();
  auto r = p.parse(fixture("openmetrics.txt"), kScrape);
  REQUIRE_MESSAGE(r.ok(), r.error());
  const Timestamp created = Timestamp(std::chrono::seconds(1605281325));
  const auto& requests = std::get<Cumulative<double>>(find(*r, "process_requests").datum);
  CHECK(requests.value == 12);
  CHECK(requests.start_time == created);
  CHECK(find(*r, "process_requests").timestamp ==
        Timestamp(std::chrono::milliseconds(1605301325250)));
  const auto& sum =
      std::get<Cumulative<double>>(find(*r, "acme_http_router_request_seconds_sum").datum);
  CHECK(sum.value == 9036.32);
  CHECK(sum.start_time == created);
  const auto& h = std::get<Histogram<double>>(find(*r, "latency").datum);
  REQUIRE(h.bins.size() == 2);
  CHECK(h.bins[0].count == 1);
  CHECK(h.bins[1].count == 2);
  CHECK(h.start_time == created);
}

TEST_CASE("a counter keeps its first-seen start time and restarts after a reset") {
  auto p = parser();
  const Timestamp later = kScrape + std::chrono::seconds(10);
  const Timestamp latest = kScrape + std::chrono::seconds(20);
  auto start_of = [](const tally::Result<std::vector<Sample>>& r) {
    REQUIRE_MESSAGE(r.ok(), r.error());
    return std::get<Cumulative<double>>(r->at(0).datum).start_time;
  };
  const std::string head = "# TYPE c counter\n";
  CHECK(start_of(p.parse(head + "c 5\n", kScrape)) == kScrape);
  CHECK(start_of(p.parse(head + "c 9\n", later)) == kScrape);
  CHECK(start_of(p.parse(head + "c 2\n", latest)) == latest);
}

TEST_CASE("malformed exposition is rejected whole, naming the line") {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"ok 1\nbad{a=\"x\" 1\n", "line 2: "},
      {"m{a=x} 1\n", "line 1: expected '\"' to open the value of 'a'"},
      {"m{a=\"x\\q\"} 1\n", "line 1: bad escape"},
      {"m{a=\"x\",a=\"y\"} 1\n", "line 1: label 'a' given twice"},
      {"m\n", "line 1: expected a value after 'm'"},
      {"m one\n", "line 1: 'one' is not a number"},
      {"m 1 soon\n", "line 1: 'soon' is not a timestamp"},
      {"m 1 2 3\n", "line 1: unexpected text after the timestamp"},
      {"1m 1\n", "line 1: expected a metric name"},
      {"# TYPE m kounter\nm 1\n", "line 1: unknown type 'kounter'"},
      {"# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 3\n",
       "bucket counts decrease"},
      {"# TYPE h histogram\nh_bucket 5\n", "line 2: bucket of 'h' without an le label"},
      {"m{a=\"unterminated} 1\n", "line 1: unterminated value of label 'a'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto p = parser();
    auto r = p.parse(c.text, kScrape);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == "decode");
    CHECK_MESSAGE(r.error().find(c.message) != std::string::npos, r.error());
  }
}

TEST_CASE("more samples than allowed is too_many_samples") {
  auto p = parser();
  auto r = p.parse("a 1\nb 2\nc 3\n", kScrape, 2);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == "too_many_samples");
  CHECK(p.parse("a 1\nb 2\n", kScrape, 2).ok());
}

TEST_CASE("a rejected scrape leaves the start times of the last good one") {
  auto p = parser();
  const Timestamp later = kScrape + std::chrono::seconds(10);
  const Timestamp latest = kScrape + std::chrono::seconds(20);
  const std::string head = "# TYPE c counter\n";
  REQUIRE(p.parse(head + "c{k=\"1\"} 5\n", kScrape).ok());
  // Seen again in a scrape that fails further down: neither its new value nor a new series count.
  REQUIRE_FALSE(p.parse(head + "c{k=\"1\"} 1\nc{k=\"2\"} 1\nbad{\n", later).ok());
  auto r = p.parse(head + "c{k=\"1\"} 6\nc{k=\"2\"} 1\n", latest);
  REQUIRE_MESSAGE(r.ok(), r.error());
  REQUIRE(r->size() == 2);
  CHECK(std::get<Cumulative<double>>(find(*r, "c", "k", "1").datum).start_time == kScrape);
  CHECK(std::get<Cumulative<double>>(find(*r, "c", "k", "2").datum).start_time == latest);
}

TEST_CASE("a series missing from a scrape starts afresh when it comes back") {
  auto p = parser();
  const Timestamp later = kScrape + std::chrono::seconds(10);
  const Timestamp latest = kScrape + std::chrono::seconds(20);
  const std::string head = "# TYPE c counter\n";
  REQUIRE(p.parse(head + "c{k=\"1\"} 5\nc{k=\"2\"} 5\n", kScrape).ok());
  REQUIRE(p.parse(head + "c{k=\"1\"} 6\n", later).ok());
  auto r = p.parse(head + "c{k=\"1\"} 7\nc{k=\"2\"} 7\n", latest);
  REQUIRE_MESSAGE(r.ok(), r.error());
  CHECK(std::get<Cumulative<double>>(find(*r, "c", "k", "1").datum).start_time == kScrape);
  CHECK(std::get<Cumulative<double>>(find(*r, "c", "k", "2").datum).start_time == latest);
}

TEST_CASE("the lines of a series may be apart and list their labels in any order") {
  auto p = parser();
  auto r = p.parse(
      "# TYPE h histogram\n"
      "h_bucket{a=\"1\",b=\"x\",le=\"1\"} 2\n"
      "h_bucket{a=\"2\",b=\"x\",le=\"1\"} 1\n"
      "h_bucket{le=\"+Inf\",b=\"x\",a=\"1\"} 5\n"
      "h_bucket{b=\"x\",a=\"2\",le=\"+Inf\"} 4\n"
      "h_sum{b=\"x\",a=\"1\"} 9\n"
      "h_count{a=\"1\",b=\"x\"} 5\n",
      kScrape);
  REQUIRE_MESSAGE(r.ok(), r.error());
  REQUIRE(r->size() == 2);
  const auto& one = std::get<Histogram<double>>(find(*r, "h", "a", "1").datum);
  REQUIRE(one.bins.size() == 2);
  CHECK(one.bins[0].count == 2);
  CHECK(one.bins[1].count == 3);
  CHECK(one.sum_of_samples == 9);
  const auto& two = std::get<Histogram<double>>(find(*r, "h", "a", "2").datum);
  CHECK(two.n_samples == 4);
  // Fields keep the order of the series' first line.
  CHECK(find(*r, "h", "a", "1").metric().fields[0].name == "a");
}

// Found by tools/fuzz (prometheus_text): the cast of this timestamp to int64 microseconds
// overflowed (undefined behaviour).
TEST_CASE("a timestamp beyond the int64 microsecond range is refused") {
  auto r = parser().parse(tally::test::read_fixture("fuzz/prometheus_text/timestamp_out_of_range"),
                          kScrape);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == "decode");
  CHECK(r.error() == "line 1: '11395363310506631' is not a timestamp");
}

// --- the series cache (issue 8) ---

namespace {

// Every part of two parses' samples, the datum bit for bit.
void check_same_samples(const std::vector<Sample>& a, const std::vector<Sample>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(tally::same_sample(a[i], b[i]));
  }
}

const std::string kMixed =
    "# TYPE c counter\n"
    "c{route=\"/a\",code=\"200\"} 5\n"
    "c{code=\"500\",route=\"/a\"} 1\n"
    "# TYPE g gauge\n"
    "g{q=\"a}b\\\"c\\\\d\"} 1.5\n"
    "g 2\n"
    "# TYPE h histogram\n"
    "h_bucket{a=\"1\",le=\"0.5\"} 2\n"
    "h_bucket{a=\"1\",le=\"+Inf\"} 5\n"
    "h_sum{a=\"1\"} 9\n"
    "h_count{a=\"1\"} 5\n"
    "# TYPE s summary\n"
    "s{quantile=\"0.5\",x=\"y\"} 0.1\n"
    "s{quantile=\"0.9\",x=\"y\"} 0.3\n"
    "s_sum{x=\"y\"} 4\n"
    "s_count{x=\"y\"} 20\n"
    "u{instance=\"other\"} 7\n";

}  // namespace

TEST_CASE("a scrape read from the series cache gives the samples a fresh parser gives") {
  auto warm = parser();
  REQUIRE(warm.parse(kMixed, kScrape).ok());
  CHECK(warm.cached_series() == 7);  // c×2, g×2, h, s, u
  CHECK(warm.cached_lines() == 13);
  auto cached = warm.parse(kMixed, kScrape);
  REQUIRE_MESSAGE(cached.ok(), cached.error());
  auto fresh = parser().parse(kMixed, kScrape);
  REQUIRE_MESSAGE(fresh.ok(), fresh.error());
  check_same_samples(*cached, *fresh);
  CHECK(field(find(*cached, "g", "q", "a}b\"c\\d"), "q") == "a}b\"c\\d");
  CHECK(field(find(*cached, "s", "quantile", "0.9"), "x") == "y");
  CHECK(field(find(*cached, "u"), "exported_instance") == "other");
  CHECK(warm.cached_series() == 7);
  CHECK(warm.cached_lines() == 13);
}

TEST_CASE("counters, gauges and histograms keep their timeseries across scrapes, summaries not") {
  auto p = parser();
  auto first = p.parse(kMixed, kScrape);
  REQUIRE_MESSAGE(first.ok(), first.error());
  auto second = p.parse(kMixed, kScrape);
  REQUIRE_MESSAGE(second.ok(), second.error());
  REQUIRE(first->size() == 10);  // c×2, g×2, h, s×2 quantiles, s_sum, s_count, u
  REQUIRE(second->size() == first->size());
  for (std::size_t i = 0; i < first->size(); ++i) {
    const Sample& a = (*first)[i];
    const Sample& b = (*second)[i];
    CAPTURE(a.metric().name);
    const bool summary = a.metric().name.starts_with("s");
    CHECK((a.series == b.series) == !summary);
    CHECK(b.key() == tally::timeseries_key(b.target(), b.metric(), b.timeseries_version()));
  }
}

TEST_CASE("whole numbers read by hand agree with from_chars, up to 15 digits and beyond") {
  const std::vector<std::pair<std::string, double>> values = {
      {"0", 0},
      {"007", 7},
      {"999999999999999", 999999999999999.0},
      {"9007199254740993", 9007199254740992.0},  // 16 digits: from_chars rounds to even
      {"12345678901234567890", 12345678901234567890.0},
      {"1.5", 1.5},
      {"1e3", 1000}};
  for (const auto& [text, want] : values) {
    CAPTURE(text);
    auto r = parser().parse("# TYPE g gauge\ng " + text + "\n", kScrape);
    REQUIRE_MESSAGE(r.ok(), r.error());
    CHECK(std::get<double>(r->at(0).datum) == want);
  }
  for (const std::string text : {"12a", "1_2", "0x10", "１２"}) {
    CAPTURE(text);
    CHECK_FALSE(parser().parse("# TYPE g gauge\ng " + text + "\n", kScrape).ok());
  }
}

TEST_CASE("quotes, escapes and braces are found wherever they fall in the line") {
  // The end of the labels is searched 16 bytes at a time: move the escapes across those blocks.
  for (std::size_t pad = 0; pad < 40; ++pad) {
    CAPTURE(pad);
    const std::string value = std::string(pad, 'v') + "}\"{\\" + std::string(pad % 7, 'w');
    const std::string text = "# TYPE m gauge\nm{" + std::string(pad % 5 + 1, 'a') + "=\"" +
                             std::string(pad, 'v') + "}\\\"{\\\\" + std::string(pad % 7, 'w') +
                             "\",z=\"}\"} 1\n";
    auto p = parser();
    for (int scrape = 0; scrape < 2; ++scrape) {  // read whole, then from the series cache
      auto r = p.parse(text, kScrape);
      REQUIRE_MESSAGE(r.ok(), r.error());
      REQUIRE(r->size() == 1);
      CHECK(field(r->at(0), std::string(pad % 5 + 1, 'a')) == value);
      CHECK(field(r->at(0), "z") == "}");
    }
  }
}

TEST_CASE("the series cache forgets the series and lines a scrape no longer has") {
  auto p = parser();
  std::string big = "# TYPE g gauge\n";
  for (int i = 0; i < 1000; ++i) big += "g{i=\"" + std::to_string(i) + "\"} 1\n";
  REQUIRE(p.parse(big, kScrape).ok());
  CHECK(p.cached_series() == 1000);
  CHECK(p.cached_lines() == 1000);
  auto r = p.parse("# TYPE g gauge\ng{i=\"7\"} 2\ng{i=\"1000\"} 3\n", kScrape);
  REQUIRE_MESSAGE(r.ok(), r.error());
  CHECK(p.cached_series() == 2);
  CHECK(p.cached_lines() == 2);
  CHECK(std::get<double>(find(*r, "g", "i", "7").datum) == 2);
  CHECK(std::get<double>(find(*r, "g", "i", "1000").datum) == 3);
  // A histogram that lost a bucket keeps its series and drops the bucket's line.
  const std::string h = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n";
  REQUIRE(p.parse(h + "h_bucket{le=\"2\"} 2\n", kScrape).ok());
  CHECK(p.cached_lines() == 3);
  REQUIRE(p.parse(h, kScrape).ok());
  CHECK(p.cached_series() == 1);
  CHECK(p.cached_lines() == 2);
}

TEST_CASE("a changed label set is a new series, the old one leaves the cache") {
  auto p = parser();
  const std::string head = "# TYPE c counter\n";
  const Timestamp later = kScrape + std::chrono::seconds(10);
  REQUIRE(p.parse(head + "c{k=\"1\"} 5\n", kScrape).ok());
  auto r = p.parse(head + "c{k=\"2\"} 6\n", later);
  REQUIRE_MESSAGE(r.ok(), r.error());
  REQUIRE(r->size() == 1);
  CHECK(field(r->at(0), "k") == "2");
  CHECK(std::get<Cumulative<double>>(r->at(0).datum).start_time == later);
  CHECK(p.cached_series() == 1);
  // The same labels in another order are the same series, under a second cached line.
  r = p.parse(head + "c{k=\"2\",j=\"x\"} 7\nc{j=\"x\",k=\"2\"} 8\n", later);
  REQUIRE_MESSAGE(r.ok(), r.error());
  REQUIRE(r->size() == 1);
  CHECK(std::get<Cumulative<double>>(r->at(0).datum).value == 8);
  CHECK(p.cached_series() == 1);
  CHECK(p.cached_lines() == 2);
}

TEST_CASE("a family whose TYPE changed is read again, not taken from the cache") {
  auto p = parser();
  auto r = p.parse("# TYPE x gauge\nx{a=\"1\"} 3\n", kScrape);
  REQUIRE_MESSAGE(r.ok(), r.error());
  CHECK(std::holds_alternative<double>(r->at(0).datum));
  r = p.parse("# TYPE x counter\nx{a=\"1\"} 3\n", kScrape);
  REQUIRE_MESSAGE(r.ok(), r.error());
  CHECK(std::holds_alternative<Cumulative<double>>(r->at(0).datum));
  // x_bucket was a series of its own (untyped), now it is a bucket of histogram x.
  r = p.parse("x_bucket{le=\"1\"} 3\n", kScrape);
  REQUIRE_MESSAGE(r.ok(), r.error());
  CHECK(r->at(0).metric().name == "x_bucket");
  r = p.parse("# TYPE x histogram\nx_bucket{le=\"1\"} 3\nx_bucket{le=\"+Inf\"} 3\n", kScrape);
  REQUIRE_MESSAGE(r.ok(), r.error());
  REQUIRE(r->size() == 1);
  CHECK(r->at(0).metric().name == "x");
  CHECK(std::holds_alternative<Histogram<double>>(r->at(0).datum));
  CHECK(p.cached_lines() == 2);
}

TEST_CASE("a failed scrape leaves the cache as the last good one left it") {
  auto p = parser();
  REQUIRE(p.parse("a{k=\"1\"} 1\nb 2\n", kScrape).ok());
  CHECK(p.cached_series() == 2);
  REQUIRE_FALSE(p.parse("a{k=\"1\"} 1\nnew{k=\"2\"} 1\nbad{\n", kScrape).ok());
  CHECK(p.cached_series() == 2);
  CHECK(p.cached_lines() == 2);
  // A hostile scrape of too many series adds nothing either.
  std::string many;
  for (int i = 0; i < 100; ++i) many += "m" + std::to_string(i) + " 1\n";
  REQUIRE(p.parse(many, kScrape, 10).status().code() == "too_many_samples");
  CHECK(p.cached_series() == 2);
  CHECK(p.cached_lines() == 2);
}

TEST_CASE("a line whose series text is cached is still checked whole") {
  struct Case {
    const char* warm;
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"m{a=\"x\"} 1\n", "m{a=\"x\"}\n", "line 1: expected a value after 'm'"},
      {"m{a=\"x\"} 1\n", "m{a=\"x\"} one\n", "line 1: 'one' is not a number"},
      {"m 1\n", "m 1 soon\n", "line 1: 'soon' is not a timestamp"},
      {"m 1\n", "m 1 2 3\n", "line 1: unexpected text after the timestamp"},
      {"# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 6\n",
       "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 3\n",
       "bucket counts decrease"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto p = parser();
    REQUIRE(p.parse(c.warm, kScrape).ok());
    auto r = p.parse(c.text, kScrape);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == "decode");
    CHECK_MESSAGE(r.error().find(c.message) != std::string::npos, r.error());
  }
}

// Found by tools/fuzz (prometheus_text): the cast of this _created to int64 microseconds
// overflowed (undefined behaviour). The series starts when first seen instead.
TEST_CASE("a _created beyond the int64 microsecond range is ignored") {
  auto r = parser().parse("# TYPE c counter\nc_total 1\nc_created 16051605281325.0\n", kScrape);
  REQUIRE_MESSAGE(r.ok(), r.error());
  REQUIRE(r->size() == 1);
  CHECK(std::get<Cumulative<double>>(r->at(0).datum).start_time == kScrape);
}
