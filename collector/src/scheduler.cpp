#include "tally/collector/scheduler.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "tally/collector/prometheus_parser.h"
#include "tally/common/collect_json.h"
#include "tally/common/log.h"

namespace tally::collector {

// ---------------------------------------------------------------------------------------------
// PollSchedule

PollSchedule::OffsetFn PollSchedule::random_offset() {
  struct Source {
    std::mutex mu;
    std::mt19937_64 rng{std::random_device{}()};
  };
  auto source = std::make_shared<Source>();
  return [source](duration interval) {
    if (interval <= duration::zero()) return duration::zero();
    std::uniform_int_distribution<duration::rep> pick(0, interval.count() - 1);
    std::lock_guard lock(source->mu);
    return duration(pick(source->rng));
  };
}

PollSchedule::PollSchedule(OffsetFn offset) : offset_(std::move(offset)) {}

void PollSchedule::set(const Uuid& id, duration interval, time_point now) {
  // A zero interval would make take_due() loop forever; the configuration never gives one.
  interval = std::max(interval, duration(1));
  const auto first_due = [&] {
    return now + std::clamp(offset_(interval), duration::zero(), interval - duration(1));
  };
  auto it = slots_.find(id);
  if (it == slots_.end()) {
    const time_point due = first_due();
    slots_.emplace(id, Slot{due, interval});
    by_due_.emplace(due, id);
    return;
  }
  Slot& slot = it->second;
  if (slot.interval == interval) return;
  slot.interval = interval;
  if (slot.due - now > interval) {
    by_due_.erase({slot.due, id});
    slot.due = first_due();
    by_due_.emplace(slot.due, id);
  }
}

bool PollSchedule::remove(const Uuid& id) {
  auto it = slots_.find(id);
  if (it == slots_.end()) return false;
  by_due_.erase({it->second.due, id});
  slots_.erase(it);
  return true;
}

std::optional<PollSchedule::time_point> PollSchedule::next_due() const {
  if (by_due_.empty()) return std::nullopt;
  return by_due_.begin()->first;
}

std::optional<PollSchedule::time_point> PollSchedule::due(const Uuid& id) const {
  auto it = slots_.find(id);
  if (it == slots_.end()) return std::nullopt;
  return it->second.due;
}

std::vector<PollSchedule::Due> PollSchedule::take_due(time_point now) {
  std::vector<Due> out;
  while (!by_due_.empty() && by_due_.begin()->first <= now) {
    const auto [due, id] = *by_due_.begin();
    by_due_.erase(by_due_.begin());
    Slot& slot = slots_.at(id);
    // The slot at `due` is polled now, however late; the slots between it and now are lost.
    // Stepping on from `due` (not from now) keeps the grid.
    const auto missed = static_cast<uint64_t>((now - due) / slot.interval);
    slot.due = due + slot.interval * static_cast<duration::rep>(missed + 1);
    by_due_.emplace(slot.due, id);
    out.push_back({id, missed});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scheduler

namespace {

// Runs decode tasks on a few threads; with none, on the caller's thread.
class DecodePool {
 public:
  explicit DecodePool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  ~DecodePool() { stop(); }

  void post(std::function<void()> task) {
    if (threads_.empty()) return task();
    // Notified under the lock: once the task has run, stop() may destroy the pool at once.
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
    cv_.notify_one();
  }

  // Runs what is queued, then joins.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

void observe(CollectionLatency& h, std::chrono::microseconds d) {
  const double seconds = std::chrono::duration<double>(d).count();
  std::size_t i = 0;
  while (i < CollectionLatency::kBounds.size() && seconds > CollectionLatency::kBounds[i]) ++i;
  ++h.counts[i];
  ++h.count;
  h.sum_seconds += seconds;
}

// What decoding a producer's responses keeps from one collection to the next, by format: the
// Prometheus parser (its series cache), or the JSON decoder's memo of the last response's
// timeseries. One collection of a producer runs at a time; a producer whose format, address or
// target name changes gets a new one, and a running decode keeps the old one through its own
// reference.
struct ProducerDecoder {
  std::optional<PrometheusParser> prometheus;
  CollectDecodeMemo oximeter;
};

std::shared_ptr<ProducerDecoder> make_decoder(const ProducerTarget& t) {
  auto d = std::make_shared<ProducerDecoder>();
  if (t.format == config::ProducerFormat::kPrometheus) {
    d->prometheus.emplace(PrometheusSource{t.target_name, t.id, t.address});
  }
  return d;
}

// The outcome of one collection after decoding.
struct Outcome {
  std::string reason;  // "" on success
  std::string message;
  std::vector<Sample> samples;
  std::vector<ProducerError> producer_errors;
};

Outcome decode(const FetchResult& fetched, ProducerDecoder& decoder, std::size_t max_samples) {
  Outcome out;
  if (!fetched.ok()) {
    out.reason = fetched.reason;
    out.message = fetched.message;
    return out;
  }
  const auto fail = [&](const Status& s) {
    out.reason = s.code() == reason::kTooManySamples ? reason::kTooManySamples : reason::kDecode;
    out.message = s.message();
  };
  if (decoder.prometheus) {
    auto parsed = decoder.prometheus->parse(fetched.body, fetched.started_at, max_samples);
    if (!parsed.ok())
      fail(parsed.status());
    else
      out.samples = std::move(*parsed);
    return out;
  }
  auto items =
      decode_collect_response(fetched.body, {.max_samples = max_samples}, &decoder.oximeter);
  if (!items.ok()) {
    fail(items.status());
    return out;
  }
  for (CollectItem& item : *items) {
    if (item.error) {
      out.producer_errors.push_back(std::move(*item.error));
      continue;
    }
    if (out.samples.empty()) {
      out.samples = std::move(item.samples);
    } else {
      std::move(item.samples.begin(), item.samples.end(), std::back_inserter(out.samples));
    }
  }
  return out;
}

}  // namespace

class Scheduler::Impl {
 public:
  Impl(SchedulerOptions options, Fetcher& fetcher, SamplesCallback on_samples)
      : options_(std::move(options)),
        clock_(*options_.clock),
        fetcher_(fetcher),
        on_samples_(std::move(on_samples)),
        schedule_(options_.first_offset),
        pool_(std::max(0, options_.decode_threads)) {}

  void start() {
    std::lock_guard lock(mu_);
    if (timer_.joinable() || stopping_) return;
    timer_ = std::thread([this] { timer_loop(); });
  }

  void stop() {
    std::vector<Uuid> ids;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      for (const auto& [id, entry] : entries_) ids.push_back(id);
    }
    wake_.notify_all();
    if (timer_.joinable()) timer_.join();
    for (const Uuid& id : ids) fetcher_.close(id);
    {
      std::unique_lock lock(mu_);
      idle_.wait(lock, [&] { return in_progress_ == 0; });
    }
    pool_.stop();
  }

  void upsert(const ProducerTarget& given) {
    ProducerTarget target = given;
    // A zero interval would poll without pause; the configuration never gives one.
    target.interval = std::max(target.interval, std::chrono::microseconds(1000));
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      auto [it, added] = entries_.try_emplace(target.id);
      Entry& e = it->second;
      if (added) {
        e.generation = next_generation_++;
        e.state.target = target;
        e.decoder = make_decoder(target);
        schedule_.set(target.id, target.interval, clock_.now());
      } else {
        if (e.state.target == target) return;
        const ProducerTarget old = std::exchange(e.state.target, target);
        if (old.format != target.format || old.address != target.address ||
            old.target_name != target.target_name) {
          e.decoder = make_decoder(target);
        }
        schedule_.set(target.id, target.interval, clock_.now());
      }
    }
    wake_.notify_all();
  }

  bool remove(const Uuid& id) {
    {
      std::lock_guard lock(mu_);
      if (entries_.erase(id) == 0) return false;
      schedule_.remove(id);
    }
    wake_.notify_all();
    // Outside the lock: a Fetcher may call back (here: cancelled) before close() returns.
    fetcher_.close(id);
    return true;
  }

  void set_producers(const std::vector<ProducerTarget>& targets) {
    std::set<Uuid> keep;
    for (const ProducerTarget& t : targets) {
      keep.insert(t.id);
      upsert(t);
    }
    std::vector<Uuid> gone;
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, entry] : entries_) {
        if (!keep.contains(id)) gone.push_back(id);
      }
    }
    for (const Uuid& id : gone) remove(id);
  }

  Status collect_now(const Uuid& id) {
    std::vector<Launch> launches;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return Status::error("the collector is stopping", "stopping");
      auto it = entries_.find(id);
      if (it == entries_.end()) {
        return Status::error("no producer " + id.to_string(), "not_found");
      }
      if (it->second.state.in_progress) {
        record_skip(it->second, reason::kInProgress, "the previous collection is still running");
        return Status::error("a collection of " + id.to_string() + " is already running",
                             std::string(reason::kInProgress));
      }
      launches.push_back(begin(it->second));
    }
    launch(std::move(launches));
    return {};
  }

  std::size_t run_due() {
    std::vector<Launch> launches;
    // Asked before mu_: the sink has its own lock, never taken with ours.
    const bool sink_full = options_.sink_full && options_.sink_full();
    {
      std::lock_guard lock(mu_);
      if (stopping_) return 0;
      for (const PollSchedule::Due& due : schedule_.take_due(clock_.now())) {
        Entry& e = entries_.at(due.id);
        e.state.counts.missed_polls += due.missed;
        totals_.missed_polls += due.missed;
        if (e.state.in_progress) {
          record_skip(e, reason::kInProgress, "the previous collection is still running");
        } else if (sink_full) {
          record_skip(e, reason::kQueueFull,
                      "the sink's queue is nearly full: Postgres is not keeping up");
        } else {
          launches.push_back(begin(e));
        }
      }
    }
    const std::size_t n = launches.size();
    launch(std::move(launches));
    return n;
  }

  std::optional<Clock::time_point> next_due() const {
    std::lock_guard lock(mu_);
    return schedule_.next_due();
  }

  std::vector<ProducerState> snapshot() const {
    std::lock_guard lock(mu_);
    std::vector<ProducerState> out;
    out.reserve(entries_.size());
    const auto now = clock_.now();
    const Timestamp wall = tally::now();
    for (const auto& [id, e] : entries_) out.push_back(state_of(id, e, now, wall));
    return out;
  }

  std::optional<ProducerState> snapshot(const Uuid& id) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return std::nullopt;
    return state_of(id, it->second, clock_.now(), tally::now());
  }

  SchedulerTotals totals() const {
    std::lock_guard lock(mu_);
    SchedulerTotals t = totals_;
    t.producers = entries_.size();
    t.in_progress = in_progress_;
    return t;
  }

 private:
  struct Entry {
    ProducerState state;
    uint64_t generation = 0;  // tells a re-added producer from the one removed before
    std::shared_ptr<ProducerDecoder> decoder;
    std::string logged_reason;          // the failure reason logged last ("" after a success)
    std::string logged_producer_error;  // the producer error logged last
  };

  // A collection decided under the lock, started outside it.
  struct Launch {
    Uuid id;
    uint64_t generation;
    FetchRequest request;
    std::shared_ptr<ProducerDecoder> decoder;
  };

  ProducerState state_of(const Uuid& id, const Entry& e, Clock::time_point now,
                         Timestamp wall) const {
    ProducerState s = e.state;
    if (auto due = schedule_.due(id)) {
      s.next_poll = wall + std::chrono::duration_cast<std::chrono::microseconds>(*due - now);
    }
    return s;
  }

  void record_skip(Entry& e, std::string_view why, std::string_view message) {
    const std::string reason(why);
    ++e.state.counts.failures[reason];
    ++totals_.failures[reason];
    e.state.last_failure = CollectionFailure{tally::now(), reason, std::string(message)};
    if (e.logged_reason != reason) {
      e.logged_reason = reason;
      log_warn("collection_skipped", {{"producer", e.state.target.id.to_string()},
                                      {"address", e.state.target.address},
                                      {"reason", reason}});
    }
  }

  Launch begin(Entry& e) {
    e.state.in_progress = true;
    ++e.state.counts.collections;
    ++totals_.collections;
    ++in_progress_;
    const ProducerTarget& t = e.state.target;
    return Launch{t.id, e.generation, FetchRequest{t.id, t.address, t.route, t.format}, e.decoder};
  }

  void launch(std::vector<Launch> launches) {
    for (Launch& l : launches) {
      FetchRequest request = l.request;
      fetcher_.fetch(std::move(request), [this, l = std::move(l)](FetchResult fetched) mutable {
        // Called on an I/O thread: move the decoding elsewhere.
        pool_.post([this, l = std::move(l), fetched = std::move(fetched)]() mutable {
          complete(l, std::move(fetched));
        });
      });
    }
  }

  void complete(const Launch& l, FetchResult fetched) {
    const auto decode_start = std::chrono::steady_clock::now();
    Outcome out = decode(fetched, *l.decoder, options_.max_samples_per_collection);
    const auto duration = fetched.duration + std::chrono::duration_cast<std::chrono::microseconds>(
                                                 std::chrono::steady_clock::now() - decode_start);
    const bool cancelled = out.reason == reason::kCancelled;
    const uint64_t n_samples = out.samples.size();

    // Samples go out before the state says success, so whoever sees the success finds them
    // delivered; and while they go out the producer still counts as in progress, which keeps
    // its deliveries in order (and lets a slow sink hold back its polls).
    if (out.reason.empty() && n_samples > 0 && current(l)) {
      on_samples_(l.id, std::move(out.samples));
    }

    std::lock_guard lock(mu_);
    --in_progress_;
    if (in_progress_ == 0) idle_.notify_all();
    auto it = entries_.find(l.id);
    if (it == entries_.end() || it->second.generation != l.generation || stopping_ || cancelled) {
      if (it != entries_.end() && it->second.generation == l.generation) {
        it->second.state.in_progress = false;
      }
      return;
    }
    Entry& e = it->second;
    e.state.in_progress = false;
    observe(totals_.latency, duration);
    const std::string id_text = l.id.to_string();

    if (!out.reason.empty()) {
      ++e.state.counts.failures[out.reason];
      ++totals_.failures[out.reason];
      e.state.last_failure = CollectionFailure{fetched.started_at, out.reason, out.message};
      if (e.logged_reason != out.reason) {
        e.logged_reason = out.reason;
        log_warn("collection_failed", {{"producer", id_text},
                                       {"address", l.request.address},
                                       {"reason", out.reason},
                                       {"message", out.message}});
      }
      return;
    }

    e.state.last_success = CollectionSuccess{fetched.started_at, n_samples, duration};
    ++e.state.counts.successes;
    e.state.counts.samples += n_samples;
    ++totals_.successes;
    totals_.samples += n_samples;
    if (!e.logged_reason.empty()) {
      log_info("collection_recovered", {{"producer", id_text}, {"address", l.request.address}});
      e.logged_reason.clear();
    }
    if (!out.producer_errors.empty()) {
      const std::string reason(reason::kProducerError);
      e.state.counts.failures[reason] += out.producer_errors.size();
      totals_.failures[reason] += out.producer_errors.size();
      const ProducerError& first = out.producer_errors.front();
      std::string message = first.type + ": " + first.content;
      e.state.last_failure = CollectionFailure{fetched.started_at, reason, message};
      if (e.logged_producer_error != message) {
        e.logged_producer_error = message;
        log_warn("producer_error", {{"producer", id_text},
                                    {"address", l.request.address},
                                    {"errors", std::to_string(out.producer_errors.size())},
                                    {"message", message}});
      }
    }
  }

  // Whether the collection's producer is still the one scheduled (not removed, not stopping).
  bool current(const Launch& l) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(l.id);
    return !stopping_ && it != entries_.end() && it->second.generation == l.generation;
  }

  void timer_loop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      const auto next = schedule_.next_due();
      if (!next) {
        wake_.wait(lock);
        continue;
      }
      const auto now = clock_.now();
      if (*next > now) {
        // Assumes clock_ runs at the pace of steady_clock (it is steady_clock outside tests).
        wake_.wait_for(lock, *next - now);
        continue;
      }
      lock.unlock();
      run_due();
      lock.lock();
    }
  }

  SchedulerOptions options_;
  const Clock& clock_;
  Fetcher& fetcher_;
  SamplesCallback on_samples_;

  mutable std::mutex mu_;         // guards everything below
  std::condition_variable wake_;  // the timer thread: the schedule changed or stopping
  std::condition_variable idle_;  // stop(): in_progress_ reached 0
  PollSchedule schedule_;
  std::map<Uuid, Entry> entries_;
  SchedulerTotals totals_;
  uint64_t next_generation_ = 1;
  uint64_t in_progress_ = 0;
  bool stopping_ = false;
  std::thread timer_;

  DecodePool pool_;  // last: its threads stop before the members they use go away
};

Scheduler::Scheduler(SchedulerOptions options, Fetcher& fetcher, SamplesCallback on_samples)
    : impl_(std::make_unique<Impl>(std::move(options), fetcher, std::move(on_samples))) {}
Scheduler::~Scheduler() { stop(); }
void Scheduler::start() { impl_->start(); }
void Scheduler::stop() { impl_->stop(); }
void Scheduler::upsert(const ProducerTarget& target) { impl_->upsert(target); }
bool Scheduler::remove(const Uuid& id) { return impl_->remove(id); }
void Scheduler::set_producers(const std::vector<ProducerTarget>& targets) {
  impl_->set_producers(targets);
}
Status Scheduler::collect_now(const Uuid& id) { return impl_->collect_now(id); }
std::vector<ProducerState> Scheduler::snapshot() const { return impl_->snapshot(); }
std::optional<ProducerState> Scheduler::snapshot(const Uuid& id) const {
  return impl_->snapshot(id);
}
SchedulerTotals Scheduler::totals() const { return impl_->totals(); }
std::size_t Scheduler::run_due() { return impl_->run_due(); }
std::optional<Clock::time_point> Scheduler::next_due() const { return impl_->next_due(); }

}  // namespace tally::collector
