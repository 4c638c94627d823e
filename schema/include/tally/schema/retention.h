// Partition upkeep (DESIGN.md §6): every measurement table's day partitions are created ahead of
// time and dropped once wholly older than the retention. The collector runs this at start and
// every hour (docs/collector.md); tests run it with a chosen `now`.
//
// Only partitions named as Tally names them (tally.measurements_<type>_pYYYYMMDD) are touched.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tally/common/pg.h"
#include "tally/common/result.h"
#include "tally/common/time.h"
#include "tally/schema/measurement_tables.h"

namespace tally::schema {

// The advisory lock partition DDL runs under ("tallyPAR" in ASCII), shared with the collector's
// COPY writer so that creating and dropping partitions never interleave.
inline constexpr int64_t kPartitionLockKey = 8386103194288144722;

struct RetentionOptions {
  // A partition is dropped when its whole day ends at least this long before `now`:
  // day + 1 ≤ now − retention_days. 0 disables dropping.
  int64_t retention_days = 30;
  // Partitions are created for the days from today to today + create_ahead_days (UTC).
  int create_ahead_days = 2;
  // How long a DROP waits for the tables' locks (queries and writes in progress); on timeout the
  // partition is left for the next run and counted in `failed`.
  std::chrono::milliseconds lock_timeout{2000};
};

struct RetentionResult {
  std::size_t created = 0;                      // partitions this run created
  std::size_t dropped = 0;                      // partitions this run dropped
  std::vector<std::string> dropped_partitions;  // "tally.measurements_f64_p20261122", …
  std::size_t failed = 0;   // partitions that could not be dropped (e.g. lock timeout)
  std::string first_error;  // why the first of them failed
};

// One maintenance pass. Errors listing or creating partitions are returned (code "connection"
// when the connection broke); a partition that cannot be dropped is counted in `failed` and the
// others are still tried. Not thread-safe per connection; several processes may run it at
// once (the DDL is idempotent and serialised by kPartitionLockKey).
Result<RetentionResult> run_retention(pg::Connection& conn, Timestamp now,
                                      const RetentionOptions& options = {});

}  // namespace tally::schema
