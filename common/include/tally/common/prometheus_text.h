// Writing the Prometheus text exposition format 0.0.4, for every daemon's GET /metrics.
//
//   std::string out;
//   prometheus::append_family(out, "tally_collections", "counter", "Collections served.");
//   prometheus::Label labels[] = {{"format", "oximeter"}};
//   prometheus::append_sample(out, "tally_collections_total", labels, uint64_t{12});
//
// The writer does not check names: callers pass valid metric names ([a-zA-Z_:][a-zA-Z0-9_:]*)
// and label names ([a-zA-Z_][a-zA-Z0-9_]*), and keep each family's samples together.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tally::prometheus {

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

struct Label {
  std::string_view name;
  std::string_view value;
};

// "# HELP name help" (left out when `help` is empty) and "# TYPE name type", each with '\n'.
// `type` is counter, gauge, histogram, summary or untyped.
void append_family(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help);

// name{a="x",b="y"} value\n — label values escaped, no braces without labels.
void append_sample(std::string& out, std::string_view name, std::span<const Label> labels,
                   double value);
void append_sample(std::string& out, std::string_view name, std::span<const Label> labels,
                   int64_t value);
void append_sample(std::string& out, std::string_view name, std::span<const Label> labels,
                   uint64_t value);

// Floats in the shortest form that reads back exactly; NaN, +Inf and -Inf as Prometheus spells
// them. Integers exactly (a uint64 count above 2^53 loses nothing).
void append_value(std::string& out, double value);
void append_value(std::string& out, int64_t value);
void append_value(std::string& out, uint64_t value);

// Escapes a label value: backslash, double quote and newline.
void append_label_value(std::string& out, std::string_view value);
// Escapes HELP text: backslash and newline.
void append_help_text(std::string& out, std::string_view text);

}  // namespace tally::prometheus
