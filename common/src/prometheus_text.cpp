#include "tally/common/prometheus_text.h"

#include <charconv>
#include <cmath>

namespace tally::prometheus {
namespace {

void append_labels(std::string& out, std::span<const Label> labels) {
  if (labels.empty()) return;
  out += '{';
  bool first = true;
  for (const Label& label : labels) {
    if (!first) out += ',';
    first = false;
    out += label.name;
    out += "=\"";
    append_label_value(out, label.value);
    out += '"';
  }
  out += '}';
}

template <class T>
void append_sample_impl(std::string& out, std::string_view name, std::span<const Label> labels,
                        T value) {
  out += name;
  append_labels(out, labels);
  out += ' ';
  append_value(out, value);
  out += '\n';
}

template <class T>
void append_number(std::string& out, T value) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, end);
}

}  // namespace

void append_family(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  if (!help.empty()) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_help_text(out, help);
    out += '\n';
  }
  out += "# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void append_sample(std::string& out, std::string_view name, std::span<const Label> labels,
                   double value) {
  append_sample_impl(out, name, labels, value);
}
void append_sample(std::string& out, std::string_view name, std::span<const Label> labels,
                   int64_t value) {
  append_sample_impl(out, name, labels, value);
}
void append_sample(std::string& out, std::string_view name, std::span<const Label> labels,
                   uint64_t value) {
  append_sample_impl(out, name, labels, value);
}

void append_value(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    append_number(out, value);  // shortest round-trip form: "0.1", "1e+21", "3"
  }
}

void append_value(std::string& out, int64_t value) { append_number(out, value); }
void append_value(std::string& out, uint64_t value) { append_number(out, value); }

void append_label_value(std::string& out, std::string_view value) {
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void append_help_text(std::string& out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

}  // namespace tally::prometheus
