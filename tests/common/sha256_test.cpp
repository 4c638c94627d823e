#include "tally/common/sha256.h"

#include <doctest/doctest.h>

#include <string>

// Vectors from FIPS 180-4 examples and `printf %s … | sha256sum`.
TEST_CASE("sha256 matches known digests") {
  struct Case {
    std::string input;
    const char* hex;
  };
  const Case cases[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {std::string(1000, 'a'), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.input.size());
    CHECK(tally::to_hex(tally::sha256(c.input)) == c.hex);
  }
}

TEST_CASE("sha256 hex parses and compares") {
  tally::Sha256Digest d{};
  REQUIRE(tally::parse_sha256_hex(
      "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", d));
  CHECK(tally::constant_time_equal(d, tally::sha256("abc")));
  CHECK_FALSE(tally::constant_time_equal(d, tally::sha256("abd")));
  CHECK_FALSE(tally::parse_sha256_hex("abc", d));
  CHECK_FALSE(tally::parse_sha256_hex(std::string(64, 'g'), d));
}
