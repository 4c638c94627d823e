// A small adapter over libpq: connections, parameterised queries and COPY, errors as Status.
//
// Tally talks to Postgres through libpq directly rather than libpqxx 6.4, because the hot path
// (COPY of large pre-formatted buffers), cancellation with a deadline and connect timeouts need
// the PGconn that libpqxx 6 keeps private; see docs/decisions.md.
//
// A Connection is used by one thread at a time; cancel() may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tally/common/result.h"

struct pg_conn;
struct pg_result;
struct pg_cancel;

namespace tally::pg {

// The rows of one result. Values are text; NULL is is_null().
class Rows {
 public:
  Rows() = default;
  explicit Rows(pg_result* result);

  int size() const;
  int columns() const;
  bool is_null(int row, int column) const;
  std::string_view get(int row, int column) const;
  // Column number by name, or -1.
  int column(std::string_view name) const;
  // Rows changed by INSERT/UPDATE/DELETE/COPY ("" → 0).
  long affected() const;

 private:
  std::shared_ptr<pg_result> result_;
};

using Param = std::optional<std::string>;  // nullopt is SQL NULL
using Params = std::vector<Param>;

class Connection {
 public:
  // `url` is a libpq URI ("postgresql://user@host:port/db") or key=value string.
  static Result<std::unique_ptr<Connection>> open(
      const std::string& url, std::chrono::seconds connect_timeout = std::chrono::seconds(10));
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements; returns the last result.
  Result<Rows> exec(const std::string& sql);
  // Runs one statement with $1, $2, … bound to `params` (text format).
  Result<Rows> exec(const std::string& sql, const Params& params);
  // Runs `copy_statement` ("COPY t (a, b) FROM STDIN") and sends `data` in COPY text format.
  Status copy_in(const std::string& copy_statement, std::string_view data);
  // The same, with the data made while it is sent: `next_chunk` is called until it returns an
  // empty view, and each chunk goes to the server before the next is asked for. The server
  // parses one chunk while the caller makes the next, so a writer that formats rows in chunks
  // of tens of KB overlaps its formatting with Postgres's COPY instead of adding to it.
  Status copy_in(const std::string& copy_statement,
                 const std::function<std::string_view()>& next_chunk);

  // True once the server connection is gone; the owner should open a new one.
  bool broken() const;
  // Asks the server to cancel the statement running now (safe from any thread).
  void cancel();
  // Quotes an identifier for SQL text ("a b" → "\"a b\"").
  std::string quote_identifier(std::string_view name) const;
  int server_version() const;

 private:
  explicit Connection(pg_conn* conn);
  Status error_status(std::string_view what, pg_result* result) const;

  pg_conn* conn_;
  std::mutex cancel_mu_;
  pg_cancel* cancel_ = nullptr;
};

// The URL with any password replaced by "***", for logs and errors.
std::string redact_url(std::string_view url);

// Text-format literal helpers for COPY: escapes backslash, tab, newline and carriage return.
void append_copy_text(std::string& out, std::string_view value);

}  // namespace tally::pg
