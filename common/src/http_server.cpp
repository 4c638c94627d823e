// HttpServer on Beast, after Beast's example/http/server/async: one self-owning Session per
// connection on its own strand; the handler runs on a thread_pool and its response is posted
// back to the session's strand.
#include "tally/common/http_server.h"

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tally/common/log.h"
#include "tally/common/network.h"

namespace tally {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using boost::system::error_code;

// Bytes read while waiting for the first byte of a request, and while draining a rejected body.
constexpr std::size_t kReadChunk = 4096;
// After rejecting a request mid-body we keep reading (and discarding) for a moment before
// closing, so the client sees our response instead of a reset (a "lingering close").
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr std::size_t kLingerMaxBytes = 1 << 20;

// Peers that go away are normal; only the unexpected is worth more than a debug line.
void fail(error_code ec, const char* what) {
  log_debug("http_connection_error", {{"step", what}, {"error", ec.message()}});
}

std::string endpoint_text(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  const std::string host = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
  return host + ":" + std::to_string(ep.port());
}

std::string lowercase_first(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

}  // namespace

struct HttpServer::Impl {
  class Session;

  Impl(HttpServerOptions o, HttpHandler h) : options(std::move(o)), handler(std::move(h)) {}

  void do_accept();
  void on_accept(error_code ec, tcp::socket socket);
  void add_session(Session* s, const std::shared_ptr<Session>& sp);
  void remove_session(Session* s);
  bool over_connection_limit();

  const HttpServerOptions options;
  const HttpHandler handler;
  std::atomic<bool> stopping{false};
  uint16_t port = 0;
  std::string host;

  // Declared before the io_context: sessions destroyed while it shuts down still use these.
  std::mutex sessions_mu;
  std::condition_variable sessions_cv;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  bool refusing = false;  // over max_connections since the last accepted connection

  net::io_context ioc{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  net::steady_timer accept_retry{acceptor.get_executor()};
  std::unique_ptr<net::thread_pool> workers;
  std::vector<std::thread> io_threads;
  bool started = false;
  bool stopped = false;
};

class HttpServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl& server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {
    error_code ec;
    const tcp::endpoint remote = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_address_ = endpoint_text(remote);
  }
  ~Session() { server_.remove_session(this); }

