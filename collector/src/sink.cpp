#include "tally/collector/sink.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <variant>

#include "tally/common/log.h"

namespace tally::collector {
namespace {

using std::chrono::duration_cast;

class CopyBatchWriter final : public BatchWriter {
 public:
  explicit CopyBatchWriter(ConnectionFactory factory) : factory_(std::move(factory)) {}

  Result<WriteStats> write(std::span<const Sample> batch) override {
    if (!conn_) {
      auto opened = factory_();
      if (!opened.ok()) {
        return Status::error(opened.error(), "connection");  // whatever the factory said
      }
      conn_ = std::move(opened).value();
    }
    auto written = writer_.write(*conn_, batch);
    if (!written.ok() && (written.status().code() == "connection" || conn_->broken())) {
      conn_.reset();
    }
    return written;
  }

 private:
  ConnectionFactory factory_;
  std::unique_ptr<pg::Connection> conn_;
  CopyWriter writer_;
};

// Errors about the data itself: retrying the same batch can only fail the same way, so it is
// split to find the samples Postgres refuses. Everything else (connection, disk full on the
// server, missing tables, lock timeouts) is treated as "Postgres unavailable": retry later.
bool is_data_error(const Status& s) {
  return s.code().starts_with("sqlstate_22") || s.code().starts_with("sqlstate_23");
}

// glibc malloc's block for a request of n bytes: an 8-byte header, 16-byte granularity, 32 at
// least. 0 for no request.
constexpr std::size_t malloc_block(std::size_t n) {
  return n == 0 ? 0 : std::max<std::size_t>(32, (n + 8 + 15) & ~std::size_t{15});
}

// std::string{}.capacity(), 15 in libstdc++: read once here rather than through a function's
// static at every call (clang cannot make it a constant expression).
const std::size_t kInlineStringCapacity = std::string().capacity();

// A string's heap block, if it outgrew the small string buffer.
std::size_t heap_bytes(const std::string& s) {
  return s.capacity() > kInlineStringCapacity ? malloc_block(s.capacity() + 1) : 0;
}

template <class T>
std::size_t vector_block(const std::vector<T>& v) {
  return malloc_block(v.capacity() * sizeof(T));
}

std::size_t heap_bytes(const Fields& fields) {
  std::size_t n = vector_block(fields);
  for (const Field& f : fields) {
    n += heap_bytes(f.name);
    if (const auto* s = std::get_if<std::string>(&f.value)) n += heap_bytes(*s);
  }
  return n;
}

std::size_t heap_bytes(const Datum& d) {
  return std::visit(
      [](const auto& v) -> std::size_t {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::string>) {
          return heap_bytes(v);
        } else if constexpr (std::is_same_v<V, Bytes>) {
          return vector_block(v);
        } else if constexpr (requires { v.bins; }) {
          return vector_block(v.bins);
        } else {
          return 0;
        }
      },
      d);
}

std::size_t queued_bytes(std::span<const Sample> samples) {
  std::size_t n = 0;
  for (const Sample& s : samples) n += queued_sample_bytes(s);
  return n;
}

// The samples of one batch-to-be, and the journal segment that holds them on disk. push() packs
// whole pushes into the back segment up to batch_size samples; the writer takes the front one.
struct Segment {
  std::vector<Sample> samples;
  std::size_t bytes = 0;                    // queued_sample_bytes of the samples
  Clock::time_point arrived;                // the first push's arrival
  std::shared_ptr<JournalSegment> journal;  // released once the samples are done
  bool open = true;                         // takes more pushes (only the back one can)
  bool isolated = false;                    // a half of a refused batch, to be written alone
};

// One push, cut into pieces of at most batch_size samples, each encoded as a journal record.
struct Piece {
  std::vector<Sample> samples;
  std::string record;
  std::size_t bytes = 0;  // queued_sample_bytes of the samples
};

struct AtomicHistogram {
  std::array<std::atomic<uint64_t>, LatencyHistogram::kBounds.size() + 1> counts{};
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> sum_ns{0};

