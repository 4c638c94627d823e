// A small HTTP/1.1 server for Tally's daemons and the producer library. Beast stays in the .cpp.
//
//   HttpServer server({.listen = "127.0.0.1:0"}, [](const HttpRequest& req) {
//     if (req.path == "/healthz") return HttpResponse::text(200, "ok\n");
//     return HttpResponse::error(404, "not_found", "no route for " + req.path);
//   });
//   if (Status s = server.start(); !s.ok()) …
//   server.port();  // the bound port
//   server.stop();
//
// Threading: sockets are served by `io_threads` threads; the handler runs on a separate pool of
// `worker_threads` threads, never on an I/O thread, so it may block (database calls). It may be
// called concurrently for different requests. A handler that throws produces a 500 with a JSON
// error body; the server keeps serving. Bad input is answered by the server itself: 400 for a
// malformed request, 413 when the body is over `body_limit`, 431 when the header is over
// `header_limit`. A request must arrive whole within `request_timeout` of its first byte (no
// slowloris), an idle connection is closed after `idle_timeout`, and connections beyond
// `max_connections` are closed on accept.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "tally/common/http_message.h"
#include "tally/common/result.h"

namespace tally {

struct HttpServerOptions {
  // "host:port" to listen on; port 0 picks a free port (read it back with port()).
  std::string listen = "127.0.0.1:0";
  int io_threads = 1;                    // threads running the sockets
  int worker_threads = 2;                // threads running the handler
  std::size_t body_limit = 64 * 1024;    // larger request bodies get 413
  std::size_t header_limit = 16 * 1024;  // larger request headers get 431
  // Deadline for reading one request once its first byte has arrived, and for writing one
  // response. A peer slower than this is disconnected.
  std::chrono::milliseconds request_timeout{10'000};
  // How long a keep-alive connection may sit idle between requests. Longer than the usual poll
  // interval (10 s), so a collector's connection is not closed just as it sends its next poll.
  std::chrono::milliseconds idle_timeout{75'000};
  int max_requests_per_connection = 1000;  // then the connection is closed; 0 = no limit
  bool keep_alive = true;                  // false: one request per connection
  std::string server_name = "tally";       // the Server header
  // Connections open at once; one more is closed as soon as it is accepted, so a flood of idle
  // or slow clients cannot take every file descriptor of the daemon. 0 = no limit.
  int max_connections = 10'000;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();  // stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the threads. Errors name the address: "cannot listen on
  // 127.0.0.1:80: permission denied" (code "listen"). Call at most once.
  Status start();
  // The bound port (after a successful start()), also when options.listen asked for port 0.
  uint16_t port() const;
  // "host:port" with the bound port.
  std::string address() const;
  // Stops accepting, closes idle connections, lets requests in progress finish (up to
  // request_timeout), then joins every thread. Idempotent; safe to call without start().
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally
