// Fakes and helpers shared by the schema check, spool and sink tests.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "tally/collector/deps.h"
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

inline const Timestamp kT0 = parse_rfc3339("2026-11-22T10:00:00Z").value();

// Sample number `i`: its datum and its timestamp carry i, so order and identity can be checked.
inline Sample numbered_sample(int64_t i, std::string metric = "requests") {
  Sample s;
  s.target = {"sink_test", {{"host", std::string("a")}}};
  s.metric = {std::move(metric), {{"shard", int64_t{i % 3}}}};
  s.timestamp = kT0 + std::chrono::microseconds(i);
  s.datum = int64_t{i};
  return s;
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
