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

TEST_CASE("pg: copy_in sends each chunk as it is made, split anywhere, and reports a bad row") {
  tally::test::TestDatabase db;
  auto conn = db.connect();
  REQUIRE(conn->exec("CREATE TEMP TABLE t (n int, s text)").ok());
  // Chunks of 5 bytes split rows and even escapes; the callback is asked until it says done.
  std::string text;
  for (int n = 0; n < 100; ++n) text += std::to_string(n) + "\ta\\tb" + std::to_string(n) + "\n";
  std::size_t at = 0;
  int calls = 0;
  tally::Status copied = conn->copy_in("COPY t (n, s) FROM STDIN", [&] {
    ++calls;
    const std::string_view chunk = std::string_view(text).substr(at, 5);
    at += chunk.size();
    return chunk;
  });
  REQUIRE_MESSAGE(copied.ok(), copied.message());
  CHECK(calls == static_cast<int>((text.size() + 4) / 5) + 1);
  CHECK(conn->exec("SELECT count(*), sum(n), min(s) FROM t")->get(0, 0) == "100");
  CHECK(conn->exec("SELECT sum(n) FROM t")->get(0, 0) == "4950");
  CHECK(conn->exec("SELECT s FROM t WHERE n = 7")->get(0, 0) == "a\tb7");

  // A row Postgres refuses fails the COPY with its SQLSTATE; the connection stays usable.
  bool sent = false;
  tally::Status bad = conn->copy_in("COPY t (n, s) FROM STDIN", [&] {
    const std::string_view chunk = sent ? "" : "x\ty\n";
    sent = true;
    return chunk;
  });
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.code() == "sqlstate_22P02");
  CHECK_FALSE(conn->broken());
  CHECK(conn->exec("SELECT count(*) FROM t")->get(0, 0) == "100");
}