  void observe(Clock::duration d) {
    const double seconds = std::chrono::duration<double>(d).count();
    std::size_t i = 0;
    while (i < LatencyHistogram::kBounds.size() && seconds > LatencyHistogram::kBounds[i]) ++i;
    counts[i].fetch_add(1, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
    sum_ns.fetch_add(static_cast<uint64_t>(duration_cast<std::chrono::nanoseconds>(d).count()),
                     std::memory_order_relaxed);
  }
};

struct Counters {
  std::atomic<uint64_t> queued{0}, stored{0}, spooled{0}, replayed{0};
  std::atomic<uint64_t> dropped_queue_full{0}, dropped_spool_full{0}, dropped_spool_error{0},
      dropped_stopped{0};
  std::atomic<uint64_t> rejected_database{0};
  std::atomic<uint64_t> batches{0}, write_failures{0}, unjournaled{0}, push_waits{0};
  AtomicHistogram latency;
};

void add(std::atomic<uint64_t>& counter, uint64_t n) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

std::string str(uint64_t n) { return std::to_string(n); }

}  // namespace

class Sink::Impl {
 public:
  Impl(SinkOptions options, std::unique_ptr<BatchWriter> writer, std::unique_ptr<Spool> spool,
       const Clock& clock)
      : options_(std::move(options)),
        writer_(std::move(writer)),
        spool_(std::move(spool)),
        clock_(clock) {
    options_.batch_size = std::max<std::size_t>(options_.batch_size, 1);
    if (options_.spool_above_samples == 0 ||
        options_.spool_above_samples >= options_.max_queue_samples) {
      options_.spool_above_samples = options_.max_queue_samples / 2;
    }
    if (options_.spool_above_bytes == 0 || options_.spool_above_bytes >= options_.max_queue_bytes) {
      options_.spool_above_bytes = options_.max_queue_bytes / 2;
    }
  }

  ~Impl() { stop(); }

  void start() {
    std::lock_guard lock(mu_);
    if (thread_.joinable() || stopping_) return;
    thread_ = std::thread([this] { loop(); });
  }

  std::size_t push(std::vector<Sample> samples) {
    if (samples.empty()) return 0;
    const auto now = clock_.now();
    // Encoding is the journal's main cost: done here, on the pushing thread, outside the lock.
    std::vector<Piece> pieces = cut(std::move(samples));
    struct Append {
      std::shared_ptr<JournalSegment> journal;
      const std::string* record;
      std::size_t samples;
    };
    std::vector<Append> appends;
    std::size_t n = 0;
    {
      std::unique_lock lock(mu_);
      std::size_t offered = 0;
      std::size_t offered_bytes = 0;
      for (const Piece& p : pieces) {
        offered += p.samples.size();
        offered_bytes += p.bytes;
      }
      if (stopped_) {
        add(counters_.dropped_stopped, offered);
        return 0;
      }
      const auto room_now = [this] {
        return std::pair{
            depth_ < options_.max_queue_samples ? options_.max_queue_samples - depth_ : 0,
            bytes_ < options_.max_queue_bytes ? options_.max_queue_bytes - bytes_ : 0};
      };
      auto [room, room_bytes] = room_now();
      if ((offered > room || offered_bytes > room_bytes) &&
          may_wait_for_room(offered, offered_bytes)) {
        // The writer makes room with every batch it takes: waiting holds the pushing thread
        // (and so the collections behind it) back instead of dropping what was collected.
        add(counters_.push_waits, 1);
        room_.wait_for(lock, options_.max_push_wait, [&] {
          return stopping_ || (offered <= room_now().first && offered_bytes <= room_now().second);
        });
        std::tie(room, room_bytes) = room_now();
        if (stopped_) {
          add(counters_.dropped_stopped, offered);
          return 0;
        }
      }
      if (offered > room || offered_bytes > room_bytes) {
        drop_beyond(pieces, room, room_bytes, offered);
        if (pieces.empty()) return 0;
      } else {
        queue_full_logged_ = false;
      }
      const bool was_empty = depth_ == 0;
      bool closed = false;
      for (Piece& p : pieces) {
        Segment& segment = place(p.samples.size(), now, closed);
        const std::size_t k = p.samples.size();
        if (segment.samples.empty()) {
          segment.samples = std::move(p.samples);
        } else {
          // Grown as the vector would, but never past batch_size (a segment never holds more):
          // the unused capacity of a full segment is not counted in bytes_.
          const std::size_t size = segment.samples.size();
          if (segment.samples.capacity() < size + k) {
            segment.samples.reserve(std::min(options_.batch_size, std::max(2 * size, size + k)));
          }
          segment.samples.insert(segment.samples.end(), std::make_move_iterator(p.samples.begin()),
                                 std::make_move_iterator(p.samples.end()));
        }
        segment.bytes += p.bytes;
        bytes_ += p.bytes;
        segment.journal->begin_append();
        appends.push_back({segment.journal, &p.record, k});
        n += k;
      }
      depth_ += n;
      add(counters_.queued, n);
      if (waiting_ && (was_empty || closed || over_spool_threshold())) cv_.notify_one();
    }
    // The write(2)s happen without the lock: the writer may already be writing these samples
    // to Postgres (then a journal record is not needed: at worst it is replayed once more).
    for (const Append& a : appends) {
      journal_result(a.journal->append(*a.record), a.samples);
    }
    return n;
  }

