// Database migrations (DESIGN.md §6): schema/sql/NNN_name.sql, embedded in the binary at build
// time, applied in order by whichever daemon starts first.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tally/common/pg.h"
#include "tally/common/result.h"

namespace tally::schema {

struct Migration {
  int version;            // NNN of the file name
  std::string_view name;  // "001_initial"
  std::string_view sql;
};

// The session advisory lock every Tally binary takes while migrating ("tallyMIG" in ASCII).
inline constexpr int64_t kMigrationLockKey = 8386103194287950151;

// Every migration compiled into this binary, in version order.
const std::vector<Migration>& embedded_migrations();

// Applies the pending embedded migrations, each in its own transaction recorded in
// tally.schema_migrations, and logs each one. A session advisory lock serialises concurrent
// callers (other processes included), so each migration runs exactly once; the call waits for
// a concurrent migrator to finish (use conn.cancel() from another thread to give up).
// A database that already has migrations this binary does not know is logged, not an error.
Status apply_migrations(pg::Connection& conn);
Status apply_migrations(pg::Connection& conn, const std::vector<Migration>& migrations);

}  // namespace tally::schema
