#include "tally/common/prometheus_text.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

namespace tally::prometheus {
namespace {

std::string value_text(double v) {
  std::string out;
  append_value(out, v);
  return out;
}

TEST_CASE("float values: shortest exact form and the special values") {
  CHECK(value_text(0.1) == "0.1");
  CHECK(value_text(3) == "3");
  CHECK(value_text(-2.5) == "-2.5");
  CHECK(value_text(1e21) == "1e+21");
  CHECK(value_text(std::nan("")) == "NaN");
  CHECK(value_text(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(value_text(-std::numeric_limits<double>::infinity()) == "-Inf");
}

TEST_CASE("integer values stay exact beyond 2^53") {
  std::string out;
  append_value(out, uint64_t{18446744073709551615u});
  CHECK(out == "18446744073709551615");
  out.clear();
  append_value(out, int64_t{-9007199254740993});
  CHECK(out == "-9007199254740993");
}

TEST_CASE("samples: labels escaped, no braces without labels") {
  std::string out;
  const Label labels[] = {{"path", R"(C:\dir "x")"}, {"note", "two\nlines"}};
  append_sample(out, "files_total", labels, uint64_t{7});
  append_sample(out, "up", {}, 1.0);
  CHECK(out ==
        "files_total{path=\"C:\\\\dir \\\"x\\\"\",note=\"two\\nlines\"} 7\n"
        "up 1\n");
}

TEST_CASE("family header: HELP escaped, left out when empty") {
  std::string out;
  append_family(out, "a", "counter", "back\\slash\nnewline \"quotes\" stay");
  append_family(out, "b", "gauge", "");
  CHECK(out ==
        "# HELP a back\\\\slash\\nnewline \"quotes\" stay\n"
        "# TYPE a counter\n"
        "# TYPE b gauge\n");
}

}  // namespace
}  // namespace tally::prometheus