  void stop() {
    std::lock_guard stop_lock(stop_mu_);
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    room_.notify_all();
    if (thread_.joinable()) {
      thread_.join();  // the thread sets stopped_ as it leaves
    } else {
      while (true) {
        while (run_once()) {
        }
        std::lock_guard lock(mu_);
        if (depth_ == 0) {
          stopped_ = true;
          break;
        }
      }
    }
    const SinkStats s = stats();
    log_info("sink_stopped", {{"stored", str(s.samples_stored)},
                              {"spooled", str(s.samples_spooled)},
                              {"spool_files", str(s.spool_files)},
                              {"dropped_queue_full", str(s.dropped_queue_full)},
                              {"dropped_spool_full", str(s.dropped_spool_full)}});
  }

  // A push that does not fit waits for room when waiting can help: the whole push fits in an
  // empty queue, and the writer is emptying it (Postgres up, or the spool taking the excess).
  // mu_ held.
  bool may_wait_for_room(std::size_t offered, std::size_t offered_bytes) const {
    return options_.max_push_wait.count() > 0 && !stopping_ && !spool_failing_ &&
           offered <= options_.max_queue_samples && offered_bytes <= options_.max_queue_bytes;
  }

  bool nearly_full() const {
    std::lock_guard lock(mu_);
    return depth_ > options_.max_queue_samples - options_.max_queue_samples / 8 ||
           bytes_ > options_.max_queue_bytes - options_.max_queue_bytes / 8;
  }

  SinkStats stats() const {
    SinkStats s;
    s.samples_queued = counters_.queued.load();
    s.samples_stored = counters_.stored.load();
    s.samples_spooled = counters_.spooled.load();
    s.samples_replayed = counters_.replayed.load();
    s.dropped_queue_full = counters_.dropped_queue_full.load();
    s.dropped_spool_full = counters_.dropped_spool_full.load();
    s.dropped_spool_error = counters_.dropped_spool_error.load();
    s.dropped_stopped = counters_.dropped_stopped.load();
    s.rejected_database = counters_.rejected_database.load();
    s.batches_written = counters_.batches.load();
    s.write_failures = counters_.write_failures.load();
    s.samples_unjournaled = counters_.unjournaled.load();
    s.push_waits = counters_.push_waits.load();
    s.spool_corrupt_files = spool_->corrupt_files();
    s.spool_bytes = spool_->bytes();
    s.spool_files = spool_->files();
    {
      std::lock_guard lock(mu_);
      s.queue_depth = depth_;
      s.in_flight = in_flight_;
      s.queue_bytes = bytes_;
      s.in_flight_bytes = in_flight_bytes_;
      s.database_up = up_;
    }
    for (std::size_t i = 0; i < s.insert_latency.counts.size(); ++i) {
      s.insert_latency.counts[i] = counters_.latency.counts[i].load();
    }
    s.insert_latency.count = counters_.latency.count.load();
    s.insert_latency.sum_seconds = static_cast<double>(counters_.latency.sum_ns.load()) / 1e9;
    return s;
  }

