#include "tally/schema/views.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>

#include "tally/schema/measurement_tables.h"
#include "tally/schema/schema_store.h"
#include "tally/schema/transaction.h"

namespace tally::schema {
namespace {

// Serialises view DDL across collectors: "tallyVIE" in ASCII.
constexpr std::string_view kViewLockKey = "8386103194288310597";

constexpr std::string_view kGaugeColumns[] = {"datum"};
constexpr std::string_view kCumulativeColumns[] = {"start_time", "datum"};
constexpr std::string_view kHistogramColumns[] = {"start_time", "bins", "counts", "n_samples",
                                                  "min",        "max",  "sum",    "squared_mean"};

std::vector<std::string_view> measurement_columns(DatumType type) {
  if (is_histogram(type)) return {std::begin(kHistogramColumns), std::end(kHistogramColumns)};
  if (is_cumulative(type)) return {std::begin(kCumulativeColumns), std::end(kCumulativeColumns)};
  return {std::begin(kGaugeColumns), std::end(kGaugeColumns)};
}

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// A SQL string literal, right whatever the server's standard_conforming_strings says: quotes
// doubled, and a text with a backslash written as E'…' with the backslashes doubled too. The
// names quoted here match the name rules (no quotes, no backslashes) when the collector stored
// them, but a row written by hand into tally.timeseries_schema must not become SQL either.
std::string literal(std::string_view s) {
  const bool backslash = s.find('\\') != std::string_view::npos;
  std::string out = backslash ? "E'" : "'";
  for (char c : s) {
    if (c == '\'' || (backslash && c == '\\')) out += c;
    out += c;
  }
  out += '\'';
  return out;
}

}  // namespace

std::string view_name(std::string_view timeseries_name) {
  if (timeseries_name.size() <= kMaxIdentifierBytes) return std::string(timeseries_name);
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx",
                static_cast<unsigned long long>(fnv1a64(timeseries_name)));
  return std::string(timeseries_name.substr(0, kMaxIdentifierBytes - 17)) + "~" + hash;
}

std::string_view field_sql_type(FieldType type) {
  switch (type) {
    case FieldType::kString:
      return "text";
    case FieldType::kI8:
    case FieldType::kU8:
    case FieldType::kI16:
      return "smallint";
    case FieldType::kU16:
    case FieldType::kI32:
      return "integer";
    case FieldType::kU32:
    case FieldType::kI64:
      return "bigint";
    case FieldType::kU64:
      return "numeric";
    case FieldType::kIpAddr:
      return "inet";
    case FieldType::kUuid:
      return "uuid";
    case FieldType::kBool:
      return "boolean";
  }
  return "text";
}

std::string field_sql_expr(std::string_view alias, std::string_view name, FieldType type) {
  std::string out = "(" + std::string(alias) + ".fields->>" + literal(name) + ")";
  if (type != FieldType::kString) out += "::" + std::string(field_sql_type(type));
  return out;
}

std::vector<std::string> view_columns(const TimeseriesSchema& schema) {
  const std::vector<std::string_view> measured = measurement_columns(schema.datum_type);
  std::set<std::string, std::less<>> taken{"timestamp"};
  taken.insert(measured.begin(), measured.end());
  for (const FieldSchema& f : schema.fields) taken.insert(f.name);
  std::vector<std::string> columns;
  for (const FieldSchema& f : schema.fields) {
    const bool clashes = f.name == "timestamp" ||
                         std::find(measured.begin(), measured.end(), f.name) != measured.end();
    if (!clashes) {
      columns.push_back(f.name);
      continue;
    }
    // "<name>_field", or with more underscores in the unlikely case a field has that name too.
    std::string renamed = f.name + "_field";
    while (taken.contains(renamed)) renamed.insert(f.name.size(), "_");
    taken.insert(renamed);
    columns.push_back(std::move(renamed));
  }
  columns.emplace_back("timestamp");
  columns.insert(columns.end(), measured.begin(), measured.end());
  return columns;
}

std::string view_ddl(const pg::Connection& conn, const TimeseriesSchema& schema) {
  const std::vector<std::string> columns = view_columns(schema);
  const std::vector<std::string_view> measured = measurement_columns(schema.datum_type);
  std::string sql = "CREATE OR REPLACE VIEW tally_ts." +
                    conn.quote_identifier(view_name(schema.timeseries_name)) + " AS SELECT ";
  std::size_t column = 0;
  for (const FieldSchema& f : schema.fields) {
    sql += field_sql_expr("t", f.name, f.type) + " AS " + conn.quote_identifier(columns[column++]);
    sql += ", ";
  }
  sql += "m.\"timestamp\"";
  for (std::string_view c : measured) sql += ", m." + conn.quote_identifier(c);
  sql += " FROM tally.timeseries t JOIN " + table_name(measurement_table(schema.datum_type)) +
         " m ON m.timeseries_key = t.timeseries_key WHERE t.timeseries_name = " +
         literal(schema.timeseries_name) + " AND t.version = " + std::to_string(schema.version);
  return sql;
}

