// HttpServer and http_request against each other on port 0, plus raw sockets where a real
// client would hide what is tested (keep-alive, a peer that never answers).
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/test_db.h"
#include "tally/common/http_client.h"
#include "tally/common/http_server.h"

namespace tally {
namespace {

// A listening TCP socket on 127.0.0.1 that never accepts: the kernel completes connections,
// nobody reads the request.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A port nothing listens on (bound once, then released).
uint16_t closed_port() {
  SilentListener listener;
  return listener.port();
}

// A blocking client socket speaking raw HTTP/1.1, for keep-alive checks.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};  // a broken server fails the test instead of hanging it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawConnection() { ::close(fd_); }

  void send(const std::string& data) {
    REQUIRE(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(data.size()));
  }

  // Reads one response with a Content-Length body; returns the head and body together.
  std::string read_response() {
    for (;;) {
      const std::size_t head_end = pending_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        const std::string head = pending_.substr(0, head_end);
        const std::size_t cl = head.find("Content-Length: ");
        REQUIRE(cl != std::string::npos);
        const std::size_t length = std::stoul(head.substr(cl + 16));
        if (pending_.size() >= head_end + 4 + length) {
          std::string response = pending_.substr(0, head_end + 4 + length);
          pending_.erase(0, head_end + 4 + length);
          return response;
        }
      }
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      REQUIRE(n > 0);
      pending_.append(buf, static_cast<std::size_t>(n));
    }
  }

  // True once the server has closed its side (recv sees end of stream).
  bool closed_by_peer() {
    char buf[64];
    return pending_.empty() && ::recv(fd_, buf, sizeof buf, 0) == 0;
  }

  // Whether the server closes (or resets) the connection within `wait`, without a byte sent.
  bool closed_within(std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
    char buf[64];
    return ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT) <= 0;
  }

  // send() that reports a closed connection instead of failing the test.
  bool try_send(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }

 private:
  int fd_ = -1;
  std::string pending_;
};

std::string url(const HttpServer& server, std::string_view path) {
  return "http://" + server.address() + std::string(path);
}

HttpResponse echo(const HttpRequest& r) {
  std::string body = r.method + " " + r.path;
  for (const auto& [key, value] : r.query) body += " " + key + "=" + value;
  if (auto h = r.header("x-test")) body += " x-test=" + std::string(*h);
  if (!r.body.empty()) body += " body=" + r.body;
  return HttpResponse::text(200, body);
}

TEST_CASE("GET round trip: path, decoded query, case-insensitive headers") {
  HttpServer server({}, echo);
  REQUIRE(server.start().ok());
  CHECK(server.port() != 0);
  auto r = http_request({}, "GET", url(server, "/v1/things?limit=10&name=a%20b+c"), {},
                        {{"X-Test", "yes"}});
  REQUIRE(r.ok());
  CHECK(r->status == 200);
  CHECK(r->content_type == "text/plain; charset=utf-8");
  CHECK(r->body == "GET /v1/things limit=10 name=a b c x-test=yes");
  CHECK(r->header("content-length") == "45");
  CHECK(r->header("SERVER") == "tally");
}

TEST_CASE("POST round trip: the body arrives, JSON by default") {
  std::string content_type;
  HttpServer server({}, [&](const HttpRequest& r) {
    content_type = std::string(r.header("Content-Type").value_or(""));
    return HttpResponse::json(201, r.body);
  });
  REQUIRE(server.start().ok());
  auto r = http_request({}, "POST", url(server, "/v1/producers"), R"({"id":"x"})");
  REQUIRE(r.ok());
  CHECK(r->status == 201);
  CHECK(r->content_type == "application/json");
  CHECK(r->body == R"({"id":"x"})");
  CHECK(content_type == "application/json");
}

TEST_CASE("the handler sees the peer's address") {
  std::string remote;
  HttpServer server({}, [&](const HttpRequest& r) {
    remote = r.remote_address;
    return HttpResponse::text(200, "");
  });
  REQUIRE(server.start().ok());
  REQUIRE(http_request({}, "GET", url(server, "/")).ok());
  CHECK(remote.starts_with("127.0.0.1:"));
}

