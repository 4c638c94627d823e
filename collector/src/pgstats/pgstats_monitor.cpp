#include "tally/collector/pgstats/pgstats_monitor.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "tally/collector/pgstats/target_poller.h"
#include "tally/collector/pgstats/watchdog.h"
#include "tally/collector/scheduler.h"
#include "tally/common/log.h"
#include "tally/common/pg.h"

namespace tally::collector::pgstats {
using std::chrono::duration_cast;

namespace {
constexpr std::chrono::minutes kSkipLogEvery{1};
}  // namespace

class PgstatsMonitor::Impl {
 public:
  Impl(MonitorOptions options, PgSamplesCallback on_samples);
  ~Impl() { stop(); }

  void start();
  void stop();
  void set_api_targets(std::vector<PgTarget> targets);
  bool refresh_discovery() { return discovery_ && discovery_->refresh(); }
  std::vector<PgTarget> targets() const;
  PgstatsSnapshot snapshot() const;

 private:
  // One target while it is known. Shared by the maps and the worker polling it, so a target
  // removed mid-poll lives (and its connection stays open) until that poll has returned.
  struct TargetState {
    TargetState(PgTarget t, Timestamp added) : target(std::move(t)), stats(target, added) {}
    PgTarget target;
    Uuid key;  // in schedule_
    TargetStats stats;
    std::unique_ptr<TargetPoller> poller;
    bool in_progress = false;           // mu_: queued or running
    bool removed = false;               // mu_
    Clock::time_point last_skip_log{};  // mu_
    uint64_t skipped_unlogged = 0;      // mu_: skips since the last pgstats_poll_skipped
  };
  using StatePtr = std::shared_ptr<TargetState>;

  // Makes the polled set the merge of the static and API lists.
  void apply();
  void run_timer();
  void run_worker();

  const MonitorOptions options_;
  const PgSamplesCallback on_samples_;
  const Clock& clock_ = steady_clock();
  Watchdog watchdog_;
  std::unique_ptr<Discovery> discovery_;
  std::vector<PgTarget> static_targets_;

  std::mutex apply_mu_;                // one apply() at a time
  std::vector<PgTarget> api_targets_;  // apply_mu_
  std::set<std::string> clashes_;      // apply_mu_: API names hidden by static ones, logged

  mutable std::mutex mu_;
  std::condition_variable timer_wake_;
  std::condition_variable work_wake_;
  PollSchedule schedule_;                    // mu_
  std::map<std::string, StatePtr> targets_;  // mu_, by name
  std::map<Uuid, StatePtr> by_key_;          // mu_
  std::deque<StatePtr> queue_;               // mu_: polls waiting for a worker
  std::vector<std::thread> workers_;         // mu_
  std::size_t idle_workers_ = 0;             // mu_
  bool started_ = false;                     // mu_
  bool stopping_ = false;                    // mu_
  std::thread timer_;
};

PgstatsMonitor::Impl::Impl(MonitorOptions options, PgSamplesCallback on_samples)
    : options_(std::move(options)),
      on_samples_(std::move(on_samples)),
      schedule_(options_.first_offset ? PollSchedule::OffsetFn(options_.first_offset)
                                      : PollSchedule::random_offset()) {
  for (const config::PostgresTarget& t : options_.config.static_targets) {
    static_targets_.push_back(PgTarget{t.name, t.url, TargetSource::kStatic});
  }
  if (options_.config.api) {
    discovery_ = std::make_unique<Discovery>(
        *options_.config.api, options_.fetch,
        [this](std::vector<PgTarget> list) { set_api_targets(std::move(list)); });
  }
}

void PgstatsMonitor::Impl::start() {
  {
    std::lock_guard lock(mu_);
    if (started_) return;
    started_ = true;
  }
  const config::PostgresMonitoringConfig& c = options_.config;
  log_info("pgstats_starting", {{"static_targets", std::to_string(static_targets_.size())},
                                {"api", c.api ? c.api->url : "none"},
                                {"interval", format_duration(c.interval)},
                                {"query_timeout", format_duration(c.query_timeout)},
                                {"max_in_flight", std::to_string(c.max_in_flight)}});
  watchdog_.start();
  timer_ = std::thread([this] { run_timer(); });
  apply();
  if (discovery_) discovery_->start();
}

void PgstatsMonitor::Impl::stop() {
  if (discovery_) discovery_->stop();
  std::vector<StatePtr> all;
  std::vector<std::thread> workers;
  bool was_started = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    was_started = started_;
    for (auto& [name, state] : targets_) all.push_back(state);
    queue_.clear();
  }
  timer_wake_.notify_all();
  work_wake_.notify_all();
  if (timer_.joinable()) timer_.join();
  // Running queries are cancelled so that the workers return within a round trip.
  for (const StatePtr& s : all) {
    if (s->poller) s->poller->abort();
  }
  {
    std::lock_guard lock(mu_);
    workers.swap(workers_);
  }
  for (std::thread& w : workers) w.join();
  watchdog_.stop();
  {
    std::lock_guard lock(mu_);
    targets_.clear();
    by_key_.clear();
  }
  all.clear();  // the last references: pollers and connections close here
  if (was_started) log_info("pgstats_stopped", {});
}

