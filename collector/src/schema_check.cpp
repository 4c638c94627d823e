#include "tally/collector/schema_check.h"

#include <algorithm>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "tally/collector/copy_writer.h"
#include "tally/common/log.h"

namespace tally::collector {
namespace {

using schema::FieldSchema;
using schema::FieldSource;
using schema::TimeseriesSchema;

// The cache is keyed by the parts of the timeseries name rather than the name itself, so a
// lookup needs no string to be built for every sample.
struct KeyView {
  std::string_view target;
  std::string_view metric;
  uint32_t version;
};

struct Key {
  std::string target;
  std::string metric;
  uint32_t version;
  operator KeyView() const { return {target, metric, version}; }  // NOLINT: implicit on purpose
};

struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(KeyView k) const {
    const std::size_t a = std::hash<std::string_view>()(k.target);
    const std::size_t b = std::hash<std::string_view>()(k.metric);
    return (a * 31 + b) * 31 + k.version;
  }
};

struct KeyEqual {
  using is_transparent = void;
  bool operator()(KeyView a, KeyView b) const {
    return a.version == b.version && a.target == b.target && a.metric == b.metric;
  }
};

KeyView key_of(const Sample& s) {
  return {s.target().name, s.metric().name, s.timeseries_version()};
}

std::string conflict_text(const TimeseriesSchema& stored, const TimeseriesSchema& incoming,
                          const std::string& difference) {
  return "schema of '" + incoming.timeseries_name + "' v" + std::to_string(incoming.version) +
         " differs from the stored one: " + difference +
         "; stored: " + schema::format_schema(stored) + "; new: " + schema::format_schema(incoming);
}

enum class Verdict : uint8_t { kAccepted, kConflict, kUnstorable, kUnchecked };

class StoreSource final : public SchemaSource {
 public:
  explicit StoreSource(ConnectionFactory factory) : factory_(std::move(factory)) {}

  Result<schema::SchemaCheck> check(const TimeseriesSchema& schema) override {
    std::lock_guard lock(mu_);
    if (!conn_) {
      auto opened = factory_();
      if (!opened.ok()) return opened.status();
      conn_ = std::move(opened).value();
    }
    auto checked = store_.check(*conn_, schema);
    if (!checked.ok() && conn_->broken()) conn_.reset();
    return checked;
  }

 private:
  ConnectionFactory factory_;
  std::mutex mu_;
  std::unique_ptr<pg::Connection> conn_;  // mu_
  schema::SchemaStore store_;             // thread-safe itself; used under mu_ with conn_
};

}  // namespace

namespace {

struct CachedSchema {
  TimeseriesSchema stored;  // fields sorted by name
  // The stored fields in the order the sample that created the entry listed them (its target
  // fields, then its metric fields), when that sample matched: a producer lists the fields of a
  // series in the same order every time, so matches() walks both in step, one name comparison per
  // field, and falls back to searching by name only when the order differs.
  std::vector<const FieldSchema*> sample_order;
};

}  // namespace

struct SchemaChecker::Entry : CachedSchema {};

struct SchemaChecker::Cache {
  // Entries are never erased, and unordered_map never moves its nodes, so an Entry* stays valid
  // after the lock that found it is released.
  std::unordered_map<Key, std::unique_ptr<Entry>, KeyHash, KeyEqual> entries;
};

namespace {

// The stored field named `name`, or fields.end() (fields sorted by name).
std::vector<FieldSchema>::const_iterator find_field(const std::vector<FieldSchema>& fields,
                                                    const std::string& name) {
  auto it = std::lower_bound(fields.begin(), fields.end(), name,
                             [](const FieldSchema& a, const std::string& n) { return a.name < n; });
  return it != fields.end() && it->name == name ? it : fields.end();
}

// The cheap comparison of a sample with the stored schema of its (target, metric, version):
// equal datum type and equal field sets, each field with the same type and source. Field names
// are unique within a valid sample, so equal counts plus every sample field found means equal.
bool matches(const CachedSchema& entry, const Sample& s) {
  const TimeseriesSchema& stored = entry.stored;
  if (datum_type(s.datum) != stored.datum_type) return false;
  const auto& fields = stored.fields;
  if (s.target().fields.size() + s.metric().fields.size() != fields.size()) return false;
  const auto same = [](const FieldSchema& want, const Field& f, FieldSource source) {
    return want.type == field_type(f.value) && want.source == source;
  };
  if (!entry.sample_order.empty() || fields.empty()) {
    std::size_t k = 0;
    bool in_order = true;
    for (const Fields* part : {&s.target().fields, &s.metric().fields}) {
      const FieldSource source =
          part == &s.target().fields ? FieldSource::kTarget : FieldSource::kMetric;
      for (const Field& f : *part) {
        const FieldSchema& want = *entry.sample_order[k++];
        if (want.name != f.name) {
          in_order = false;
          break;
        }
        if (!same(want, f, source)) return false;  // the one field of that name differs
      }
      if (!in_order) break;
    }
    if (in_order) return true;
  }
  const auto has = [&](const Field& f, FieldSource source) {
    auto it = find_field(fields, f.name);
    return it != fields.end() && same(*it, f, source);
  };
  for (const Field& f : s.target().fields) {
    if (!has(f, FieldSource::kTarget)) return false;
  }
  for (const Field& f : s.metric().fields) {
    if (!has(f, FieldSource::kMetric)) return false;
  }
  return true;
}

// The stored fields in the order `s` lists them, if `s` matches; empty otherwise.
std::vector<const FieldSchema*> order_of(const CachedSchema& entry, const Sample& s) {
  std::vector<const FieldSchema*> order;
  if (!matches(entry, s)) return order;
  for (const Fields* part : {&s.target().fields, &s.metric().fields}) {
    for (const Field& f : *part) order.push_back(&*find_field(entry.stored.fields, f.name));
  }
  return order;
}

}  // namespace

