#include "tally/schema/transaction.h"

namespace tally::schema {

Result<Transaction> Transaction::begin(pg::Connection& conn) {
  if (auto r = conn.exec("BEGIN"); !r.ok()) return r.status();
  return Transaction(&conn);
}

Transaction::Transaction(Transaction&& other) noexcept : conn_(other.conn_) {
  other.conn_ = nullptr;
}

Transaction::~Transaction() { rollback(); }

Status Transaction::commit() {
  pg::Connection* conn = conn_;
  conn_ = nullptr;
  if (conn == nullptr) return Status::error("commit of a finished transaction", "invalid");
  auto r = conn->exec("COMMIT");
  return r.ok() ? Status() : r.status();
}

void Transaction::rollback() {
  pg::Connection* conn = conn_;
  conn_ = nullptr;
  // A broken connection has already lost the transaction; the server rolls it back.
  if (conn != nullptr && !conn->broken()) (void)conn->exec("ROLLBACK");
}

}  // namespace tally::schema
