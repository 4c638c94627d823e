#include "tally/collector/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "tally/common/log.h"

namespace tally::collector {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kBatchSuffix = ".batch";
constexpr std::string_view kJournalSuffix = ".journal";
constexpr std::string_view kTmpSuffix = ".tmp";
constexpr std::string_view kCorruptSuffix = ".corrupt";
constexpr std::size_t kSequenceDigits = 20;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

Status io_error(std::string_view what, const std::string& path, int err) {
  return Status::error(std::string(what) + " " + path + ": " + errno_text(err), "spool_io");
}

// Parses the 20-digit sequence at the start of `name`, followed by `rest` exactly.
std::optional<uint64_t> parse_sequence(std::string_view name, std::string_view rest) {
  if (name.size() != kSequenceDigits + rest.size()) return std::nullopt;
  if (name.substr(kSequenceDigits) != rest) return std::nullopt;
  uint64_t v = 0;
  for (std::size_t i = 0; i < kSequenceDigits; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    if (v > (UINT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

Status fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("opening directory", dir, errno);
  Status s;
  if (::fsync(fd) != 0) s = io_error("syncing directory", dir, errno);
  ::close(fd);
  return s;
}

// Writes all of `data` at the file's offset (one write(2) unless the kernel writes less).
// Returns 0 or the errno.
int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

Status write_file(const std::string& path, std::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("creating", path, errno);
  if (const int err = write_all(fd, data); err != 0) {
    ::close(fd);
    return io_error("writing", path, err);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return io_error("syncing", path, err);
  }
  if (::close(fd) != 0) return io_error("closing", path, errno);
  return {};
}

// Reads a whole file. Errors: "spool_io" for conditions that may pass, "corrupt" otherwise.
Result<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const bool transient = err == EMFILE || err == ENFILE || err == ENOMEM || err == EINTR;
    return Status::error("opening " + path + ": " + errno_text(err),
                         transient ? "spool_io" : "corrupt");
  }
  std::string data;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Status::error("reading " + path + ": " + errno_text(err), "corrupt");
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return data;
}

struct Decoded {
  std::vector<Sample> samples;
  std::size_t good_bytes = 0;  // the whole records at the start
  std::string error;           // what is wrong with the rest ("" when nothing)
};

// Decodes the records of a file, up to the first one that fails a check.
Decoded decode_records(std::string_view data) {
  Decoded d;
  if (data.empty()) d.error = "empty file";
  while (d.good_bytes < data.size()) {
    auto n = decode_record(data.substr(d.good_bytes), d.samples);
    if (!n.ok()) {
      d.error = "record at byte " + std::to_string(d.good_bytes) + ": " + n.error();
      break;
    }
    d.good_bytes += *n;
  }
  return d;
}

std::string sequence_name(uint64_t sequence, std::string_view suffix) {
  std::string digits = std::to_string(sequence);
  return std::string(kSequenceDigits - digits.size(), '0') + digits + std::string(suffix);
}

}  // namespace

std::string spool_file_name(uint64_t sequence) { return sequence_name(sequence, kBatchSuffix); }
std::string journal_file_name(uint64_t sequence) { return sequence_name(sequence, kJournalSuffix); }

// --- JournalSegment ---

JournalSegment::JournalSegment(uint64_t sequence, std::string path, int fd, Status open_error)
    : sequence_(sequence), path_(std::move(path)), fd_(fd), complete_(open_error.ok()) {}

JournalSegment::~JournalSegment() {
  if (fd_ >= 0) ::close(fd_);
}

void JournalSegment::begin_append() {
  std::lock_guard lock(mu_);
  ++pending_;
}

Status JournalSegment::append(std::string_view record) {
  std::unique_lock lock(mu_);
  Status s;
  if (fd_ < 0) {
    s = Status::error("journal " + path_ + " could not be created", "spool_io");
  } else if (const int err = write_all(fd_, record); err != 0) {
    s = io_error("appending to", path_, err);
    // Cut a partial record off, so that later appends stay readable behind the whole ones.
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  } else {
    size_ += record.size();
  }
  if (!s.ok()) complete_ = false;
  if (--pending_ == 0) {
    appended_.notify_all();
    close_if_sealed();
  }
  return s;
}

void JournalSegment::seal() {
  std::lock_guard lock(mu_);
  sealed_ = true;
  close_if_sealed();
}

void JournalSegment::close_if_sealed() {
  if (sealed_ && pending_ == 0 && fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

bool JournalSegment::complete() const {
  std::lock_guard lock(mu_);
  return complete_;
}

void JournalSegment::wait_for_appends(std::unique_lock<std::mutex>& lock) {
  appended_.wait(lock, [&] { return pending_ == 0; });
}

// --- Spool ---

std::string Spool::path(uint64_t sequence, const Entry& entry) const {
  return options_.dir + "/" +
         (entry.journal ? journal_file_name(sequence) : spool_file_name(sequence));
}

void Spool::index(uint64_t sequence, Entry entry) {
  bytes_ += entry.size;
  batches_.insert_or_assign(sequence, entry);
  files_ = batches_.size();
}

Result<std::unique_ptr<Spool>> Spool::open(SpoolOptions options) {
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return Status::error("creating " + options.dir + ": " + ec.message(), "spool_io");
  std::unique_ptr<Spool> spool(new Spool(std::move(options)));
  const std::string& dir = spool->options_.dir;
  const std::string batch_tmp = std::string(kBatchSuffix) + std::string(kTmpSuffix);
  const std::string batch_corrupt = std::string(kBatchSuffix) + std::string(kCorruptSuffix);
  const std::string journal_corrupt = std::string(kJournalSuffix) + std::string(kCorruptSuffix);

  uint64_t highest = 0;
  std::map<uint64_t, uint64_t> journals;  // sequence → size
  auto it = fs::directory_iterator(dir, ec);
  if (ec) return Status::error("reading " + dir + ": " + ec.message(), "spool_io");
  for (const fs::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    const auto size = [&]() -> Result<uint64_t> {
      std::error_code size_ec;
      const uint64_t n = entry.file_size(size_ec);
      if (size_ec) {
        return Status::error("reading " + entry.path().string() + ": " + size_ec.message(),
                             "spool_io");
      }
      return n;
    };
    std::optional<uint64_t> seq;
    if ((seq = parse_sequence(name, kBatchSuffix))) {
      auto n = size();
      if (!n.ok()) return n.status();
      spool->index(*seq, {*n, false});
    } else if ((seq = parse_sequence(name, kJournalSuffix))) {
      auto n = size();
      if (!n.ok()) return n.status();
      journals.emplace(*seq, *n);
    } else if (name.ends_with(kTmpSuffix)) {
      // A write that did not reach its rename: its batch was never reported as spooled.
      seq = parse_sequence(name, batch_tmp);
      fs::remove(entry.path(), ec);
      log_warn("spool_tmp_deleted", {{"file", entry.path().string()}});
    } else if ((seq = parse_sequence(name, batch_corrupt)) ||
               (seq = parse_sequence(name, journal_corrupt))) {
      auto n = size();
      if (!n.ok()) return n.status();
      spool->corrupt_files_[*seq] += *n;
      spool->bytes_ += *n;
    } else {
      log_warn("spool_unknown_file", {{"file", entry.path().string()}});
    }
    if (seq) highest = std::max(highest, *seq);
  }
  for (const auto& [seq, size] : journals) {
    if (spool->batches_.contains(seq)) {
      // Spooled completely before the process died; the journal holds the same samples.
      const std::string p = dir + "/" + journal_file_name(seq);
      fs::remove(p, ec);
      log_info("journal_superseded", {{"file", p}});
      continue;
    }
    spool->index(seq, {size, true});
  }
  spool->next_sequence_ = highest + 1;
  if (!spool->batches_.empty() || !spool->corrupt_files_.empty()) {
    log_info("spool_opened", {{"dir", dir},
                              {"files", std::to_string(spool->batches_.size())},
                              {"journal_segments", std::to_string(journals.size())},
                              {"corrupt_files", std::to_string(spool->corrupt_files_.size())},
                              {"bytes", std::to_string(spool->bytes())}});
  }
  return spool;
}

std::shared_ptr<JournalSegment> Spool::open_segment(Status* error) {
  const uint64_t sequence = next_sequence_.fetch_add(1);
  std::string p = options_.dir + "/" + journal_file_name(sequence);
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  Status s = fd < 0 ? io_error("creating", p, errno) : Status();
  if (error) *error = s;
  return std::shared_ptr<JournalSegment>(new JournalSegment(sequence, std::move(p), fd, s));
}

bool Spool::make_room(uint64_t size) {
  while (bytes() + size > options_.max_bytes && !corrupt_files_.empty()) {
    const auto [seq, n] = *corrupt_files_.begin();
    corrupt_files_.erase(corrupt_files_.begin());
    bytes_ -= n;
    for (std::string_view suffix : {kBatchSuffix, kJournalSuffix}) {
      const std::string p =
          options_.dir + "/" + sequence_name(seq, suffix) + std::string(kCorruptSuffix);
      if (::unlink(p.c_str()) == 0) log_warn("spool_corrupt_deleted", {{"file", p}});
    }
  }
  return bytes() + size <= options_.max_bytes;
}

namespace {
Status full_error(uint64_t bytes, uint64_t max_bytes) {
  return Status::error(
      "spool is full (" + std::to_string(bytes) + " of " + std::to_string(max_bytes) + " bytes)",
      "spool_full");
}
}  // namespace

Result<uint64_t> Spool::write_batch(std::span<const Sample> samples, uint64_t sequence) {
  const std::string record = encode_record(samples);
  if (!make_room(record.size())) return full_error(bytes(), options_.max_bytes);
  const Entry entry{record.size(), false};
  const std::string final_path = path(sequence, entry);
  const std::string tmp_path = final_path + std::string(kTmpSuffix);
  Status s = write_file(tmp_path, record);
  if (s.ok() && ::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    s = io_error("renaming", tmp_path, errno);
  }
  if (!s.ok()) {
    ::unlink(tmp_path.c_str());
    return s;
  }
  // Without this the rename may not survive a power loss; the file itself is already synced.
  if (Status d = fsync_dir(options_.dir); !d.ok()) log_warn("spool_sync", {{"error", d.message()}});
  index(sequence, entry);
  return sequence;
}

Result<uint64_t> Spool::promote(JournalSegment& segment) {
  std::unique_lock lock(segment.mu_);
  segment.wait_for_appends(lock);
  if (!make_room(segment.size_)) return full_error(bytes(), options_.max_bytes);
  const uint64_t sequence = segment.sequence_;
  const Entry entry{segment.size_, false};
  const std::string final_path = path(sequence, entry);
  // A sealed segment's file is closed already: any descriptor of it can sync it.
  const int fd =
      segment.fd_ >= 0 ? segment.fd_ : ::open(segment.path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("opening", segment.path_, errno);
  const int synced = ::fdatasync(fd) == 0 ? 0 : errno;
  if (fd != segment.fd_) ::close(fd);
  if (synced != 0) return io_error("syncing", segment.path_, synced);
  if (::rename(segment.path_.c_str(), final_path.c_str()) != 0) {
    return io_error("renaming", segment.path_, errno);
  }
  segment.sealed_ = true;
  segment.close_if_sealed();
  if (Status d = fsync_dir(options_.dir); !d.ok()) log_warn("spool_sync", {{"error", d.message()}});
  index(sequence, entry);
  return sequence;
}

Result<uint64_t> Spool::save(std::span<const Sample> samples,
                             const std::shared_ptr<JournalSegment>& segment) {
  if (segment && segment->whole() && segment->complete()) return promote(*segment);
  // The journal does not hold exactly these samples: write them out. A whole segment lends its
  // sequence number (its place in the order); its journal file goes once the batch is safe.
  const bool whole = segment && segment->whole();
  auto written = write_batch(samples, whole ? segment->sequence() : next_sequence_.fetch_add(1));
  if (written.ok()) release(segment);
  return written;
}

void Spool::release(const std::shared_ptr<JournalSegment>& segment) {
  if (!segment || !segment->release_piece()) return;
  std::lock_guard lock(segment->mu_);
  if (::unlink(segment->path_.c_str()) != 0 && errno != ENOENT) {
    log_warn("journal_remove", {{"error", io_error("deleting", segment->path_, errno).message()}});
  }
  // A push may still be appending (its samples were committed before its write(2) ran): its
  // record goes to the unlinked file, harmlessly, and the descriptor closes after it.
  segment->sealed_ = true;
  segment->close_if_sealed();
}

Result<std::optional<SpoolBatch>> Spool::read_oldest() {
  while (!batches_.empty()) {
    const auto [sequence, entry] = *batches_.begin();
    const std::string p = path(sequence, entry);
    auto data = read_file(p);
    if (!data.ok() && data.status().code() == "spool_io") return data.status();
    if (!data.ok()) {
      set_aside(sequence, data.error());
      continue;
    }
    Decoded d = decode_records(*data);
    if (!d.error.empty() && entry.journal) {
      // The process died inside an append: that push never returned, its samples are not owed.
      log_warn("journal_tail_discarded", {{"file", p},
                                          {"bytes", std::to_string(data->size() - d.good_bytes)},
                                          {"samples_kept", std::to_string(d.samples.size())},
                                          {"error", d.error}});
    } else if (!d.error.empty()) {
      set_aside(sequence, d.error);
      continue;
    }
    return std::optional<SpoolBatch>(SpoolBatch{sequence, std::move(d.samples)});
  }
  return std::optional<SpoolBatch>();
}

void Spool::set_aside(uint64_t sequence, const std::string& why) {
  const auto it = batches_.find(sequence);
  if (it == batches_.end()) return;
  const std::string from = path(sequence, it->second);
  const std::string to = from + std::string(kCorruptSuffix);
  ++corrupt_;
  log_error("spool_corrupt", {{"file", from}, {"error", why}, {"moved_to", to}});
  forget(sequence);
  if (::rename(from.c_str(), to.c_str()) != 0) {
    // Forgotten either way: a file that cannot even be moved must not be retried forever.
    log_error("spool_corrupt_rename", {{"file", from}, {"error", errno_text(errno)}});
    return;
  }
  // Kept for an operator, within max_bytes: the oldest go first when room is needed.
  std::error_code ec;
  const uint64_t size = fs::file_size(to, ec);
  if (ec) return;
  corrupt_files_[sequence] += size;
  bytes_ += size;
}

void Spool::forget(uint64_t sequence) {
  auto it = batches_.find(sequence);
  if (it == batches_.end()) return;
  bytes_ -= it->second.size;
  batches_.erase(it);
  files_ = batches_.size();
}

Status Spool::remove(uint64_t sequence) {
  const auto it = batches_.find(sequence);
  if (it == batches_.end()) return {};
  const std::string p = path(sequence, it->second);
  forget(sequence);
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
    Status s = io_error("deleting", p, errno);
    log_error("spool_remove", {{"error", s.message()}});
    return s;
  }
  return fsync_dir(options_.dir);
}

}  // namespace tally::collector
