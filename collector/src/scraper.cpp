// The collector's HTTP client. Every line of Asio/Beast in the collector lives in this file: the
// build runs on two cores and each Beast translation unit costs a lot of compile time.
//
// Shape: one Connection per producer, living on its own strand, owns the keep-alive socket and
// runs one collection at a time as a chain resolve → connect → write → read. Impl holds the FIFO
// of collections waiting for one of the max_in_flight slots; a finishing collection hands its
// slot to the head of the queue.
#include "tally/collector/scraper.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "tally/common/http_append_body.h"
#include "tally/common/network.h"

namespace tally::collector {

std::string http_failure_reason(int status) { return "http_" + std::to_string(status); }

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using boost::system::error_code;
using SteadyTime = std::chrono::steady_clock::time_point;

std::string byte_size_text(std::size_t bytes) {
  constexpr std::size_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
  if (bytes >= kGiB && bytes % kGiB == 0) return std::to_string(bytes / kGiB) + " GiB";
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  if (bytes >= kKiB && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + " KiB";
  return std::to_string(bytes) + " bytes";
}

std::string lowercase_first(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

IpAddr to_ip(const net::ip::address& a) {
  IpAddr ip;
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), ip.bytes.begin());
  } else {
    ip.v6 = true;
    const auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), ip.bytes.begin());
  }
  return ip;
}

// Beast reads at most the buffer's free capacity (at least 512 bytes) per receive. Reserving this
// much while a response is read takes a typical body in one or two receives instead of one per
// 512 bytes (the I/O thread's main cost with 10,000 producers); the memory goes back once the
// response is read, so idle connections hold none (docs/collection.md, "Memory").
constexpr std::size_t kReadBufferBytes = 64 * 1024;

constexpr std::string_view kAcceptJson = "application/json";
constexpr std::string_view kAcceptPrometheus =
    "text/plain;version=0.0.4, application/openmetrics-text";

bool is_http_error(const error_code& ec) {
  return ec.category() == make_error_code(http::error::end_of_stream).category();
}

// The peer closed or reset the connection (as opposed to a timeout, a limit or garbage).
bool is_closed_by_peer(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == net::error::connection_aborted;
}

struct Job {
  FetchRequest request;
  FetchCallback done;
};

class Connection;

// Scraper::Impl's body, at namespace scope so that Connection may name it.
struct ScraperCore {
  explicit ScraperCore(ScraperOptions o) : options(std::move(o)), work(net::make_work_guard(ioc)) {
    options.collection.max_in_flight = std::max<int64_t>(1, options.collection.max_in_flight);
  }

  void fetch(FetchRequest request, FetchCallback done);
  void close(const Uuid& id);
  void stop();
  // Called on the connection's strand when its collection ended: frees the slot, starts the
  // next queued collection, then calls `done`.
  void finished(const std::shared_ptr<Connection>& conn, FetchCallback done, FetchResult result);

  ScraperOptions options;
  // Counters first: they outlive the io_context and the connections it may still destroy.
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> connections_opened{0};
  std::atomic<uint64_t> requests_sent{0};

  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;

  mutable std::mutex mu;  // guards everything below (and Connection::assigned)
  bool started = false;
  bool stopped = false;
  std::map<Uuid, std::shared_ptr<Connection>> connections;
  std::deque<std::pair<std::shared_ptr<Connection>, Job>> queue;
  uint64_t in_flight = 0;
};

FetchResult failure(std::string_view reason, std::string message) {
  FetchResult r;
  r.reason = std::string(reason);
  r.message = std::move(message);
  return r;
}

