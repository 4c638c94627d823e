#include "tally/collector/daemon.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
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
#include "tally/collector/pgstats/pgstats_monitor.h"
#include "tally/collector/registry_link.h"
#include "tally/collector/sample_pipeline.h"
#include "tally/collector/scheduler.h"
#include "tally/collector/schema_check.h"
#include "tally/collector/scraper.h"
#include "tally/collector/sink.h"
#include "tally/common/http_server.h"
#include "tally/common/log.h"
#include "tally/common/pg.h"
#include "tally/schema/migrations.h"
#include "tally/schema/retention.h"
#include "tally/schema/views.h"

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
// Partition retention and view upkeep: at start, then hourly (days are the unit; an hour late
// costs nothing, and partitions are created two days ahead).
constexpr std::chrono::hours kMaintenanceInterval{1};

// Descriptors kept for everything but producer connections: the API's clients, Postgres (sink,
// schema store, housekeeping, health probes, pgstats targets), the spool, the registry link.
constexpr uint64_t kReservedFiles = 256;

// One keep-alive connection per producer needs one descriptor each: 10,000 producers do not fit
// in the usual soft limit of 1024. Raises the soft limit to the hard one and returns how many
// producer connections may stay open between polls (docs/collection.md, "Keep-alive").
std::size_t raise_open_file_limit(int64_t max_in_flight) {
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0) return SIZE_MAX;
  const rlim_t before = files.rlim_cur;
  if (files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &files) != 0) files.rlim_cur = before;
  }
  const auto limit = static_cast<uint64_t>(files.rlim_cur);
  const uint64_t reserved =
      kReservedFiles + static_cast<uint64_t>(std::max<int64_t>(0, max_in_flight));
  const std::size_t keep_alive =
      files.rlim_cur == RLIM_INFINITY
          ? SIZE_MAX
          : static_cast<std::size_t>(limit > reserved ? limit - reserved : 0);
  log_info("open_file_limit",
           {{"soft_before", std::to_string(before)},
            {"soft", std::to_string(limit)},
            {"hard", std::to_string(static_cast<uint64_t>(files.rlim_max))},
            {"keep_alive_connections",
             keep_alive == SIZE_MAX ? "unlimited" : std::to_string(keep_alive)}});
  return keep_alive;
}

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

}  // namespace

class Daemon::Impl final : public ApiBackend {
 public:
  explicit Impl(DaemonOptions options)
      : options_(std::move(options)), config_(options_.config), start_time_(tally::now()) {}

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
  std::string metrics_text() const override {
    return render_prometheus(snapshot()) + (pgstats_ ? pgstats_->prometheus_text() : "");
  }

 private:
  void push_self_samples();
  void housekeeping();
  void maintenance();

  void on_assignments(std::vector<AssignedProducer> assigned);
  void apply_targets();
  CollectorSnapshot snapshot() const;
  ProducerView view(const ProducerState& state) const;

  DaemonOptions options_;
  const config::CollectorConfig& config_;
  const Timestamp start_time_;
  Uuid id_;

  std::unique_ptr<Sink> sink_;
  std::unique_ptr<SchemaChecker> checker_;
  std::unique_ptr<SamplePipeline> pipeline_;
  std::unique_ptr<Scraper> scraper_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<RegistryLink> link_;
  std::unique_ptr<pgstats::PgstatsMonitor> pgstats_;  // with postgres_monitoring only

  // Which producers are polled: the YAML's and the registry's. apply_mu_ serialises whole
  // updates of the scheduler's (and the pipeline's) set; targets_mu_ guards the lists and is
  // never held while calling the scheduler.
  std::mutex apply_mu_;
  mutable std::mutex targets_mu_;
  std::vector<ProducerTarget> static_targets_;    // targets_mu_
  std::vector<ProducerTarget> registry_targets_;  // targets_mu_

  std::mutex house_mu_;
  std::condition_variable house_wake_;
  bool house_stop_ = false;  // house_mu_
  std::thread house_;
  std::atomic<uint64_t> partitions_created_{0};
  std::atomic<uint64_t> partitions_dropped_{0};

