#include "tally/common/timeseries_key.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <random>
#include <utility>
#include <vector>

namespace tally {
namespace {

// Appends the canonical text of DESIGN.md §2 to `text`. The collector hashes every sample's
// series, so this allocates nothing once `text` has grown: the fields are sorted as pointers in
// a stack array (series have a handful of fields; insertion sort beats std::sort there).
void append_canonical(std::string& text, std::string_view target_name, std::string_view metric_name,
                      uint32_t version, const Fields& target_fields, const Fields& metric_fields) {
  constexpr std::size_t kInline = 32;
  const std::size_t n = target_fields.size() + metric_fields.size();
  std::array<const Field*, kInline> inline_fields;
  std::vector<const Field*> heap_fields;
  const Field** fields = inline_fields.data();
  if (n > kInline) {
    heap_fields.resize(n);
    fields = heap_fields.data();
  }
  std::size_t k = 0;
  for (const Field& f : target_fields) fields[k++] = &f;
  for (const Field& f : metric_fields) fields[k++] = &f;
  for (std::size_t i = 1; i < n; ++i) {
    const Field* f = fields[i];
    std::size_t j = i;
    for (; j > 0 && f->name < fields[j - 1]->name; --j) fields[j] = fields[j - 1];
    fields[j] = f;
  }

  text += target_name;
  if (!metric_name.empty()) {
    text += ':';
    text += metric_name;
  }
  text += '@';
  char buf[16];
  text.append(buf, std::to_chars(buf, buf + sizeof buf, version).ptr);
  for (std::size_t i = 0; i < n; ++i) {
    const Field* f = fields[i];
    text += '|';
    text += f->name;
    text += '=';
    text += to_string(field_type(f->value));
    text += ':';
    append_field_value(text, f->value);
  }
}

int64_t hash_canonical(std::string_view target_name, std::string_view metric_name, uint32_t version,
                       const Fields& target_fields, const Fields& metric_fields) {
  thread_local std::string text;
  text.clear();
  append_canonical(text, target_name, metric_name, version, target_fields, metric_fields);
  return static_cast<int64_t>(XXH64(text.data(), text.size(), 0));
}

}  // namespace

std::string canonical_series_text(std::string_view timeseries_name, uint32_t version,
                                  const Fields& target_fields, const Fields& metric_fields) {
  std::string text;
  append_canonical(text, timeseries_name, {}, version, target_fields, metric_fields);
  return text;
}

int64_t timeseries_key(std::string_view timeseries_name, uint32_t version,
                       const Fields& target_fields, const Fields& metric_fields) {
  return hash_canonical(timeseries_name, {}, version, target_fields, metric_fields);
}

int64_t timeseries_key(const Target& target, const Metric& metric, uint32_t version) {
  return hash_canonical(target.name, metric.name, version, target.fields, metric.fields);
}

namespace {

// Slots are picked by multiplying with a random odd number and taking the top bits: keys from a
// producer crafted to share their low bits still spread, and no run of the same process is
// predictable from outside.
uint64_t slot_multiplier() {
  static const uint64_t m = [] {
    std::random_device rd;
    return ((uint64_t{rd()} << 32) ^ rd()) | 1;
  }();
  return m;
}

std::size_t slot_of(uint64_t key, int shift) {
  return static_cast<std::size_t>((key * slot_multiplier()) >> shift);
}

}  // namespace

bool TimeseriesKeySet::contains(int64_t key) const {
  if (key == 0) return has_zero_;
  if (slots_.empty()) return false;
  const auto k = static_cast<uint64_t>(key);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = slot_of(k, shift_);; i = (i + 1) & mask) {
    if (slots_[i] == k) return true;
    if (slots_[i] == 0) return false;
  }
}

void TimeseriesKeySet::prefetch(int64_t key) const {
  if (slots_.empty()) return;
  __builtin_prefetch(&slots_[slot_of(static_cast<uint64_t>(key), shift_)]);
}

bool TimeseriesKeySet::insert(int64_t key) {
  if (key == 0) return !std::exchange(has_zero_, true);
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const auto k = static_cast<uint64_t>(key);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = slot_of(k, shift_);; i = (i + 1) & mask) {
    if (slots_[i] == k) return false;
    if (slots_[i] == 0) {
      slots_[i] = k;
      ++size_;
      return true;
    }
  }
}

void TimeseriesKeySet::grow() {
  std::vector<uint64_t> old = std::move(slots_);
  const std::size_t n = std::max<std::size_t>(64, old.size() * 2);
  slots_.assign(n, 0);
  shift_ = 64 - std::countr_zero(n);
  const std::size_t mask = n - 1;
  for (uint64_t k : old) {
    if (k == 0) continue;
    std::size_t i = slot_of(k, shift_);
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = k;
  }
}

void TimeseriesKeySet::clear() {
  slots_.clear();
  slots_.shrink_to_fit();
  size_ = 0;
  has_zero_ = false;
}

}  // namespace tally
