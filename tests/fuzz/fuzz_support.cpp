#include "fuzz_support.h"

#include <cstdio>
#include <cstdlib>

// UBSan only prints by default; a fuzzer must stop on the first report so that the input is kept.
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

namespace tally::fuzz {

void check(bool holds, std::string_view what, std::string_view detail) {
  if (holds) return;
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n%.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(detail.size()), detail.data());
  std::abort();
}

}  // namespace tally::fuzz
