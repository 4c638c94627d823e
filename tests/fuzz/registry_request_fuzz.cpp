// The registry's request parsing (DESIGN.md §4), called directly rather than over HTTP: every
// input is tried as a POST /v1/producers body, as a heartbeat body (POST /v1/collectors) and as
// the query string of a listing. No crash, UB or leak; a refusal has code "bad_request"; a
// parsed body written back as the API's JSON parses to the same spec; a page limit is clamped
// to 1..kMaxPageLimit.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "tally/common/http_message.h"
#include "tally/registry/api.h"
#include "tally/registry/records.h"

namespace {

using tally::fuzz::check;
namespace registry = tally::registry;

template <class T>
void check_refusal(const tally::Result<T>& r, std::string_view what) {
  if (!r.ok()) check(r.status().code() == "bad_request", what, r.error());
}

void producer_body(std::string_view body) {
  auto spec = registry::parse_producer_spec(body);
  check_refusal(spec, "a refused registration has code bad_request");
  if (!spec.ok()) return;
  registry::ProducerRecord record;
  record.spec = *spec;
  const std::string json = registry::producer_json(record);
  auto again = registry::parse_producer_spec(json);
  check(again.ok(), "producer_json parses as a registration", again.ok() ? json : again.error());
  check(again->id == spec->id && again->kind == spec->kind && again->address == spec->address &&
            again->route == spec->route && again->interval_ms == spec->interval_ms &&
            again->format == spec->format && again->target_name == spec->target_name,
        "producer_json parses to the same spec", json);
}

void heartbeat_body(std::string_view body) {
  auto spec = registry::parse_collector_body(body);
  check_refusal(spec, "a refused heartbeat has code bad_request");
  if (!spec.ok()) return;
  const std::string json = registry::collector_json({.id = spec->id, .address = spec->address});
  auto again = registry::parse_collector_body(json);
  check(again.ok() && again->id == spec->id && again->address == spec->address,
        "collector_json parses to the same heartbeat", json);
}

void page_query(std::string_view query) {
  tally::HttpRequest request;
  request.method = "GET";
  request.path = "/v1/producers";
  request.target = request.path + "?" + std::string(query);
  request.query = tally::parse_query(query);
  auto page = registry::parse_page_query(request);
  check_refusal(page, "a refused page query has code bad_request");
  if (page.ok()) {
    check(page->limit >= 1 && page->limit <= registry::kMaxPageLimit, "a page limit is clamped");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text = tally::fuzz::as_text(data, size);
  producer_body(text);
  heartbeat_body(text);
  page_query(text);
  return 0;
}
