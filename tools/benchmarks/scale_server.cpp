// Stand-in producers for the scale run of tools/bench (DESIGN.md §10: one collector polls 10,000
// producers at a 10 s interval): N producers, each at its own address, on one port. All of
// 127.0.0.0/8 reaches the loopback interface on Linux, so one socket listening on 0.0.0.0:PORT
// answers 127.1.B.C:PORT for every B.C; producer i is 127.1.(i / 250).(i % 250 + 1). Connections
// to any other local address are closed at once.
//
// Each producer serves its own collect response (§3.1): SAMPLES samples of the bench mix
// (workload.h) with its own `name`/`instance` fields, so the collector sees N × SAMPLES distinct
// series. The bodies are cut from one template, so serving costs a memcpy, not an encoder: one
// thread with epoll, HTTP/1.1 keep-alive, whatever the request target.
//
// With --register URL it then registers the N producers with a tally-registry
// (POST /v1/producers, --threads client threads, a 503 "no live collector" is retried), as N
// producer processes would, and prints what it took on stderr.
//
//   tally_scale_server --producers 10000 --samples 20 --port-file FILE
//                      [--register http://127.0.0.1:12221 --threads 8 --interval-ms 10000]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tally/common/collect_json.h"
#include "tally/common/field.h"
#include "tally/common/http_client.h"
#include "workload.h"

namespace {

constexpr uint32_t kMagic =
    987654321;  // the producer number in the template, replaced per producer
constexpr int kPerThirdOctet = 250;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "tally_scale_server: %s\n", what.c_str());
  std::exit(1);
}

std::string producer_address(int i, int port) {
  return "127.1." + std::to_string(i / kPerThirdOctet) + "." +
         std::to_string(i % kPerThirdOctet + 1) + ":" + std::to_string(port);
}

// The producer number of a local address 127.1.B.C, or -1.
int producer_of(const sockaddr_in& local, int producers) {
  const uint32_t a = ntohl(local.sin_addr.s_addr);
  if ((a >> 16) != 0x7F01) return -1;
  const int b = static_cast<int>((a >> 8) & 0xFF), c = static_cast<int>(a & 0xFF);
  if (c < 1 || c > kPerThirdOctet) return -1;
  const int i = b * kPerThirdOctet + c - 1;
  return i < producers ? i : -1;
}

// The template body split at every occurrence of kMagic.
std::vector<std::string> template_pieces(int samples) {
  std::vector<tally::CollectItem> items(1);
  items[0].samples = tally::bench::mix_samples(kMagic, static_cast<std::size_t>(samples));
  const std::string body = tally::encode_collect_response(items);
  const std::string magic = std::to_string(kMagic);
  std::vector<std::string> pieces;
  std::size_t from = 0;
  for (std::size_t at; (at = body.find(magic, from)) != std::string::npos; from = at + magic.size())
    pieces.push_back(body.substr(from, at - from));
  pieces.push_back(body.substr(from));
  return pieces;
}

struct Conn {
  int producer;
  std::string in;
  std::string out;
  std::size_t sent = 0;
};

