// The sink's on-disk spool (DESIGN.md §5 "Sink"): batches that could not be written to Postgres,
// kept under <state_dir>/spool/ until they can be replayed, oldest first.
//
// Each batch is one file named by a sequence number that only grows, "00000000000000000042.batch",
// written as "<name>.tmp", fsynced, renamed and the directory fsynced, so a crash leaves either
// the whole file or a .tmp that the next open() deletes. A file is a 32-byte header and a payload
// (all integers little-endian):
//
//   0  magic "TLYSPOOL"       16  u64 payload length
//   8  u32 format version (1)  24  u64 XXH64 (seed 0) of header bytes 0..23, then the payload
//   12 u32 sample count        32  payload: encode_collect_response of one "ok" item
//
// A file that fails any check (magic, version, length, checksum, JSON, sample count) is moved
// aside to "<name>.corrupt", logged and counted, and never replayed; .corrupt files are left for
// an operator and do not count towards max_bytes.
//
// Not thread-safe: one owner (the sink's writer thread) calls everything except the counters,
// which any thread may read.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tally/common/result.h"
#include "tally/common/sample.h"

namespace tally::collector {

struct SpoolOptions {
  std::string dir;                  // e.g. "<state_dir>/spool"; created if missing
  uint64_t max_bytes = 1ull << 30;  // files (headers included) never exceed this in total
};

struct SpoolBatch {
  uint64_t sequence = 0;
  std::vector<Sample> samples;
};

inline constexpr std::size_t kSpoolHeaderBytes = 32;

// "00000000000000000042.batch"
std::string spool_file_name(uint64_t sequence);

class Spool {
 public:
  // Creates the directory, deletes leftover .tmp files and indexes the .batch files; the next
  // sequence number follows the highest one found (.batch, .tmp or .corrupt). Code "spool_io"
  // when the directory cannot be created or read.
  static Result<std::unique_ptr<Spool>> open(SpoolOptions options);

  // Writes `samples` as one new batch and returns its sequence number. Code "spool_full" (nothing
  // written) when the file would take bytes() over max_bytes; "spool_io" on a write error (disk
  // full, permissions), leaving nothing behind.
  Result<uint64_t> append(std::span<const Sample> samples);

  // The oldest batch, read and verified; nullopt when the spool is empty. Files that fail
  // verification or cannot be read are moved aside and counted on the way. An error (code
  // "spool_io") only for conditions that may pass, such as running out of file descriptors.
  Result<std::optional<SpoolBatch>> read_oldest();

  // Deletes a batch (once it is committed) and fsyncs the directory, so a crash cannot bring it
  // back. Forgetting it happens even if the unlink fails (the error is returned and logged).
  Status remove(uint64_t sequence);

  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  std::size_t files() const { return files_.load(std::memory_order_relaxed); }
  bool empty() const { return files() == 0; }
  uint64_t corrupt_files() const { return corrupt_.load(std::memory_order_relaxed); }
  uint64_t max_bytes() const { return options_.max_bytes; }
  const std::string& dir() const { return options_.dir; }
  uint64_t next_sequence() const { return next_sequence_; }

 private:
  explicit Spool(SpoolOptions options) : options_(std::move(options)) {}
  std::string path(uint64_t sequence) const;
  void set_aside(uint64_t sequence, const std::string& why);
  void forget(uint64_t sequence);

  SpoolOptions options_;
  std::map<uint64_t, uint64_t> batches_;  // sequence → file size
  uint64_t next_sequence_ = 1;
  std::atomic<uint64_t> bytes_{0};
  std::atomic<std::size_t> files_{0};
  std::atomic<uint64_t> corrupt_{0};
};

}  // namespace tally::collector