  bool started_ = false;  // start() completed
  // Set once start() has built everything the API reads (pgstats_, link_); the server is
  // already running before that, on its own threads.
  std::atomic<bool> serving_{false};
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
      .max_queue_bytes = static_cast<std::size_t>(config_.database.max_queue_bytes),
      // A collection that finds the queue full waits for the writer's next batches (its decode
      // thread held, and so the collections behind it) rather than being dropped; two batch
      // intervals, so a stalled Postgres still drops and counts within seconds.
      .max_push_wait = std::chrono::duration_cast<std::chrono::milliseconds>(
          2 * config_.database.batch_interval),
      .spool = {.dir = (fs::path(config_.state_dir) / "spool").string(),
                .max_bytes = config_.database.spool_max_bytes},
      // A reconnect every 5 s at worst: cheap, and data flows soon after Postgres returns.
      .max_backoff = std::chrono::milliseconds(5000),
  };
  auto sink = Sink::open(std::move(sink_options), make_copy_batch_writer(factory));
  if (!sink.ok()) return Status::error(sink.error(), "spool_io");
  sink_ = std::move(*sink);
  checker_ = std::make_unique<SchemaChecker>(make_schema_source(factory));
  const std::size_t max_pending =
      options_.max_pending_schema_samples > 0
          ? options_.max_pending_schema_samples
          : std::max<std::size_t>(1000, config_.database.max_queue_samples / 4);
  pipeline_ = std::make_unique<SamplePipeline>(
      *checker_, *sink_,
      SamplePipelineOptions{
          .max_pending = max_pending,
          .max_pending_bytes = std::max<std::size_t>(1 << 20, config_.database.max_queue_bytes / 4),
          .max_age = std::chrono::days(config_.database.retention_days)});

  // One I/O thread moves the bytes of thousands of producers; a second helps on larger hosts.
  const int io_threads = std::thread::hardware_concurrency() > 4 ? 2 : 1;
  scraper_ = std::make_unique<Scraper>(ScraperOptions{
      .collection = config_.collection,
      .io_threads = io_threads,
      .max_open_connections = raise_open_file_limit(config_.collection.max_in_flight)});
  scheduler_ = std::make_unique<Scheduler>(
      SchedulerOptions{.max_samples_per_collection =
                           static_cast<std::size_t>(config_.collection.max_samples_per_collection),
                       .sink_full = [this] { return sink_->nearly_full(); }},
      *scraper_, [this](const Uuid& producer, std::vector<Sample> samples) {
        pipeline_->push(producer, std::move(samples));
      });

  // The server starts here because the registry link needs its bound address, but the API
  // reads pgstats_ and link_, which are set below: until start() is done it answers 503.
  server_ = std::make_unique<HttpServer>(
      HttpServerOptions{.listen = config_.listen, .server_name = "tally-collector"},
      [this](const HttpRequest& req) {
        if (!serving_.load(std::memory_order_acquire)) {
          return HttpResponse::error(503, "starting", "the collector is starting");
        }
        return handle_api_request(*this, req);
      });
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
  if (config_.postgres_monitoring) {
    // Its samples take the producers' path: schema check, then sink (docs/pgstats.md).
    pgstats_ = std::make_unique<pgstats::PgstatsMonitor>(
        pgstats::MonitorOptions{.config = *config_.postgres_monitoring},
        [this](std::vector<Sample> samples) { pipeline_->push(std::nullopt, std::move(samples)); });
    pgstats_->start();
  }

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
  // Last: its self samples read link_ and pgstats_ (snapshot()).
  house_ = std::thread([this] { housekeeping(); });
  started_ = true;
  serving_.store(true, std::memory_order_release);
  return Status();
}

