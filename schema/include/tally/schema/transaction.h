// A transaction scope on a pg::Connection: BEGIN on begin(), ROLLBACK unless commit() ran.
#pragma once

#include "tally/common/pg.h"
#include "tally/common/result.h"

namespace tally::schema {

class Transaction {
 public:
  // Sends BEGIN; check the result before using the transaction.
  static Result<Transaction> begin(pg::Connection& conn);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();  // rolls back if still open (and the connection is alive)

  Status commit();
  void rollback();

 private:
  explicit Transaction(pg::Connection* conn) : conn_(conn) {}
  pg::Connection* conn_;  // nullptr once finished
};

}  // namespace tally::schema