  bool run_once() {
    std::unique_lock lock(mu_);
    const auto now = clock_.now();
    const bool spool_pending = !spool_->empty();
    const bool pg_unusable = !up_ || spool_pending;  // the queue cannot go to Postgres now
    // At stop, anything that cannot be written at once goes to disk: SIGTERM should not wait
    // for reconnects, and samples written behind a non-empty spool would overtake it.
    const bool spool_all = stopping_ && pg_unusable;
    const bool spool_excess = pg_unusable && over_spool_threshold() && now >= spool_retry_at_;
    if (depth_ > 0 && (spool_all || spool_excess)) {
      Segment batch = take();
      lock.unlock();
      spool(std::move(batch));
      return true;
    }
    if (!up_ && now < retry_at_) return false;
    if (spool_pending) {
      if (stopping_) return false;  // left for the next start
      lock.unlock();
      replay_one();
      return true;
    }
    if (depth_ == 0) return false;
    if (!stopping_ && !ready(now)) return false;
    Segment batch = take();
    lock.unlock();
    write(std::move(batch));
    return true;
  }

  Clock::time_point next_due() const {
    std::lock_guard lock(mu_);
    return next_due_locked(clock_.now());
  }

 private:
  // More is queued than may stay in memory while the queue cannot go to Postgres. mu_ held.
  bool over_spool_threshold() const {
    return depth_ > options_.spool_above_samples || bytes_ > options_.spool_above_bytes;
  }

  // mu_ held.
  bool ready(Clock::time_point now) const {
    if (depth_ == 0) return false;
    const Segment& front = queue_.front();
    return !front.open || front.isolated || front.samples.size() >= options_.batch_size ||
           now >= front.arrived + options_.batch_interval;
  }

  // mu_ held.
  Clock::time_point next_due_locked(Clock::time_point now) const {
    auto due = Clock::time_point::max();
    if (stopping_ && depth_ > 0) return now;
    const bool spool_pending = !spool_->empty();
    if ((!up_ || spool_pending) && over_spool_threshold()) {
      due = std::min(due, std::max(now, spool_retry_at_));
    }
    if (spool_pending || depth_ > 0) {
      if (!up_ && now < retry_at_) {
        due = std::min(due, retry_at_);
      } else if (spool_pending) {
        due = now;
      } else if (ready(now)) {
        due = now;
      } else {
        due = std::min(
            due, queue_.front().arrived + duration_cast<Clock::duration>(options_.batch_interval));
      }
    }
    return due;
  }

  // A push cut into pieces of at most batch_size samples (most pushes are one piece), each
  // encoded as a journal record. No lock held.
  std::vector<Piece> cut(std::vector<Sample> samples) const {
    std::vector<Piece> pieces;
    if (samples.size() <= options_.batch_size) {
      // The vector becomes (part of) a segment as it is: spare capacity a decoder left would sit
      // in the queue. Moving the Sample objects (not what they own) is cheap.
      if (samples.capacity() - samples.size() > samples.size() / 8) samples.shrink_to_fit();
      pieces.push_back({std::move(samples), {}});
    } else {
      for (std::size_t at = 0; at < samples.size(); at += options_.batch_size) {
        const auto first = samples.begin() + static_cast<std::ptrdiff_t>(at);
        const auto last = samples.begin() + static_cast<std::ptrdiff_t>(
                                                std::min(samples.size(), at + options_.batch_size));
        pieces.push_back({{std::make_move_iterator(first), std::make_move_iterator(last)}, {}});
      }
    }
    for (Piece& p : pieces) {
      p.record = encode_record(p.samples);
      p.bytes = queued_bytes(p.samples);
    }
    return pieces;
  }

