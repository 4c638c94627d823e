#include "prometheus_encode.h"

#include <optional>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "tally/common/prometheus_text.h"

namespace tally {
namespace {

using Kind = PrometheusSeries::Kind;

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

bool has_field(const Target& target, const Metric& metric, std::string_view name) {
  for (const Fields* fields : {&target.fields, &metric.fields}) {
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

// A string datum, written info-style: `family{labels,value="…"} 1`.
void append_string_line(std::string& out, std::string_view family, std::string_view labels,
                        std::string_view value) {
  std::string pair = "value=\"";
  prometheus::append_label_value(pair, value);
  pair += '"';
  append_line(out, family, {}, labels, pair, int64_t{1});
}

// The le="…" pairs of a histogram's buckets, kept from the previous histogram when its edges
// are the same, bit for bit: the histograms of one family nearly always share their edges, and
// formatting a float is the costly part of a bucket line.
class BucketLabels {
 public:
  template <class T>
  const std::vector<std::string>& of(const Histogram<T>& h) {
    scratch_.clear();
    // The edges' type is part of the key: the same bits read as another type print otherwise.
    scratch_.push_back(static_cast<char>(sizeof(T) * 4 + (std::is_floating_point_v<T> ? 2 : 0) +
                                         (std::is_signed_v<T> ? 1 : 0)));
    for (std::size_t i = 1; i < h.bins.size(); ++i) {
      const std::optional<T>& lower = h.bins[i].lower;
      scratch_.push_back(lower ? '1' : '0');
      if (lower) scratch_.append(reinterpret_cast<const char*>(&*lower), sizeof(T));
    }
    if (scratch_ != key_) {
      key_.swap(scratch_);
      text_.resize(h.bins.size());
      for (std::size_t i = 0; i < h.bins.size(); ++i) {
        std::string& le = text_[i];
        le = "le=\"";
        if (i + 1 < h.bins.size()) {
          append_number(le, *h.bins[i + 1].lower);
        } else {
          le += "+Inf";
        }
        le += '"';
      }
    }
    return text_;
  }

 private:
  std::string key_;  // the type and the edges text_ was made from
  std::string scratch_;
  std::vector<std::string> text_;
};

// A line from its prefix (what append_line writes before the value).
template <class T>
void append_value_line(std::string& out, std::string_view prefix, T value) {
  out += prefix;
  append_number(out, value);
  out += '\n';
}

// "name{labels} " (no braces without labels): what append_line writes before a value.
std::string line_prefix(std::string_view name, std::string_view suffix, std::string_view labels) {
  std::string prefix(name);
  prefix += suffix;
  if (!labels.empty()) {
    prefix += '{';
    prefix += labels;
    prefix += '}';
  }
  prefix += ' ';
  return prefix;
}

template <class T>
void append_histogram(std::string& out, const PrometheusSeries& series, const Histogram<T>& h,
                      BucketLabels& buckets) {
  const std::vector<std::string>& le = buckets.of(h);
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.bins.size(); ++i) {
    cumulative += h.bins[i].count;
    out += series.bucket_prefix;
    out += le[i];
    out += "} ";
    append_number(out, cumulative);
    out += '\n';
  }
  append_value_line(out, series.sum_prefix, h.sum_of_samples);
  append_value_line(out, series.count_prefix, cumulative);
}

void append_sample(std::string& out, std::string_view family, const PrometheusSeries& series,
                   const Datum& datum, BucketLabels& buckets) {
  const std::string& labels = series.labels;
  std::visit(
      [&](const auto& d) {
        using D = std::decay_t<decltype(d)>;
        if constexpr (std::is_arithmetic_v<D>) {
          append_value_line(out, series.value_prefix, d);
        } else if constexpr (std::is_same_v<D, std::string>) {
          if (series.has_value_field) {
            out += "# skipped " + series.timeseries_name + ": a field is already called 'value'\n";
            return;
          }
          append_string_line(out, family, labels, d);
        } else if constexpr (requires {
                               d.value;
                               d.start_time;
                             }) {
          append_value_line(out, series.value_prefix, d.value);
        } else if constexpr (requires { d.bins; }) {
          if (series.has_le_field) {
            out += "# skipped " + series.timeseries_name + ": a field is called 'le'\n";
            return;
          }
          append_histogram(out, series, d, buckets);
        }
      },
      datum);
}

// The label pairs of a sample of another producer, `a="x",b="y"`. The target's part is kept
// from the previous sample when its fields are the same, as they are for every sample of one
// producer: comparing is cheaper than formatting (a UUID, escaping).
class LabelText {
 public:
  const std::string& of(const Sample& s) {
    if (!target_fields_ || !(*target_fields_ == s.target().fields)) {
      target_text_.clear();
      append_labels(target_text_, s.target().fields, scratch_);
      target_fields_ = s.target().fields;
    }
    text_ = target_text_;
    append_labels(text_, s.metric().fields, scratch_);
    return text_;
  }

 private:
  std::optional<Fields> target_fields_;
  std::string target_text_;
  std::string text_;
  std::string scratch_;
};

// append_sample for a sample of another producer, formatting its labels as it goes.
void append_other_sample(std::string& out, std::string_view family, const Sample& s,
                         LabelText& label_text, BucketLabels& buckets) {
  const std::string& labels = label_text.of(s);
  std::visit(
      [&](const auto& d) {
        using D = std::decay_t<decltype(d)>;
        if constexpr (std::is_arithmetic_v<D>) {
          append_line(out, family, {}, labels, {}, d);
        } else if constexpr (std::is_same_v<D, std::string>) {
          if (has_field(s.target(), s.metric(), "value")) {
            out += "# skipped " + s.timeseries_name() + ": a field is already called 'value'\n";
            return;
          }
          append_string_line(out, family, labels, d);
        } else if constexpr (requires {
                               d.value;
                               d.start_time;
                             }) {
          append_line(out, family, {}, labels, {}, d.value);
        } else if constexpr (requires { d.bins; }) {
          if (has_field(s.target(), s.metric(), "le")) {
            out += "# skipped " + s.timeseries_name() + ": a field is called 'le'\n";
            return;
          }
          const std::vector<std::string>& le = buckets.of(d);
          uint64_t cumulative = 0;
          for (std::size_t i = 0; i < d.bins.size(); ++i) {
            cumulative += d.bins[i].count;
            append_line(out, family, "_bucket", labels, le[i], cumulative);
          }
          append_line(out, family, "_sum", labels, {}, d.sum_of_samples);
          append_line(out, family, "_count", labels, {}, cumulative);
        }
      },
      s.datum);
}

std::size_t lines_of(const Datum& datum) {
  return std::visit(
      [](const auto& d) -> std::size_t {
        if constexpr (requires { d.bins; }) {
          return d.bins.size() + 2;
        } else {
          return 1;
        }
      },
      datum);
}

void append_comment_line(std::string& out, std::string_view text) {
  out += "# ";
  for (const char c : text) out += (c == '\n' || c == '\r') ? ' ' : c;
  out += '\n';
}

}  // namespace

PrometheusSeries PrometheusSeriesMaker::make(const Target& target, const Metric& metric,
                                             const Datum& datum) {
  PrometheusSeries series;
  series.kind = kind_of(datum);
  if (series.kind == Kind::kNone) return series;
  series.family = target.name + "_" + metric.name;
  if (series.kind == Kind::kCounter && !series.family.ends_with("_total")) {
    series.family += "_total";
  }
  series.timeseries_name = target.name + ":" + metric.name;
  series.help = "Tally timeseries " + series.timeseries_name + " (" +
                std::string(to_string(datum_type(datum))) + ")";
  // The target's part is kept from the previous series when its fields are the same, as they
  // are for every series of one producer: comparing is cheaper than formatting (a UUID, escaping).
  if (!have_target_ || !(target_fields_ == target.fields)) {
    target_labels_.clear();
    append_labels(target_labels_, target.fields, scratch_);
    target_fields_ = target.fields;
    have_target_ = true;
  }
  series.labels = target_labels_;
  append_labels(series.labels, metric.fields, scratch_);
  switch (series.kind) {
    case Kind::kCounter:
    case Kind::kGauge:
      series.value_prefix = line_prefix(series.family, {}, series.labels);
      break;
    case Kind::kHistogram:
      series.bucket_prefix = series.family + "_bucket{" + series.labels;
      if (!series.labels.empty()) series.bucket_prefix += ',';
      series.sum_prefix = line_prefix(series.family, "_sum", series.labels);
      series.count_prefix = line_prefix(series.family, "_count", series.labels);
      break;
    default:
      break;
  }
  series.has_value_field = has_field(target, metric, "value");
  series.has_le_field = has_field(target, metric, "le");
  return series;
}

void PrometheusWriter::add_error(const ProducerError& error) {
  append_comment_line(comments_, "producer error: " + error.type + ": " + error.content);
}

void PrometheusWriter::add(const PrometheusSeries& series, const Datum& datum) {
  if (series.kind == Kind::kNone) return;
  auto it = by_name_.find(std::string_view(series.family));
  if (it == by_name_.end()) {
    it = by_name_.emplace(series.family, families_.size()).first;
    families_.push_back(Family{series.family, series.kind, series.help, {}});
  }
  Family& family = families_[it->second];
  if (family.kind != series.kind) {
    append_comment_line(comments_, "skipped " + series.timeseries_name + ": family " + family.name +
                                       " is already a " + std::string(type_name(family.kind)));
    return;
  }
  family.lines.push_back(Line{&series, &datum, nullptr});
  lines_ += lines_of(datum);
}

void PrometheusWriter::add(const Sample& s) {
  const Kind kind = kind_of(s.datum);
  if (kind == Kind::kNone) return;
  std::string name = s.target().name + "_" + s.metric().name;
  if (kind == Kind::kCounter && !name.ends_with("_total")) name += "_total";
  auto it = by_name_.find(std::string_view(name));
  if (it == by_name_.end()) {
    it = by_name_.emplace(name, families_.size()).first;
    families_.push_back(Family{std::move(name),
                               kind,
                               "Tally timeseries " + s.timeseries_name() + " (" +
                                   std::string(to_string(datum_type(s.datum))) + ")",
                               {}});
  }
  Family& family = families_[it->second];
  if (family.kind != kind) {
    append_comment_line(comments_, "skipped " + s.timeseries_name() + ": family " + family.name +
                                       " is already a " + std::string(type_name(family.kind)));
    return;
  }
  family.lines.push_back(Line{nullptr, &s.datum, &s});
  lines_ += lines_of(s.datum);
}

std::string PrometheusWriter::finish() {
  std::string out;
  // Room for the whole text up front: growing a multi-megabyte string by doubling copies it
  // over and over. Generous: pages never written are never touched, while a short guess copies
  // everything written so far (a line with a few labels and a UUID is 150 bytes).
  out.reserve(comments_.size() + lines_ * 192);
  out += comments_;
  BucketLabels buckets;
  LabelText label_text;
  for (const Family& family : families_) {
    prometheus::append_family(out, family.name, type_name(family.kind), family.help);
    for (const Line& line : family.lines) {
      if (line.series != nullptr) {
        append_sample(out, family.name, *line.series, *line.datum, buckets);
      } else {
        append_other_sample(out, family.name, *line.sample, label_text, buckets);
      }
    }
  }
  return out;
}

std::string encode_prometheus(std::span<const CollectItem> items) {
  PrometheusWriter writer;
  for (const CollectItem& item : items) {
    if (item.error) {
      writer.add_error(*item.error);
      continue;
    }
    for (const Sample& s : item.samples) writer.add(s);
  }
  return writer.finish();
}

}  // namespace tally
