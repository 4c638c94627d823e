// Integration-test helpers. A test that needs Postgres gets it from tools/test, which exports
// TALLY_TEST_DATABASE_URL; without it the test fails (it never skips).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "tally/common/pg.h"

namespace tally::test {

// The server URL from TALLY_TEST_DATABASE_URL; fails the current test if it is not set.
std::string server_url();

// A database of its own for one test: created empty on construction, dropped on destruction,
// so tests neither see nor leave each other's rows.
class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  // A new connection to this database (fails the test if it cannot connect).
  std::unique_ptr<pg::Connection> connect() const;
  // Runs one statement and returns the first column of the first row ("" if none).
  std::string scalar(const std::string& sql) const;

 private:
  std::string name_;
  std::string url_;
};

// Polls `condition` every 10 ms until it holds or `timeout` (scaled by test_deadline) passes;
// returns the last result.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace tally::test
