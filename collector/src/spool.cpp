#include "tally/collector/spool.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "tally/common/collect_json.h"
#include "tally/common/log.h"

namespace tally::collector {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "TLYSPOOL";
constexpr uint32_t kFormatVersion = 1;
constexpr std::string_view kBatchSuffix = ".batch";
constexpr std::string_view kTmpSuffix = ".tmp";
constexpr std::string_view kCorruptSuffix = ".corrupt";
constexpr std::size_t kSequenceDigits = 20;

void put_u32(char* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(v >> (8 * i));
}
void put_u64(char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (8 * i));
}
uint32_t get_u32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}
uint64_t get_u64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}

uint64_t checksum(std::string_view header24, std::string_view payload) {
  XXH64_state_t* state = XXH64_createState();
  XXH64_reset(state, 0);
  XXH64_update(state, header24.data(), header24.size());
  XXH64_update(state, payload.data(), payload.size());
  const uint64_t h = XXH64_digest(state);
  XXH64_freeState(state);
  return h;
}

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

Status write_file(const std::string& path, std::string_view header, std::string_view payload) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("creating", path, errno);
  for (std::string_view part : {header, payload}) {
    while (!part.empty()) {
      const ssize_t n = ::write(fd, part.data(), part.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : EIO;
        ::close(fd);
        return io_error("writing", path, err);
      }
      part.remove_prefix(static_cast<std::size_t>(n));
    }
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

// Checks and decodes one batch file; errors say what is wrong with it.
Result<std::vector<Sample>> decode_file(std::string_view data) {
  if (data.size() < kSpoolHeaderBytes) {
    return Status::error("shorter than the header (" + std::to_string(data.size()) + " bytes)");
  }
  if (data.substr(0, kMagic.size()) != kMagic) return Status::error("bad magic");
  const uint32_t version = get_u32(data.data() + 8);
  if (version != kFormatVersion) {
    return Status::error("unknown format version " + std::to_string(version));
  }
  const uint32_t count = get_u32(data.data() + 12);
  const uint64_t length = get_u64(data.data() + 16);
  if (length != data.size() - kSpoolHeaderBytes) {
    return Status::error("payload is " + std::to_string(data.size() - kSpoolHeaderBytes) +
                         " bytes, header says " + std::to_string(length));
  }
  const std::string_view payload = data.substr(kSpoolHeaderBytes);
  if (checksum(data.substr(0, 24), payload) != get_u64(data.data() + 24)) {
    return Status::error("checksum mismatch");
  }
  auto items = decode_collect_response(payload);
  if (!items.ok()) return Status::error("payload: " + items.error());
  if (items->size() != 1 || (*items)[0].error) {
    return Status::error("payload is not one ok item");
  }
  std::vector<Sample> samples = std::move((*items)[0].samples);
  if (samples.size() != count) {
    return Status::error("holds " + std::to_string(samples.size()) + " samples, header says " +
                         std::to_string(count));
  }
  return samples;
}

}  // namespace

std::string spool_file_name(uint64_t sequence) {
  std::string digits = std::to_string(sequence);
  return std::string(kSequenceDigits - digits.size(), '0') + digits + std::string(kBatchSuffix);
}

std::string Spool::path(uint64_t sequence) const {
  return options_.dir + "/" + spool_file_name(sequence);
}

Result<std::unique_ptr<Spool>> Spool::open(SpoolOptions options) {
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return Status::error("creating " + options.dir + ": " + ec.message(), "spool_io");
  std::unique_ptr<Spool> spool(new Spool(std::move(options)));
  const std::string& dir = spool->options_.dir;

  uint64_t highest = 0;
  auto it = fs::directory_iterator(dir, ec);
  if (ec) return Status::error("reading " + dir + ": " + ec.message(), "spool_io");
  for (const fs::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    if (auto seq = parse_sequence(name, kBatchSuffix)) {
      const uint64_t size = entry.file_size(ec);
      if (ec)
        return Status::error("reading " + entry.path().string() + ": " + ec.message(), "spool_io");
      spool->batches_.emplace(*seq, size);
      spool->bytes_ += size;
      highest = std::max(highest, *seq);
    } else if (name.ends_with(kTmpSuffix)) {
      // A write that did not reach its rename: its batch was never reported as spooled.
      if (auto tmp = parse_sequence(name, std::string(kBatchSuffix) + std::string(kTmpSuffix))) {
        highest = std::max(highest, *tmp);
      }
      fs::remove(entry.path(), ec);
      log_warn("spool_tmp_deleted", {{"file", entry.path().string()}});
    } else if (auto corrupt =
                   parse_sequence(name, std::string(kBatchSuffix) + std::string(kCorruptSuffix))) {
      highest = std::max(highest, *corrupt);
    } else {
      log_warn("spool_unknown_file", {{"file", entry.path().string()}});
    }
  }
  spool->files_ = spool->batches_.size();
  spool->next_sequence_ = highest + 1;
  if (!spool->batches_.empty()) {
    log_info("spool_opened", {{"dir", dir},
                              {"files", std::to_string(spool->batches_.size())},
                              {"bytes", std::to_string(spool->bytes())}});
  }
  return spool;
}

