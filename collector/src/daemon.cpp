#include "tally/collector/daemon.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <vector>

#include "tally/collector/api.h"
#include "tally/collector/collector_metrics.h"
#include "tally/collector/registry_link.h"
#include "tally/collector/scheduler.h"
#include "tally/collector/schema_check.h"
#include "tally/collector/scraper.h"
#include "tally/collector/sink.h"
#include "tally/common/http_server.h"
#include "tally/common/log.h"
#include "tally/common/pg.h"
#include "tally/schema/migrations.h"

namespace tally::collector {
namespace {

namespace fs = std::filesystem;

// Connections for the sink's writer and the schema store. Short enough that a dead database
// holds a thread for a few seconds at most, long enough for a loaded server.
constexpr std::chrono::seconds kConnectTimeout{5};
constexpr std::chrono::seconds kHealthProbeTimeout{2};
// How often samples set aside for the schema store are checked again (the checker's own
// retry_after is 1 s too, so a dead database is asked at most once a second).
constexpr std::chrono::milliseconds kPendingRetry{1000};

ConnectionFactory connection_factory(std::string url) {
  return [url = std::move(url)]() -> Result<std::unique_ptr<pg::Connection>> {
    return pg::Connection::open(url, kConnectTimeout);
  };
}

ProducerTarget to_target(const config::StaticProducer& p) {
  return ProducerTarget{.id = p.id,
                        .address = p.address,
                        .route = p.route,
                        .format = p.format,
                        .interval = p.interval,
                        .target_name = p.target_name};
}

ProducerTarget to_target(const AssignedProducer& p) {
  ProducerTarget t{.id = p.id, .address = p.address, .route = p.route, .format = p.format};
  if (t.route.empty()) {
    t.route = p.format == config::ProducerFormat::kPrometheus ? "/metrics" : "/collect";
  }
  if (p.interval.count() > 0) t.interval = p.interval;
  if (!p.target_name.empty()) t.target_name = p.target_name;
  return t;
}

std::string str(uint64_t n) { return std::to_string(n); }

// Samples the schema store could not check, kept to be checked again; `producer` is empty for
// the collector's own samples.
struct PendingBatch {
  std::optional<Uuid> producer;
  std::vector<Sample> samples;
};

}  // namespace

class Daemon::Impl final : public ApiBackend {
 public:
  explicit Impl(DaemonOptions options)
      : options_(std::move(options)), config_(options_.config), start_time_(tally::now()) {
    max_pending_ = options_.max_pending_schema_samples > 0
                       ? options_.max_pending_schema_samples
                       : std::max<std::size_t>(1000, config_.database.max_queue_samples / 4);
  }

  ~Impl() override { stop(); }

  Status start();
  void stop();

  Uuid id() const { return id_; }
  std::string address() const { return server_ ? server_->address() : ""; }
  uint16_t port() const { return server_ ? server_->port() : 0; }

  // ApiBackend.
  Uuid collector_id() const override { return id_; }
  std::vector<ProducerView> producers() const override;
  std::optional<ProducerView> producer(const Uuid& id) const override;
  Status collect_now(const Uuid& id) override { return scheduler_->collect_now(id); }
  HealthView health() override;
  std::string metrics_text() const override { return render_prometheus(snapshot()); }

 private:
  // The data path after decoding: schema check, then the sink. Runs on the scheduler's decode
  // threads and on the housekeeping thread, never on an I/O thread (the check may block).
  void on_samples(const std::optional<Uuid>& producer, std::vector<Sample> samples,
                  bool retry = false);
  void account(const std::optional<Uuid>& producer, const SchemaCheckResult& r, bool retry);
  void defer(const std::optional<Uuid>& producer, std::vector<Sample> samples, bool front);
  void retry_pending();
  void drop_pending(const char* why);
  void push_self_samples();
  void housekeeping();

  void on_assignments(std::vector<AssignedProducer> assigned);
  void apply_targets();
  CollectorSnapshot snapshot() const;
  ProducerView view(const ProducerState& state) const;  // targets_mu_ held

  DaemonOptions options_;
  const config::CollectorConfig& config_;
  const Timestamp start_time_;
  std::size_t max_pending_ = 0;
  Uuid id_;
  PipelineCounters counters_;

