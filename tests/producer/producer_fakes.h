// Producers with a fixed answer, shared by the producer library's tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tally/producer/producer.h"

namespace tally::test {

// Hands over the same samples on every collection. Tests that decode what was served fix their
// timestamps to the microsecond, so what comes back can be compared exactly.
class FixedProducer : public Producer {
 public:
  explicit FixedProducer(std::vector<Sample> samples) : samples_(std::move(samples)) {}
  Status produce(std::vector<Sample>& out) override {
    out.insert(out.end(), samples_.begin(), samples_.end());
    return {};
  }

 private:
  std::vector<Sample> samples_;
};

// Fails every collection with `message` (the plain "error" code: a "datum_error" item).
class FailingProducer : public Producer {
 public:
  explicit FailingProducer(std::string message) : message_(std::move(message)) {}
  Status produce(std::vector<Sample>&) override { return Status::error(message_); }

 private:
  std::string message_;
};

}  // namespace tally::test