  // Keeps the first samples of a push that does not fit, as many as fit in `room` samples and
  // `room_bytes` bytes, and counts the rest as dropped: `spool_error` while the disk refuses the
  // spool (that is why memory is full), else `queue_full`. mu_ held; a piece cut in two is
  // encoded again (only when dropping).
  void drop_beyond(std::vector<Piece>& pieces, std::size_t room, std::size_t room_bytes,
                   std::size_t offered) {
    std::size_t kept = 0;
    std::size_t kept_bytes = 0;
    std::size_t i = 0;
    while (i < pieces.size() && kept + pieces[i].samples.size() <= room &&
           kept_bytes + pieces[i].bytes <= room_bytes) {
      kept += pieces[i].samples.size();
      kept_bytes += pieces[i++].bytes;
    }
    if (i < pieces.size()) {
      Piece& p = pieces[i];
      std::size_t take = 0;
      std::size_t bytes = 0;
      while (take < p.samples.size() && kept + take < room) {
        const std::size_t b = queued_sample_bytes(p.samples[take]);
        if (kept_bytes + bytes + b > room_bytes) break;
        bytes += b;
        ++take;
      }
      if (take > 0) {
        p.samples.resize(take);
        p.record = encode_record(p.samples);
        p.bytes = bytes;
        kept += take;
        ++i;
      }
    }
    pieces.resize(i);
    const std::size_t dropped = offered - kept;
    const char* reason = "queue_full";
    if (spool_failing_) {
      reason = "spool_error";
      // Counted as queued and then dropped, like the samples stop() cannot spool: see SinkStats.
      add(counters_.queued, dropped);
      add(counters_.dropped_spool_error, dropped);
    } else {
      add(counters_.dropped_queue_full, dropped);
    }
    // One line per episode, not per push: a full queue can last.
    if (!queue_full_logged_) {
      queue_full_logged_ = true;
      log_warn("sink_queue_full", {{"dropped", str(dropped)},
                                   {"reason", reason},
                                   {"queue_depth", str(depth_)},
                                   {"queue_bytes", str(bytes_)},
                                   {"max_queue_samples", str(options_.max_queue_samples)},
                                   {"max_queue_bytes", str(options_.max_queue_bytes)}});
    }
  }

  // The segment a piece of `n` samples goes into: the back one while it takes pushes and has
  // room, else a new one (and a new journal file). mu_ held.
  Segment& place(std::size_t n, Clock::time_point now, bool& closed) {
    if (!queue_.empty()) {
      Segment& back = queue_.back();
      if (back.open && back.samples.size() + n <= options_.batch_size) return back;
      if (back.open) {
        closed = true;
        back.open = false;
        back.journal->seal();
      }
    }
    Status error;
    Segment segment;
    segment.arrived = now;
    segment.journal = spool_->open_segment(&error);
    if (!error.ok()) journal_result(error, 0);
    queue_.push_back(std::move(segment));
    return queue_.back();
  }

  // Counts and logs (once per episode) what the journal could not hold. Any thread.
  void journal_result(const Status& s, std::size_t samples) {
    if (s.ok()) {
      if (journal_failing_.load(std::memory_order_relaxed) && journal_failing_.exchange(false)) {
        log_info("journal_recovered", {{"dir", spool_->dir()}});
      }
      return;
    }
    add(counters_.unjournaled, samples);
    if (!journal_failing_.exchange(true)) {
      log_error("journal_failed",
                {{"error", s.message()}, {"samples_in_memory_only", str(samples)}});
    } else {
      log_debug("journal_failed", {{"error", s.message()}});
    }
  }