TEST_CASE("a body over the limit gets 413 and the server keeps serving") {
  HttpServerOptions options;
  options.body_limit = 1024;
  HttpServer server(options, echo);
  REQUIRE(server.start().ok());
  auto r = http_request({}, "POST", url(server, "/upload"), std::string(4096, 'x'));
  REQUIRE(r.ok());
  CHECK(r->status == 413);
  CHECK(r->content_type == "application/json");
  CHECK(r->body.find(R"("error":"too_large")") != std::string::npos);

  auto small = http_request({}, "POST", url(server, "/upload"), std::string(1024, 'y'));
  REQUIRE(small.ok());
  CHECK(small->status == 200);
}

TEST_CASE("a handler's 404 reaches the client") {
  HttpServer server({}, [](const HttpRequest& r) {
    return HttpResponse::error(404, "not_found", "no route for " + r.path);
  });
  REQUIRE(server.start().ok());
  auto r = http_request({}, "GET", url(server, "/nowhere"));
  REQUIRE(r.ok());
  CHECK(r->status == 404);
  CHECK(r->body == "{\"error\":\"not_found\",\"message\":\"no route for /nowhere\"}\n");
}

TEST_CASE("a handler that throws gives 500 with a JSON error, the server keeps serving") {
  HttpServer server({}, [](const HttpRequest& r) -> HttpResponse {
    if (r.path == "/boom") throw std::runtime_error("database is \"down\"");
    return HttpResponse::text(200, "fine");
  });
  REQUIRE(server.start().ok());
  auto boom = http_request({}, "GET", url(server, "/boom"));
  REQUIRE(boom.ok());
  CHECK(boom->status == 500);
  CHECK(boom->content_type == "application/json");
  CHECK(boom->body == "{\"error\":\"internal\",\"message\":\"database is \\\"down\\\"\"}\n");
  auto fine = http_request({}, "GET", url(server, "/fine"));
  REQUIRE(fine.ok());
  CHECK(fine->body == "fine");
}

TEST_CASE("keep-alive: several requests on one connection") {
  std::mutex mu;
  std::set<std::string> peers;
  HttpServer server({}, [&](const HttpRequest& r) {
    std::lock_guard lock(mu);
    peers.insert(r.remote_address);
    return HttpResponse::text(200, r.path);
  });
  REQUIRE(server.start().ok());
  RawConnection conn(server.port());
  for (const char* path : {"/a", "/b", "/c"}) {
    conn.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string response = conn.read_response();
    CHECK(response.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(response.ends_with(path));
    CHECK(response.find("Connection: close") == std::string::npos);
  }
  CHECK(peers.size() == 1);  // one client port: one connection
}

TEST_CASE("pipelined requests are answered in order") {
  HttpServer server({}, [](const HttpRequest& r) { return HttpResponse::text(200, r.path); });
  REQUIRE(server.start().ok());
  RawConnection conn(server.port());
  conn.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(conn.read_response().ends_with("/1"));
  CHECK(conn.read_response().ends_with("/2"));
}

TEST_CASE("the connection closes after max_requests_per_connection") {
  HttpServerOptions options;
  options.max_requests_per_connection = 2;
  HttpServer server(options, [](const HttpRequest&) { return HttpResponse::text(200, "ok"); });
  REQUIRE(server.start().ok());
  RawConnection conn(server.port());
  conn.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(conn.read_response().find("Connection: close") == std::string::npos);
  conn.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(conn.read_response().find("Connection: close") != std::string::npos);
  CHECK(conn.closed_by_peer());
}

TEST_CASE("a request header over header_limit gets 431 and the connection closes") {
  HttpServerOptions options;
  options.header_limit = 1024;
  HttpServer server(options, echo);
  REQUIRE(server.start().ok());
  RawConnection conn(server.port());
  conn.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2048, 'a') + "\r\n\r\n");
  const std::string response = conn.read_response();
  CHECK(response.starts_with("HTTP/1.1 431"));
  CHECK(response.find(R"("error":"header_too_large")") != std::string::npos);
  CHECK(conn.closed_by_peer());
  // A header under the limit on a new connection is served.
  CHECK(http_request({}, "GET", url(server, "/ok")).ok());
}

