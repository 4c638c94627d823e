// The sink's on-disk state under <state_dir>/spool/ (DESIGN.md §5 "Sink"; docs/sink.md): the
// journal of what is queued in memory, and the spool of batches that could not be written to
// Postgres, both replayed oldest first by the next start.
//
// Every file holds one or more records (spool_record.h: a checksummed header and the samples in
// a binary encoding).
//
// Files are named by a sequence number that only grows, shared by both kinds:
// - "00000000000000000042.journal": a journal segment, the samples of one batch-to-be, written
//   by push() one record per push with one write(2) each and no fsync (the page cache survives
//   the process being killed, not a power loss). Deleted once its batch is committed, renamed to
//   .batch (after an fsync) when its batch has to be spooled. A torn last record (the process
//   died inside a write) is ignored when the segment is replayed.
// - "00000000000000000042.batch": a spooled batch, complete and fsynced: written as "<name>.tmp",
//   fsynced, renamed and the directory fsynced, or a journal segment renamed so.
// A .batch or the records before a journal's tail that fail a check (magic, version, length,
// checksum, payload, sample count) are moved aside to "<name>.corrupt", logged and counted, and
// never replayed. .corrupt files count towards max_bytes; when room is needed, the oldest are
// deleted before any batch is refused.
//
// Not thread-safe unless said otherwise: one owner (the sink's writer thread) calls everything
// except open_segment(), JournalSegment::append() and the counters, which any thread may call.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tally/collector/spool_record.h"
#include "tally/common/result.h"
#include "tally/common/sample.h"

namespace tally::collector {

struct SpoolOptions {
  std::string dir;                  // e.g. "<state_dir>/spool"; created if missing
  uint64_t max_bytes = 1ull << 30;  // .batch and .corrupt files never exceed this in total
};

struct SpoolBatch {
  uint64_t sequence = 0;
  std::vector<Sample> samples;
};

// "00000000000000000042.batch" / "00000000000000000042.journal"
std::string spool_file_name(uint64_t sequence);
std::string journal_file_name(uint64_t sequence);

// A journal segment: an open file that push() appends records to. Shared by the sink's queue and
// the pushes writing to it; the file stays open until the last owner lets go.
class JournalSegment {
 public:
  ~JournalSegment();
  JournalSegment(const JournalSegment&) = delete;
  JournalSegment& operator=(const JournalSegment&) = delete;

  uint64_t sequence() const { return sequence_; }
  const std::string& path() const { return path_; }

  // Announces an append() to come; called while the segment still takes pushes (under the
  // sink's lock), so that save() can wait for every announced append to be done. Thread-safe.
  void begin_append();
  // Appends one record with one write(2) (more only after a short write). Thread-safe. On an
  // error (disk full, file size limit) the file is cut back to its last whole record, the segment
  // is no longer complete(), and the status (code "spool_io") names the path and the errno.
  Status append(std::string_view record);
  // Every append so far reached the file (and the file could be created).
  bool complete() const;
  // No append will be announced any more (the segment takes no more pushes): the file is closed
  // as soon as the announced ones are done, so a long queue does not hold a descriptor per
  // segment. Thread-safe.
  void seal();

  // A refused batch is split into pieces written apart; the file goes when every piece is done.
  // Writer thread only.
  void add_piece() { ++pieces_; }
  bool release_piece() { return --pieces_ == 0; }
  bool whole() const { return pieces_ == 1; }

 private:
  friend class Spool;
  JournalSegment(uint64_t sequence, std::string path, int fd, Status open_error);
  void wait_for_appends(std::unique_lock<std::mutex>& lock);
  void close_if_sealed();  // mu_ held

  const uint64_t sequence_;
  const std::string path_;
  int pieces_ = 1;