  // The front segment, whole: one batch. It takes no more pushes. mu_ held.
  Segment take() {
    Segment batch = std::move(queue_.front());
    queue_.pop_front();
    if (batch.open && batch.journal) batch.journal->seal();
    batch.open = false;
    depth_ -= batch.samples.size();
    bytes_ -= batch.bytes;
    room_.notify_all();
    in_flight_ = batch.samples.size();
    in_flight_bytes_ = batch.bytes;
    return batch;
  }

  // Puts a batch back at the front of the queue (it is older than everything queued). mu_ held.
  void put_back(Segment batch) {
    depth_ += batch.samples.size();
    bytes_ += batch.bytes;
    batch.open = false;
    queue_.push_front(std::move(batch));
  }

  // A batch Postgres refused for its data: its halves go back to be written alone, and a single
  // sample is rejected. The journal file stays until both halves are done. mu_ held.
  void split_refused(Segment batch, const Status& error) {
    if (batch.samples.size() == 1) {
      const Sample& s = batch.samples[0];
      add(counters_.rejected_database, 1);
      log_warn("sample_refused", {{"timeseries", s.timeseries_name()},
                                  {"timestamp", format_rfc3339(s.timestamp)},
                                  {"error", error.message()}});
      spool_->release(batch.journal);
      return;
    }
    std::vector<Sample>& samples = batch.samples;
    const auto middle = samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2);
    Segment second{{std::make_move_iterator(middle), std::make_move_iterator(samples.end())},
                   0,
                   batch.arrived,
                   batch.journal,
                   false,
                   true};
    samples.erase(middle, samples.end());
    second.bytes = queued_bytes(second.samples);
    batch.bytes = queued_bytes(batch.samples);
    if (batch.journal) batch.journal->add_piece();
    batch.isolated = true;
    put_back(std::move(second));
    put_back(std::move(batch));
  }

  // Postgres did not take a write: back off before the next attempt. mu_ held.
  void mark_down(Clock::time_point now, const Status& error) {
    backoff_ =
        backoff_.count() == 0 ? options_.min_backoff : std::min(backoff_ * 2, options_.max_backoff);
    retry_at_ = now + backoff_;
    if (up_) {
      log_warn("database_unavailable", {{"error", error.message()},
                                        {"queue_depth", str(depth_)},
                                        {"retry_in", format_duration(backoff_)}});
    } else {
      log_debug("database_retry_failed",
                {{"error", error.message()}, {"retry_in", format_duration(backoff_)}});
    }
    up_ = false;
  }

  // mu_ held.
  void mark_up() {
    if (!up_) log_info("database_available", {{"spool_files", str(spool_->files())}});
    up_ = true;
    backoff_ = std::chrono::milliseconds(0);
  }

  // Counts a successful write. Not under mu_.
  void count_written(const WriteStats& written, Clock::duration took) {
    add(counters_.stored, written.samples_written);
    add(counters_.batches, 1);
    counters_.latency.observe(took);
  }

  void write(Segment batch) {
    const auto start = clock_.now();
    auto written = writer_->write(batch.samples);
    const auto end = clock_.now();
    if (written.ok()) {
      count_written(*written, end - start);
      // Committed: its journal file goes. If the process dies just before this, the batch is
      // replayed again — the one-batch duplicate window.
      spool_->release(batch.journal);
    }
    std::lock_guard lock(mu_);
    in_flight_ = 0;
    in_flight_bytes_ = 0;
    if (written.ok()) {
      mark_up();
      return;
    }
    add(counters_.write_failures, 1);
    if (is_data_error(written.status())) {
      split_refused(std::move(batch), written.status());
      return;
    }
    put_back(std::move(batch));
    mark_down(end, written.status());
  }