TEST_CASE("slowloris: a request trickling in is cut off at request_timeout, not per byte") {
  HttpServerOptions options;
  options.request_timeout = std::chrono::milliseconds(300);
  std::atomic<int> handled{0};
  HttpServer server(options, [&](const HttpRequest&) {
    ++handled;
    return HttpResponse::text(200, "ok");
  });
  REQUIRE(server.start().ok());
  RawConnection conn(server.port());
  conn.send("GET / HTTP/1.1\r\n");
  // A header line every 50 ms keeps every single read well inside the timeout; only a deadline
  // for the whole request ends this. Bounded so a broken server fails instead of hanging.
  bool cut_off = false;
  for (int i = 0; i < 400 && !cut_off; ++i) {
    cut_off = conn.closed_within(std::chrono::milliseconds(50)) ||
              !conn.try_send("X-" + std::to_string(i) + ": y\r\n");
  }
  CHECK(cut_off);
  CHECK(handled == 0);
}

TEST_CASE("an idle connection is closed after idle_timeout") {
  HttpServerOptions options;
  options.idle_timeout = std::chrono::milliseconds(200);
  HttpServer server(options, echo);
  REQUIRE(server.start().ok());
  RawConnection conn(server.port());
  CHECK(conn.closed_by_peer());  // blocks until the server hangs up (5 s at most)
}

