#include "tally/common/pg.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>

namespace tally::pg {

Rows::Rows(pg_result* result) : result_(result, PQclear) {}

int Rows::size() const { return result_ ? PQntuples(result_.get()) : 0; }
int Rows::columns() const { return result_ ? PQnfields(result_.get()) : 0; }
bool Rows::is_null(int row, int column) const {
  return PQgetisnull(result_.get(), row, column) != 0;
}
std::string_view Rows::get(int row, int column) const {
  return {PQgetvalue(result_.get(), row, column),
          static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
}
int Rows::column(std::string_view name) const {
  return PQfnumber(result_.get(), std::string(name).c_str());
}
long Rows::affected() const {
  const char* n = result_ ? PQcmdTuples(result_.get()) : "";
  return *n ? std::strtol(n, nullptr, 10) : 0;
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& url,
                                                     std::chrono::seconds connect_timeout) {
  // expand_dbname=1: `dbname` may be a whole URI or key=value string. Its settings override the
  // keys before it, so these two are defaults that the URL may change.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const std::string timeout = std::to_string(std::max<long>(1, connect_timeout.count()));
  const char* values[] = {timeout.c_str(), "tally", url.c_str(), nullptr};
  pg_conn* conn = PQconnectdbParams(keys, values, 1);
  if (conn == nullptr) return Status::error("out of memory connecting to Postgres", "connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    PQfinish(conn);
    return Status::error("cannot connect to " + redact_url(url) + ": " + message, "connection");
  }
  return std::unique_ptr<Connection>(new Connection(conn));
}

Connection::Connection(pg_conn* conn) : conn_(conn), cancel_(PQgetCancel(conn)) {}

Connection::~Connection() {
  if (cancel_) PQfreeCancel(cancel_);
  PQfinish(conn_);
}

Status Connection::error_status(std::string_view what, pg_result* result) const {
  std::string message = result ? PQresultErrorMessage(result) : "";
  if (message.empty()) message = PQerrorMessage(conn_);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  const char* sqlstate = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  // Without a SQLSTATE the failure is the connection's, not the statement's.
  std::string code = sqlstate ? std::string("sqlstate_") + sqlstate : "connection";
  if (PQstatus(conn_) != CONNECTION_OK) code = "connection";
  return Status::error(std::string(what) + ": " + message, code);
}

Result<Rows> Connection::exec(const std::string& sql) {
  pg_result* r = PQexec(conn_, sql.c_str());
  const auto status = PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Status s = error_status("query failed", r);
    PQclear(r);
    return s;
  }
  return Rows(r);
}

Result<Rows> Connection::exec(const std::string& sql, const Params& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
  pg_result* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                              values.data(), nullptr, nullptr, 0);
  const auto status = PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Status s = error_status("query failed", r);
    PQclear(r);
    return s;
  }
  return Rows(r);
}

Status Connection::copy_in(const std::string& copy_statement, std::string_view data) {
  // Large chunks keep the number of calls (and syscalls) low; libpq buffers internally.
  constexpr std::size_t kChunk = 1 << 20;
  std::size_t at = 0;
  return copy_in(copy_statement, [&] {
    const std::string_view chunk = data.substr(at, kChunk);
    at += chunk.size();
    return chunk;
  });
}

Status Connection::copy_in(const std::string& copy_statement,
                           const std::function<std::string_view()>& next_chunk) {
  pg_result* r = PQexec(conn_, copy_statement.c_str());
  if (PQresultStatus(r) != PGRES_COPY_IN) {
    Status s = error_status("COPY failed to start", r);
    PQclear(r);
    return s;
  }
  PQclear(r);
  for (std::string_view chunk = next_chunk(); !chunk.empty(); chunk = next_chunk()) {
    if (PQputCopyData(conn_, chunk.data(), static_cast<int>(chunk.size())) != 1) {
      PQputCopyEnd(conn_, "send failed");
      while (pg_result* rest = PQgetResult(conn_)) PQclear(rest);
      return error_status("COPY send failed", nullptr);
    }
  }
  if (PQputCopyEnd(conn_, nullptr) != 1) return error_status("COPY end failed", nullptr);
  Status result;
  while (pg_result* rest = PQgetResult(conn_)) {
    if (PQresultStatus(rest) != PGRES_COMMAND_OK && result.ok()) {
      result = error_status("COPY failed", rest);
    }
    PQclear(rest);
  }
  return result;
}

bool Connection::broken() const { return PQstatus(conn_) != CONNECTION_OK; }

void Connection::cancel() {
  std::lock_guard lock(cancel_mu_);
  if (!cancel_) return;
  char err[256];
  PQcancel(cancel_, err, sizeof err);
}

std::string Connection::quote_identifier(std::string_view name) const {
  char* q = PQescapeIdentifier(conn_, name.data(), name.size());
  std::string out = q ? q : "";
  PQfreemem(q);
  return out;
}

int Connection::server_version() const { return PQserverVersion(conn_); }

std::string redact_url(std::string_view url) {
  // postgresql://user:password@host → postgresql://user:***@host. libpq ends the user info at
  // the first '@' or '/'; a '/' in a password is an error there, but the message must not show
  // the password either, so this looks as far as the query.
  std::string out(url);
  const std::size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const std::size_t start = scheme + 3;
    const std::size_t at = out.find('@', start);
    const std::size_t colon = out.find(':', start);
    if (at < out.find('?', start) && colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // Every password parameter (sslpassword too): "?password=…&…", "password=… …" and
  // "password = '…'" (key=value strings quote values with spaces, escaping ' and \ with \).
  for (std::size_t pos = 0; (pos = out.find("password", pos)) != std::string::npos;) {
    std::size_t value = pos + 8;
    while (value < out.size() && out[value] == ' ') ++value;
    if (value == out.size() || out[value] != '=') {
      pos = value;
      continue;
    }
    ++value;
    while (value < out.size() && out[value] == ' ') ++value;
    std::size_t end = value;
    if (end < out.size() && out[end] == '\'') {
      for (++end; end < out.size() && out[end] != '\''; end += out[end] == '\\' ? 2 : 1) {
      }
      end = std::min(end + 1, out.size());
    } else {
      end = std::min(out.find_first_of(" &", value), out.size());
    }
    out.replace(value, end - value, "***");
    pos = value + 3;
  }
  return out;
}

void append_copy_text(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
}

}  // namespace tally::pg