void Daemon::Impl::stop() {
  if (stopped_.exchange(true)) return;
  stopping_ = true;
  if (started_) log_info("collector_stopping", {});
  if (link_) link_->stop();
  if (scheduler_) scheduler_->stop();  // waits for the decodes, so their samples are pushed
  if (pgstats_) pgstats_->stop();
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
    if (sink_->stats().database_up) pipeline_->retry_pending();
    pipeline_->drop_pending("the collector is stopping");
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

void Daemon::Impl::push_self_samples() {
  const Timestamp now = tally::now();
  std::vector<Sample> samples = make_self_samples(snapshot(), now);
  if (pgstats_) {
    std::vector<Sample> pg =
        pgstats::make_self_samples(pgstats_->snapshot(), id_, start_time_, now);
    samples.insert(samples.end(), std::make_move_iterator(pg.begin()),
                   std::make_move_iterator(pg.end()));
  }
  pipeline_->count_self_samples(samples.size());
  pipeline_->push(std::nullopt, std::move(samples));
}

void Daemon::Impl::housekeeping() {
  using Clock = std::chrono::steady_clock;
  const auto tick = std::min<Clock::duration>(kPendingRetry, options_.self_interval);
  auto next_self = Clock::now() + options_.self_interval;
  maintenance();
  auto next_maintenance = Clock::now() + kMaintenanceInterval;
  std::unique_lock lock(house_mu_);
  while (!house_stop_) {
    house_wake_.wait_for(lock, tick, [this] { return house_stop_; });
    if (house_stop_) break;
    lock.unlock();
    pipeline_->retry_pending();
    if (Clock::now() >= next_self) {
      push_self_samples();
      next_self = std::max(next_self + options_.self_interval, Clock::now());
    }
    if (Clock::now() >= next_maintenance) {
      maintenance();
      next_maintenance = Clock::now() + kMaintenanceInterval;
    }
    lock.lock();
  }
}

void Daemon::Impl::maintenance() {
  auto conn = pg::Connection::open(config_.database.url, kConnectTimeout);
  if (!conn.ok()) {
    log_warn("maintenance_failed", {{"error", conn.error()}});
    return;
  }
  auto r = schema::run_retention(**conn, tally::now(),
                                 {.retention_days = config_.database.retention_days});
  if (!r.ok()) {
    log_warn("maintenance_failed", {{"step", "partitions"}, {"error", r.error()}});
    return;
  }
  partitions_created_ += r->created;
  partitions_dropped_ += r->dropped;
  for (const std::string& name : r->dropped_partitions) {
    log_info("partition_dropped",
             {{"partition", name}, {"retention_days", str(config_.database.retention_days)}});
  }
  if (r->created > 0) log_info("partitions_created", {{"partitions", str(r->created)}});
  if (r->failed > 0) {
    log_warn("partition_drop_failed", {{"partitions", str(r->failed)}, {"error", r->first_error}});
  }
  auto views = schema::refresh_views(**conn);
  if (!views.ok()) {
    log_warn("maintenance_failed", {{"step", "views"}, {"error", views.error()}});
  } else if (*views > 0) {
    log_info("views_refreshed", {{"views", str(*views)}});
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
  std::map<Uuid, std::string> sources;
  {
    std::lock_guard lock(targets_mu_);
    const auto take = [&](const ProducerTarget& t, const char* source) {
      if (sources.emplace(t.id, source).second) all.push_back(t);
    };
    for (const ProducerTarget& t : static_targets_) take(t, "static");
    // A producer both in the YAML and assigned by the registry is polled once, as configured.
    for (const ProducerTarget& t : registry_targets_) take(t, "registry");
  }
  pipeline_->set_producers(sources);
  scheduler_->set_producers(all);
}

ProducerView Daemon::Impl::view(const ProducerState& state) const {
  ProducerView v{.state = state};
  if (auto p = pipeline_->producer(state.target.id)) v.pipeline = std::move(*p);
  return v;
}

std::vector<ProducerView> Daemon::Impl::producers() const {
  const std::vector<ProducerState> states = scheduler_->snapshot();
  std::vector<ProducerView> out;
  out.reserve(states.size());
  for (const ProducerState& s : states) out.push_back(view(s));
  return out;
}

std::optional<ProducerView> Daemon::Impl::producer(const Uuid& id) const {
  auto state = scheduler_->snapshot(id);
  if (!state) return std::nullopt;
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
  h.pending_schema = pipeline_->totals().pending_schema;
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
  s.pipeline = pipeline_->totals();
  s.schemas_cached = checker_->cached_schemas();
  s.partitions_created = partitions_created_.load(std::memory_order_relaxed);
  s.partitions_dropped = partitions_dropped_.load(std::memory_order_relaxed);
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
