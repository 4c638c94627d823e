// Producers written in the test: well-behaved ones on HttpServer, misbehaving ones on plain
// sockets (the server must be able to do what no HTTP library would).
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "e2e_support.h"
#include "support/series.h"
#include "tally/common/collect_json.h"

namespace tally::test {

FakeProducer::FakeProducer(HttpHandler handler)
    : server_(std::make_unique<HttpServer>(HttpServerOptions{.listen = "127.0.0.1:0"},
                                           std::move(handler))) {
  const Status s = server_->start();
  REQUIRE_MESSAGE(s.ok(), s.message());
}

FakeProducer::~FakeProducer() { server_->stop(); }

CounterProducer::CounterProducer(std::string target_name, int series, std::string field_type)
    : target_name_(std::move(target_name)),
      series_(series),
      field_type_(std::move(field_type)),
      start_time_(tally::now()),
      last_(start_time_),
      server_([this](const HttpRequest&) { return serve(); }) {}

HttpResponse CounterProducer::serve() {
  std::vector<Sample> samples;
  {
    std::lock_guard lock(mu_);
    if (frozen_) return HttpResponse::json(200, "[]");
    // Strictly increasing, so every response is a distinct (series, timestamp).
    last_ = std::max(tally::now(), last_ + std::chrono::microseconds(1));
    const uint64_t value = served_.size() + 1;
    served_.emplace_back(last_, value);
    for (int n = 0; n < series_; ++n) {
      Sample s;
      test::change_series(s, [&](Timeseries& t) {
        t.target = Target{target_name_, {{"name", std::string("e2e")}}};
      });
      FieldValue field = static_cast<uint16_t>(n);
      if (field_type_ == "string") field = std::to_string(n);
      test::change_series(s, [&](Timeseries& t) { t.metric = Metric{"ticks", {{"n", field}}}; });
      s.timestamp = last_;
      s.datum = Cumulative<uint64_t>{start_time_, value};
      samples.push_back(std::move(s));
    }
  }
  const CollectItem item{std::move(samples), std::nullopt};
  return HttpResponse::json(200, encode_collect_response(std::span<const CollectItem>(&item, 1)));
}

std::vector<std::pair<Timestamp, uint64_t>> CounterProducer::served() const {
  std::lock_guard lock(mu_);
  return served_;
}

uint64_t CounterProducer::responses() const {
  std::lock_guard lock(mu_);
  return served_.size();
}

void CounterProducer::freeze() {
  std::lock_guard lock(mu_);
  frozen_ = true;
}

void CounterProducer::unfreeze() {
  std::lock_guard lock(mu_);
  frozen_ = false;
}

int listen_on_loopback(uint16_t& port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(listen(fd, 16) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  port = ntohs(addr.sin_port);
  return fd;
}

RawProducer::RawProducer(Behaviour behaviour) : behaviour_(behaviour) {
  listen_fd_ = listen_on_loopback(port_);
  thread_ = std::thread([this] { run(); });
}

RawProducer::~RawProducer() {
  stop_ = true;
  thread_.join();
  close(listen_fd_);
}

// One thread polls the listening socket and every connection: the behaviours need no more.
void RawProducer::run() {
  struct Connection {
    std::string request;
    bool answered = false;
  };
  std::map<int, Connection> connections;
  const std::string chunk = [] {
    std::string data(16 * 1024, 'x');
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return size + data + "\r\n";
  }();
  const auto drop = [&](int fd, bool reset) {
    if (reset) {
      linger l{1, 0};  // close() then sends RST instead of FIN
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(fd);
    connections.erase(fd);
  };
  while (!stop_) {
    std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
    for (const auto& [fd, c] : connections) {
      const bool endless = c.answered && behaviour_ == Behaviour::kEndless;
      fds.push_back({fd, static_cast<short>(endless ? POLLOUT : POLLIN), 0});
    }
    if (poll(fds.data(), fds.size(), 20) <= 0) continue;
    if (fds[0].revents & POLLIN) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd >= 0) connections[fd] = {};
    }
    for (std::size_t i = 1; i < fds.size(); ++i) {
      const int fd = fds[i].fd;
      if (fds[i].revents == 0) continue;
      Connection& c = connections[fd];
      if (c.answered && behaviour_ == Behaviour::kEndless) {
        if (send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) drop(fd, false);
        continue;
      }
      char buf[4096];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        drop(fd, false);
        continue;
      }
      c.request.append(buf, static_cast<std::size_t>(n));
      if (c.request.find("\r\n\r\n") == std::string::npos) continue;
      c.request.clear();
      switch (behaviour_) {
        case Behaviour::kHang:
          break;  // keep the connection, say nothing
        case Behaviour::kReset:
          drop(fd, true);
          break;
        case Behaviour::kGarbage: {
          const std::string body = "{\"this is\": not a collect response";
          const std::string response =
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n\r\n" + body;
          send(fd, response.data(), response.size(), MSG_NOSIGNAL);
          break;
        }
        case Behaviour::kEndless: {
          const std::string head =
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              "Transfer-Encoding: chunked\r\n\r\n";
          send(fd, head.data(), head.size(), MSG_NOSIGNAL);
          c.answered = true;
          break;
        }
      }
    }
  }
  for (const auto& [fd, c] : connections) close(fd);
}

}  // namespace tally::test
