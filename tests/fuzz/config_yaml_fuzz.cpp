// The YAML config loaders of tally-collector and tally-registry (DESIGN.md §7) on arbitrary
// text: no crash, UB, leak or exception escaping; a refused config names the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "tally/config/collector_config.h"
#include "tally/config/registry_config.h"

namespace {

constexpr std::string_view kFile = "fuzz.yaml";

// `token_file` makes the loaders read the file it names. The fuzzer must not make them read
// /dev/zero, a terminal or /proc/self/fd/0 (unbounded or blocking), so texts that could spell
// such a path, escapes included, are left out.
bool could_name_a_device(std::string_view text) {
  for (std::string_view word : {"dev/", "proc/", "\\"}) {
    if (text.find(word) != std::string_view::npos) return true;
  }
  return false;
}

template <class Config>
void check_refusal(const tally::Result<Config>& r, std::string_view loader) {
  if (r.ok()) return;
  tally::fuzz::check(r.error().starts_with(kFile), loader, r.error());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(tally::fuzz::as_text(data, size));
  if (could_name_a_device(text)) return 0;
  check_refusal(tally::config::parse_collector_config(text, std::string(kFile)),
                "a refused collector config names the file");
  check_refusal(tally::config::parse_registry_config(text, std::string(kFile)),
                "a refused registry config names the file");
  return 0;
}
