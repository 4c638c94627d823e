#include "tally/collector/copy_writer.h"

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "copy_format.h"
#include "tally/common/timeseries_key.h"
#include "tally/schema/transaction.h"

namespace tally::collector {
namespace {

using schema::MeasurementTable;

// Serialises partition creation across writers and processes: "tallyPAR" in ASCII. Held for
// the short DDL transaction only.
constexpr std::string_view kPartitionLockKey = "8386103194288144722";

Status failed(pg::Connection& conn, Status s) {
  if (conn.broken() && s.code() != "connection") return Status::error(s.message(), "connection");
  return s;
}

// Rows are formatted into chunks of this size and each is sent while the next is made, so that
// Postgres parses one while the writer formats the next (COPY reads 64 KiB at a time) instead
// of waiting for the whole batch's text: +4 % for the writer alone (tally_ingest_bench, median
// of seven alternating runs), and a batch's text is no longer held whole.
constexpr std::size_t kCopyChunkBytes = 64 * 1024;

// The batch sorted out: each table's samples, and what the caches do not know yet.
struct PreparedBatch {
  std::array<std::vector<uint32_t>, schema::kMeasurementTableCount> table_samples;
  std::string series_rows;
  std::vector<int64_t> new_series;
  std::set<std::pair<MeasurementTable, schema::Day>> partitions;
};

}  // namespace

Result<WriteStats> CopyWriter::write(pg::Connection& conn, std::span<const Sample> batch) {
  WriteStats stats;
  PreparedBatch prepared;
  TimeseriesKeySet new_in_batch;
  // The day of the previous sample per table whose partition is known or already listed: a
  // batch mostly repeats one day, so the set lookups are skipped for nearly every sample.
  std::array<schema::Day, schema::kMeasurementTableCount> seen_day;
  seen_day.fill(schema::Day::min());
  // The keys first, so that each known-series lookup below can prefetch the one a few samples
  // ahead: with many series every lookup is a cache miss.
  constexpr std::size_t kPrefetchAhead = 8;
  std::vector<int64_t> keys;
  keys.reserve(batch.size());
  for (const Sample& s : batch) keys.push_back(s.key());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Sample& s = batch[i];
    if (i + kPrefetchAhead < keys.size()) known_series_.prefetch(keys[i + kPrefetchAhead]);
    const int64_t key = keys[i];
    const MeasurementTable table = schema::measurement_table(datum_type(s.datum));
    prepared.table_samples[static_cast<int>(table)].push_back(static_cast<uint32_t>(i));
    ++stats.samples_written;
    if (!known_series_.contains(key) && new_in_batch.insert(key)) {
      append_series_row(prepared.series_rows, key, s);
      prepared.new_series.push_back(key);
    }
    const schema::Day day = schema::day_of(s.timestamp);
    if (day != seen_day[static_cast<int>(table)]) {
      seen_day[static_cast<int>(table)] = day;
      const Partition partition{table, day};
      if (!known_partitions_.contains(partition)) prepared.partitions.insert(partition);
    }
  }
  if (stats.samples_written == 0) return stats;

  if (Status s = create_partitions(conn, prepared.partitions); !s.ok()) return failed(conn, s);

  auto tx = schema::Transaction::begin(conn);
  if (!tx.ok()) return failed(conn, tx.status());
  Status status;
  if (!prepared.series_rows.empty()) {
    auto created = insert_series(conn, prepared.series_rows);
    if (created.ok()) {
      stats.series_created = *created;
    } else {
      status = created.status();
    }
  }
  std::string chunk;
  for (int t = 0; t < schema::kMeasurementTableCount && status.ok(); ++t) {
    const std::vector<uint32_t>& samples = prepared.table_samples[t];
    if (samples.empty()) continue;
    const auto table = static_cast<MeasurementTable>(t);
    std::size_t next = 0;
    status =
        conn.copy_in("COPY " + schema::table_name(table) + " (" +
                         std::string(schema::table_columns(table)) + ") FROM STDIN",
                     [&] {
                       chunk.clear();
                       for (; next < samples.size() && chunk.size() < kCopyChunkBytes; ++next) {
                         const uint32_t i = samples[next];
                         append_measurement_row(chunk, keys[i], batch[i]);
                       }
                       return std::string_view(chunk);
                     })
            .with_context("writing " + schema::table_name(table));
  }
  if (status.ok()) status = tx->commit();
  if (!status.ok()) {
    tx->rollback();
    // A partition may have been dropped behind the cache (retention): check them all again.
    known_partitions_.clear();
    return failed(conn, status);
  }
  for (int64_t key : prepared.new_series) known_series_.insert(key);
  return stats;
}

Result<std::size_t> CopyWriter::insert_series(pg::Connection& conn,
                                              const std::string& series_rows) {
  // The staging table lives as long as the session and empties itself at every commit. IF NOT
  // EXISTS prints a notice each time; keep stderr for real events.
  auto staged = conn.exec(
      "SET LOCAL client_min_messages = warning;"
      "CREATE TEMP TABLE IF NOT EXISTS tally_new_series (timeseries_key bigint, "
      "timeseries_name text, version int, fields jsonb) ON COMMIT DELETE ROWS");
  if (!staged.ok()) return staged.status().with_context("creating the series staging table");
  Status copied = conn.copy_in(
      "COPY pg_temp.tally_new_series (timeseries_key, timeseries_name, version, fields) "
      "FROM STDIN",
      series_rows);
  if (!copied.ok()) return copied.with_context("staging new series");
  // Key order: two writers inserting overlapping new series lock the rows in the same order,
  // so neither can wait on the other in a cycle.
  auto inserted = conn.exec(
      "INSERT INTO tally.timeseries (timeseries_key, timeseries_name, version, fields) "
      "SELECT timeseries_key, timeseries_name, version, fields FROM pg_temp.tally_new_series "
      "ORDER BY timeseries_key ON CONFLICT (timeseries_key) DO NOTHING");
  if (!inserted.ok()) return inserted.status().with_context("inserting into tally.timeseries");
  return static_cast<std::size_t>(inserted->affected());
}

Status CopyWriter::ensure_partitions(pg::Connection& conn, schema::Day day) {
  std::set<Partition> partitions;
  for (int t = 0; t < schema::kMeasurementTableCount; ++t) {
    const Partition partition{static_cast<MeasurementTable>(t), day};
    if (!known_partitions_.contains(partition)) partitions.insert(partition);
  }
  return failed(conn, create_partitions(conn, partitions));
}

Status CopyWriter::create_partitions(pg::Connection& conn, const std::set<Partition>& partitions) {
  if (partitions.empty()) return {};
  // The advisory lock makes a concurrent creator of the same partition finish first; our
  // IF NOT EXISTS then sees its table instead of failing on a duplicate catalog entry.
  std::string sql = "SET LOCAL client_min_messages = warning; SELECT pg_advisory_xact_lock(" +
                    std::string(kPartitionLockKey) + ")";
  for (const auto& [table, day] : partitions) {
    sql += ";\n";
    sql += schema::partition_ddl(table, day);
  }
  auto tx = schema::Transaction::begin(conn);
  if (!tx.ok()) return tx.status().with_context("creating partitions");
  auto created = conn.exec(sql);
  Status status = created.ok() ? tx->commit() : created.status();
  if (!status.ok()) return status.with_context("creating partitions");
  known_partitions_.insert(partitions.begin(), partitions.end());
  return {};
}

void CopyWriter::clear_caches() {
  known_series_.clear();
  known_partitions_.clear();
}

}  // namespace tally::collector
