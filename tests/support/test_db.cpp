#include "support/test_db.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "support/deadline.h"
#include "tally/common/field.h"

namespace tally::test {
namespace {

// Replaces the database name (the path after the authority) of a postgresql:// URL.
std::string with_database(const std::string& url, const std::string& db) {
  const std::size_t authority = url.find("://");
  REQUIRE_MESSAGE(authority != std::string::npos, "TALLY_TEST_DATABASE_URL must be a URI");
  const std::size_t slash = url.find('/', authority + 3);
  const std::size_t query = url.find('?', authority + 3);
  const std::string base = url.substr(0, slash != std::string::npos ? slash : query);
  const std::string rest = query != std::string::npos ? url.substr(query) : "";
  return base + "/" + db + rest;
}

std::unique_ptr<pg::Connection> must_connect(const std::string& url) {
  auto conn = pg::Connection::open(url);
  REQUIRE_MESSAGE(conn.ok(), conn.error());
  return std::move(conn).value();
}

}  // namespace

std::string server_url() {
  const char* url = std::getenv("TALLY_TEST_DATABASE_URL");
  REQUIRE_MESSAGE(url != nullptr,
                  "TALLY_TEST_DATABASE_URL is not set: run the tests with tools/test, "
                  "which starts a throwaway Postgres");
  return url;
}

TestDatabase::TestDatabase() {
  std::string id = Uuid::random().to_string();
  id.erase(std::remove(id.begin(), id.end(), '-'), id.end());
  name_ = "tally_test_" + id.substr(0, 16);
  const std::string admin_url = server_url();
  auto admin = must_connect(admin_url);
  auto created = admin->exec("CREATE DATABASE " + name_);
  REQUIRE_MESSAGE(created.ok(), created.error());
  url_ = with_database(admin_url, name_);
}

TestDatabase::~TestDatabase() {
  auto admin = pg::Connection::open(server_url());
  if (admin.ok()) (void)(*admin)->exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
}

std::unique_ptr<pg::Connection> TestDatabase::connect() const { return must_connect(url_); }

std::string TestDatabase::scalar(const std::string& sql) const {
  auto conn = connect();
  auto rows = conn->exec(sql);
  REQUIRE_MESSAGE(rows.ok(), rows.error());
  if (rows->size() == 0 || rows->is_null(0, 0)) return "";
  return std::string(rows->get(0, 0));
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + test_deadline(timeout);
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace tally::test
