// Shared by the libFuzzer harnesses of tests/fuzz (tools/fuzz builds and runs them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tally::fuzz {

// The fuzzer's bytes as text.
inline std::string_view as_text(const uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Aborts with `what` on stderr when an invariant does not hold: libFuzzer then keeps the input
// as a crash, like a sanitizer report.
void check(bool holds, std::string_view what, std::string_view detail = {});

}  // namespace tally::fuzz