// One producer's connection. All members except `assigned` are used on `strand_` only.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  explicit Connection(ScraperCore& scraper)
      : scraper_(scraper),
        strand_(net::make_strand(scraper.ioc)),
        resolver_(strand_),
        resolve_timer_(strand_) {}

  bool assigned = false;  // a collection is queued or running (guarded by ScraperCore::mu)

  net::strand<net::io_context::executor_type>& strand() { return strand_; }

  void start(Job job) {
    job_ = std::move(job);
    active_ = true;
    retried_ = false;
    started_ = std::chrono::steady_clock::now();
    started_wall_ = tally::now();
    deadline_ = started_ + scraper_.options.collection.timeout;
    if (cancelled_) return finish(failure(reason::kCancelled, "producer removed"));
    if (stream_ && endpoint_ == job_.request.address) {
      reused_ = true;
      return do_write();
    }
    close_stream();
    do_resolve();
  }

  // Forgets the producer: cancels whatever runs (its handler then reports "cancelled").
  void cancel() {
    cancelled_ = true;
    resolver_.cancel();
    resolve_timer_.cancel();
    if (!active_) return close_stream();
    // An operation is pending on the stream and holds references to it and to the parser: only
    // close the socket here; the handler (aborted) cleans up in finish().
    if (stream_) stream_->close();
  }

 private:
  const std::string& address() const { return job_.request.address; }

  std::string timeout_text(std::string_view step) const {
    return "timeout after " +
           format_duration(std::chrono::duration_cast<std::chrono::microseconds>(
               scraper_.options.collection.timeout)) +
           " (" + std::string(step) + " " + address() + ")";
  }

  void do_resolve() {
    reused_ = false;
    auto hp = HostPort::parse(address());
    if (!hp.ok()) return finish(failure(reason::kUnreachable, hp.error()));
    host_ = hp->host;
    resolve_timed_out_ = false;
    // The resolver has no deadline of its own: a timer cancels it.
    resolve_timer_.expires_at(deadline_);
    resolve_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec) return;  // cancelled: the resolve finished first
      self->resolve_timed_out_ = true;
      self->resolver_.cancel();
    });
    resolver_.async_resolve(
        hp->host, std::to_string(hp->port),
        [self = shared_from_this()](error_code ec, tcp::resolver::results_type results) {
          self->on_resolve(ec, std::move(results));
        });
  }

  void on_resolve(error_code ec, tcp::resolver::results_type results) {
    resolve_timer_.cancel();
    if (cancelled_) return finish(failure(reason::kCancelled, "producer removed"));
    if (resolve_timed_out_) return finish(failure(reason::kTimeout, timeout_text("resolving")));
    if (ec) {
      return finish(failure(reason::kUnreachable,
                            "cannot resolve " + host_ + ": " + lowercase_first(ec.message())));
    }
    // Only addresses inside allowed_networks are dialled, so a name that also resolves to a
    // forbidden address cannot be used to reach it.
    std::vector<tcp::endpoint> endpoints;
    std::string refused;
    for (const auto& entry : results) {
      const tcp::endpoint ep = entry.endpoint();
      if (allowed(scraper_.options.collection.allowed_networks, to_ip(ep.address()))) {
        endpoints.push_back(ep);
      } else if (refused.empty()) {
        refused = ep.address().to_string();
      }
    }
    if (endpoints.empty()) {
      return finish(failure(reason::kForbidden,
                            address() + " resolves to " + refused + ", outside allowed_networks"));
    }
    do_connect(std::move(endpoints));
  }

  void do_connect(std::vector<tcp::endpoint> endpoints) {
    stream_.emplace(strand_);
    stream_->expires_at(deadline_);
    stream_->async_connect(
        endpoints,
        [self = shared_from_this()](error_code ec, const tcp::endpoint&) { self->on_connect(ec); });
  }

  void on_connect(error_code ec) {
    if (cancelled_) return finish(failure(reason::kCancelled, "producer removed"));
    if (ec == beast::error::timeout) {
      return finish(failure(reason::kTimeout, timeout_text("connecting to")));
    }
    if (ec) {
      return finish(failure(reason::kUnreachable, "cannot connect to " + address() + ": " +
                                                      lowercase_first(ec.message())));
    }
    endpoint_ = address();
    buffer_.clear();
    counted_open_ = true;
    ++scraper_.connections_open;
    ++scraper_.connections_opened;
    do_write();
  }

  void do_write() {
    request_ = {};
    request_.method(http::verb::get);
    request_.target(job_.request.route);
    request_.version(11);
    request_.set(http::field::host, address());
    request_.set(http::field::user_agent, scraper_.options.user_agent);
    request_.set(http::field::accept, job_.request.format == config::ProducerFormat::kPrometheus
                                          ? kAcceptPrometheus
                                          : kAcceptJson);
    request_.keep_alive(true);
    ++scraper_.requests_sent;
    stream_->expires_at(deadline_);
    http::async_write(*stream_, request_, [self = shared_from_this()](error_code ec, std::size_t) {
      self->on_write(ec);
    });
  }

  void on_write(error_code ec) {
    request_ = {};  // its fields are not needed once written
    if (cancelled_) return finish(failure(reason::kCancelled, "producer removed"));
    if (ec == beast::error::timeout)
      return finish(failure(reason::kTimeout, timeout_text("writing to")));
    if (ec && retry_stale()) return;
    if (ec) {
      return finish(failure(reason::kUnreachable, "cannot send the request to " + address() + ": " +
                                                      lowercase_first(ec.message())));
    }
    do_read();
  }

  void do_read() {
    parser_.emplace();
    buffer_.reserve(kReadBufferBytes);
    parser_->body_limit(scraper_.options.collection.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(scraper_.options.max_header_bytes));
    stream_->expires_at(deadline_);
    http::async_read(
        *stream_, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(error_code ec) {
    if (cancelled_) return finish(failure(reason::kCancelled, "producer removed"));
    if (ec == beast::error::timeout) {
      return finish(failure(reason::kTimeout, timeout_text("reading the response from")));
    }
    if (ec == http::error::body_limit) {
      return finish(failure(reason::kTooLarge,
                            "response body from " + address() + " over " +
                                byte_size_text(scraper_.options.collection.max_body_bytes)));
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      return finish(
          failure(reason::kTooLarge, "response header from " + address() + " over " +
                                         byte_size_text(scraper_.options.max_header_bytes)));
    }
    if (ec && is_closed_by_peer(ec)) {
      // A keep-alive connection the producer closed while idle: its first read fails without a
      // byte. That is no failure of the producer, so try once more on a new connection.
      if (!parser_->got_some() && retry_stale()) return;
      return finish(failure(reason::kUnreachable, address() + " closed the connection: " +
                                                      lowercase_first(ec.message())));
    }
    if (ec && is_http_error(ec)) {
      return finish(failure(reason::kDecode, "malformed HTTP response from " + address() + ": " +
                                                 lowercase_first(ec.message())));
    }
    if (ec) {
      return finish(failure(reason::kUnreachable, "cannot read the response from " + address() +
                                                      ": " + lowercase_first(ec.message())));
    }

    auto response = parser_->release();
    parser_.reset();
    const bool keep_alive = response.keep_alive();
    const int status = static_cast<int>(response.result_int());
    if (!keep_alive) close_stream();
    if (status < 200 || status > 299) {
      std::string body = std::move(response.body());
      if (body.size() > 200) body.resize(200);
      std::string message = "HTTP " + std::to_string(status) + " from " + address();
      if (!body.empty()) message += ": " + body;
      return finish(failure(http_failure_reason(status), std::move(message)), keep_alive);
    }
    FetchResult ok;
    ok.body = std::move(response.body());
    finish(std::move(ok), keep_alive);
  }

  // Retries once on a new connection when a reused one turned out to be closed.
  bool retry_stale() {
    if (!reused_ || retried_ || cancelled_) return false;
    retried_ = true;
    close_stream();
    do_resolve();
    return true;
  }

  void close_stream() {
    if (!stream_) return;
    error_code ignored;
    stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_->close();
    stream_.reset();
    parser_.reset();
    endpoint_.clear();
    buffer_.clear();
    if (counted_open_) --scraper_.connections_open;
    counted_open_ = false;
  }

  // `keep` — the connection is still good for the next collection.
  void finish(FetchResult result, bool keep = false) {
    if (!active_) return;
    active_ = false;
    resolve_timer_.cancel();
    if (keep && scraper_.connections_open.load() > scraper_.options.max_open_connections) {
      keep = false;  // over the descriptor budget: this producer reconnects at each collection
    }
    if (!keep) close_stream();
    // Idle connections keep no read buffer (bytes a producer sent ahead are kept, though).
    if (buffer_.size() == 0) buffer_.shrink_to_fit();
    result.started_at = started_wall_;
    result.duration = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started_);
    FetchCallback done = std::move(job_.done);
    job_ = {};
    scraper_.finished(shared_from_this(), std::move(done), std::move(result));
  }

  ScraperCore& scraper_;
  net::strand<net::io_context::executor_type> strand_;
  tcp::resolver resolver_;
  net::steady_timer resolve_timer_;
  std::optional<beast::tcp_stream> stream_;
  std::string endpoint_;  // the address the open stream was connected for
  std::string host_;
  beast::flat_buffer buffer_;
  http::request<http::empty_body> request_;
  std::optional<http::response_parser<AppendBody>> parser_;

  Job job_;
  bool active_ = false;
  bool cancelled_ = false;
  bool reused_ = false;
  bool retried_ = false;
  bool resolve_timed_out_ = false;
  bool counted_open_ = false;  // counted in connections_open
  SteadyTime started_;
  SteadyTime deadline_;
  Timestamp started_wall_;
};

