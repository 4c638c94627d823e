#include "tally/registry/records.h"

#include <doctest/doctest.h>

using tally::Network;
using tally::Status;
using tally::registry::check_producer_address;
using tally::registry::parse_collector_spec;
using tally::registry::parse_producer_spec;

namespace {

constexpr const char* kId = "6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f";

std::string body(const std::string& fields) {
  return std::string("{\"id\":\"") + kId + "\",\"address\":\"127.0.0.1:9100\"" + fields + "}";
}

}  // namespace

TEST_CASE("a minimal registration gets the defaults") {
  auto spec = parse_producer_spec(body(""));
  REQUIRE_MESSAGE(spec.ok(), spec.error());
  CHECK(spec->id.to_string() == kId);
  CHECK(spec->kind == "service");
  CHECK(spec->address == "127.0.0.1:9100");
  CHECK(spec->route == "/collect");
  CHECK(spec->interval_ms == 10000);
  CHECK(spec->format == "oximeter");
  CHECK_FALSE(spec->target_name.has_value());
}

TEST_CASE("every field is read") {
  auto spec = parse_producer_spec(
      std::string("{\"id\":\"6F1F3C1E-0C0E-4C5A-9F0E-3A2B1C0D9E8F\",\"kind\":\"sled_agent\","
                  "\"address\":\"[::1]:9100\",\"route\":\"/x/y\",\"interval_ms\":250,"
                  "\"format\":\"prometheus\",\"target_name\":\"node\",\"extra\":[1,2]}"));
  REQUIRE_MESSAGE(spec.ok(), spec.error());
  CHECK(spec->id.to_string() == kId);  // normalised to lowercase
  CHECK(spec->kind == "sled_agent");
  CHECK(spec->address == "[::1]:9100");
  CHECK(spec->route == "/x/y");
  CHECK(spec->interval_ms == 250);
  CHECK(spec->format == "prometheus");
  CHECK(spec->target_name == std::optional<std::string>("node"));
}

TEST_CASE("a prometheus producer defaults to /metrics") {
  auto spec = parse_producer_spec(body(",\"format\":\"prometheus\""));
  REQUIRE(spec.ok());
  CHECK(spec->route == "/metrics");
}

TEST_CASE("a whole number written as a float is an interval, and null means the default") {
  auto spec = parse_producer_spec(body(",\"interval_ms\":1500.0,\"target_name\":null"));
  REQUIRE_MESSAGE(spec.ok(), spec.error());
  CHECK(spec->interval_ms == 1500);
  CHECK_FALSE(spec->target_name.has_value());
}

TEST_CASE("bad registrations name the field and the reason") {
  const std::pair<std::string, std::string> cases[] = {
      {"", "the request body must be a JSON object"},
      {"[1,2]", "must be a JSON object, not an array"},
      {"{\"id\": ", "malformed JSON at byte"},
      {"{\"id\":\"x\"} trailing", "malformed JSON"},
      {"{\"address\":\"127.0.0.1:1\"}", "id: required"},
      {"{\"id\":42,\"address\":\"127.0.0.1:1\"}", "id: expected a string, got a number"},
      {"{\"id\":\"not-a-uuid\",\"address\":\"127.0.0.1:1\"}", "id: 'not-a-uuid' is not a UUID"},
      {std::string("{\"id\":\"") + kId + "\"}", "address: required"},
      {body("").replace(body("").find("127.0.0.1:9100"), 14, "localhost"),
       "address: 'localhost' is not host:port"},
      {body("").replace(body("").find("127.0.0.1:9100"), 14, "h:0"),
       "address: 'h:0': port must be"},
      {body(",\"kind\":\"Web-Server\""), "kind: must match [a-z_]+"},
      {body(",\"route\":\"collect\""), "route: must start with '/'"},
      {body(",\"route\":\"/a b\""), "route: must not contain spaces"},
      {body(",\"interval_ms\":0"), "interval_ms: must be between 100 and 86400000, got 0"},
      {body(",\"interval_ms\":-5"), "interval_ms: must be between 100 and 86400000, got -5"},
      {body(",\"interval_ms\":99"), "interval_ms: must be between 100 and 86400000, got 99"},
      {body(",\"interval_ms\":86400001"), "got 86400001"},
      {body(",\"interval_ms\":18446744073709551615"), "interval_ms: must be between"},
      {body(",\"interval_ms\":1.5"), "interval_ms: expected a whole number"},
      {body(",\"interval_ms\":\"10s\""),
       "interval_ms: expected a number of milliseconds, got a string"},
      {body(",\"format\":\"influx\""), "format: must be oximeter or prometheus, got 'influx'"},
      {body(",\"target_name\":\"Node\""), "target_name: must match"},
      {body(",\"target_name\":\"a__b\""), "got 'a__b'"},
  };
  for (const auto& [input, message] : cases) {
    CAPTURE(input);
    auto spec = parse_producer_spec(input);
    REQUIRE_FALSE(spec.ok());
    CHECK(spec.status().code() == "bad_request");
    CHECK_MESSAGE(spec.error().find(message) != std::string::npos, spec.error());
  }
}

TEST_CASE("producer addresses are resolved and checked against allowed_networks") {
  auto spec = parse_producer_spec(body(""));
  REQUIRE(spec.ok());
  CHECK(check_producer_address(*spec, {}).ok());
  CHECK(check_producer_address(*spec, {*Network::parse("127.0.0.0/8")}).ok());
  Status s = check_producer_address(*spec, {*Network::parse("10.0.0.0/8")});
  CHECK(s.code() == "bad_request");
  CHECK(s.message() == "address: 127.0.0.1 is outside allowed_networks (10.0.0.0/8)");

  auto named = parse_producer_spec(body("").replace(body("").find("127.0.0.1"), 9, "localhost"));
  REQUIRE(named.ok());
  s = check_producer_address(*named, {*Network::parse("10.0.0.0/8")});
  CHECK(s.message().find("'localhost' resolves to") != std::string::npos);

  auto unknown =
      parse_producer_spec(body("").replace(body("").find("127.0.0.1"), 9, "no-such-host.invalid"));
  REQUIRE(unknown.ok());
  s = check_producer_address(*unknown, {});
  CHECK(s.code() == "bad_request");
  CHECK(s.message().find("address: cannot resolve 'no-such-host.invalid'") != std::string::npos);
}

TEST_CASE("heartbeats need an id and a resolvable address") {
  auto ok =
      parse_collector_spec("{\"id\":\"" + std::string(kId) + "\",\"address\":\"127.0.0.1:12222\"}");
  REQUIRE_MESSAGE(ok.ok(), ok.error());
  CHECK(ok->address == "127.0.0.1:12222");
  CHECK(parse_collector_spec("{\"address\":\"127.0.0.1:12222\"}").error() == "id: required");
  CHECK(parse_collector_spec("{\"id\":\"" + std::string(kId) + "\"}").error() ==
        "address: required");
}
