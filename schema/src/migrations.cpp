#include "tally/schema/migrations.h"

#include <charconv>
#include <set>

#include "tally/common/log.h"
#include "tally/schema/transaction.h"

namespace tally::schema {
namespace {

std::string lock_call(std::string_view function) {
  return "SELECT " + std::string(function) + "(" + std::to_string(kMigrationLockKey) + ")";
}

// Holds the session advisory lock; releases it on every exit path (a broken connection has
// already released it on the server).
class MigrationLock {
 public:
  explicit MigrationLock(pg::Connection& conn) : conn_(conn) {}
  ~MigrationLock() {
    if (held_ && !conn_.broken()) {
      (void)conn_.exec(lock_call("pg_advisory_unlock"));
    }
  }
  Status acquire() {
    auto r = conn_.exec(lock_call("pg_advisory_lock"));
    if (!r.ok()) return r.status().with_context("migration lock");
    held_ = true;
    return {};
  }

 private:
  pg::Connection& conn_;
  bool held_ = false;
};

Result<std::set<int>> applied_versions(pg::Connection& conn) {
  // A least-privileged role (docs/operations.md) may create nothing, not even IF NOT EXISTS
  // (the privilege is checked first): only a database without the table gets the DDL.
  auto present = conn.exec("SELECT to_regclass('tally.schema_migrations') IS NOT NULL");
  if (!present.ok()) return present.status().with_context("looking for tally.schema_migrations");
  if (present->get(0, 0) != "t") {
    auto tx = Transaction::begin(conn);
    if (!tx.ok()) return tx.status();
    // IF NOT EXISTS prints a notice when the objects exist; keep stderr for real events.
    auto created = conn.exec(
        "SET LOCAL client_min_messages = warning;"
        "CREATE SCHEMA IF NOT EXISTS tally;"
        "CREATE TABLE IF NOT EXISTS tally.schema_migrations ("
        "  version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
    Status s = created.ok() ? tx->commit() : created.status();
    if (!s.ok()) return s.with_context("creating tally.schema_migrations");
  }
  auto rows = conn.exec("SELECT version FROM tally.schema_migrations");
  if (!rows.ok()) return rows.status().with_context("reading tally.schema_migrations");
  std::set<int> versions;
  for (int i = 0; i < rows->size(); ++i) {
    const std::string_view text = rows->get(i, 0);
    int v = 0;
    std::from_chars(text.data(), text.data() + text.size(), v);
    versions.insert(v);
  }
  return versions;
}

Status apply_one(pg::Connection& conn, const Migration& m) {
  auto tx = Transaction::begin(conn);
  if (!tx.ok()) return tx.status();
  // Migrations may repeat IF NOT EXISTS objects; their notices are noise on stderr.
  if (auto r = conn.exec("SET LOCAL client_min_messages = warning"); !r.ok()) return r.status();
  if (auto r = conn.exec(std::string(m.sql)); !r.ok()) return r.status();
  auto recorded = conn.exec("INSERT INTO tally.schema_migrations (version) VALUES ($1)",
                            {std::to_string(m.version)});
  if (!recorded.ok()) return recorded.status();
  return tx->commit();
}

}  // namespace

Status apply_migrations(pg::Connection& conn) {
  return apply_migrations(conn, embedded_migrations());
}

Status apply_migrations(pg::Connection& conn, const std::vector<Migration>& migrations) {
  MigrationLock lock(conn);
  if (Status s = lock.acquire(); !s.ok()) return s;
  auto applied = applied_versions(conn);
  if (!applied.ok()) return applied.status();
  int newest_known = 0;
  for (const Migration& m : migrations) {
    newest_known = std::max(newest_known, m.version);
    if (applied->count(m.version)) continue;
    if (Status s = apply_one(conn, m); !s.ok()) {
      return s.with_context("migration " + std::string(m.name));
    }
    log_info("migration_applied", {{"version", std::to_string(m.version)}, {"name", m.name}});
  }
  if (!applied->empty() && *applied->rbegin() > newest_known) {
    // A newer binary migrated this database; older code keeps working on the tables it knows.
    log_warn("database_schema_newer", {{"database_version", std::to_string(*applied->rbegin())},
                                       {"binary_version", std::to_string(newest_known)}});
  }
  return {};
}

}  // namespace tally::schema