void ScraperCore::fetch(FetchRequest request, FetchCallback done) {
  std::unique_lock lock(mu);
  if (stopped) {
    lock.unlock();
    return done(failure(reason::kCancelled, "the collector is stopping"));
  }
  auto& conn = connections[request.producer_id];
  if (!conn) conn = std::make_shared<Connection>(*this);
  if (conn->assigned) {
    lock.unlock();
    return done(failure(reason::kInProgress,
                        "a collection of " + request.address + " is already queued or running"));
  }
  conn->assigned = true;
  Job job{std::move(request), std::move(done)};
  if (in_flight < static_cast<uint64_t>(options.collection.max_in_flight)) {
    ++in_flight;
    // Posted under the lock so that a close() of the same producer is ordered after it.
    net::post(conn->strand(),
              [conn, job = std::move(job)]() mutable { conn->start(std::move(job)); });
  } else {
    queue.emplace_back(conn, std::move(job));
  }
}

void ScraperCore::finished(const std::shared_ptr<Connection>& conn, FetchCallback done,
                           FetchResult result) {
  {
    std::lock_guard lock(mu);
    conn->assigned = false;
    --in_flight;
    if (!queue.empty() && !stopped) {
      auto [next, job] = std::move(queue.front());
      queue.pop_front();
      ++in_flight;
      // Init-captures: clang 14 cannot capture a structured binding by name.
      net::post(next->strand(),
                [next = next, job = std::move(job)]() mutable { next->start(std::move(job)); });
    }
  }
  done(std::move(result));
}

