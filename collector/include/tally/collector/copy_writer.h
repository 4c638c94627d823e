// The sink's database writer (DESIGN.md §5 "Sink", §6): writes a batch of samples with COPY,
// adding the series seen for the first time to tally.timeseries and creating the day partitions
// the batch needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <utility>

#include "tally/common/pg.h"
#include "tally/common/result.h"
#include "tally/common/sample.h"
#include "tally/common/timeseries_key.h"
#include "tally/schema/measurement_tables.h"

namespace tally::collector {

struct WriteStats {
  std::size_t samples_written = 0;
  // Rows this batch added to tally.timeseries (series another writer added first not counted).
  std::size_t series_created = 0;
};

// OK when every value of `s` can be stored: timestamps and start_time in years 1…9999, string
// datums and string field values valid UTF-8 without NUL (Postgres text cannot hold NUL),
// histogram counts and n_samples ≤ INT64_MAX (bigint columns). Code "unstorable" otherwise.
// Checked once, where samples enter the sink: the schema check (SchemaChecker) for what is
// collected, decode_record for what is replayed from the journal or the spool.
Status check_storable(const Sample& s);

// Not thread-safe: one writer per thread (the sink's writer thread). Several writers, each on
// its own connection, may write at once, from one process or many.
class CopyWriter {
 public:
  // Writes `batch`, whose samples must all pass check_storable (the COPY text has no way to say a
  // year beyond 9999; a NUL or a count beyond bigint makes Postgres refuse the batch with a data
  // error, code "sqlstate_22…", which the sink splits down to the one sample). One transaction
  // holds the new tally.timeseries rows and every measurement row, so a failed write stores nothing
  // and can be retried whole. Missing day partitions are created first, in their own short
  // transaction: partition DDL locks the parent table, and doing it inside the data transaction
  // could deadlock two writers.
  //
  // On error nothing of the batch is stored and the caches only hold what is committed; the
  // status has code "connection" when the connection broke (spool the batch, reconnect, retry).
  // If the connection breaks during COMMIT the outcome is unknown and a retry may store the
  // measurements twice (tables have no unique key; readers tolerate duplicates).
  Result<WriteStats> write(pg::Connection& conn, std::span<const Sample> batch);

  // Creates every measurement table's partition for `day` (for creating partitions ahead,
  // before the first sample of the day arrives).
  Status ensure_partitions(pg::Connection& conn, schema::Day day);

  // Forgets the known series and partitions; the next writes check the database again.
  void clear_caches();
  std::size_t known_series() const { return known_series_.size(); }

 private:
  using Partition = std::pair<schema::MeasurementTable, schema::Day>;
  Status create_partitions(pg::Connection& conn, const std::set<Partition>& partitions);
  // Adds the staged rows (COPY text) to tally.timeseries; returns how many were new.
  Result<std::size_t> insert_series(pg::Connection& conn, const std::string& series_rows);

  // Series committed to tally.timeseries by this writer or found there: grows with the number
  // of distinct series (8 to 16 bytes each).
  TimeseriesKeySet known_series_;
  std::set<Partition> known_partitions_;
};

}  // namespace tally::collector