std::string view_comment(const TimeseriesSchema& schema) {
  return "tally timeseries '" + schema.timeseries_name + "' version " +
         std::to_string(schema.version) + " (" + std::string(to_string(schema.datum_type)) + ")";
}

Result<bool> refresh_view(pg::Connection& conn, std::string_view timeseries_name) {
  const std::string what = "creating the view of '" + std::string(timeseries_name) + "'";
  auto tx = Transaction::begin(conn);
  if (!tx.ok()) return tx.status().with_context(what);
  if (auto locked = conn.exec("SELECT pg_advisory_xact_lock(" + std::string(kViewLockKey) + ")");
      !locked.ok()) {
    return locked.status().with_context(what);
  }
  // Under the lock: the latest version is read after any concurrent refresh committed.
  auto latest =
      conn.exec("SELECT max(version) FROM tally.timeseries_schema WHERE timeseries_name = $1",
                {std::string(timeseries_name)});
  if (!latest.ok()) return latest.status().with_context(what);
  if (latest->is_null(0, 0)) return false;
  auto schema = load_schema(conn, timeseries_name,
                            static_cast<uint32_t>(std::stoul(std::string(latest->get(0, 0)))));
  if (!schema.ok()) return schema.status().with_context(what);
  if (!schema->has_value()) return false;
  const TimeseriesSchema& s = **schema;
  const std::string view = "tally_ts." + conn.quote_identifier(view_name(s.timeseries_name));
  // CREATE OR REPLACE keeps objects built on the view, but only works while the columns keep
  // their names and types; a new version may change them, then the view is made anew.
  if (auto r = conn.exec("SAVEPOINT tally_view"); !r.ok()) return r.status().with_context(what);
  if (auto replaced = conn.exec(view_ddl(conn, s)); !replaced.ok()) {
    if (conn.broken()) return replaced.status().with_context(what);
    auto remade = conn.exec("ROLLBACK TO SAVEPOINT tally_view; DROP VIEW IF EXISTS " + view + "; " +
                            view_ddl(conn, s));
    if (!remade.ok()) return remade.status().with_context(what);
  }
  if (auto c = conn.exec("COMMENT ON VIEW " + view + " IS " + literal(view_comment(s))); !c.ok()) {
    return c.status().with_context(what);
  }
  if (Status committed = tx->commit(); !committed.ok()) return committed.with_context(what);
  return true;
}

Result<std::size_t> refresh_views(pg::Connection& conn) {
  auto wanted = conn.exec(
      "SELECT DISTINCT ON (timeseries_name) timeseries_name, version, datum_type "
      "FROM tally.timeseries_schema ORDER BY timeseries_name, version DESC");
  if (!wanted.ok()) return wanted.status().with_context("listing schemas for their views");
  auto existing = conn.exec(
      "SELECT c.relname, coalesce(obj_description(c.oid, 'pg_class'), '') FROM pg_class c "
      "JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = 'tally_ts' AND c.relkind = 'v'");
  if (!existing.ok()) return existing.status().with_context("listing the tally_ts views");
  std::map<std::string, std::string, std::less<>> comments;
  for (int i = 0; i < existing->size(); ++i) {
    comments.emplace(existing->get(i, 0), existing->get(i, 1));
  }
  std::size_t refreshed = 0;
  for (int i = 0; i < wanted->size(); ++i) {
    TimeseriesSchema latest;
    latest.timeseries_name = wanted->get(i, 0);
    latest.version = static_cast<uint32_t>(std::stoul(std::string(wanted->get(i, 1))));
    const auto datum = parse_datum_type(wanted->get(i, 2));
    if (datum) latest.datum_type = *datum;
    auto it = comments.find(view_name(latest.timeseries_name));
    if (datum && it != comments.end() && it->second == view_comment(latest)) continue;
    auto done = refresh_view(conn, latest.timeseries_name);
    if (!done.ok()) return done.status();
    if (*done) ++refreshed;
  }
  return refreshed;
}

}  // namespace tally::schema