void PgstatsMonitor::Impl::set_api_targets(std::vector<PgTarget> targets) {
  {
    std::lock_guard lock(apply_mu_);
    for (PgTarget& t : targets) t.source = TargetSource::kApi;
    api_targets_ = std::move(targets);
  }
  apply();
}

void PgstatsMonitor::Impl::apply() {
  std::lock_guard apply_lock(apply_mu_);
  std::vector<std::string> clash_list;
  const std::vector<PgTarget> wanted = merge_targets(static_targets_, api_targets_, &clash_list);
  const std::set<std::string> clashes(clash_list.begin(), clash_list.end());
  for (const std::string& name : clashes) {
    if (!clashes_.contains(name)) {
      log_warn("pgstats_target_name_clash",
               {{"target", name}, {"action", "the static target of that name is polled"}});
    }
  }
  clashes_ = clashes;

  const auto interval = duration_cast<Clock::duration>(options_.config.interval);
  const PollerOptions poller_options{.query_timeout = options_.config.query_timeout,
                                     .min_backoff = options_.min_backoff,
                                     .max_backoff = options_.max_backoff,
                                     .clock = &clock_};
  std::vector<StatePtr> removed;
  std::vector<PgTarget> added;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    std::map<std::string, const PgTarget*> by_name;
    for (const PgTarget& t : wanted) by_name.emplace(t.name, &t);
    for (auto it = targets_.begin(); it != targets_.end();) {
      auto w = by_name.find(it->first);
      // A changed URL (or source) is a different server: start afresh.
      if (w != by_name.end() && *w->second == it->second->target) {
        ++it;
        continue;
      }
      StatePtr state = it->second;
      state->removed = true;
      schedule_.remove(state->key);
      by_key_.erase(state->key);
      removed.push_back(std::move(state));
      it = targets_.erase(it);
    }
    for (const PgTarget& t : wanted) {
      if (targets_.contains(t.name)) continue;
      auto instance = parse_instance(t.name, t.url);
      if (!instance.ok()) {
        log_error("pgstats_target_invalid", {{"target", t.name},
                                             {"url", pg::redact_url(t.url)},
                                             {"error", instance.error()},
                                             {"action", "not polled"}});
        continue;
      }
      auto state = std::make_shared<TargetState>(t, tally::now());
      state->key = Uuid::random();
      state->poller = std::make_unique<TargetPoller>(t, std::move(*instance), poller_options,
                                                     options_.queries, watchdog_, state->stats);
      schedule_.set(state->key, interval, clock_.now());
      by_key_.emplace(state->key, state);
      targets_.emplace(t.name, std::move(state));
      added.push_back(t);
    }
  }
  if (!added.empty()) timer_wake_.notify_all();
  for (const StatePtr& state : removed) {
    // Cancels its query if one runs; a poll still queued returns at once. The connection closes
    // with the last reference: here, or when its worker lets go.
    state->poller->abort();
    log_info("pgstats_target_removed",
             {{"target", state->target.name}, {"source", to_string(state->target.source)}});
  }
  for (const PgTarget& t : added) {
    log_info("pgstats_target_added",
             {{"target", t.name}, {"url", pg::redact_url(t.url)}, {"source", to_string(t.source)}});
  }
}

