#include "tally/config/units.h"

#include <doctest/doctest.h>

using tally::config::format_size;
using tally::config::parse_size;

TEST_CASE("sizes parse with binary units") {
  CHECK(*parse_size("512B") == 512);
  CHECK(*parse_size("64KiB") == 64 * 1024);
  CHECK(*parse_size("16MiB") == 16ull << 20);
  CHECK(*parse_size("1GiB") == 1ull << 30);
  CHECK(*parse_size("0") == 0);
}

TEST_CASE("bad sizes are errors that show the input") {
  for (const char* bad : {"", "MiB", "16MB", "1.5GiB", "-1KiB", "99999999999999999999TiB"}) {
    CAPTURE(bad);
    auto r = parse_size(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().find(std::string("'") + bad + "'") != std::string::npos);
  }
}

TEST_CASE("sizes format with the largest exact unit") {
  CHECK(format_size(1ull << 30) == "1GiB");
  CHECK(format_size(64 * 1024) == "64KiB");
  CHECK(format_size(1000) == "1000B");
}