  std::unique_ptr<Sink> sink_;
  std::unique_ptr<SchemaChecker> checker_;
  std::unique_ptr<Scraper> scraper_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<RegistryLink> link_;

  // Which producers are polled: the YAML's and the registry's. apply_mu_ serialises whole
  // updates of the scheduler's set; targets_mu_ guards the data and is never held while
  // calling the scheduler.
  std::mutex apply_mu_;
  mutable std::mutex targets_mu_;
  std::vector<ProducerTarget> static_targets_;      // targets_mu_
  std::vector<ProducerTarget> registry_targets_;    // targets_mu_
  std::map<Uuid, ProducerPipelineState> pipeline_;  // targets_mu_

  std::mutex pending_mu_;
  std::deque<PendingBatch> pending_;  // pending_mu_, oldest first
  std::size_t pending_samples_ = 0;   // pending_mu_
  bool pending_full_logged_ = false;  // pending_mu_

  std::mutex house_mu_;
  std::condition_variable house_wake_;
  bool house_stop_ = false;  // house_mu_
  std::thread house_;

  bool started_ = false;  // start() completed
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  std::unique_ptr<HttpServer> server_;  // last: destroyed first, while the rest still exists
};

Status Daemon::Impl::start() {
  std::error_code ec;
  fs::create_directories(config_.state_dir, ec);
  if (ec) {
    return Status::error("cannot create state_dir " + config_.state_dir + ": " + ec.message(),
                         "state_dir");
  }
  auto id = load_or_create_collector_id(config_.state_dir);
  if (!id.ok()) return Status::error(id.error(), "state_dir");
  id_ = *id;

  log_info("collector_starting", {{"version", options_.version},
                                  {"collector_id", id_.to_string()},
                                  {"listen", config_.listen},
                                  {"state_dir", config_.state_dir},
                                  {"database", pg::redact_url(config_.database.url)},
                                  {"registry", config_.registry ? config_.registry->url : "none"},
                                  {"static_producers", str(config_.static_producers.size())}});

  {
    auto conn = pg::Connection::open(config_.database.url, std::chrono::seconds(10));
    if (!conn.ok())
      return Status::error("cannot connect to the database: " + conn.error(), "database");
    if (Status s = schema::apply_migrations(**conn); !s.ok()) {
      return Status::error("migrations failed: " + s.message(), "database");
    }
  }

  const ConnectionFactory factory = connection_factory(config_.database.url);
  SinkOptions sink_options{
      .batch_size = static_cast<std::size_t>(config_.database.batch_size),
      .batch_interval = config_.database.batch_interval,
      .max_queue_samples = static_cast<std::size_t>(config_.database.max_queue_samples),
      .spool = {.dir = (fs::path(config_.state_dir) / "spool").string(),
                .max_bytes = config_.database.spool_max_bytes},
      // A reconnect every 5 s at worst: cheap, and data flows soon after Postgres returns.
      .max_backoff = std::chrono::milliseconds(5000),
  };
  auto sink = Sink::open(std::move(sink_options), make_copy_batch_writer(factory));
  if (!sink.ok()) return Status::error(sink.error(), "spool_io");
  sink_ = std::move(*sink);
  checker_ = std::make_unique<SchemaChecker>(make_schema_source(factory));

  // One I/O thread moves the bytes of thousands of producers; a second helps on larger hosts.
  const int io_threads = std::thread::hardware_concurrency() > 4 ? 2 : 1;
  scraper_ = std::make_unique<Scraper>(
      ScraperOptions{.collection = config_.collection, .io_threads = io_threads});
  scheduler_ = std::make_unique<Scheduler>(
      SchedulerOptions{.max_samples_per_collection =
                           static_cast<std::size_t>(config_.collection.max_samples_per_collection)},
      *scraper_, [this](const Uuid& producer, std::vector<Sample> samples) {
        on_samples(producer, std::move(samples));
      });

  server_ = std::make_unique<HttpServer>(
      HttpServerOptions{.listen = config_.listen, .server_name = "tally-collector"},
      [this](const HttpRequest& req) { return handle_api_request(*this, req); });
  if (Status s = server_->start(); !s.ok()) return Status::error(s.message(), "listen");

  sink_->start();
  scraper_->start();
  scheduler_->start();
  {
    std::lock_guard lock(targets_mu_);
    for (const config::StaticProducer& p : config_.static_producers) {
      static_targets_.push_back(to_target(p));
    }
  }
  apply_targets();
  house_ = std::thread([this] { housekeeping(); });

  if (config_.registry) {
    const std::string advertised = server_->address();
    if (advertised.starts_with("0.0.0.0:") || advertised.starts_with("[::]:")) {
      log_warn("advertised_address_unspecified",
               {{"address", advertised},
                {"hint", "listen on the address the registry should give out"}});
    }
    link_ = std::make_unique<RegistryLink>(
        *config_.registry, id_, advertised,
        [this](std::vector<AssignedProducer> assigned) { on_assignments(std::move(assigned)); });
    link_->start();
  }
  started_ = true;
  return Status();
}

void Daemon::Impl::stop() {
  if (stopped_.exchange(true)) return;
  stopping_ = true;
  if (started_) log_info("collector_stopping", {});
  if (link_) link_->stop();
  if (scheduler_) scheduler_->stop();  // waits for the decodes, so their samples are pushed
  if (scraper_) scraper_->stop();
  if (house_.joinable()) {
    {
      std::lock_guard lock(house_mu_);
      house_stop_ = true;
    }
    house_wake_.notify_all();
    house_.join();
  }
  if (started_) {
    // A last chance for the samples set aside, only if Postgres answers: stopping must not
    // wait for connect timeouts.
    if (sink_->stats().database_up) retry_pending();
    drop_pending("the collector is stopping");
    push_self_samples();
  }
  if (sink_) sink_->stop();
  if (server_) server_->stop();
  if (started_) {
    const SinkStats s = sink_->stats();
    log_info("collector_stopped", {{"stored", str(s.samples_stored)},
                                   {"spooled_total", str(s.samples_spooled)},
                                   {"spool_files", str(s.spool_files)}});
  }
}

void Daemon::Impl::on_samples(const std::optional<Uuid>& producer, std::vector<Sample> samples,
                              bool retry) {
  SchemaCheckResult r = checker_->check(std::move(samples));
  account(producer, r, retry);
  if (!r.accepted.empty()) sink_->push(std::move(r.accepted));  // drops are counted by the sink
  if (!r.unchecked.empty()) defer(producer, std::move(r.unchecked), retry);
}

void Daemon::Impl::account(const std::optional<Uuid>& producer, const SchemaCheckResult& r,
                           bool retry) {
  const SchemaRejections& rej = r.rejections;
  counters_.rejected_schema += rej.schema;
  counters_.rejected_unstorable += rej.unstorable;
  counters_.schemas_created += r.schemas_created;
  const bool deferred = !r.unchecked.empty() && !retry;
  if (deferred) counters_.deferred_schema_unavailable += r.unchecked.size();
  if (producer) {
    if (rej.schema > 0) ++counters_.failures_schema;
    if (rej.unstorable > 0) ++counters_.failures_unstorable;
    if (deferred) ++counters_.failures_schema_unavailable;
  }
  if (rej.total() == 0 && !deferred) return;

  const Timestamp now = tally::now();
  const std::string who = producer ? producer->to_string() : "tally_collector";
  std::vector<std::string> new_conflicts;
  {
    std::lock_guard lock(targets_mu_);
    ProducerPipelineState* p = nullptr;
    if (producer) {
      auto it = pipeline_.find(*producer);
      if (it != pipeline_.end()) p = &it->second;
    }
    if (p != nullptr) {
      p->rejected_schema += rej.schema;
      p->rejected_unstorable += rej.unstorable;
      if (rej.schema > 0) ++p->failures_schema;
      if (rej.unstorable > 0) ++p->failures_unstorable;
      if (deferred) {
        p->deferred += r.unchecked.size();
        ++p->failures_schema_unavailable;
        p->last_failure =
            CollectionFailure{now, "schema_unavailable",
                              str(r.unchecked.size()) +
                                  " samples set aside to be checked again: " + r.status.message()};
      }
      if (rej.unstorable > 0) {
        p->last_failure = CollectionFailure{now, "unstorable", rej.first_unstorable};
      }
      if (rej.schema > 0 && !rej.conflicts.empty()) {
        p->last_failure = CollectionFailure{now, "schema", rej.conflicts.front()};
      }
      for (const std::string& message : rej.conflicts) {
        auto same = std::find_if(p->conflicts.begin(), p->conflicts.end(),
                                 [&](const SchemaConflict& c) { return c.message == message; });
        if (same != p->conflicts.end()) {
          same->last_seen = now;
          ++same->collections;
          continue;
        }
        new_conflicts.push_back(message);
        p->conflicts.push_back(SchemaConflict{now, now, message, 1});
        if (p->conflicts.size() > ProducerPipelineState::kMaxConflicts) p->conflicts.pop_front();
      }
    } else {
      new_conflicts = rej.conflicts;  // the collector's own samples, or a producer just removed
    }
  }
  // Logged once per producer and conflict; the counts carry the repetitions.
  for (const std::string& message : new_conflicts) {
    log_warn("schema_conflict", {{"producer", who}, {"conflict", message}});
  }
  if (rej.unstorable > 0) {
    log_debug(
        "samples_unstorable",
        {{"producer", who}, {"samples", str(rej.unstorable)}, {"first", rej.first_unstorable}});
  }
}

void Daemon::Impl::defer(const std::optional<Uuid>& producer, std::vector<Sample> samples,
                         bool front) {
  const std::size_t n = samples.size();
  std::lock_guard lock(pending_mu_);
  if (pending_samples_ + n > max_pending_) {
    counters_.dropped_schema_unavailable += n;
    if (!pending_full_logged_) {
      pending_full_logged_ = true;
      log_error("pending_schema_full",
                {{"dropped", str(n)},
                 {"pending", str(pending_samples_)},
                 {"limit", str(max_pending_)},
                 {"action", "dropping samples of unchecked schemas until the database returns"}});
    }
    return;
  }
  PendingBatch batch{producer, std::move(samples)};
  if (front) {
    pending_.push_front(std::move(batch));
  } else {
    pending_.push_back(std::move(batch));
  }
  pending_samples_ += n;
  counters_.pending_schema = pending_samples_;
}

void Daemon::Impl::retry_pending() {
  std::deque<PendingBatch> batches;
  {
    std::lock_guard lock(pending_mu_);
    if (pending_.empty()) return;
    batches.swap(pending_);
    pending_samples_ = 0;
    counters_.pending_schema = 0;
    pending_full_logged_ = false;
  }
  // Newest first, each put back at the front, so the queue keeps its order when the check
  // still cannot run.
  for (auto it = batches.rbegin(); it != batches.rend(); ++it) {
    on_samples(it->producer, std::move(it->samples), /*retry=*/true);
  }
}

void Daemon::Impl::drop_pending(const char* why) {
  std::lock_guard lock(pending_mu_);
  if (pending_samples_ == 0) return;
  counters_.dropped_schema_unavailable += pending_samples_;
  log_error("pending_schema_dropped", {{"samples", str(pending_samples_)}, {"why", why}});
  pending_.clear();
  pending_samples_ = 0;
  counters_.pending_schema = 0;
}

void Daemon::Impl::push_self_samples() {
  std::vector<Sample> samples = make_self_samples(snapshot(), tally::now());
  counters_.self_samples += samples.size();
  on_samples(std::nullopt, std::move(samples));
}

void Daemon::Impl::housekeeping() {
  using Clock = std::chrono::steady_clock;
  const auto tick = std::min<Clock::duration>(kPendingRetry, options_.self_interval);
  auto next_self = Clock::now() + options_.self_interval;
  std::unique_lock lock(house_mu_);
  while (!house_stop_) {
    house_wake_.wait_for(lock, tick, [this] { return house_stop_; });
    if (house_stop_) break;
    lock.unlock();
    retry_pending();
    if (Clock::now() >= next_self) {
      push_self_samples();
      next_self = std::max(next_self + options_.self_interval, Clock::now());
    }
    lock.lock();
  }
}

void Daemon::Impl::on_assignments(std::vector<AssignedProducer> assigned) {
  std::vector<ProducerTarget> targets;
  targets.reserve(assigned.size());
  for (const AssignedProducer& p : assigned) targets.push_back(to_target(p));
  std::sort(targets.begin(), targets.end(),
            [](const ProducerTarget& a, const ProducerTarget& b) { return a.id < b.id; });
  {
    std::lock_guard lock(targets_mu_);
    if (targets == registry_targets_) return;
    std::set<Uuid> before, after;
    for (const ProducerTarget& t : registry_targets_) before.insert(t.id);
    for (const ProducerTarget& t : targets) after.insert(t.id);
    std::size_t added = 0, removed = 0;
    for (const Uuid& id : after) added += before.contains(id) ? 0 : 1;
    for (const Uuid& id : before) removed += after.contains(id) ? 0 : 1;
    log_info("assignment_changed", {{"producers", str(targets.size())},
                                    {"added", str(added)},
                                    {"removed", str(removed)},
                                    {"changed", str(targets.size() - added)}});
    registry_targets_ = std::move(targets);
  }
  apply_targets();
}

void Daemon::Impl::apply_targets() {
  std::lock_guard apply(apply_mu_);
  std::vector<ProducerTarget> all;
  {
    std::lock_guard lock(targets_mu_);
    std::set<Uuid> ids;
    std::map<Uuid, ProducerPipelineState> kept;
    const auto take = [&](const ProducerTarget& t, const char* source) {
      if (!ids.insert(t.id).second) return false;
      auto it = pipeline_.find(t.id);
      ProducerPipelineState state =
          it != pipeline_.end() ? std::move(it->second) : ProducerPipelineState{};
      state.source = source;
      kept.emplace(t.id, std::move(state));
      all.push_back(t);
      return true;
    };
    for (const ProducerTarget& t : static_targets_) take(t, "static");
    // A producer both in the YAML and assigned by the registry is polled once, as configured.
    for (const ProducerTarget& t : registry_targets_) take(t, "registry");
    pipeline_ = std::move(kept);
  }
  scheduler_->set_producers(all);
}

ProducerView Daemon::Impl::view(const ProducerState& state) const {
  ProducerView v{.state = state};
  auto it = pipeline_.find(state.target.id);
  if (it != pipeline_.end()) v.pipeline = it->second;
  return v;
}

std::vector<ProducerView> Daemon::Impl::producers() const {
  const std::vector<ProducerState> states = scheduler_->snapshot();
  std::vector<ProducerView> out;
  out.reserve(states.size());
  std::lock_guard lock(targets_mu_);
  for (const ProducerState& s : states) out.push_back(view(s));
  return out;
}

std::optional<ProducerView> Daemon::Impl::producer(const Uuid& id) const {
  auto state = scheduler_->snapshot(id);
  if (!state) return std::nullopt;
  std::lock_guard lock(targets_mu_);
  return view(*state);
}

HealthView Daemon::Impl::health() {
  HealthView h;
  h.stopping = stopping_;
  // A probe of its own, so the answer is about now and not the sink's last write.
  auto conn = pg::Connection::open(config_.database.url, kHealthProbeTimeout);
  if (conn.ok()) {
    auto rows = (*conn)->exec("SELECT 1");
    h.database_reachable = rows.ok();
    if (!rows.ok()) h.database_error = rows.error();
  } else {
    h.database_error = conn.error();
  }
  const SinkStats s = sink_->stats();
  h.sink_database_up = s.database_up;
  h.queue_depth = s.queue_depth + s.in_flight;
  h.spool_files = s.spool_files;
  h.spool_bytes = s.spool_bytes;
  h.pending_schema = counters_.pending_schema.load(std::memory_order_relaxed);
  return h;
}

CollectorSnapshot Daemon::Impl::snapshot() const {
  CollectorSnapshot s;
  s.collector_id = id_;
  s.version = options_.version;
  s.start_time = start_time_;
  s.scheduler = scheduler_->totals();
  s.scraper = scraper_->stats();
  s.sink = sink_->stats();
  s.pipeline = counters_.totals();
  s.schemas_cached = checker_->cached_schemas();
  if (link_) {
    const RegistryLinkStats& r = link_->stats();
    s.registry = RegistryTotals{.heartbeats = r.heartbeats.load(),
                                .heartbeat_failures = r.heartbeat_failures.load(),
                                .refreshes = r.refreshes.load(),
                                .refresh_failures = r.refresh_failures.load()};
  }
  return s;
}

Result<std::unique_ptr<Daemon>> Daemon::start(DaemonOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (Status s = impl->start(); !s.ok()) {
    impl->stop();
    return s;
  }
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() = default;
Uuid Daemon::id() const { return impl_->id(); }
std::string Daemon::address() const { return impl_->address(); }
uint16_t Daemon::port() const { return impl_->port(); }
void Daemon::stop() { impl_->stop(); }

}  // namespace tally::collector
