// PrometheusParser::parse (DESIGN.md §3.2) on arbitrary text, scraped twice by one parser (the
// second scrape goes through the parser's memory of start times and its series cache): no crash,
// UB or leak; every sample it returns passes validate_sample; both scrapes agree on success,
// sample count and series; and a limit of one sample fewer than a scrape yields fails with
// "too_many_samples".
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "fuzz_support.h"
#include "tally/collector/prometheus_parser.h"

namespace {

using tally::collector::PrometheusParser;
using tally::collector::PrometheusSource;

const tally::Timestamp kScrape = *tally::parse_rfc3339("2026-11-22T10:00:00Z");

PrometheusSource source() {
  return {"node", *tally::Uuid::parse("0b9d6f3e-4f0c-4a55-9d5b-2a8f4e2f8c11"), "127.0.0.1:9100"};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using tally::fuzz::check;
  const std::string_view text = tally::fuzz::as_text(data, size);
  PrometheusParser parser(source());
  auto first = parser.parse(text, kScrape);
  auto second = parser.parse(text, kScrape + std::chrono::seconds(10));
  check(first.ok() == second.ok(), "a second scrape of the same text has the same outcome",
        first.ok() ? second.error() : first.error());
  if (!first.ok()) {
    check(first.status().code() == "decode", "malformed text fails with code decode",
          first.error());
    return 0;
  }
  check(first->size() == second->size(), "a second scrape yields as many samples");
  // The second scrape reads its lines from the parser's series cache: it must give the same
  // series, in the same order, with the same kind of datum.
  for (std::size_t i = 0; i < first->size(); ++i) {
    const tally::Sample& a = (*first)[i];
    const tally::Sample& b = (*second)[i];
    check(
        a.target() == b.target() && a.metric() == b.metric() && a.datum.index() == b.datum.index(),
        "a second scrape yields the same series", a.timeseries_name());
  }
  for (const tally::Sample& s : *first) {
    const tally::Status valid = tally::validate_sample(s);
    check(valid.ok(), "every sample is valid", valid.message());
  }
  if (!first->empty()) {
    auto limited = PrometheusParser(source()).parse(text, kScrape, first->size() - 1);
    check(!limited.ok() && limited.status().code() == "too_many_samples",
          "a scrape over max_samples fails with code too_many_samples",
          limited.ok() ? "" : limited.error());
  }
  return 0;
}