void ScraperCore::close(const Uuid& id) {
  std::vector<Job> dropped;
  {
    std::lock_guard lock(mu);
    auto it = connections.find(id);
    if (it == connections.end()) return;
    std::shared_ptr<Connection> conn = std::move(it->second);
    connections.erase(it);
    for (auto q = queue.begin(); q != queue.end();) {
      if (q->first == conn) {
        dropped.push_back(std::move(q->second));
        q = queue.erase(q);
      } else {
        ++q;
      }
    }
    net::post(conn->strand(), [conn] { conn->cancel(); });
  }
  for (Job& job : dropped) job.done(failure(reason::kCancelled, "producer removed"));
}

void ScraperCore::stop() {
  std::vector<Job> dropped;
  {
    std::lock_guard lock(mu);
    if (stopped) return;
    stopped = true;
    for (auto& [conn, job] : queue) dropped.push_back(std::move(job));
    queue.clear();
    for (auto& [id, conn] : connections) {
      net::post(conn->strand(), [conn = conn] { conn->cancel(); });
    }
    connections.clear();
  }
  for (Job& job : dropped) job.done(failure(reason::kCancelled, "the collector is stopping"));
  // Every running collection now ends with "cancelled"; once their handlers ran the io_context
  // runs out of work and the threads return.
  work.reset();
  if (threads.empty()) {
    ioc.restart();
    ioc.run();
  }
  for (std::thread& t : threads) t.join();
  threads.clear();
}

}  // namespace

struct Scraper::Impl : ScraperCore {
  using ScraperCore::ScraperCore;
};

Scraper::Scraper(ScraperOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Scraper::~Scraper() { stop(); }

void Scraper::start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->started || impl_->stopped) return;
  impl_->started = true;
  const int n = std::max(1, impl_->options.io_threads);
  for (int i = 0; i < n; ++i) impl_->threads.emplace_back([this] { impl_->ioc.run(); });
}

void Scraper::stop() { impl_->stop(); }

void Scraper::fetch(FetchRequest request, FetchCallback done) {
  impl_->fetch(std::move(request), std::move(done));
}

void Scraper::close(const Uuid& producer_id) { impl_->close(producer_id); }

ScraperStats Scraper::stats() const {
  ScraperStats s;
  {
    std::lock_guard lock(impl_->mu);
    s.in_flight = impl_->in_flight;
    s.queued = impl_->queue.size();
  }
  s.connections_open = impl_->connections_open.load();
  s.connections_opened = impl_->connections_opened.load();
  s.requests_sent = impl_->requests_sent.load();
  return s;
}

}  // namespace tally::collector
