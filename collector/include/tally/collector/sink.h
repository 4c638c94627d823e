// The collector's sink (DESIGN.md §5 "Sink"): takes checked samples from the collection threads
// and stores them in Postgres, in batches, through one writer thread — without losing any while
// Postgres is away. docs/sink.md describes the behaviour under faults in full.
//
//   auto sink = Sink::open(options, make_copy_batch_writer(factory)).value();
//   sink->start();
//   sink->push(std::move(checked.accepted));   // any thread, never blocks on I/O
//   …
//   sink->stop();                              // SIGTERM: flush (or spool), then join
//
// - push() appends to an in-memory queue bounded by a sample count (max_queue_samples) and by the
//   samples' approximate heap bytes (max_queue_bytes, see queued_sample_bytes); what does not fit
//   is dropped and counted (dropped_queue_full, or dropped_spool_error while the disk refuses the
//   spool).
// - The queue is journaled: push() packs whole pushes into segments of at most batch_size
//   samples and appends each push to its segment's file under the spool directory with one
//   write(2) (no fsync), so what push() accepted survives the process being killed. A segment's
//   file is deleted when its batch is committed and becomes a spool file when its batch is
//   spooled; the next start replays the segments an earlier run left. A journal that cannot be
//   written (disk full) leaves the samples in memory only: counted (samples_unjournaled), logged
//   once per episode.
// - The writer takes the oldest segment as one write (group commit: every push packed into it)
//   as soon as it is full or its oldest sample has waited batch_interval.
// - When a write fails because Postgres is unreachable, the batch goes back to the front of the
//   queue and the writer retries with a capped exponential backoff. Meanwhile (and while the spool
//   is being replayed) it moves the oldest queued samples, a batch at a time, to the on-disk spool
//   until no more than spool_above_samples samples and spool_above_bytes bytes remain in memory.
//   When Postgres answers again the spool is replayed oldest first (a file is deleted only after
//   its batch committed), then the queue.
// - Samples are dropped only when the spool is at its max_bytes (dropped_spool_full), when the
//   queue is full (dropped_queue_full), when spooling fails during stop() (dropped_spool_error) or
//   when pushed after stop() (dropped_stopped). Every drop is counted.
// - A batch Postgres refuses for its data (SQLSTATE class 22 or 23) is split in halves that are
//   written alone, down to single samples; a single sample it refuses is counted
//   (rejected_database) and logged. Pushed samples must have passed check_storable (the schema
//   check); replayed ones are checked by decode_record.
// - At most one batch may be stored twice: the one whose COMMIT outcome was lost with the
//   connection, or the journal segment or spool file whose batch committed just before the
//   process was killed.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "tally/collector/copy_writer.h"
#include "tally/collector/deps.h"
#include "tally/collector/spool.h"
#include "tally/common/result.h"
#include "tally/common/sample.h"

