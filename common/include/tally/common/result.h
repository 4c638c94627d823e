// Errors as values: Status for operations without a result, Result<T> for those with one.
// Cheap on success; an error carries a human-readable message and a short machine code
// (e.g. "decode", "too_many_samples", "not_found") that callers may count by.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace tally {

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status error(std::string message, std::string code = "error") {
    Status s;
    s.failed_ = true;
    s.message_ = std::move(message);
    s.code_ = std::move(code);
    return s;
  }

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }
  const std::string& code() const { return code_; }

  // Returns the same error with `context + ": "` in front of its message.
  Status with_context(std::string_view context) const {
    if (ok()) return *this;
    return error(std::string(context) + ": " + message_, code_);
  }

 private:
  bool failed_ = false;
  std::string message_;
  std::string code_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  const std::string& error() const { return status_.message(); }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace tally
