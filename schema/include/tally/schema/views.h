// The tally_ts schema (DESIGN.md §6): one view per timeseries name, so SQL users and Grafana's
// Postgres data source read any series without knowing the storage layout:
//
//   SELECT * FROM tally_ts."http_service:request_latency" WHERE "timestamp" > now() - '1h';
//
// A view has one typed column per field (sorted by name), then "timestamp", start_time for
// cumulative and histogram series, and the datum columns of the measurement table. When a name
// has several versions its view shows the latest one (docs/sql.md).
//
// Thread-safe: free functions; each call uses only the connection it is given.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tally/common/field.h"
#include "tally/common/pg.h"
#include "tally/common/result.h"
#include "tally/schema/timeseries_schema.h"

namespace tally::schema {

// Postgres truncates identifiers to 63 bytes (NAMEDATALEN - 1).
inline constexpr std::size_t kMaxIdentifierBytes = 63;

// The unquoted name of a series' view in tally_ts: the timeseries name itself when it fits in 63
// bytes; a longer one keeps its first 46 characters, then '~' and 16 hex digits of a hash of the
// whole name, so two long names never share a view.
std::string view_name(std::string_view timeseries_name);

// The SQL type of a field's column, in the views and in tallyctl query: string → text,
// i8/u8/i16 → smallint, u16/i32 → integer, u32/i64 → bigint, u64 → numeric, ip_addr → inet,
// uuid → uuid, bool → boolean. Each holds every value of the field type exactly.
std::string_view field_sql_type(FieldType type);

// The typed value of field `name` from tally.timeseries.fields under alias `alias`:
// "(t.fields->>'status_code')::integer". `name` must match the field name rule (it is quoted
// as a literal anyway).
std::string field_sql_expr(std::string_view alias, std::string_view name, FieldType type);

// The view's column names in order: the fields (a field named like a measurement column, e.g.
// "timestamp" or "datum", becomes "<name>_field"), "timestamp", [start_time], datum columns.
std::vector<std::string> view_columns(const TimeseriesSchema& schema);

// CREATE OR REPLACE VIEW tally_ts."<view_name>" AS SELECT … for this schema version. `conn` is
// only used to quote identifiers.
std::string view_ddl(const pg::Connection& conn, const TimeseriesSchema& schema);

// What COMMENT ON VIEW records: "tally timeseries 'a:b' version 2 (f64)"; refresh_views uses
// it to tell whether a view is current.
std::string view_comment(const TimeseriesSchema& schema);

// Creates or replaces the view of `timeseries_name` for its latest stored version, in a
// transaction of its own under an advisory lock (so concurrent callers, e.g. two collectors
// storing versions 1 and 2 at once, leave the view of the latest). A view whose columns changed
// (a new version) is dropped and created again; that fails if the user built objects on it.
// Returns false when the name has no stored schema.
Result<bool> refresh_view(pg::Connection& conn, std::string_view timeseries_name);

// Creates the views that are missing or show an older version than the latest stored one (for
// schemas stored before the view existed, or when refresh_view failed). Returns how many views
// it created or replaced; stops at the first error.
Result<std::size_t> refresh_views(pg::Connection& conn);

}  // namespace tally::schema
