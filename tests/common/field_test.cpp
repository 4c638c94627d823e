#include "tally/common/field.h"

#include <doctest/doctest.h>

#include <limits>
#include <set>
#include <string>

namespace tally {
namespace {

TEST_CASE("Uuid: parse and format, either case in, lowercase out") {
  Result<Uuid> u = Uuid::parse("6F1F3C1E-0c0e-4C5A-9f0E-3A2B1C0D9E8F");
  REQUIRE(u.ok());
  CHECK(u->bytes[0] == 0x6f);
  CHECK(u->bytes[15] == 0x8f);
  CHECK(u->to_string() == "6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f");
  CHECK(Uuid::parse(u->to_string())->bytes == u->bytes);
  CHECK(Uuid{}.to_string() == "00000000-0000-0000-0000-000000000000");
  std::string out = "id=";
  u->append_to(out);
  CHECK(out == "id=6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f");
}

TEST_CASE("Uuid: malformed text is rejected") {
  for (std::string_view text : {
           "",
           "zz",
           "6f1f3c1e0c0e4c5a9f0e3a2b1c0d9e8f",       // no hyphens
           "6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8",    // one digit short
           "6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f0",  // one digit long
           "6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8g",   // not hex
           "6f1f3c1e-0c0e-4c5a-9f0e_3a2b1c0d9e8f",   // wrong separator
           "{6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8}",  // braces
           // A fifth hyphen shifts the digit pairs: it must fail, not read past the end.
           "6f1f3c1e-0c0e-4c5a-9f0e--a2b1c0d9e8f",
           "-f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f",
       }) {
    CAPTURE(text);
    Result<Uuid> u = Uuid::parse(text);
    REQUIRE_FALSE(u.ok());
    CHECK(u.error() == "'" + std::string(text) + "' is not a hyphenated UUID");
  }
}

TEST_CASE("Uuid::parse never reads past the text it is given") {
  // The text is a prefix of a longer buffer whose next byte is a hex digit: a parser that
  // overreads would accept the stray-hyphen form.
  const std::string buffer = "6f1f3c1e-0c0e-4c5a-9f0e--a2b1c0d9e8fa";
  CHECK_FALSE(Uuid::parse(std::string_view(buffer).substr(0, 36)).ok());
}

TEST_CASE("Uuid::random is version 4, variant 1, and varies") {
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) {
    const Uuid u = Uuid::random();
    CHECK((u.bytes[6] >> 4) == 4);
    CHECK((u.bytes[8] & 0xc0) == 0x80);
    seen.insert(u.to_string());
  }
  CHECK(seen.size() == 64);
}

TEST_CASE("IpAddr: parse and canonical text") {
  struct Case {
    std::string_view in;
    std::string_view out;
    bool v6;
  };
  const Case cases[] = {
      {"127.0.0.1", "127.0.0.1", false},
      {"0.0.0.0", "0.0.0.0", false},
      {"255.255.255.255", "255.255.255.255", false},
      {"::", "::", true},
      {"::1", "::1", true},
      // RFC 5952: lowercase, leading zeros dropped, the longest zero run compressed.
      {"2001:DB8:0:0:0:0:0:1", "2001:db8::1", true},
      {"2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1", true},
      {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", true},
      {"fe80::0001", "fe80::1", true},
      {"::ffff:192.0.2.1", "::ffff:192.0.2.1", true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.in);
    Result<IpAddr> a = IpAddr::parse(c.in);
    REQUIRE(a.ok());
    CHECK(a->v6 == c.v6);
    CHECK(a->to_string() == c.out);
    CHECK(*IpAddr::parse(a->to_string()) == *a);
  }
  CHECK(IpAddr::parse("10.1.2.3")->bytes[3] == 3);
  CHECK(*IpAddr::parse("::") != *IpAddr::parse("0.0.0.0"));  // the family is part of the value
}

TEST_CASE("IpAddr: malformed text is rejected") {
  for (std::string_view text :
       {"", "1.2.3", "1.2.3.256", "1.2.3.4.5", "01.2.3.4x", " 1.2.3.4", "1.2.3.4/24",
        "2001:db8:::1", "2001:db8::g", "localhost", "1:2:3:4:5:6:7:8:9"}) {
    CAPTURE(text);
    Result<IpAddr> a = IpAddr::parse(text);
    REQUIRE_FALSE(a.ok());
    CHECK(a.error() == "'" + std::string(text) + "' is not an IPv4 or IPv6 address");
  }
  // An embedded NUL must not hide the junk after it from inet_pton.
  const std::string with_nul("1.2.3.4\0junk", 12);
  CHECK_FALSE(IpAddr::parse(with_nul).ok());
}

TEST_CASE("field types: names and the variant order") {
  const std::string_view names[] = {"string", "i8",  "u8",  "i16",     "u16",  "i32",
                                    "u32",    "i64", "u64", "ip_addr", "uuid", "bool"};
  for (int i = 0; i < kFieldTypeCount; ++i) {
    const auto t = static_cast<FieldType>(i);
    CHECK(to_string(t) == names[i]);
    CHECK(parse_field_type(names[i]) == t);
  }
  CHECK_FALSE(parse_field_type("u128"));
  CHECK_FALSE(parse_field_type("String"));
  CHECK_FALSE(parse_field_type(""));
  CHECK(field_type(FieldValue(std::string("x"))) == FieldType::kString);
  CHECK(field_type(FieldValue(uint16_t{1})) == FieldType::kU16);
  CHECK(field_type(FieldValue(IpAddr{})) == FieldType::kIpAddr);
  CHECK(field_type(FieldValue(Uuid{})) == FieldType::kUuid);
  CHECK(field_type(FieldValue(false)) == FieldType::kBool);
}

TEST_CASE("format_field_value and parse_field_value are inverses") {
  struct Case {
    FieldValue value;
    std::string_view text;
  };
  const Case cases[] = {
      {std::string("raw text, | = : kept"), "raw text, | = : kept"},
      {std::string(""), ""},
      {std::numeric_limits<int8_t>::min(), "-128"},
      {std::numeric_limits<uint8_t>::max(), "255"},
      {std::numeric_limits<int16_t>::min(), "-32768"},
      {std::numeric_limits<uint16_t>::max(), "65535"},
      {std::numeric_limits<int32_t>::min(), "-2147483648"},
      {std::numeric_limits<uint32_t>::max(), "4294967295"},
      {std::numeric_limits<int64_t>::min(), "-9223372036854775808"},
      {std::numeric_limits<uint64_t>::max(), "18446744073709551615"},
      {*IpAddr::parse("2001:DB8::1"), "2001:db8::1"},
      {*IpAddr::parse("10.0.0.1"), "10.0.0.1"},
      {*Uuid::parse("ABCDEF01-2345-6789-ABCD-EF0123456789"),
       "abcdef01-2345-6789-abcd-ef0123456789"},
      {true, "true"},
      {false, "false"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    CHECK(format_field_value(c.value) == c.text);
    Result<FieldValue> back = parse_field_value(field_type(c.value), c.text);
    REQUIRE_MESSAGE(back.ok(), back.error());
    CHECK(*back == c.value);
  }
  std::string out = "x=";
  append_field_value(out, FieldValue(int8_t{-1}));
  CHECK(out == "x=-1");
}

TEST_CASE("parse_field_value rejects text that is not of the type") {
  struct Case {
    FieldType type;
    std::string_view text;
    std::string_view error;
  };
  const Case cases[] = {
      {FieldType::kU8, "256", "'256' is not a valid u8"},
      {FieldType::kI8, "-129", "'-129' is not a valid i8"},
      {FieldType::kU64, "-1", "'-1' is not a valid u64"},
      {FieldType::kI64, "9223372036854775808", "'9223372036854775808' is not a valid i64"},
      {FieldType::kU16, "12x", "'12x' is not a valid u16"},
      {FieldType::kU16, "", "'' is not a valid u16"},
      {FieldType::kI32, "+1", "'+1' is not a valid i32"},
      {FieldType::kBool, "True", "'True' is not a bool (true or false)"},
      {FieldType::kUuid, "x", "'x' is not a hyphenated UUID"},
      {FieldType::kIpAddr, "x", "'x' is not an IPv4 or IPv6 address"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    Result<FieldValue> v = parse_field_value(c.type, c.text);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error() == c.error);
  }
}

}  // namespace
}  // namespace tally
