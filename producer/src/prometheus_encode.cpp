#include "prometheus_encode.h"

#include <optional>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "tally/common/prometheus_text.h"

namespace tally {
namespace {

enum class Kind { kCounter, kGauge, kHistogram, kInfo, kNone };

Kind kind_of(const Datum& datum) {
  if (is_missing(datum)) return Kind::kNone;
  const DatumType type = datum_type(datum);
  if (is_cumulative(type)) return Kind::kCounter;
  if (is_histogram(type)) return Kind::kHistogram;
  if (type == DatumType::kString) return Kind::kInfo;
  if (type == DatumType::kBytes) return Kind::kNone;
  return Kind::kGauge;
}

std::string_view type_name(Kind kind) {
  switch (kind) {
    case Kind::kCounter:
      return "counter";
    case Kind::kHistogram:
      return "histogram";
    default:
      return "gauge";
  }
}

std::string family_name(const Sample& s, Kind kind) {
  std::string name = s.target.name + "_" + s.metric.name;
  if (kind == Kind::kCounter && !name.ends_with("_total")) name += "_total";
  return name;
}

struct Family {
  std::string name;
  Kind kind;
  std::string help;
  std::vector<const Sample*> samples;
};

void append_labels(std::string& text, const Fields& fields, std::string& scratch) {
  for (const Field& f : fields) {
    if (!text.empty()) text += ',';
    text += f.name;
    text += "=\"";
    scratch.clear();
    append_field_value(scratch, f.value);
    prometheus::append_label_value(text, scratch);
    text += '"';
  }
}

// The label pairs of one sample, `a="x",b="y"`, written once and reused by all its lines. The
// target's part is kept from the previous sample when its fields are the same, as they are for
// every sample of one producer: comparing is cheaper than formatting (a UUID, escaping).
class LabelText {
 public:
  const std::string& of(const Sample& s) {
    if (!target_fields_ || !(*target_fields_ == s.target.fields)) {
      target_text_.clear();
      append_labels(target_text_, s.target.fields, scratch_);
      target_fields_ = s.target.fields;
    }
    text_ = target_text_;
    append_labels(text_, s.metric.fields, scratch_);
    return text_;
  }

 private:
  std::optional<Fields> target_fields_;
  std::string target_text_;
  std::string text_;
  std::string scratch_;
};

bool has_field(const Sample& s, std::string_view name) {
  for (const Fields* fields : {&s.target.fields, &s.metric.fields}) {
    for (const Field& f : *fields) {
      if (f.name == name) return true;
    }
  }
  return false;
}

// Formats a Tally number as Prometheus text would have it; integers stay exact.
template <class T>
void append_number(std::string& out, T v) {
  if constexpr (std::is_same_v<T, bool>) {
    prometheus::append_value(out, int64_t{v ? 1 : 0});
  } else if constexpr (std::is_floating_point_v<T>) {
    prometheus::append_value(out, static_cast<double>(v));
  } else if constexpr (std::is_signed_v<T>) {
    prometheus::append_value(out, static_cast<int64_t>(v));
  } else {
    prometheus::append_value(out, static_cast<uint64_t>(v));
  }
}

// name{labels,extra} value — `extra` is a further, already escaped label pair or empty.
template <class T>
void append_line(std::string& out, std::string_view name, std::string_view suffix,
                 std::string_view labels, std::string_view extra, T value) {
  out += name;
  out += suffix;
  if (!labels.empty() || !extra.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !extra.empty()) out += ',';
    out += extra;
    out += '}';
  }
  out += ' ';
  append_number(out, value);
  out += '\n';
}

template <class T>
void append_histogram(std::string& out, std::string_view name, std::string_view labels,
                      const Histogram<T>& h) {
  std::string le;
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.bins.size(); ++i) {
    cumulative += h.bins[i].count;
    le = "le=\"";
    if (i + 1 < h.bins.size()) {
      append_number(le, *h.bins[i + 1].lower);
    } else {
      le += "+Inf";
    }
    le += '"';
    append_line(out, name, "_bucket", labels, le, cumulative);
  }
  append_line(out, name, "_sum", labels, {}, h.sum_of_samples);
  append_line(out, name, "_count", labels, {}, cumulative);
}