class Server {
 public:
  Server(int producers, std::vector<std::string> pieces)
      : producers_(producers), pieces_(std::move(pieces)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 4096) != 0)
      die(std::string("listen: ") + std::strerror(errno));
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    watch(listener_, EPOLLIN, EPOLL_CTL_ADD);
  }

  int port() const { return port_; }

  [[noreturn]] void run() {
    std::vector<epoll_event> events(1024);
    while (true) {
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0 && errno != EINTR) die(std::string("epoll_wait: ") + std::strerror(errno));
      for (int k = 0; k < n; ++k) {
        const int fd = events[k].data.fd;
        if (fd == listener_) {
          accept_all();
        } else {
          on_ready(fd, events[k].events);
        }
      }
    }
  }

 private:
  void watch(int fd, uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_, op, fd, &ev);
  }

  void accept_all() {
    while (true) {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or out of descriptors: the peer retries
      sockaddr_in local{};
      socklen_t len = sizeof local;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
      const int producer = producer_of(local, producers_);
      if (producer < 0) {
        ::close(fd);
        continue;
      }
      conns_[fd] = Conn{producer, {}, {}, 0};
      watch(fd, EPOLLIN, EPOLL_CTL_ADD);
    }
  }

  void drop(int fd) {
    ::close(fd);  // also leaves the epoll set
    conns_.erase(fd);
  }

  void on_ready(int fd, uint32_t events) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    Conn& c = it->second;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      char buf[4096];
      while (true) {
        const ssize_t got = ::read(fd, buf, sizeof buf);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) return drop(fd);
        if (got < 0) break;
        c.in.append(buf, static_cast<std::size_t>(got));
        if (c.in.size() > 65536) return drop(fd);
      }
      // Requests are GETs without a body: each ends at the blank line.
      for (std::size_t end; (end = c.in.find("\r\n\r\n")) != std::string::npos;) {
        c.in.erase(0, end + 4);
        respond(c);
      }
    }
    flush(fd, c);
  }

  void respond(Conn& c) {
    const std::string number = std::to_string(c.producer);
    std::size_t length = 0;
    for (const std::string& p : pieces_) length += p.size();
    length += (pieces_.size() - 1) * number.size();
    c.out += "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
             std::to_string(length) + "\r\n\r\n";
    for (std::size_t i = 0; i < pieces_.size(); ++i) {
      if (i > 0) c.out += number;
      c.out += pieces_[i];
    }
  }

  void flush(int fd, Conn& c) {
    while (c.sent < c.out.size()) {
      const ssize_t put = ::write(fd, c.out.data() + c.sent, c.out.size() - c.sent);
      if (put < 0 && errno == EAGAIN) {
        watch(fd, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        return;
      }
      if (put < 0) return drop(fd);
      c.sent += static_cast<std::size_t>(put);
    }
    if (!c.out.empty()) {
      c.out.clear();
      c.out.shrink_to_fit();  // 10,000 idle connections should not each keep a body's buffer
      c.sent = 0;
      watch(fd, EPOLLIN, EPOLL_CTL_MOD);
    }
  }

  int producers_;
  std::vector<std::string> pieces_;
  int listener_ = -1;
  int epoll_ = -1;
  int port_ = 0;
  std::unordered_map<int, Conn> conns_;
};

void register_all(const std::string& registry, int producers, int port, int threads,
                  int interval_ms) {
  const auto start = std::chrono::steady_clock::now();
  std::atomic<int> next{0};
  std::atomic<int> retries{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < producers; i = next++) {
        const std::string body = R"({"id": ")" + tally::Uuid::random().to_string() +
                                 R"(", "kind": "service", "address": ")" +
                                 producer_address(i, port) +
                                 R"(", "route": "/collect", "interval_ms": )" +
                                 std::to_string(interval_ms) + R"(, "format": "oximeter"})";
        for (int attempt = 0;; ++attempt) {
          auto r = tally::http_request({}, "POST", registry + "/v1/producers", body);
          if (r.ok() && r->status == 201) break;
          if (attempt == 50) {
            die("registering producer " + std::to_string(i) + ": " +
                (r.ok() ? "HTTP " + std::to_string(r->status) + " " + r->body : r.error()));
          }
          ++retries;
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr,
               "tally_scale_server: registered %d producers in %.1f s (%.0f/s, %d retries)\n",
               producers, s, producers / s, retries.load());
}

}  // namespace

int main(int argc, char** argv) {
  int producers = 10000, samples = 20, threads = 8, interval_ms = 10000;
  std::string port_file, registry;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--producers")
      producers = std::atoi(value.c_str());
    else if (flag == "--samples")
      samples = std::atoi(value.c_str());
    else if (flag == "--port-file")
      port_file = value;
    else if (flag == "--register")
      registry = value;
    else if (flag == "--threads")
      threads = std::atoi(value.c_str());
    else if (flag == "--interval-ms")
      interval_ms = std::atoi(value.c_str());
    else
      die("unknown flag " + flag);
  }
  if (port_file.empty() || producers < 1 || producers > 256 * kPerThirdOctet || samples < 1)
    die("usage: tally_scale_server --producers N --samples M --port-file FILE [--register URL]");

  // One descriptor per producer's connection, plus the listener and the registration clients.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  ::getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < static_cast<rlim_t>(producers) + 64)
    std::fprintf(stderr,
                 "tally_scale_server: warning: only %llu file descriptors for %d producers\n",
                 static_cast<unsigned long long>(files.rlim_cur), producers);

  Server server(producers, template_pieces(samples));
  {
    std::ofstream out(port_file + ".tmp");
    out << server.port() << "\n";
  }
  std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  std::thread registration;
  if (!registry.empty()) {
    registration =
        std::thread(register_all, registry, producers, server.port(), threads, interval_ms);
    registration.detach();
  }
  server.run();
}