  mutable std::mutex mu_;
  std::condition_variable appended_;
  int fd_;               // mu_; -1 when the file could not be created (or was closed)
  uint64_t size_ = 0;    // mu_: bytes of whole records
  int pending_ = 0;      // mu_: announced appends not done yet
  bool complete_;        // mu_
  bool sealed_ = false;  // mu_: takes no more appends
};

class Spool {
 public:
  // Creates the directory, deletes leftover .tmp files (and a .journal whose .batch exists: the
  // batch is its complete copy), and indexes the .batch and .journal files to replay and the
  // .corrupt ones; the next sequence number follows the highest one found. Code "spool_io" when
  // the directory cannot be created or read.
  static Result<std::unique_ptr<Spool>> open(SpoolOptions options);

  // Creates the next journal segment. Thread-safe. When the file cannot be created the segment
  // is still returned, not complete(), and `error` (if given) says why.
  std::shared_ptr<JournalSegment> open_segment(Status* error = nullptr);

  // Makes `samples` a spooled batch. When `segment` holds exactly them (complete, not split), it
  // is fsynced and renamed to .batch (waiting for appends in progress); otherwise the samples are
  // written as a new .batch file (with the segment's sequence number when it is whole, so the
  // order is kept) and the segment's piece is released. Returns the batch's sequence number.
  // Code "spool_full" (nothing written; the segment is left alone) when the batch would take
  // bytes() over max_bytes even after deleting every .corrupt file; "spool_io" on a write error
  // (disk full, permissions), leaving nothing new behind.
  Result<uint64_t> save(std::span<const Sample> samples,
                        const std::shared_ptr<JournalSegment>& segment = nullptr);

  // Releases a piece of a journal segment whose samples are done (committed, or dropped) and
  // deletes its file once every piece is; no fsync (a power loss may bring it back: replayed
  // once more). Null is allowed.
  void release(const std::shared_ptr<JournalSegment>& segment);

  // The oldest batch (a .batch, or a journal segment an earlier run left), read and verified;
  // nullopt when the spool is empty. Files that fail verification or cannot be read are moved
  // aside and counted on the way. An error (code "spool_io") only for conditions that may pass,
  // such as running out of file descriptors.
  Result<std::optional<SpoolBatch>> read_oldest();

  // Deletes a batch (once it is committed) and fsyncs the directory, so a crash cannot bring it
  // back. Forgetting it happens even if the unlink fails (the error is returned and logged).
  Status remove(uint64_t sequence);

  // Bytes of the batches to replay and of the .corrupt files (what counts towards max_bytes).
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  // Batches to replay.
  std::size_t files() const { return files_.load(std::memory_order_relaxed); }
  bool empty() const { return files() == 0; }
  uint64_t corrupt_files() const { return corrupt_.load(std::memory_order_relaxed); }
  uint64_t max_bytes() const { return options_.max_bytes; }
  const std::string& dir() const { return options_.dir; }
  uint64_t next_sequence() const { return next_sequence_.load(); }

 private:
  struct Entry {
    uint64_t size = 0;
    bool journal = false;  // a journal segment left by an earlier run: its tail may be torn
  };
  explicit Spool(SpoolOptions options) : options_(std::move(options)) {}
  std::string path(uint64_t sequence, const Entry& entry) const;
  Result<uint64_t> write_batch(std::span<const Sample> samples, uint64_t sequence);
  Result<uint64_t> promote(JournalSegment& segment);
  // Deletes the oldest .corrupt files until `size` more bytes fit; false if they cannot.
  bool make_room(uint64_t size);
  void set_aside(uint64_t sequence, const std::string& why);
  void forget(uint64_t sequence);
  void index(uint64_t sequence, Entry entry);

  SpoolOptions options_;
  std::map<uint64_t, Entry> batches_;           // sequence → file to replay
  std::map<uint64_t, uint64_t> corrupt_files_;  // sequence → size of "<name>.corrupt"
  std::atomic<uint64_t> next_sequence_{1};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<std::size_t> files_{0};
  std::atomic<uint64_t> corrupt_{0};
};

}  // namespace tally::collector
