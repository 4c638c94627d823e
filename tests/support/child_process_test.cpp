// The sanitizer-report check of ChildProcess: what a report of each sanitizer looks like (the
// first lines of real ones, from GCC 12's runtimes), and that ordinary logs are not reports.
#include "support/child_process.h"

#include <doctest/doctest.h>

#include <string>

namespace tally::test {

TEST_CASE("sanitizer_report finds the report of every sanitizer") {
  const std::string log = "2026-11-22T10:00:00Z info collector_started port=41234\n";
  struct Case {
    const char* name;
    std::string separator;  // printed before the report, not part of it
    std::string report;
  };
  const Case cases[] = {
      {"asan", "=================================================================\n",
       "==14979==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010\n"
       "    #0 0x55cb73268369 in main /tmp/u.cpp:6\n"},
      {"lsan", "=================================================================\n",
       "==14979==ERROR: LeakSanitizer: detected memory leaks\n"
       "SUMMARY: AddressSanitizer: 12 byte(s) leaked in 1 allocation(s).\n"},
      {"ubsan", "",
       "u.cpp:6:39: runtime error: signed integer overflow: 2147483647 + 1 cannot be represented "
       "in type 'int'\n    #0 0x55cb73268369 in main /tmp/u.cpp:6\n"},
      {"tsan", "==================\n",
       "WARNING: ThreadSanitizer: data race (pid=15037)\n"
       "  Write of size 4 at 0x55f6bc472094 by main thread:\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(sanitizer_report(log + c.separator + c.report) == c.report);
  }
}

TEST_CASE("sanitizer_report finds nothing in an ordinary log") {
  CHECK(sanitizer_report("").empty());
  CHECK(sanitizer_report("2026-11-22T10:00:00Z warn scrape_failed reason=timeout\n"
                         "2026-11-22T10:00:01Z error insert_failed error=\"server closed\"\n")
            .empty());
}

}  // namespace tally::test
