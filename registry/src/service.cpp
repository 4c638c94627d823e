#include "tally/registry/service.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "tally/common/http_server.h"
#include "tally/common/log.h"
#include "tally/registry/api.h"
#include "tally/registry/auth.h"
#include "tally/registry/connection_pool.h"
#include "tally/registry/metrics.h"
#include "tally/registry/store.h"

namespace tally::registry {
namespace {

StoreOptions store_options(const ServiceOptions& o) {
  StoreOptions s;
  s.collector_ttl = o.config.collector_ttl;
  s.producer_lease = o.config.producer_lease;
  s.forget_collector_after = o.config.collector_ttl * o.forget_collector_after_ttls;
  return s;
}

ConnectionPoolOptions pool_options(const ServiceOptions& o) {
  ConnectionPoolOptions p;
  p.url = o.config.database_url;
  p.max_idle = static_cast<std::size_t>(o.worker_threads);
  p.statement_timeout = o.database_timeout;
  return p;
}

}  // namespace

struct RegistryService::Impl {
  explicit Impl(ServiceOptions o)
      : options(std::move(o)),
        store(store_options(options)),
        pool(pool_options(options)),
        auth(options.config.auth),
        api(ApiDependencies{store, pool, auth, metrics, options.config.allowed_networks,
                            [this] { wake_gc(); }}),
        server(HttpServerOptions{.listen = options.config.listen,
                                 .worker_threads = options.worker_threads,
                                 .body_limit = options.body_limit,
                                 .request_timeout = options.request_timeout,
                                 .server_name = "tally-registry"},
               [this](const HttpRequest& r) { return api.handle(r); }) {}

  void wake_gc() {
    std::lock_guard lock(gc_mu);
    gc_wanted = true;
    gc_cv.notify_all();
  }

  void run_gc();
  // One pass; returns when the next one is due.
  std::chrono::steady_clock::time_point gc_once(
      std::unique_ptr<pg::Connection>& conn,
      std::optional<std::chrono::steady_clock::time_point>& healthy_since);

  const ServiceOptions options;
  RegistryStore store;
  ConnectionPool pool;
  Authenticator auth;
  RegistryMetrics metrics;
  RegistryApi api;
  HttpServer server;

  std::thread gc_thread;
  std::mutex gc_mu;
  std::condition_variable gc_cv;
  bool gc_wanted = false;
  bool stopping = false;
  bool started = false;
};

void RegistryService::Impl::run_gc() {
  std::unique_ptr<pg::Connection> conn;
  // Since when this registry has reached the database without interruption. Producers move off
  // "dead" collectors only after one collector_ttl of that: after a restart or an outage the
  // collectors' heartbeats could not arrive, and they deserve a chance before being judged.
  std::optional<std::chrono::steady_clock::time_point> healthy_since =
      std::chrono::steady_clock::now();
  std::unique_lock lock(gc_mu);
  while (!stopping) {
    gc_wanted = false;
    lock.unlock();
    const auto next = gc_once(conn, healthy_since);
    lock.lock();
    gc_cv.wait_until(lock, next, [this] { return stopping || gc_wanted; });
  }
}

std::chrono::steady_clock::time_point RegistryService::Impl::gc_once(
    std::unique_ptr<pg::Connection>& conn,
    std::optional<std::chrono::steady_clock::time_point>& healthy_since) {
  const auto now = std::chrono::steady_clock::now();
  const auto fail = [&](const Status& s) {
    metrics.gc_run(false);
    metrics.set_database_up(false);
    if (healthy_since) log_warn("gc_failed", {{"error", s.message()}});
    healthy_since.reset();
    return std::chrono::steady_clock::now() + options.config.gc_interval;
  };
  if (conn == nullptr || conn->broken()) {
    auto opened = pool.open();
    if (!opened.ok()) return fail(opened.status());
    conn = std::move(opened).value();
  }
  const bool judging = healthy_since && now - *healthy_since >= options.config.collector_ttl;
  auto report = store.gc(*conn, GcOptions{.move_from_dead = judging});
  if (!report.ok()) return fail(report.status());
  if (!healthy_since) {
    log_info("gc_recovered", {});
    healthy_since = now;
  }
  // gc_interval is only the longest wait. A collector's death is acted on when it happens: the
  // next pass is due when the first live collector's heartbeat gets older than collector_ttl
  // (the store measures that by the database's clock, by which it judges liveness), or when
  // judging begins, whichever comes first.
  const auto done = std::chrono::steady_clock::now();
  auto next = done + options.config.gc_interval;
  if (report->next_expiry) next = std::min(next, done + *report->next_expiry);
  if (!judging) next = std::min(next, *healthy_since + options.config.collector_ttl);
  metrics.gc_run(true);
  metrics.set_database_up(true);

  for (const Uuid& id : report->expired) log_info("producer_expired", {{"id", id.to_string()}});
  metrics.add_expired(static_cast<int64_t>(report->expired.size()));
  for (const CollectorRecord& c : report->emptied) {
    log_warn("collector_dead", {{"id", c.id.to_string()},
                                {"address", c.address},
                                {"last_seen", format_rfc3339(c.last_seen)},
                                {"n_producers", std::to_string(c.n_producers)}});
  }
  if (report->reassigned > 0) {
    metrics.add_reassignments(report->reassigned);
    log_info("producers_reassigned", {{"count", std::to_string(report->reassigned)}});
  }
  if (report->assigned > 0) {
    metrics.add_assignments(report->assigned);
    log_info("producers_assigned", {{"count", std::to_string(report->assigned)}});
  }
  for (const Uuid& id : report->forgotten)
    log_info("collector_forgotten", {{"id", id.to_string()}});
  return next;
}

RegistryService::RegistryService(ServiceOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

RegistryService::~RegistryService() { stop(); }

Status RegistryService::start() {
  if (Status s = impl_->server.start(); !s.ok()) return s;
  impl_->started = true;
  impl_->gc_thread = std::thread([this] { impl_->run_gc(); });
  return {};
}

std::string RegistryService::address() const { return impl_->server.address(); }
uint16_t RegistryService::port() const { return impl_->server.port(); }

void RegistryService::stop() {
  if (!impl_->started) return;
  impl_->started = false;
  impl_->server.stop();
  {
    std::lock_guard lock(impl_->gc_mu);
    impl_->stopping = true;
    impl_->gc_cv.notify_all();
  }
  if (impl_->gc_thread.joinable()) impl_->gc_thread.join();
}

}  // namespace tally::registry