  void replay_one() {
    auto read = spool_->read_oldest();
    const auto start = clock_.now();
    if (!read.ok()) {
      std::lock_guard lock(mu_);
      mark_down(start, read.status());
      return;
    }
    if (!read->has_value()) return;  // every file left was corrupt (and set aside)
    SpoolBatch& batch = **read;
    const std::size_t bytes = queued_bytes(batch.samples);
    {
      std::lock_guard lock(mu_);
      in_flight_ = batch.samples.size();
      in_flight_bytes_ = bytes;
    }
    auto written =
        batch.samples.empty() ? Result<WriteStats>(WriteStats{}) : writer_->write(batch.samples);
    const auto end = clock_.now();
    const bool refused = !written.ok() && is_data_error(written.status());
    if (written.ok()) count_written(*written, end - start);
    if (!written.ok()) add(counters_.write_failures, 1);
    if (written.ok() || refused) {
      // Committed (or about to be bisected in memory): the file goes. If the process dies just
      // before this, the batch is replayed again — the one-batch duplicate window.
      add(counters_.replayed, batch.samples.size());
      (void)spool_->remove(batch.sequence);
    }
    std::lock_guard lock(mu_);
    in_flight_ = 0;
    in_flight_bytes_ = 0;
    if (written.ok()) {
      mark_up();
    } else if (refused) {
      // These samples now reach Postgres after the rest of the spool: the one exception to
      // "oldest first", for a batch that could never be written whole.
      split_refused(Segment{std::move(batch.samples), bytes, start, nullptr, false, false},
                    written.status());
    } else {
      mark_down(end, written.status());
    }
  }

  void spool(Segment batch) {
    auto saved = spool_->save(batch.samples, batch.journal);
    const auto now = clock_.now();
    std::lock_guard lock(mu_);
    in_flight_ = 0;
    in_flight_bytes_ = 0;
    const uint64_t n = batch.samples.size();
    if (saved.ok()) {
      add(counters_.spooled, n);
      spool_backoff_ = std::chrono::milliseconds(0);
      spool_full_logged_ = false;
      if (spool_failing_) {
        spool_failing_ = false;
        log_info("spool_recovered", {{"dir", spool_->dir()}});
      }
      log_debug("batch_spooled", {{"sequence", str(*saved)}, {"samples", str(n)}});
      return;
    }
    if (saved.status().code() == "spool_full") {
      add(counters_.dropped_spool_full, n);
      if (!spool_full_logged_) {
        spool_full_logged_ = true;
        log_error("spool_full_dropping", {{"samples", str(n)}, {"error", saved.error()}});
      }
      spool_->release(batch.journal);  // dropped: a restart must not bring them back
      return;
    }
    if (stopping_) {
      if (batch.journal && batch.journal->whole() && batch.journal->complete()) {
        // Its journal file holds it whole: left for the next start, which replays it.
        add(counters_.spooled, n);
        log_warn("journal_left", {{"file", batch.journal->path()}, {"error", saved.error()}});
        return;
      }
      add(counters_.dropped_spool_error, n);
      log_error("spool_failed_dropping", {{"samples", str(n)}, {"error", saved.error()}});
      spool_->release(batch.journal);
      return;
    }
    // Keep the batch in memory and try the disk again later; if that keeps failing the queue
    // fills up and push() counts what it cannot take (reason spool_error).
    spool_backoff_ = spool_backoff_.count() == 0
                         ? options_.min_backoff
                         : std::min(spool_backoff_ * 2, options_.max_backoff);
    spool_retry_at_ = now + spool_backoff_;
    put_back(std::move(batch));
    if (!spool_failing_) {
      spool_failing_ = true;
      log_error("spool_failed",
                {{"error", saved.error()}, {"retry_in", format_duration(spool_backoff_)}});
    } else {
      log_debug("spool_failed",
                {{"error", saved.error()}, {"retry_in", format_duration(spool_backoff_)}});
    }
  }

