#include "tally/schema/schema_json.h"

#include <doctest/doctest.h>

namespace tally::schema {
namespace {

const std::vector<FieldSchema> kFields = {
    {"instance_id", FieldType::kUuid, FieldSource::kTarget},
    {"route", FieldType::kString, FieldSource::kMetric},
    {"status_code", FieldType::kU16, FieldSource::kMetric},
};

TEST_CASE("fields_to_json writes name and type and source of each field in order") {
  CHECK(fields_to_json(kFields) == R"([{"name":"instance_id","type":"uuid","source":"target"},)"
                                   R"({"name":"route","type":"string","source":"metric"},)"
                                   R"({"name":"status_code","type":"u16","source":"metric"}])");
  CHECK(fields_to_json({}) == "[]");
}

TEST_CASE("parse_fields_json reads back what fields_to_json wrote") {
  auto parsed = parse_fields_json(fields_to_json(kFields));
  REQUIRE(parsed.ok());
  CHECK(*parsed == kFields);
}

TEST_CASE("parse_fields_json reads jsonb's reformatted output and sorts by name") {
  // jsonb reorders keys (shorter first) and adds spaces.
  auto parsed =
      parse_fields_json(R"([{"name": "status_code", "type": "u16", "source": "metric"}, )"
                        R"({"name": "route", "type": "string", "source": "metric"}, )"
                        R"({"name": "instance_id", "type": "uuid", "source": "target"}])");
  REQUIRE(parsed.ok());
  CHECK(*parsed == kFields);
}

TEST_CASE("parse_fields_json rejects malformed lists with code decode") {
  const char* cases[] = {
      "",
      "{}",
      "[1]",
      R"([{"name":"a","type":"string"}])",
      R"([{"name":"a","type":"float","source":"metric"}])",
      R"([{"name":"a","type":"string","source":"both"}])",
      R"([{"name":7,"type":"string","source":"metric"}])",
      R"([{"name":"a","type":"string","source":"metric"},{"name":"a","type":"u8","source":"target"}])",
      R"([{"name":"a","type":"string","source":"metric"})",
  };
  for (const char* json : cases) {
    CAPTURE(json);
    auto parsed = parse_fields_json(json);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == "decode");
  }
}

TEST_CASE(
    "series fields JSON has numbers for integers and strings for uuid/ip/string and JSON bools") {
  const Fields target = {
      {"name", std::string("a\"b\\c\td\n\x01é")},
      {"id", Uuid::parse("6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f").value()},
      {"ip", IpAddr::parse("::1").value()},
  };
  const Fields metric = {
      {"small", int8_t{-128}},
      {"big", uint64_t{18446744073709551615u}},
      {"low", int64_t{INT64_MIN}},
      {"up", true},
  };
  std::string json;
  append_series_fields_json(json, target, metric);
  CHECK(json == R"({"name":"a\"b\\c\td\n\u0001é","id":"6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f",)"
                R"("ip":"::1","small":-128,"big":18446744073709551615,"low":-9223372036854775808,)"
                R"("up":true})");
}

TEST_CASE("series fields JSON of a series without fields is an empty object") {
  std::string json;
  append_series_fields_json(json, {}, {});
  CHECK(json == "{}");
}

}  // namespace
}  // namespace tally::schema
