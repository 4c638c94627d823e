// The collector's schema check (DESIGN.md §5 "Schema"): splits a producer's decoded samples into
// the ones the sink may store and the ones rejected, counted by reason.
//
//   SchemaChecker checker(make_schema_source(factory));
//   SchemaCheckResult r = checker.check(std::move(samples));
//   sink.push(std::move(r.accepted));
//   // count r.rejections by reason; keep r.conflicts for GET /producers/{id};
//   // r.unchecked is non-empty only when !r.status.ok() (database unreachable): see below.
//
// Each sample's schema (name, version, fields with type and source, datum type) must equal the
// one stored in tally.timeseries_schema; a schema seen for the first time is stored. The stored
// schemas are cached by (target name, metric name, version), and a known series is checked
// against its cached schema without deriving a TimeseriesSchema and without touching the
// database: the database is asked once per new (name, version) per checker.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "tally/collector/deps.h"
#include "tally/common/result.h"
#include "tally/common/sample.h"
#include "tally/schema/schema_store.h"
#include "tally/schema/timeseries_schema.h"

namespace tally::collector {

// Where stored schemas come from. Implementations must be thread-safe.
class SchemaSource {
 public:
  virtual ~SchemaSource() = default;
  // schema::SchemaStore::check semantics: stores `schema` when its (name, version) is new and
  // returns the stored schema, with `conflict` set when it differs. Any error means "could not
  // be checked now" (the database is unreachable or answered with an error).
  virtual Result<schema::SchemaCheck> check(const schema::TimeseriesSchema& schema) = 0;
};

// schema::SchemaStore over one connection from `factory`, opened on first use and reopened after
// it breaks. Calls are serialised on that connection; they only happen on cache misses.
std::unique_ptr<SchemaSource> make_schema_source(ConnectionFactory factory);

struct SchemaRejections {
  std::size_t schema = 0;      // reason "schema": differs from the stored schema
  std::size_t unstorable = 0;  // reason "unstorable": check_storable failed
  // One message per conflicting (name, version) in this call, with the difference and both
  // schemas spelled out (schema::SchemaStore's text):
  // "schema of 'a:b' v1 differs from the stored one: datum type differs: f64 vs u64; stored: …;
  // new: …"
  std::vector<std::string> conflicts;
  std::string first_unstorable;  // why the first unstorable sample was rejected
  std::size_t total() const { return schema + unstorable; }
};

struct SchemaCheckResult {
  std::vector<Sample> accepted;  // in input order
  SchemaRejections rejections;
  // Samples of schemas that are not cached and could not be checked because the schema store
  // failed (status then has code "database"). They are neither accepted nor rejected: the caller
  // owns them and may check them again later, or count them as a failed collection (reason
  // "schema_unavailable"). Samples whose schema is cached are accepted as usual meanwhile.
  std::vector<Sample> unchecked;
  Status status;
  std::size_t schemas_created = 0;  // new schemas this call stored in the database
};

struct SchemaCheckerOptions {
  // After the schema store failed, cache misses do not ask it again before this much time has
  // passed (their samples go to `unchecked` at once), so that an unreachable database does not
  // make every collection wait for a connect timeout.
  std::chrono::milliseconds retry_after = std::chrono::seconds(1);
};

// Thread-safe: check() may run on several collection threads at once. Known schemas are read
// under a shared lock; a cache miss calls the SchemaSource without holding it, so check() can
// block for one database round trip (or a connect timeout): do not call it on an I/O thread.
class SchemaChecker {
 public:
  explicit SchemaChecker(std::unique_ptr<SchemaSource> source, SchemaCheckerOptions options = {},
                         const Clock& clock = steady_clock());
  ~SchemaChecker();
  SchemaChecker(const SchemaChecker&) = delete;
  SchemaChecker& operator=(const SchemaChecker&) = delete;

  // Precondition: every sample passed validate_sample (the decoders guarantee it), so field
  // names are unique within a sample.
  SchemaCheckResult check(std::vector<Sample> samples);

  std::size_t cached_schemas() const;

 private:
  struct Entry;
  struct Cache;
  const Entry* lookup(const Sample& s) const;
  // The cached entry for `s`'s series, asking the source on a miss; nullptr when it failed.
  const Entry* resolve(const Sample& s, SchemaCheckResult& result);

  std::unique_ptr<SchemaSource> source_;
  SchemaCheckerOptions options_;
  const Clock& clock_;
  mutable std::shared_mutex mu_;
  std::unique_ptr<Cache> cache_;  // mu_
  Clock::time_point retry_at_{};  // mu_: no source calls before this
};

}  // namespace tally::collector
