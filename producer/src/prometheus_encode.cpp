#include "prometheus_encode.h"

#include <deque>
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

template <class T>
void append_histogram(std::string& out, std::string_view name, std::string_view labels,
                      const Histogram<T>& h, BucketLabels& buckets) {
  const std::vector<std::string>& le = buckets.of(h);
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.bins.size(); ++i) {
    cumulative += h.bins[i].count;
    append_line(out, name, "_bucket", labels, le[i], cumulative);
  }
  append_line(out, name, "_sum", labels, {}, h.sum_of_samples);
  append_line(out, name, "_count", labels, {}, cumulative);
}

void append_sample(std::string& out, std::string_view family, const PrometheusSeries& series,
                   const Datum& datum, BucketLabels& buckets) {
  const std::string& labels = series.labels;
  std::visit(
      [&](const auto& d) {
        using D = std::decay_t<decltype(d)>;
        if constexpr (std::is_arithmetic_v<D>) {
          append_line(out, family, {}, labels, {}, d);
        } else if constexpr (std::is_same_v<D, std::string>) {
          if (series.has_value_field) {
            out += "# skipped " + series.timeseries_name + ": a field is already called 'value'\n";
            return;
          }
          std::string value = "value=\"";
          prometheus::append_label_value(value, d);
          value += '"';
          append_line(out, family, {}, labels, value, int64_t{1});
        } else if constexpr (requires {
                               d.value;
                               d.start_time;
                             }) {
          append_line(out, family, {}, labels, {}, d.value);
        } else if constexpr (requires { d.bins; }) {
          if (series.has_le_field) {
            out += "# skipped " + series.timeseries_name + ": a field is called 'le'\n";
            return;
          }
          append_histogram(out, family, labels, d, buckets);
        }
      },
      datum);
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
  series.has_value_field = has_field(target, metric, "value");
  series.has_le_field = has_field(target, metric, "le");
  return series;
}

void PrometheusWriter::add_error(const ProducerError& error) {
  append_comment_line(comments_, "producer error: " + error.type + ": " + error.content);
}

void PrometheusWriter::add(const PrometheusSeries& series, const Datum& datum) {
  if (series.kind == Kind::kNone) return;
  const auto [it, fresh] = by_name_.try_emplace(series.family, families_.size());
  if (fresh) families_.push_back(Family{&series, {}});
  Family& family = families_[it->second];
  if (family.first->kind != series.kind) {
    append_comment_line(comments_, "skipped " + series.timeseries_name + ": family " +
                                       family.first->family + " is already a " +
                                       std::string(type_name(family.first->kind)));
    return;
  }
  family.samples.emplace_back(&series, &datum);
  lines_ += lines_of(datum);
}

std::string PrometheusWriter::finish() {
  std::string out;
  // Room for the whole text up front: growing a multi-megabyte string by doubling copies it
  // over and over. Generous: pages never written are never touched, while a short guess copies
  // everything written so far (a line with a few labels and a UUID is 150 bytes).
  out.reserve(comments_.size() + lines_ * 192);
  out += comments_;
  BucketLabels buckets;
  for (const Family& family : families_) {
    const PrometheusSeries& first = *family.first;
    prometheus::append_family(out, first.family, type_name(first.kind), first.help);
    for (const auto& [series, datum] : family.samples) {
      append_sample(out, first.family, *series, *datum, buckets);
    }
  }
  return out;
}

std::string encode_prometheus(std::span<const CollectItem> items) {
  // The series of these samples are made here, once per sample; a deque keeps them in place.
  std::deque<PrometheusSeries> series;
  PrometheusSeriesMaker maker;
  PrometheusWriter writer;
  for (const CollectItem& item : items) {
    if (item.error) {
      writer.add_error(*item.error);
      continue;
    }
    for (const Sample& s : item.samples) {
      writer.add(series.emplace_back(maker.make(s.target, s.metric, s.datum)), s.datum);
    }
  }
  return writer.finish();
}

}  // namespace tally