  void loop() {
    while (true) {
      if (run_once()) continue;
      std::unique_lock lock(mu_);
      if (stopping_) {
        // A push may have slipped in since run_once() looked; stopped_ is set under the same
        // lock that push() checks, so nothing can be queued after the last look.
        if (depth_ > 0) continue;
        stopped_ = true;
        break;
      }
      const auto now = clock_.now();
      const auto due = next_due_locked(now);
      if (due <= now) continue;
      waiting_ = true;
      if (due == Clock::time_point::max()) {
        cv_.wait(lock);
      } else {
        cv_.wait_for(lock, due - now);
      }
      waiting_ = false;
    }
  }

  SinkOptions options_;
  std::unique_ptr<BatchWriter> writer_;  // writer thread only
  std::unique_ptr<Spool> spool_;         // writer thread only (its counters: any thread)
  const Clock& clock_;
  Counters counters_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable room_;  // pushes waiting for room: the writer took a batch, or stopping
  std::deque<Segment> queue_;     // mu_
  std::size_t depth_ = 0;         // mu_: samples in queue_
  std::size_t bytes_ = 0;         // mu_: their queued_sample_bytes
  std::size_t in_flight_ = 0;     // mu_
  std::size_t in_flight_bytes_ = 0;             // mu_
  bool up_ = true;                              // mu_: optimistic until a write fails
  Clock::time_point retry_at_{};                // mu_
  std::chrono::milliseconds backoff_{0};        // mu_
  Clock::time_point spool_retry_at_{};          // mu_
  std::chrono::milliseconds spool_backoff_{0};  // mu_
  bool waiting_ = false;                        // mu_: the writer thread is in cv_.wait
  bool stopping_ = false;                       // mu_
  bool stopped_ = false;                        // mu_
  bool queue_full_logged_ = false;              // mu_
  bool spool_full_logged_ = false;              // mu_
  bool spool_failing_ = false;                  // mu_: the last spool attempt failed
  std::atomic<bool> journal_failing_{false};    // the last journal append failed

  std::mutex stop_mu_;  // serialises stop() callers
  std::thread thread_;
};

std::size_t queued_sample_bytes(const Sample& s) {
  // The timeseries counts in full with each sample, though the samples of a series share it
  // (and so do successive collections'): an upper bound, as if every sample had its own.
  // make_shared's block holds the control block (16 bytes) and the Timeseries.
  return sizeof(Sample) + malloc_block(16 + sizeof(Timeseries)) + heap_bytes(s.target().name) +
         heap_bytes(s.target().fields) + heap_bytes(s.metric().name) +
         heap_bytes(s.metric().fields) + heap_bytes(s.datum);
}

std::unique_ptr<BatchWriter> make_copy_batch_writer(ConnectionFactory factory) {
  return std::make_unique<CopyBatchWriter>(std::move(factory));
}

Result<std::unique_ptr<Sink>> Sink::open(SinkOptions options, std::unique_ptr<BatchWriter> writer,
                                         const Clock& clock) {
  auto spool = Spool::open(options.spool);
  if (!spool.ok()) return spool.status();
  auto impl = std::make_unique<Impl>(std::move(options), std::move(writer),
                                     std::move(spool).value(), clock);
  return std::unique_ptr<Sink>(new Sink(std::move(impl)));
}

Sink::Sink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sink::~Sink() { impl_->stop(); }
void Sink::start() { impl_->start(); }
std::size_t Sink::push(std::vector<Sample> samples) { return impl_->push(std::move(samples)); }
void Sink::stop() { impl_->stop(); }
SinkStats Sink::stats() const { return impl_->stats(); }
bool Sink::nearly_full() const { return impl_->nearly_full(); }
bool Sink::run_once() { return impl_->run_once(); }
Clock::time_point Sink::next_due() const { return impl_->next_due(); }

}  // namespace tally::collector
