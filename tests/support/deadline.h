// How long tests wait for things that take real time (a daemon to start, a row to arrive).
#pragma once

#include <chrono>
#include <cstdlib>
#include <string>

namespace tally::test {

// `timeout` times TALLY_TEST_TIME_SCALE (default 1). tools/test --sanitize and --tsan set it,
// because sanitized binaries run several times slower: a test that waits for a condition gets
// a longer deadline there instead of failing or being skipped. A passing wait ends as soon as
// its condition holds, so the scale only lengthens the waits that fail.
inline std::chrono::milliseconds test_deadline(std::chrono::milliseconds timeout) {
  static const long scale = [] {
    const char* text = std::getenv("TALLY_TEST_TIME_SCALE");
    const long value = text != nullptr ? std::strtol(text, nullptr, 10) : 1;
    return value >= 1 ? value : 1;
  }();
  return timeout * scale;
}

}  // namespace tally::test
