// Fakes and helpers shared by the schema check, spool and sink tests.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "tally/collector/deps.h"
#include "tally/collector/schema_check.h"
#include "tally/common/field.h"
#include "tally/common/sample.h"
#include "tally/common/time.h"

namespace tally::collector::test {

// Time moves only when advance() is called.
class FakeClock final : public Clock {
 public:
  time_point now() const override { return time_point(duration(ticks_.load())); }
  void advance(std::chrono::microseconds d) {
    ticks_ += std::chrono::duration_cast<duration>(d).count();
  }

 private:
  std::atomic<duration::rep> ticks_{
      std::chrono::duration_cast<duration>(std::chrono::hours(1)).count()};
};

using tally::test::TempDir;

// A schema table in memory, with SchemaStore's answers, that can be made to fail.
class FakeSchemaSource final : public SchemaSource {
 public:
  Result<schema::SchemaCheck> check(const schema::TimeseriesSchema& incoming) override {
    ++calls;
    if (down) return Status::error("cannot connect to postgresql://x", "connection");
    std::lock_guard lock(mu_);
    schema::SchemaCheck result;
    auto [it, added] = stored_.try_emplace({incoming.timeseries_name, incoming.version}, incoming);
    result.inserted = added;
    result.stored = it->second;
    if (auto diff = schema::describe_difference(it->second, incoming)) {
      result.conflict = *diff;
    } else {
      result.accepted = true;
    }
    return result;
  }

  void store(const schema::TimeseriesSchema& s) {
    std::lock_guard lock(mu_);
    stored_.insert_or_assign({s.timeseries_name, s.version}, s);
  }

  std::atomic<int> calls{0};
  std::atomic<bool> down{false};

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, uint32_t>, schema::TimeseriesSchema> stored_;
};

inline const Timestamp kT0 = parse_rfc3339("2026-11-22T10:00:00Z").value();

// Sample number `i`: its datum and its timestamp carry i, so order and identity can be checked.
inline Sample numbered_sample(int64_t i, std::string metric = "requests") {
  return Sample{make_timeseries({"sink_test", {{"host", std::string("a")}}},
                                {std::move(metric), {{"shard", int64_t{i % 3}}}}),
                kT0 + std::chrono::microseconds(i), int64_t{i}};
}

inline std::vector<Sample> numbered(int64_t first, int64_t count) {
  std::vector<Sample> out;
  for (int64_t i = first; i < first + count; ++i) out.push_back(numbered_sample(i));
  return out;
}

inline int64_t number_of(const Sample& s) { return std::get<int64_t>(s.datum); }

inline std::vector<int64_t> numbers_of(const std::vector<Sample>& samples) {
  std::vector<int64_t> out;
  for (const Sample& s : samples) out.push_back(number_of(s));
  return out;
}

inline std::vector<int64_t> range(int64_t first, int64_t count) {
  std::vector<int64_t> out;
  for (int64_t i = first; i < first + count; ++i) out.push_back(i);
  return out;
}

}  // namespace tally::collector::test