namespace tally::collector {

// Writes one batch to Postgres. Used by the sink's writer thread only.
class BatchWriter {
 public:
  virtual ~BatchWriter() = default;
  // CopyWriter::write semantics: all of the batch or nothing. Code "connection" when Postgres
  // cannot be reached or the connection broke; "sqlstate_XXXXX" when the server refused.
  virtual Result<WriteStats> write(std::span<const Sample> batch) = 0;
};

// CopyWriter on a connection from `factory`, opened at the first write and again after the
// connection broke (a failed open is a "connection" error).
std::unique_ptr<BatchWriter> make_copy_batch_writer(ConnectionFactory factory);

struct SinkOptions {
  std::size_t batch_size = 5000;                                       // database.batch_size
  std::chrono::microseconds batch_interval = std::chrono::seconds(1);  // database.batch_interval
  std::size_t max_queue_samples = 1'000'000;                           // database.max_queue_samples
  // The same queue bounded by memory: the sum of queued_sample_bytes() over the queued samples
  // (database.max_queue_bytes). Whichever bound is reached first applies.
  std::size_t max_queue_bytes = std::size_t{128} << 20;
  // While Postgres is unreachable or the spool is being replayed, queued samples are spooled
  // (oldest first, a segment at a time) as long as more than spool_above_samples samples or more
  // than spool_above_bytes bytes are queued. 0 means half of max_queue_samples / max_queue_bytes.
  std::size_t spool_above_samples = 0;
  std::size_t spool_above_bytes = 0;
  // A push that does not fit waits up to this long for the writer to make room before dropping
  // what does not fit (queue_full); 0: drops at once. It waits only when waiting can help: the
  // push would fit in an empty queue, the sink is not stopping and the spool is not failing.
  std::chrono::milliseconds max_push_wait{0};
  SpoolOptions spool;  // dir "<state_dir>/spool", max_bytes = database.spool_max_bytes
  // Reconnect backoff: doubles from min to max after each failure, reset by a successful write.
  // The same backoff delays the next spool attempt after a spool write error.
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{10'000};
};

// Insert latency (one observation per successful write), Prometheus-style buckets kept minimal:
// counts[i] holds observations ≤ kBounds[i] and > kBounds[i-1]; the last count is above them all.
struct LatencyHistogram {
  static constexpr std::array<double, 12> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1,    2.5,   10};
  std::array<uint64_t, kBounds.size() + 1> counts{};
  uint64_t count = 0;
  double sum_seconds = 0;
};

// A snapshot of the sink's counters (each read atomically, not all at one instant). With no spool
// left from an earlier run, whenever the writer is between two steps (always after stop()):
//   samples_queued == samples_stored + rejected_database + dropped_spool_full + dropped_spool_error
//                     + queue_depth + in_flight + (samples_spooled - samples_replayed)
// where the last term is what the spool holds (including files later found corrupt). Samples
// push() drops for spool_error count as queued too (queue_full and stopped ones do not).
struct SinkStats {
  uint64_t samples_queued = 0;    // accepted by push()
  uint64_t samples_stored = 0;    // rows written to Postgres, from the queue or the spool
  uint64_t samples_spooled = 0;   // written to spool files
  uint64_t samples_replayed = 0;  // read back out of spool files (then stored or rejected)
  uint64_t dropped_queue_full = 0;
  uint64_t dropped_spool_full = 0;
  uint64_t dropped_spool_error = 0;  // the disk refused the spool: at stop(), or push() with
                                     // memory full meanwhile
  uint64_t dropped_stopped = 0;
  uint64_t rejected_database = 0;
  uint64_t batches_written = 0;
  uint64_t write_failures = 0;
  uint64_t spool_corrupt_files = 0;
  uint64_t samples_unjournaled = 0;  // queued in memory only: their journal append failed
  uint64_t push_waits = 0;   // pushes that found the queue full and waited for room (max_push_wait)
  uint64_t queue_depth = 0;  // samples in memory, not counting in_flight
  uint64_t in_flight = 0;    // samples the writer holds right now (being written or spooled)
  uint64_t queue_bytes = 0;  // queued_sample_bytes() of the queue_depth samples
  uint64_t in_flight_bytes = 0;  // … and of the in_flight ones
  uint64_t spool_bytes = 0;      // spool files to replay and .corrupt files (see spool.h)
  uint64_t spool_files = 0;
  bool database_up = true;  // false from a failed write (or connect) until the next success
  LatencyHistogram insert_latency;
};

// What one queued sample costs in memory, estimated cheaply (no allocator calls): the Sample
// object itself plus the heap blocks it owns — the field vectors, strings longer than the small
// string buffer, a histogram's bins, a bytes datum — each rounded up as glibc's malloc does
// (8 bytes of header, 16-byte granularity, 32 at least). What max_queue_bytes bounds.
std::size_t queued_sample_bytes(const Sample& sample);

class Sink {
 public:
  // Opens the spool (batches and journal segments an earlier run left there are replayed first,
  // oldest first). Code "spool_io" when
  // the spool directory cannot be created or read. `clock` must outlive the sink.
  static Result<std::unique_ptr<Sink>> open(SinkOptions options,
                                            std::unique_ptr<BatchWriter> writer,
                                            const Clock& clock = steady_clock());
  ~Sink();  // stop()
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // Starts the writer thread. Without it nothing is written until run_once() is called.
  void start();

  // Thread-safe. Queues as many samples as fit (in order) and returns how many; the rest are
  // dropped and counted. When they do not all fit, first waits up to max_push_wait for room.
  // Encodes the samples for the journal, takes a short lock, then appends them to the journal (one
  // write(2) per batch_size samples, into the page cache: no fsync).
  std::size_t push(std::vector<Sample> samples);

  // Flushes and joins: queued samples are written if Postgres is up and the spool is empty, else
  // spooled; the spool itself is left for the next start. Waits for a write in progress. Without
  // start(), the flush runs on the calling thread. Idempotent; later pushes are dropped.
  void stop();

  SinkStats stats() const;

  // Thread-safe. True while the queue holds more than 7/8 of either bound (max_queue_samples,
  // max_queue_bytes): Postgres is not keeping up and the spool is not taking the excess, so a
  // collection started now would mostly be dropped as queue_full. The scheduler skips polls
  // meanwhile (reason queue_full) instead of fetching and decoding samples it cannot keep. The
  // eighth left is room for the collections already running.
  bool nearly_full() const;

  // One unit of the writer's work that is due at clock.now(): write, spool or replay one batch.
  // Returns false when nothing is due. The writer thread loops on this; tests drive it directly
  // with a fake clock instead of calling start(). Not to be mixed with start().
  bool run_once();
  // When run_once() next has work if nothing is pushed meanwhile (time_point::max() for never).
  Clock::time_point next_due() const;

 private:
  class Impl;
  explicit Sink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::collector
