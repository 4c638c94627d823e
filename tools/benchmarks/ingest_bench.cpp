// Ingest benchmark (DESIGN.md §10, issue 8): the collector's CopyWriter storing batches of the
// bench mix into Postgres, against a raw COPY of the same rows, pre-formatted, into the same
// tables in the same transaction shape — measured in the same run, rounds interleaved so that
// both sides see the same machine noise. Steady state: the series and partitions are written by
// a warm-up batch first, as in a collector that has been running for a while.
//
//   tally_ingest_bench --url postgresql://… [--producers 10] [--samples 1000] [--rounds 10]
//
// Prints one JSON line per figure on stdout (tools/bench collects them).
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "copy_format.h"
#include "tally/collector/copy_writer.h"
#include "tally/common/pg.h"
#include "tally/common/timeseries_key.h"
#include "tally/schema/measurement_tables.h"
#include "tally/schema/migrations.h"
#include "tally/schema/transaction.h"
#include "workload.h"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "tally_ingest_bench: %s\n", what.c_str());
  std::exit(1);
}

// One collection round: every producer's samples at scrape `scrape`.
std::vector<tally::Sample> round_samples(std::size_t producers, std::size_t per_producer,
                                         int64_t scrape) {
  std::vector<tally::Sample> out;
  out.reserve(producers * per_producer);
  for (std::size_t p = 0; p < producers; ++p) {
    for (std::size_t i = 0; i < per_producer; ++i) {
      out.push_back(tally::bench::mix_sample(p, i, scrape));
    }
  }
  return out;
}

// The baseline: rows formatted before the clock starts, then BEGIN, one COPY per table, COMMIT.
double raw_copy_seconds(tally::pg::Connection& conn, const std::vector<tally::Sample>& batch) {
  std::array<std::string, tally::schema::kMeasurementTableCount> rows;
  for (const tally::Sample& s : batch) {
    const auto table = tally::schema::measurement_table(tally::datum_type(s.datum));
    tally::collector::append_measurement_row(rows[static_cast<int>(table)],
                                             tally::timeseries_key(s), s);
  }
  const auto start = Clock::now();
  auto tx = tally::schema::Transaction::begin(conn);
  if (!tx.ok()) die("BEGIN: " + tx.error());
  for (int t = 0; t < tally::schema::kMeasurementTableCount; ++t) {
    if (rows[t].empty()) continue;
    const auto table = static_cast<tally::schema::MeasurementTable>(t);
    tally::Status st =
        conn.copy_in("COPY " + tally::schema::table_name(table) + " (" +
                         std::string(tally::schema::table_columns(table)) + ") FROM STDIN",
                     rows[t]);
    if (!st.ok()) die("raw COPY: " + st.message());
  }
  if (tally::Status st = tx->commit(); !st.ok()) die("COMMIT: " + st.message());
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double copy_writer_seconds(tally::pg::Connection& conn, tally::collector::CopyWriter& writer,
                           const std::vector<tally::Sample>& batch) {
  const auto start = Clock::now();
  auto stats = writer.write(conn, batch);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!stats.ok()) die("CopyWriter: " + stats.error());
  if (stats->samples_written != batch.size()) die("CopyWriter rejected samples");
  return seconds;
}

}  // namespace

using tally::Status;

int main(int argc, char** argv) {
  std::string url = std::getenv("TALLY_DATABASE_URL") ? std::getenv("TALLY_DATABASE_URL") : "";
  std::size_t producers = 10;
  std::size_t per_producer = 1000;
  int rounds = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--url")
      url = argv[i + 1];
    else if (flag == "--producers")
      producers = std::strtoul(argv[i + 1], nullptr, 10);
    else if (flag == "--samples")
      per_producer = std::strtoul(argv[i + 1], nullptr, 10);
    else if (flag == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else
      die("unknown flag " + flag);
  }
  if (url.empty()) die("no --url and no TALLY_DATABASE_URL");

  auto conn = tally::pg::Connection::open(url);
  if (!conn.ok()) die("connect: " + conn.error());
  if (Status st = tally::schema::apply_migrations(**conn); !st.ok())
    die("migrations: " + st.message());

  tally::collector::CopyWriter writer;
  copy_writer_seconds(**conn, writer, round_samples(producers, per_producer, 0));  // warm-up

  double raw_total = 0;
  double tally_total = 0;
  std::size_t samples = 0;
  for (int r = 1; r <= rounds; ++r) {
    // Two scrapes per round, one for each side, so neither writes the other's rows; the side
    // that goes first alternates.
    const auto a = round_samples(producers, per_producer, 2 * r);
    const auto b = round_samples(producers, per_producer, 2 * r + 1);
    if (r % 2) {
      raw_total += raw_copy_seconds(**conn, a);
      tally_total += copy_writer_seconds(**conn, writer, b);
    } else {
      tally_total += copy_writer_seconds(**conn, writer, a);
      raw_total += raw_copy_seconds(**conn, b);
    }
    samples += a.size();
  }
  const double tally_rate = static_cast<double>(samples) / tally_total;
  const double raw_rate = static_cast<double>(samples) / raw_total;
  std::printf(
      "{\"figure\": \"ingest: CopyWriter into Postgres\", \"unit\": \"samples/s\", "
      "\"value\": %.0f, \"baseline_name\": \"raw COPY of the same rows\", \"baseline\": %.0f, "
      "\"target\": \">= 0.8 x baseline\", \"target_ratio\": 0.8, \"higher_is_better\": true, "
      "\"note\": \"%zu producers x %zu samples per batch, %d rounds\"}\n",
      tally_rate, raw_rate, producers, per_producer, rounds);
  return 0;
}
