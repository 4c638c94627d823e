#include "tally/schema/retention.h"

#include <charconv>
#include <map>
#include <set>

#include "tally/schema/transaction.h"

namespace tally::schema {
namespace {

// "20261122" → the day; nullopt unless eight digits of a valid date.
std::optional<Day> parse_day(std::string_view digits) {
  if (digits.size() != 8) return std::nullopt;
  int y = 0;
  unsigned m = 0, d = 0;
  const auto num = [&](std::size_t at, std::size_t n, auto& out) {
    const char* end = digits.data() + at + n;
    auto [ptr, ec] = std::from_chars(digits.data() + at, end, out);
    return ec == std::errc() && ptr == end;
  };
  if (!num(0, 4, y) || !num(4, 2, m) || !num(6, 2, d)) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(m),
                                        std::chrono::day(d)};
  if (!ymd.ok()) return std::nullopt;
  return Day(ymd);
}

Status with_connection_code(const pg::Connection& conn, Status s) {
  if (!s.ok() && conn.broken() && s.code() != "connection") {
    return Status::error(s.message(), "connection");
  }
  return s;
}

// Runs `sql` in a short transaction under the partition lock.
Status partition_ddl_tx(pg::Connection& conn, const std::string& sql) {
  auto tx = Transaction::begin(conn);
  if (!tx.ok()) return tx.status();
  auto r = conn.exec("SET LOCAL client_min_messages = warning; SELECT pg_advisory_xact_lock(" +
                     std::to_string(kPartitionLockKey) + ");\n" + sql);
  if (!r.ok()) return r.status();
  return tx->commit();
}

}  // namespace

Result<RetentionResult> run_retention(pg::Connection& conn, Timestamp now,
                                      const RetentionOptions& options) {
  // Every Tally partition there is, by parent table.
  auto rows = conn.exec(
      "SELECT p.relname, c.relname FROM pg_inherits i "
      "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
      "JOIN pg_namespace n ON n.oid = p.relnamespace "
      "WHERE n.nspname = 'tally' AND p.relname LIKE 'measurements\\_%'");
  if (!rows.ok()) {
    return with_connection_code(conn, rows.status().with_context("listing partitions"));
  }
  std::map<std::string, MeasurementTable, std::less<>> tables;
  for (int t = 0; t < kMeasurementTableCount; ++t) {
    const auto table = static_cast<MeasurementTable>(t);
    tables.emplace("measurements_" + std::string(table_suffix(table)), table);
  }
  std::set<std::pair<MeasurementTable, Day>> existing;
  for (int i = 0; i < rows->size(); ++i) {
    const std::string_view parent = rows->get(i, 0);
    const std::string_view child = rows->get(i, 1);
    auto table = tables.find(parent);
    if (table == tables.end() || child.size() != parent.size() + 10 || !child.starts_with(parent) ||
        child.substr(parent.size(), 2) != "_p") {
      continue;
    }
    if (auto day = parse_day(child.substr(parent.size() + 2))) {
      existing.emplace(table->second, *day);
    }
  }

  RetentionResult result;
  const Day today = day_of(now);
  std::string create;
  for (int t = 0; t < kMeasurementTableCount; ++t) {
    const auto table = static_cast<MeasurementTable>(t);
    for (int ahead = 0; ahead <= options.create_ahead_days; ++ahead) {
      const Day day = today + std::chrono::days(ahead);
      if (existing.contains({table, day})) continue;
      create += partition_ddl(table, day) + ";\n";
      ++result.created;
    }
  }
  if (!create.empty()) {
    if (Status s = partition_ddl_tx(conn, create); !s.ok()) {
      return with_connection_code(conn, s.with_context("creating partitions"));
    }
  }

  if (options.retention_days <= 0) return result;
  const Timestamp cutoff = now - std::chrono::days(options.retention_days);
  const std::string lock_timeout =
      "SET LOCAL lock_timeout = " + std::to_string(options.lock_timeout.count()) + ";\n";
  for (const auto& [table, day] : existing) {
    const Timestamp day_end = Day(day + std::chrono::days(1));
    if (day_end > cutoff) continue;
    // One partition per transaction: DROP locks the parent table, which every writer and
    // reader uses, so each lock is held as briefly as possible.
    const std::string name = partition_name(table, day);
    Status s = partition_ddl_tx(conn, lock_timeout + "DROP TABLE IF EXISTS " + name);
    if (!s.ok()) {
      if (conn.broken()) return with_connection_code(conn, s.with_context("dropping " + name));
      if (result.failed++ == 0) result.first_error = "dropping " + name + ": " + s.message();
      continue;
    }
    ++result.dropped;
    result.dropped_partitions.push_back(name);
  }
  return result;
}

}  // namespace tally::schema