void PgstatsMonitor::Impl::run_timer() {
  const auto max_workers =
      static_cast<std::size_t>(std::max<int64_t>(1, options_.config.max_in_flight));
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (auto next = schedule_.next_due()) {
      timer_wake_.wait_until(lock, *next);
    } else {
      timer_wake_.wait(lock);
    }
    if (stopping_) break;
    for (const PollSchedule::Due& due : schedule_.take_due(clock_.now())) {
      auto it = by_key_.find(due.id);
      if (it == by_key_.end()) continue;
      TargetState& s = *it->second;
      if (s.in_progress) {
        s.stats.count_skipped();
        ++s.skipped_unlogged;
        // A target slower than its interval skips every other poll: say so once a minute.
        const auto now = clock_.now();
        if (s.last_skip_log == Clock::time_point{} || now - s.last_skip_log >= kSkipLogEvery) {
          log_warn("pgstats_poll_skipped",
                   {{"target", s.target.name},
                    {"reason", "in_progress"},
                    {"skipped", std::to_string(s.skipped_unlogged)},
                    {"note",
                     "the previous poll is still queued or running; logged once a "
                     "minute at most"}});
          s.last_skip_log = now;
          s.skipped_unlogged = 0;
        }
        continue;
      }
      s.in_progress = true;
      queue_.push_back(it->second);
      // Workers are started as polls need them, up to max_in_flight: a collector monitoring two
      // servers does not keep ten idle threads.
      if (queue_.size() > idle_workers_ && workers_.size() < max_workers) {
        workers_.emplace_back([this] { run_worker(); });
      }
      work_wake_.notify_one();
    }
  }
}

void PgstatsMonitor::Impl::run_worker() {
  std::unique_lock lock(mu_);
  while (true) {
    ++idle_workers_;
    work_wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --idle_workers_;
    if (stopping_) return;
    StatePtr state = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();

    std::vector<Sample> samples = state->poller->poll();
    bool deliver = !samples.empty();
    {
      std::lock_guard relock(mu_);
      deliver = deliver && !state->removed && !stopping_;
    }
    if (deliver) on_samples_(std::move(samples));

    lock.lock();
    state->in_progress = false;
    lock.unlock();
    state.reset();  // may be the last reference of a removed target: closes its connection
    lock.lock();
  }
}

std::vector<PgTarget> PgstatsMonitor::Impl::targets() const {
  std::lock_guard lock(mu_);
  std::vector<PgTarget> out;
  for (const auto& [name, state] : targets_) out.push_back(state->target);
  return out;
}

PgstatsSnapshot PgstatsMonitor::Impl::snapshot() const {
  std::vector<StatePtr> states;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, state] : targets_) states.push_back(state);
  }
  PgstatsSnapshot s;
  for (const StatePtr& state : states) s.targets.push_back(state->stats.snapshot());
  if (discovery_) {
    s.discovery = true;
    s.discovery_refreshes = discovery_->stats().refreshes.load();
    s.discovery_failures = discovery_->stats().failures.load();
  }
  return s;
}

PgstatsMonitor::PgstatsMonitor(MonitorOptions options, PgSamplesCallback on_samples)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(on_samples))) {}
PgstatsMonitor::~PgstatsMonitor() = default;
void PgstatsMonitor::start() { impl_->start(); }
void PgstatsMonitor::stop() { impl_->stop(); }
void PgstatsMonitor::set_api_targets(std::vector<PgTarget> targets) {
  impl_->set_api_targets(std::move(targets));
}
bool PgstatsMonitor::refresh_discovery() { return impl_->refresh_discovery(); }
std::vector<PgTarget> PgstatsMonitor::targets() const { return impl_->targets(); }
PgstatsSnapshot PgstatsMonitor::snapshot() const { return impl_->snapshot(); }
std::string PgstatsMonitor::prometheus_text() const {
  std::string out;
  append_prometheus(out, impl_->snapshot());
  return out;
}

}  // namespace tally::collector::pgstats
