// The libpq adapter against the Postgres of tools/test.
#include "tally/common/pg.h"

#include <doctest/doctest.h>

#include "support/test_db.h"

using tally::pg::Connection;

TEST_CASE("pg: settings in the URL override the adapter's defaults") {
  tally::test::TestDatabase db;
  auto plain = db.connect();
  CHECK(plain->exec("SELECT current_setting('application_name')")->get(0, 0) == "tally");
  auto named = Connection::open(db.url() + "?application_name=mine");
  REQUIRE_MESSAGE(named.ok(), named.error());
  CHECK((*named)->exec("SELECT current_setting('application_name')")->get(0, 0) == "mine");
}

TEST_CASE("pg: parameters are bound, errors carry the SQLSTATE") {
  tally::test::TestDatabase db;
  auto conn = db.connect();
  auto rows = conn->exec("SELECT $1::text || $2::text, $3::text IS NULL", {"a'b", ";--", std::nullopt});
  REQUIRE_MESSAGE(rows.ok(), rows.error());
  CHECK(rows->get(0, 0) == "a'b;--");
  CHECK(rows->get(0, 1) == "t");
  auto bad = conn->exec("SELECT 1/0");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == "sqlstate_22012");
  CHECK_FALSE(conn->broken());
}

TEST_CASE("pg: an unreachable server is a connection error that hides the password") {
  auto conn = Connection::open("postgresql://u:secret@127.0.0.1:1/x", std::chrono::seconds(2));
  REQUIRE_FALSE(conn.ok());
  CHECK(conn.status().code() == "connection");
  CHECK(conn.error().find("secret") == std::string::npos);
  CHECK(conn.error().find("u:***@127.0.0.1:1") != std::string::npos);
}