std::unique_ptr<SchemaSource> make_schema_source(ConnectionFactory factory) {
  return std::make_unique<StoreSource>(std::move(factory));
}

SchemaChecker::SchemaChecker(std::unique_ptr<SchemaSource> source, SchemaCheckerOptions options,
                             const Clock& clock)
    : source_(std::move(source)),
      options_(options),
      clock_(clock),
      cache_(std::make_unique<Cache>()) {}

SchemaChecker::~SchemaChecker() = default;

std::size_t SchemaChecker::cached_schemas() const {
  std::shared_lock lock(mu_);
  return cache_->entries.size();
}

const SchemaChecker::Entry* SchemaChecker::lookup(const Sample& s) const {
  std::shared_lock lock(mu_);
  auto it = cache_->entries.find(key_of(s));
  return it == cache_->entries.end() ? nullptr : it->second.get();
}

const SchemaChecker::Entry* SchemaChecker::resolve(const Sample& s, SchemaCheckResult& result) {
  if (const Entry* e = lookup(s)) return e;
  const auto now = clock_.now();
  {
    std::shared_lock lock(mu_);
    if (now < retry_at_) {
      if (result.status.ok()) {
        result.status = Status::error("schema store unavailable (retrying soon)", "database");
      }
      return nullptr;
    }
  }
  // Not holding mu_ here: the round trip may take a while, and known schemas must keep being
  // checked meanwhile. Two threads may ask about the same new schema; the store makes that
  // harmless and the first entry to land in the cache wins.
  TimeseriesSchema derived = schema::derive_schema(s);
  auto checked = source_->check(derived);
  if (!checked.ok()) {
    {
      std::unique_lock lock(mu_);
      retry_at_ = now + options_.retry_after;
    }
    log_warn("schema_store_unavailable",
             {{"timeseries", derived.timeseries_name}, {"error", checked.error()}});
    if (result.status.ok()) {
      result.status = Status::error(
          "checking the schema of '" + derived.timeseries_name + "': " + checked.error(),
          "database");
    }
    return nullptr;
  }
  if (checked->inserted) {
    ++result.schemas_created;
    log_info("schema_created", {{"schema", schema::format_schema(derived)}});
  }
  auto entry = std::make_unique<Entry>();
  entry->stored = std::move(checked->stored);
  std::sort(entry->stored.fields.begin(), entry->stored.fields.end(),
            [](const FieldSchema& a, const FieldSchema& b) { return a.name < b.name; });
  entry->sample_order = order_of(*entry, s);
  std::unique_lock lock(mu_);
  Key key{s.target().name, s.metric().name, s.timeseries_version()};
  auto [it, added] = cache_->entries.try_emplace(std::move(key), std::move(entry));
  return it->second.get();
}

SchemaCheckResult SchemaChecker::check(std::vector<Sample> samples) {
  SchemaCheckResult result;
  std::vector<Verdict> verdicts(samples.size(), Verdict::kAccepted);
  std::vector<const Entry*> reported;  // conflicts already described in this call
  bool all_accepted = true;

  const Sample* last = nullptr;  // producers send runs of one series: reuse its lookup
  const Entry* last_entry = nullptr;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const Sample& s = samples[i];
    const Entry* entry;
    if (last != nullptr && KeyEqual()(key_of(*last), key_of(s))) {
      entry = last_entry;
    } else {
      entry = resolve(s, result);
      last = &s;
      last_entry = entry;
    }
    Verdict v = Verdict::kAccepted;
    if (entry == nullptr) {
      v = Verdict::kUnchecked;
    } else if (!matches(*entry, s)) {
      v = Verdict::kConflict;
      ++result.rejections.schema;
      if (std::find(reported.begin(), reported.end(), entry) == reported.end()) {
        reported.push_back(entry);
        const TimeseriesSchema incoming = schema::derive_schema(s);
        auto difference = schema::describe_difference(entry->stored, incoming);
        result.rejections.conflicts.push_back(
            conflict_text(entry->stored, incoming, difference.value_or("schemas differ")));
      }
    } else if (Status st = check_storable(s); !st.ok()) {
      v = Verdict::kUnstorable;
      if (result.rejections.unstorable++ == 0) {
        result.rejections.first_unstorable =
            "timeseries '" + s.timeseries_name() + "': " + st.message();
      }
    }
    verdicts[i] = v;
    all_accepted = all_accepted && v == Verdict::kAccepted;
  }

  if (all_accepted) {
    result.accepted = std::move(samples);
    return result;
  }
  result.accepted.reserve(samples.size() - result.rejections.total());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (verdicts[i] == Verdict::kAccepted) {
      result.accepted.push_back(std::move(samples[i]));
    } else if (verdicts[i] == Verdict::kUnchecked) {
      result.unchecked.push_back(std::move(samples[i]));
    }
  }
  return result;
}

}  // namespace tally::collector
