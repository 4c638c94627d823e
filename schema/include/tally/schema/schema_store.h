// The schema store (DESIGN.md §5 "Schema"): checks each derived schema against
// tally.timeseries_schema, storing the ones seen for the first time.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "tally/common/pg.h"
#include "tally/common/result.h"
#include "tally/schema/timeseries_schema.h"

namespace tally::schema {

struct SchemaCheck {
  bool accepted = false;
  // This call stored the schema (it was new to the database).
  bool inserted = false;
  // The schema in the database (equal to the checked one in identity when accepted).
  TimeseriesSchema stored;
  // Empty when accepted; else the difference and both schemas spelled out, e.g.
  // "schema of 'a:b' v1 differs from the stored one: datum type differs: f64 vs u64;
  //  stored: a:b v1 (…) f64; new: a:b v1 (…) u64".
  std::string conflict;
};

// Thread-safe: check() may run on several threads at once, each with its own connection. The
// cache is shared and guarded by a mutex that is never held during database calls. A schema is
// read from the database once per (name, version) per store; rows are never changed afterwards
// (only inserted), so the cache cannot go stale.
class SchemaStore {
 public:
  // Database errors are returned (code "connection" when the connection broke) and not cached.
  Result<SchemaCheck> check(pg::Connection& conn, const TimeseriesSchema& schema);

  // Forgets every cached schema (e.g. after the schema table was edited by hand).
  void clear_cache();

 private:
  std::mutex mu_;
  // name → version → stored schema; std::less<> so a lookup does not copy the name.
  std::map<std::string, std::map<uint32_t, TimeseriesSchema>, std::less<>> cache_;  // mu_
};

// Reads one stored schema; nullopt when there is none.
Result<std::optional<TimeseriesSchema>> load_schema(pg::Connection& conn,
                                                    std::string_view timeseries_name,
                                                    uint32_t version);

}  // namespace tally::schema