Result<uint64_t> Spool::append(std::span<const Sample> samples) {
  // What encode_collect_response writes for one ok item, without copying the samples into one.
  std::string payload = R"([{"status":"ok","info":[)";
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (i > 0) payload += ',';
    append_sample_json(payload, samples[i]);
  }
  payload += "]}]";
  const uint64_t size = kSpoolHeaderBytes + payload.size();
  if (bytes() + size > options_.max_bytes) {
    return Status::error("spool is full (" + std::to_string(bytes()) + " of " +
                             std::to_string(options_.max_bytes) + " bytes)",
                         "spool_full");
  }
  char header[kSpoolHeaderBytes];
  std::memcpy(header, kMagic.data(), kMagic.size());
  put_u32(header + 8, kFormatVersion);
  put_u32(header + 12, static_cast<uint32_t>(samples.size()));
  put_u64(header + 16, payload.size());
  put_u64(header + 24, checksum(std::string_view(header, 24), payload));

  const uint64_t sequence = next_sequence_++;
  const std::string final_path = path(sequence);
  const std::string tmp_path = final_path + std::string(kTmpSuffix);
  Status s = write_file(tmp_path, std::string_view(header, sizeof header), payload);
  if (s.ok() && ::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    s = io_error("renaming", tmp_path, errno);
  }
  if (!s.ok()) {
    ::unlink(tmp_path.c_str());
    return s;
  }
  // Without this the rename may not survive a power loss; the file itself is already synced.
  if (Status d = fsync_dir(options_.dir); !d.ok()) log_warn("spool_sync", {{"error", d.message()}});
  batches_.emplace(sequence, size);
  bytes_ += size;
  files_ = batches_.size();
  return sequence;
}

Result<std::optional<SpoolBatch>> Spool::read_oldest() {
  while (!batches_.empty()) {
    const uint64_t sequence = batches_.begin()->first;
    auto data = read_file(path(sequence));
    if (!data.ok() && data.status().code() == "spool_io") return data.status();
    if (!data.ok()) {
      set_aside(sequence, data.error());
      continue;
    }
    auto samples = decode_file(*data);
    if (!samples.ok()) {
      set_aside(sequence, samples.error());
      continue;
    }
    return std::optional<SpoolBatch>(SpoolBatch{sequence, std::move(samples).value()});
  }
  return std::optional<SpoolBatch>();
}

void Spool::set_aside(uint64_t sequence, const std::string& why) {
  const std::string from = path(sequence);
  const std::string to = from + std::string(kCorruptSuffix);
  ++corrupt_;
  log_error("spool_corrupt", {{"file", from}, {"error", why}, {"moved_to", to}});
  if (::rename(from.c_str(), to.c_str()) != 0) {
    log_error("spool_corrupt_rename", {{"file", from}, {"error", errno_text(errno)}});
  }
  // Forgotten either way: a file that cannot even be moved must not be retried forever.
  forget(sequence);
}

void Spool::forget(uint64_t sequence) {
  auto it = batches_.find(sequence);
  if (it == batches_.end()) return;
  bytes_ -= it->second;
  batches_.erase(it);
  files_ = batches_.size();
}

Status Spool::remove(uint64_t sequence) {
  const std::string p = path(sequence);
  forget(sequence);
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
    Status s = io_error("deleting", p, errno);
    log_error("spool_remove", {{"error", s.message()}});
    return s;
  }
  return fsync_dir(options_.dir);
}

}  // namespace tally::collector