  void start() {
    server_.add_session(this, shared_from_this());
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::do_wait_for_request, shared_from_this()));
  }

  // Called on stop(): a connection waiting for its next request is closed now; one with a
  // request in progress finishes it and then closes (keep_alive is refused while stopping).
  void on_server_stop() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->idle_) self->stream_.close();
    });
  }

 private:
  // Waiting for the first byte of a request gets idle_timeout; the request itself then has
  // request_timeout, so a slow client cannot hold a connection with a trickle of bytes.
  void do_wait_for_request() {
    if (buffer_.size() > 0) return do_read();  // pipelined bytes are already here
    if (server_.stopping) return do_close();
    idle_ = true;
    stream_.expires_after(server_.options.idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(kReadChunk),
        beast::bind_front_handler(&Session::on_first_bytes, shared_from_this()));
  }

  void on_first_bytes(error_code ec, std::size_t n) {
    idle_ = false;
    // The peer closing an idle connection, our idle deadline and stop() are all expected.
    if (ec == net::error::eof || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset) {
      return;
    }
    if (ec) return fail(ec, "read");
    buffer_.commit(n);
    do_read();
  }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(server_.options.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(server_.options.header_limit));
    stream_.expires_after(server_.options.request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return do_close();
    if (ec == beast::error::timeout || ec == net::error::operation_aborted) return;
    if (ec == http::error::body_limit) {
      return reject(413, "too_large",
                    "request body over " + std::to_string(server_.options.body_limit) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return reject(
          431, "header_too_large",
          "request header over " + std::to_string(server_.options.header_limit) + " bytes");
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return reject(400, "bad_request", lowercase_first(ec.message()));
    }
    if (ec) return fail(ec, "read");

    auto& message = parser_->get();
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    const std::size_t q = request.target.find('?');
    request.path = request.target.substr(0, q);
    if (q != std::string::npos) request.query = parse_query(request.target.substr(q + 1));
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(message.body());
    request.remote_address = remote_address_;
    keep_alive_ = message.keep_alive();
    version_ = message.version();
    ++requests_;
    parser_.reset();

    net::post(*server_.workers, [self = shared_from_this(), request = std::move(request)] {
      HttpResponse response = self->run_handler(request);
      net::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->do_write(std::move(response), false);
      });
    });
  }

  HttpResponse run_handler(const HttpRequest& request) {
    try {
      return server_.handler(request);
    } catch (const std::exception& e) {
      log_error("http_handler_failed",
                {{"method", request.method}, {"target", request.target}, {"error", e.what()}});
      return HttpResponse::error(500, "internal", e.what());
    } catch (...) {
      log_error("http_handler_failed", {{"method", request.method}, {"target", request.target}});
      return HttpResponse::error(500, "internal", "unknown exception");
    }
  }

  // Answers a request the server refused to read; the connection closes after a linger.
  void reject(int status, std::string_view code, const std::string& message) {
    version_ = 11;
    parser_.reset();
    do_write(HttpResponse::error(status, code, message), true);
  }

  void do_write(HttpResponse response, bool linger) {
    const auto& options = server_.options;
    const bool keep_alive = !linger && keep_alive_ && options.keep_alive && !server_.stopping &&
                            (options.max_requests_per_connection == 0 ||
                             requests_ < options.max_requests_per_connection);
    response_.emplace();
    response_->version(version_);
    response_->result(static_cast<unsigned>(response.status));
    response_->set(http::field::server, options.server_name);
    response_->set(http::field::content_type, response.content_type);
    for (auto& [name, value] : response.headers) response_->insert(name, value);
    response_->body() = std::move(response.body);
    response_->keep_alive(keep_alive);
    response_->prepare_payload();
    stream_.expires_after(options.request_timeout);
    http::async_write(
        stream_, *response_,
        beast::bind_front_handler(&Session::on_write, shared_from_this(), keep_alive, linger));
  }

  void on_write(bool keep_alive, bool linger, error_code ec, std::size_t) {
    response_.reset();
    if (ec) return fail(ec, "write");
    if (linger) return do_linger();
    if (!keep_alive) return do_close();
    do_wait_for_request();
  }

  void do_linger() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    buffer_.clear();
    stream_.expires_after(kLingerTime);
    do_drain();
  }

  void do_drain() {
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                              self->lingered_ += n;
                              // Any error ends it: the peer closed, the deadline or stop().
                              if (ec || self->lingered_ > kLingerMaxBytes) return;
                              self->do_drain();
                            });
  }

  void do_close() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    // Not connected any more is the usual reason this fails; nothing else to do with it.
  }

  Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::string remote_address_;
  bool keep_alive_ = false;
  bool idle_ = false;
  unsigned version_ = 11;
  int requests_ = 0;
  std::size_t lingered_ = 0;
};

void HttpServer::Impl::add_session(Session* s, const std::shared_ptr<Session>& sp) {
  std::lock_guard lock(sessions_mu);
  sessions.emplace(s, sp);
}

void HttpServer::Impl::remove_session(Session* s) {
  std::lock_guard lock(sessions_mu);
  sessions.erase(s);
  sessions_cv.notify_all();
}

void HttpServer::Impl::do_accept() {
  acceptor.async_accept(net::make_strand(ioc), beast::bind_front_handler(&Impl::on_accept, this));
}

