// Ingest benchmark (DESIGN.md §10, issue 8): the collector's CopyWriter storing batches of the
// bench mix into Postgres, against a raw COPY of the same rows, pre-formatted, into the same
// tables in the same transaction shape — measured in the same run, rounds interleaved so that
// both sides see the same machine noise. Steady state: the series and partitions are written by
// a warm-up batch first, as in a collector that has been running for a while.
//
//   tally_ingest_bench --url postgresql://… [--producers 10] [--samples 1000] [--rounds 10]
//   tally_ingest_bench --url postgresql://… --raw-seconds S [--batch 5000] BODY.json…
//
// Prints one JSON line per figure on stdout (tools/bench collects them).
//
// With --raw-seconds S it measures only the raw side, as the baseline of the end-to-end figure:
// the stand-in producers' bodies (`tally_mix_body json`, so the very rows the collector stores)
// decoded and formatted in batches of --batch samples before the clock starts, then BEGIN, one
// COPY per table, COMMIT for each batch in turn for S seconds, into the tables in whatever state
// the end-to-end run has brought them to. Prints {"raw_copy_rate": samples/s, ...}.
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "copy_format.h"
#include "tally/collector/copy_writer.h"
#include "tally/common/collect_json.h"
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

// One transaction's rows: one COPY buffer per measurement table.
using TableRows = std::array<std::string, tally::schema::kMeasurementTableCount>;

TableRows format_rows(const std::vector<tally::Sample>& batch) {
  TableRows rows;
  for (const tally::Sample& s : batch) {
    const auto table = tally::schema::measurement_table(tally::datum_type(s.datum));
    tally::collector::append_measurement_row(rows[static_cast<int>(table)], s.key(), s);
  }
  return rows;
}

// BEGIN, one COPY per table, COMMIT.
void copy_rows(tally::pg::Connection& conn, const TableRows& rows) {
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
}

// The baseline: rows formatted before the clock starts, then BEGIN, one COPY per table, COMMIT.
double raw_copy_seconds(tally::pg::Connection& conn, const std::vector<tally::Sample>& batch) {
  const TableRows rows = format_rows(batch);
  const auto start = Clock::now();
  copy_rows(conn, rows);
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The end-to-end figure's baseline (--raw-seconds): the stand-in producers' bodies decoded
// (not timed) into batches of `batch` samples, copied in turn until `seconds` have passed.
void raw_copy_for(tally::pg::Connection& conn, const std::vector<std::string>& body_paths,
                  std::size_t batch, double seconds) {
  struct Batch {
    TableRows rows;
    std::size_t samples;
  };
  std::vector<Batch> batches;
  std::vector<tally::Sample> pending;
  auto close_batch = [&] {
    batches.push_back({format_rows(pending), pending.size()});
    pending.clear();
  };
  std::set<tally::schema::Day> days;
  for (const std::string& path : body_paths) {
    std::ifstream in(path, std::ios::binary);
    const std::string body{std::istreambuf_iterator<char>(in), {}};
    auto items = tally::decode_collect_response(body);
    if (!items.ok()) die(path + ": " + items.error());
    for (tally::CollectItem& item : *items) {
      for (tally::Sample& s : item.samples) {
        days.insert(tally::schema::day_of(s.timestamp));
        pending.push_back(std::move(s));
        if (pending.size() == batch) close_batch();
      }
    }
  }
  if (!pending.empty()) close_batch();
  if (batches.empty()) die("no samples in the bodies");
  // The tables' partitions for those days (the collector has made them in an end-to-end run).
  tally::collector::CopyWriter partitions;
  for (tally::schema::Day day : days) {
    if (tally::Status st = partitions.ensure_partitions(conn, day); !st.ok()) {
      die("creating partitions: " + st.message());
    }
  }
  std::size_t samples = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  for (std::size_t i = 0; elapsed < seconds; i = (i + 1) % batches.size()) {
    copy_rows(conn, batches[i].rows);
    samples += batches[i].samples;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  std::printf("{\"raw_copy_rate\": %.0f, \"samples\": %zu, \"seconds\": %.2f}\n",
              static_cast<double>(samples) / elapsed, samples, elapsed);
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
  double raw_seconds = 0;
  std::size_t batch = 5000;
  std::vector<std::string> bodies;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!arg.starts_with("--")) {
      bodies.push_back(arg);
      continue;
    }
    if (i + 1 == argc) die(arg + " needs a value");
    const char* value = argv[++i];
    if (arg == "--url")
      url = value;
    else if (arg == "--producers")
      producers = std::strtoul(value, nullptr, 10);
    else if (arg == "--samples")
      per_producer = std::strtoul(value, nullptr, 10);
    else if (arg == "--rounds")
      rounds = std::atoi(value);
    else if (arg == "--raw-seconds")
      raw_seconds = std::strtod(value, nullptr);
    else if (arg == "--batch")
      batch = std::strtoul(value, nullptr, 10);
    else
      die("unknown flag " + arg);
  }
  if (url.empty()) die("no --url and no TALLY_DATABASE_URL");

  auto conn = tally::pg::Connection::open(url);
  if (!conn.ok()) die("connect: " + conn.error());
  if (Status st = tally::schema::apply_migrations(**conn); !st.ok())
    die("migrations: " + st.message());
  if (raw_seconds > 0) {
    if (batch == 0 || bodies.empty()) die("--raw-seconds needs --batch > 0 and body files");
    raw_copy_for(**conn, bodies, batch, raw_seconds);
    return 0;
  }

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