TEST_CASE("connections beyond max_connections are closed on accept, later ones served") {
  HttpServerOptions options;
  options.max_connections = 2;
  HttpServer server(options, [](const HttpRequest& r) { return HttpResponse::text(200, r.path); });
  REQUIRE(server.start().ok());
  auto first = std::make_unique<RawConnection>(server.port());
  RawConnection second(server.port());
  // Both are sessions once they have been served.
  for (RawConnection* c : {first.get(), &second}) {
    c->send("GET /held HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(c->read_response().ends_with("/held"));
  }
  RawConnection third(server.port());
  CHECK(third.closed_by_peer());
  CHECK(second.try_send("GET /still HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(second.read_response().ends_with("/still"));
  first.reset();  // frees a slot, once the server has seen the close
  CHECK(test::eventually([&] {
    auto r = http_request({}, "GET", url(server, "/again"));
    return r.ok() && r->status == 200;
  }));
}

TEST_CASE("a malformed request gets 400") {
  HttpServer server({}, echo);
  REQUIRE(server.start().ok());
  RawConnection conn(server.port());
  conn.send("NOT HTTP AT ALL\r\n\r\n");
  const std::string response = conn.read_response();
  CHECK(response.starts_with("HTTP/1.1 400"));
  CHECK(response.find(R"("error":"bad_request")") != std::string::npos);
}

TEST_CASE("the handler runs on a worker thread, not the I/O thread") {
  // With one worker busy in a blocking handler, a second request still gets read: the I/O
  // thread is free. It then waits for the worker, which we release.
  std::atomic<bool> release{false};
  std::atomic<int> started{0};
  HttpServerOptions options;
  options.worker_threads = 2;
  HttpServer server(options, [&](const HttpRequest& r) {
    ++started;
    if (r.path == "/block") {
      while (!release) std::this_thread::yield();
    }
    return HttpResponse::text(200, r.path);
  });
  REQUIRE(server.start().ok());
  std::thread blocked([&] { CHECK(http_request({}, "GET", url(server, "/block")).ok()); });
  auto quick = http_request({}, "GET", url(server, "/quick"));
  release = true;
  blocked.join();
  REQUIRE(quick.ok());
  CHECK(quick->body == "/quick");
}

TEST_CASE("start() reports an address in use") {
  HttpServer first({}, echo);
  REQUIRE(first.start().ok());
  HttpServer second({.listen = first.address()}, echo);
  const Status s = second.start();
  CHECK_FALSE(s.ok());
  CHECK(s.code() == "listen");
  CHECK(s.message() == "cannot listen on " + first.address() + ": address already in use");
}

TEST_CASE("start() rejects a malformed listen address") {
  HttpServer server({.listen = "nonsense"}, echo);
  const Status s = server.start();
  CHECK_FALSE(s.ok());
  CHECK(s.message().starts_with("cannot listen on 'nonsense'"));
}

TEST_CASE("stop() with an idle keep-alive connection open returns and closes it") {
  HttpServer server({}, [](const HttpRequest&) { return HttpResponse::text(200, "ok"); });
  REQUIRE(server.start().ok());
  RawConnection conn(server.port());
  conn.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  conn.read_response();
  server.stop();
  CHECK(conn.closed_by_peer());
  server.stop();  // idempotent
}

TEST_CASE("client: connection refused") {
  const uint16_t port = closed_port();
  auto r = http_request({}, "GET", "http://127.0.0.1:" + std::to_string(port) + "/");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == "unreachable");
  CHECK(r.error() ==
        "cannot connect to 127.0.0.1:" + std::to_string(port) + ": connection refused");
}

TEST_CASE("client: timeout against a server that never answers") {
  SilentListener silent;
  HttpClientOptions options;
  options.timeout = std::chrono::milliseconds(200);
  auto r = http_request(options, "GET", "http://127.0.0.1:" + std::to_string(silent.port()) + "/");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == "timeout");
  CHECK(r.error() == "timeout after 200ms");
}

TEST_CASE("client: a response body over the limit") {
  HttpServer server(
      {}, [](const HttpRequest&) { return HttpResponse::text(200, std::string(2048, 'z')); });
  REQUIRE(server.start().ok());
  HttpClientOptions options;
  options.max_body_bytes = 1024;
  auto r = http_request(options, "GET", url(server, "/big"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == "too_large");
  CHECK(r.error() == "response body over 1 KiB");

  options.max_body_bytes = 2048;
  CHECK(http_request(options, "GET", url(server, "/big")).ok());
}

TEST_CASE("client: URLs it cannot use") {
  struct Case {
    const char* url;
    const char* message;
  };
  const Case cases[] = {
      {"https://127.0.0.1:1/",
       "'https://127.0.0.1:1/' uses https, but only plain http is supported"},
      {"ftp://x/", "'ftp://x/' is not an http:// URL"},
      {"http:///path", "'http:///path' has no host"},
      {"http://host:99999/", "'http://host:99999/' has no valid host:port"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.url);
    auto r = http_request({}, "GET", c.url);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == "bad_url");
    CHECK(r.error() == c.message);
  }
}

TEST_CASE("message helpers: query parsing, header lookup, byte sizes") {
  const auto q = parse_query("a=1&b=x%2Fy&c&&d=%zz+e");
  REQUIRE(q.size() == 4);
  CHECK(q[0] == std::pair<std::string, std::string>{"a", "1"});
  CHECK(q[1] == std::pair<std::string, std::string>{"b", "x/y"});
  CHECK(q[2] == std::pair<std::string, std::string>{"c", ""});
  CHECK(q[3] == std::pair<std::string, std::string>{"d", "%zz e"});

  const HttpHeaders headers{{"Content-Type", "a"}, {"content-type", "b"}};
  CHECK(find_header(headers, "CONTENT-TYPE") == "a");
  CHECK_FALSE(find_header(headers, "Accept"));

  CHECK(format_byte_size(16 * 1024 * 1024) == "16 MiB");
  CHECK(format_byte_size(64 * 1024) == "64 KiB");
  CHECK(format_byte_size(1000) == "1000 bytes");
}

}  // namespace
}  // namespace tally
