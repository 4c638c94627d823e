// Reading the files under tests/fixtures/ (TALLY_FIXTURES_DIR).
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace tally::test {

// The whole content of tests/fixtures/<relative_path>; a missing file fails the test case.
inline std::string read_fixture(const std::string& relative_path) {
  std::ifstream in(std::string(TALLY_FIXTURES_DIR) + "/" + relative_path, std::ios::binary);
  REQUIRE_MESSAGE(in, "missing fixture " << relative_path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace tally::test