void HttpServer::Impl::on_accept(error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || stopping) return;
  if (ec) {
    // Out of file descriptors and the like: log, breathe, try again rather than spin.
    log_warn("http_accept_failed", {{"error", ec.message()}});
    accept_retry.expires_after(std::chrono::milliseconds(100));
    accept_retry.async_wait([this](error_code wait_ec) {
      if (!wait_ec && !stopping) do_accept();
    });
    return;
  }
  if (over_connection_limit()) {
    error_code ignored;
    socket.close(ignored);
  } else {
    std::make_shared<Session>(*this, std::move(socket))->start();
  }
  do_accept();
}

// Called on the acceptor's strand, the only place sessions are added.
bool HttpServer::Impl::over_connection_limit() {
  std::lock_guard lock(sessions_mu);
  const bool over = options.max_connections > 0 &&
                    sessions.size() >= static_cast<std::size_t>(options.max_connections);
  // One line per episode, not per connection: a flood must not flood the log too.
  if (over && !refusing) {
    log_warn("http_connection_limit",
             {{"max_connections", std::to_string(options.max_connections)}});
  }
  refusing = over;
  return over;
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start() {
  Impl& s = *impl_;
  if (s.started) return Status::error("HttpServer::start called twice", "listen");
  const std::string& listen = s.options.listen;
  auto host_port = HostPort::parse(listen, /*allow_zero=*/true);
  if (!host_port.ok()) return Status::error("cannot listen on " + host_port.error(), "listen");
  const auto fail_listen = [&](const std::string& why) {
    return Status::error("cannot listen on " + listen + ": " + why, "listen");
  };

  error_code ec;
  tcp::resolver resolver(s.ioc);
  const auto endpoints =
      resolver.resolve(host_port->host, std::to_string(host_port->port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return fail_listen(lowercase_first(ec.message()));
  if (endpoints.empty()) return fail_listen("the host has no address");
  const tcp::endpoint endpoint = *endpoints.begin();

  if (s.acceptor.open(endpoint.protocol(), ec); ec) {
    return fail_listen(lowercase_first(ec.message()));
  }
  if (s.acceptor.set_option(net::socket_base::reuse_address(true), ec); ec) {
    return fail_listen(lowercase_first(ec.message()));
  }
  if (s.acceptor.bind(endpoint, ec); ec) return fail_listen(lowercase_first(ec.message()));
  if (s.acceptor.listen(net::socket_base::max_listen_connections, ec); ec) {
    return fail_listen(lowercase_first(ec.message()));
  }
  s.port = s.acceptor.local_endpoint().port();
  s.host = host_port->host;

  s.started = true;
  s.workers = std::make_unique<net::thread_pool>(std::max(1, s.options.worker_threads));
  s.work.emplace(s.ioc.get_executor());
  s.do_accept();
  for (int i = 0; i < std::max(1, s.options.io_threads); ++i) {
    s.io_threads.emplace_back([&s] { s.ioc.run(); });
  }
  return {};
}

uint16_t HttpServer::port() const { return impl_->port; }

std::string HttpServer::address() const { return HostPort{impl_->host, impl_->port}.to_string(); }

void HttpServer::stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopped) return;
  s.stopped = true;
  s.stopping = true;

  net::dispatch(s.acceptor.get_executor(), [&s] {
    error_code ec;
    s.acceptor.close(ec);
    s.accept_retry.cancel();
  });
  std::vector<std::shared_ptr<Impl::Session>> live;
  {
    std::lock_guard lock(s.sessions_mu);
    for (auto& [ptr, weak] : s.sessions) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) session->on_server_stop();
  live.clear();  // our references must not keep the sessions alive while we wait for them

  // Requests in progress get their normal deadline to finish; after that we stop waiting.
  {
    std::unique_lock lock(s.sessions_mu);
    s.sessions_cv.wait_for(lock, s.options.request_timeout * 2,
                           [&s] { return s.sessions.empty(); });
  }
  s.workers->join();
  s.work.reset();
  s.ioc.stop();
  for (auto& t : s.io_threads) t.join();
  s.io_threads.clear();
}

}  // namespace tally