void append_sample(std::string& out, const Family& family, const Sample& s, LabelText& label_text) {
  const std::string& labels = label_text.of(s);
  std::visit(
      [&](const auto& d) {
        using D = std::decay_t<decltype(d)>;
        if constexpr (std::is_arithmetic_v<D>) {
          append_line(out, family.name, {}, labels, {}, d);
        } else if constexpr (std::is_same_v<D, std::string>) {
          if (has_field(s, "value")) {
            out += "# skipped " + s.timeseries_name() + ": a field is already called 'value'\n";
            return;
          }
          std::string value = "value=\"";
          prometheus::append_label_value(value, d);
          value += '"';
          append_line(out, family.name, {}, labels, value, int64_t{1});
        } else if constexpr (requires {
                               d.value;
                               d.start_time;
                             }) {
          append_line(out, family.name, {}, labels, {}, d.value);
        } else if constexpr (requires { d.bins; }) {
          if (has_field(s, "le")) {
            out += "# skipped " + s.timeseries_name() + ": a field is called 'le'\n";
            return;
          }
          append_histogram(out, family.name, labels, d);
        }
      },
      s.datum);
}

// Room for the whole text up front: growing a multi-megabyte string by doubling copies it
// over and over.
std::size_t estimated_size(std::span<const CollectItem> items) {
  std::size_t lines = 0;
  for (const CollectItem& item : items) {
    for (const Sample& s : item.samples) {
      std::visit(
          [&](const auto& d) {
            if constexpr (requires { d.bins; }) {
              lines += d.bins.size() + 2;
            } else {
              lines += 1;
            }
          },
          s.datum);
    }
  }
  // Generous: pages never written are never touched, while a short guess copies everything
  // written so far (a line with a few labels and a UUID is 150 bytes).
  return lines * 192;
}

void append_comment_line(std::string& out, std::string_view text) {
  out += "# ";
  for (const char c : text) out += (c == '\n' || c == '\r') ? ' ' : c;
  out += '\n';
}

}  // namespace

std::string encode_prometheus(std::span<const CollectItem> items) {
  // The text format wants each family's samples together under one TYPE line, while a
  // registry lists samples producer by producer: group first, keeping first-seen order.
  std::vector<Family> families;
  std::unordered_map<std::string, std::size_t> by_name;
  std::string out;
  out.reserve(estimated_size(items));
  for (const CollectItem& item : items) {
    if (item.error) {
      append_comment_line(out, "producer error: " + item.error->type + ": " + item.error->content);
      continue;
    }
    for (const Sample& s : item.samples) {
      const Kind kind = kind_of(s.datum);
      if (kind == Kind::kNone) continue;
      std::string name = family_name(s, kind);
      const auto [it, fresh] = by_name.try_emplace(name, families.size());
      if (fresh) {
        families.push_back(Family{std::move(name),
                                  kind,
                                  "Tally timeseries " + s.timeseries_name() + " (" +
                                      std::string(to_string(datum_type(s.datum))) + ")",
                                  {}});
      }
      Family& family = families[it->second];
      if (family.kind != kind) {
        append_comment_line(out, "skipped " + s.timeseries_name() + ": family " + family.name +
                                     " is already a " + std::string(type_name(family.kind)));
        continue;
      }
      family.samples.push_back(&s);
    }
  }
  LabelText label_text;
  for (const Family& family : families) {
    prometheus::append_family(out, family.name, type_name(family.kind), family.help);
    for (const Sample* s : family.samples) append_sample(out, family, *s, label_text);
  }
  return out;
}

}  // namespace tally
