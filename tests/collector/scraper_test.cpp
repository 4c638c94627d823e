// The Scraper against real HTTP producers on 127.0.0.1 — well-behaved and misbehaving ones,
// written here on plain sockets so each can misbehave exactly as needed — mostly through a
// Scheduler, which turns each collection into the ProducerState the API shows.
#include "tally/collector/scraper.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>

#include "collect_bodies.h"
#include "support/test_db.h"
#include "tally/collector/scheduler.h"
#include "tally/common/collect_json.h"

namespace tally::collector {
namespace {

using namespace std::chrono_literals;
using tally::test::eventually;

// One accepted connection, served by its own thread.
class Conn {
 public:
  explicit Conn(int fd) : fd_(fd) {}

  // Reads one request head (up to the blank line); false when the peer closed or reset.
  bool read_request(std::string* head = nullptr) {
    while (true) {
      const std::size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        if (head) *head = buffer_.substr(0, end);
        buffer_.erase(0, end + 4);
        return true;
      }
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  bool write(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Blocks until the peer closes the connection (or the server shuts it down).
  void wait_closed() {
    char chunk[256];
    while (::recv(fd_, chunk, sizeof chunk, 0) > 0) {
    }
  }

  // Closes with a TCP reset instead of a FIN.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::shutdown(fd_, SHUT_RD);
  }

  int fd() const { return fd_; }

 private:
  int fd_;
  std::string buffer_;
};

// A TCP server on 127.0.0.1 (a free port) running `handler` for each connection on a thread of
// its own. The destructor shuts every connection down and joins.
class TestServer {
 public:
  using Handler = std::function<void(Conn&)>;

  explicit TestServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listen_fd_ >= 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listen_fd_, 64) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~TestServer() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    acceptor_.join();
    {
      std::lock_guard lock(mu_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : workers_) t.join();
    ::close(listen_fd_);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int accepts() const { return accepts_.load(); }
  int finished() const { return finished_.load(); }  // handlers that returned

 private:
  void accept_loop() {
    while (!stopping_) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      ++accepts_;
      std::lock_guard lock(mu_);
      fds_.push_back(fd);
      workers_.emplace_back([this, fd] {
        Conn conn(fd);
        handler_(conn);
        ++finished_;
        std::lock_guard lock(mu_);
        fds_.remove(fd);
        ::close(fd);
      });
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepts_{0};
  std::atomic<int> finished_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::list<int> fds_;
  std::vector<std::thread> workers_;
};

std::string response(int status, std::string_view content_type, std::string_view body,
                     std::string_view extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + std::string(content_type) +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra_headers) + "\r\n" + std::string(body);
}

using test::oximeter_body;
using test::shard_sample;

constexpr std::string_view kPrometheusBody =
    "# TYPE http_requests_total counter\n"
    "http_requests_total{code=\"200\"} 1027\n"
    "http_requests_total{code=\"500\"} 3\n"
    "# TYPE temperature gauge\n"
    "temperature 21.5\n";

// Answers every request on the connection with `reply`, keeping it open; records the heads.
struct KeepAliveProducer {
  explicit KeepAliveProducer(std::string reply_text)
      : reply(std::move(reply_text)), server([this](Conn& c) {
          std::string head;
          while (c.read_request(&head)) {
            {
              std::lock_guard lock(mu);
              heads.push_back(head);
            }
            if (!c.write(reply)) return;
          }
        }) {}

  std::vector<std::string> requests() {
    std::lock_guard lock(mu);
    return heads;
  }

  std::string reply;
  std::mutex mu;
  std::vector<std::string> heads;
  TestServer server;  // last: its threads stop before the members they use go away
};

config::CollectionConfig collection_config() {
  config::CollectionConfig c;
  c.max_in_flight = 8;
  c.timeout = std::chrono::milliseconds(2000);
  c.max_body_bytes = 64 * 1024;
  c.max_samples_per_collection = 100;
  c.allowed_networks = {Network::parse("127.0.0.0/8").value()};
  return c;
}

// A real Scraper under a Scheduler whose timer is not started: collections come from
// collect_now() (or from start(), where the timer is the point).
struct Harness {
  explicit Harness(config::CollectionConfig c = collection_config(), int io_threads = 1,
                   std::size_t max_open_connections = SIZE_MAX)
      : scraper(ScraperOptions{.collection = c,
                               .io_threads = io_threads,
                               .max_open_connections = max_open_connections}) {
    scraper.start();
    SchedulerOptions o;
    o.max_samples_per_collection = static_cast<std::size_t>(c.max_samples_per_collection);
    o.decode_threads = 1;
    scheduler = std::make_unique<Scheduler>(std::move(o), scraper,
                                            [this](const Uuid& id, std::vector<Sample> s) {
                                              std::lock_guard lock(mu);
                                              delivered.emplace_back(id, std::move(s));
                                            });
  }

  ProducerTarget add(const std::string& address, std::string route = "/collect",
                     config::ProducerFormat format = config::ProducerFormat::kOximeter,
                     std::chrono::microseconds interval = std::chrono::hours(1)) {
    ProducerTarget t;
    t.id = Uuid::random();
    t.address = address;
    t.route = std::move(route);
    t.format = format;
    t.interval = interval;
    scheduler->upsert(t);
    return t;
  }

  ProducerState state(const Uuid& id) const { return scheduler->snapshot(id).value(); }

  // Collects once now and waits for the result.
  ProducerState collect(const Uuid& id) {
    const uint64_t before = state(id).counts.collections;
    REQUIRE(scheduler->collect_now(id).ok());
    REQUIRE(eventually([&] {
      const ProducerState s = state(id);
      return s.counts.collections == before + 1 && !s.in_progress;
    }));
    return state(id);
  }

  std::size_t delivered_samples() {
    std::lock_guard lock(mu);
    std::size_t n = 0;
    for (const auto& [id, samples] : delivered) n += samples.size();
    return n;
  }

  std::mutex mu;
  std::vector<std::pair<Uuid, std::vector<Sample>>> delivered;
  Scraper scraper;
  std::unique_ptr<Scheduler> scheduler;  // stopped before the scraper
};

// Exactly one failed collection with `reason`, and nothing else recorded or delivered.
void check_one_failure(Harness& h, const ProducerState& s, std::string_view reason) {
  CHECK(s.counts.collections == 1);
  CHECK(s.counts.successes == 0);
  CHECK(s.counts.samples == 0);
  CHECK(s.counts.failures.size() == 1);
  auto it = s.counts.failures.find(reason);
  CHECK((it != s.counts.failures.end() && it->second == 1));
  REQUIRE(s.last_failure.has_value());
  CHECK(s.last_failure->reason == reason);
  CHECK_FALSE(s.last_failure->message.empty());
  CHECK_FALSE(s.last_success.has_value());
  CHECK(h.delivered_samples() == 0);
  MESSAGE(s.last_failure->message);
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("Scraper: a good oximeter producer") {
  KeepAliveProducer producer(response(200, "application/json", oximeter_body(3, 1)));
  Harness h;
  const ProducerTarget t = h.add(producer.server.address(), "/my-producer");
  const ProducerState s = h.collect(t.id);

  CHECK(s.counts.successes == 1);
  CHECK(s.counts.samples == 3);
  REQUIRE(s.last_success.has_value());
  CHECK(s.last_success->n_samples == 3);
  CHECK(s.counts.failures.size() == 1);
  CHECK(s.counts.failures.at("producer_error") == 1);
  CHECK(h.delivered_samples() == 3);
  const auto heads = producer.requests();
  REQUIRE(heads.size() == 1);
  CHECK(heads[0].starts_with("GET /my-producer HTTP/1.1\r\n"));
  CHECK(heads[0].find("\r\nAccept: application/json") != std::string::npos);
  CHECK(heads[0].find("\r\nHost: " + producer.server.address()) != std::string::npos);
}

TEST_CASE("Scraper: a Prometheus text producer") {
  KeepAliveProducer producer(response(200, "text/plain; version=0.0.4", kPrometheusBody));
  Harness h;
  const ProducerTarget t =
      h.add(producer.server.address(), "/metrics", config::ProducerFormat::kPrometheus);
  const ProducerState s = h.collect(t.id);

  CHECK(s.counts.successes == 1);
  CHECK(s.counts.samples == 3);
  CHECK(s.counts.failures.empty());
  CHECK(h.delivered_samples() == 3);
  const auto heads = producer.requests();
  REQUIRE(heads.size() == 1);
  CHECK(heads[0].starts_with("GET /metrics HTTP/1.1\r\n"));
  CHECK(heads[0].find("\r\nAccept: text/plain;version=0.0.4") != std::string::npos);
}

TEST_CASE("Scraper: collections reuse one keep-alive connection") {
  KeepAliveProducer producer(response(200, "application/json", oximeter_body(2)));
  Harness h;
  const ProducerTarget t = h.add(producer.server.address());
  for (int i = 0; i < 4; ++i) h.collect(t.id);
  const ProducerState s = h.state(t.id);
  CHECK(s.counts.successes == 4);
  CHECK(s.counts.failures.empty());
  CHECK(producer.server.accepts() == 1);
  CHECK(producer.requests().size() == 4);
  CHECK(h.scraper.stats().connections_open == 1);
  CHECK(h.scraper.stats().connections_opened == 1);
}

TEST_CASE("Scraper: beyond max_open_connections a collection closes its connection") {
  KeepAliveProducer first(response(200, "application/json", oximeter_body(2)));
  KeepAliveProducer second(response(200, "application/json", oximeter_body(2)));
  Harness h(collection_config(), 1, /*max_open_connections=*/1);
  const ProducerTarget a = h.add(first.server.address());
  const ProducerTarget b = h.add(second.server.address());
  h.collect(a.id);  // the one connection allowed stays open
  h.collect(b.id);  // a second one would be over the budget: closed after its response
  h.collect(b.id);
  h.collect(a.id);
  CHECK(h.state(a.id).counts.successes == 2);
  CHECK(h.state(b.id).counts.successes == 2);
  CHECK(h.state(b.id).counts.failures.empty());
  CHECK(first.server.accepts() == 1);
  CHECK(second.server.accepts() == 2);
  CHECK(h.scraper.stats().connections_open == 1);
}

TEST_CASE("Scraper: a keep-alive connection the producer closed is replaced without a failure") {
  // Answers one request per connection, without saying so (no "Connection: close").
  TestServer server([](Conn& c) {
    if (c.read_request()) c.write(response(200, "application/json", oximeter_body(1)));
  });
  Harness h;
  const ProducerTarget t = h.add(server.address());
  for (int i = 0; i < 3; ++i) {
    h.collect(t.id);
    // Wait until the server has closed this connection, so the next poll finds it dead.
    REQUIRE(eventually([&] { return server.finished() == i + 1; }));
  }
  const ProducerState s = h.state(t.id);
  CHECK(s.counts.successes == 3);
  CHECK(s.counts.failures.empty());
  CHECK(server.accepts() == 3);
}

TEST_CASE("Scraper: a response with Connection: close is followed by a new connection") {
  TestServer server([](Conn& c) {
    if (c.read_request()) {
      c.write(response(200, "application/json", oximeter_body(1), "Connection: close\r\n"));
    }
  });
  Harness h;
  const ProducerTarget t = h.add(server.address());
  h.collect(t.id);
  h.collect(t.id);
  CHECK(h.state(t.id).counts.successes == 2);
  CHECK(server.accepts() == 2);
  CHECK(h.scraper.stats().requests_sent == 2);  // no retries were needed
}

TEST_CASE("Scraper: a producer that never answers costs one timeout and its connection") {
  TestServer server([](Conn& c) {
    if (c.read_request()) c.wait_closed();
  });
  config::CollectionConfig c = collection_config();
  c.timeout = std::chrono::milliseconds(200);
  Harness h(c);
  const ProducerTarget t = h.add(server.address());
  check_one_failure(h, h.collect(t.id), "timeout");
  CHECK(eventually([&] { return server.finished() == 1; }));  // the collector hung up
  CHECK(h.scraper.stats().connections_open == 0);
}

TEST_CASE("Scraper: a producer that resets the connection is unreachable") {
  TestServer server([](Conn& c) {
    if (c.read_request()) c.reset();
  });
  Harness h;
  const ProducerTarget t = h.add(server.address());
  check_one_failure(h, h.collect(t.id), "unreachable");
}

TEST_CASE("Scraper: a refused connection is unreachable") {
  // A port nobody listens on: bind one, read it back, close it.
  std::string address;
  {
    TestServer gone([](Conn&) {});
    address = gone.address();
  }
  Harness h;
  const ProducerTarget t = h.add(address);
  check_one_failure(h, h.collect(t.id), "unreachable");
}

TEST_CASE("Scraper: an unresolvable name is unreachable") {
  config::CollectionConfig c = collection_config();
  c.timeout = std::chrono::seconds(60);  // the system resolver's own failure comes first
  Harness h(c);
  const ProducerTarget t = h.add("no-such-host.invalid:80");
  check_one_failure(h, h.collect(t.id), "unreachable");
}

TEST_CASE("Scraper: a 500 is http_500, and the connection stays for the next poll") {
  std::atomic<int> served{0};
  TestServer server([&](Conn& c) {
    while (c.read_request()) {
      const bool first = served++ == 0;
      c.write(first ? response(500, "text/plain", "database on fire")
                    : response(200, "application/json", oximeter_body(1)));
    }
  });
  Harness h;
  const ProducerTarget t = h.add(server.address());
  const ProducerState s = h.collect(t.id);
  check_one_failure(h, s, "http_500");
  CHECK(s.last_failure->message.find("database on fire") != std::string::npos);
  CHECK(h.collect(t.id).counts.successes == 1);
  CHECK(server.accepts() == 1);
}

TEST_CASE("Scraper: a garbage body is a decode failure") {
  KeepAliveProducer producer(response(200, "application/json", "{\"this is\": not json"));
  Harness h;
  const ProducerTarget t = h.add(producer.server.address());
  check_one_failure(h, h.collect(t.id), "decode");
}

TEST_CASE("Scraper: a garbage Prometheus body is a decode failure") {
  KeepAliveProducer producer(response(200, "text/plain", "metric{unclosed=\"x 1\n"));
  Harness h;
  const ProducerTarget t =
      h.add(producer.server.address(), "/metrics", config::ProducerFormat::kPrometheus);
  check_one_failure(h, h.collect(t.id), "decode");
}

TEST_CASE("Scraper: a response that is not HTTP is a decode failure") {
  TestServer server([](Conn& c) {
    if (c.read_request()) c.write("SSH-2.0-OpenSSH_9.2\r\n\r\n");
    c.wait_closed();
  });
  Harness h;
  const ProducerTarget t = h.add(server.address());
  check_one_failure(h, h.collect(t.id), "decode");
  CHECK(eventually([&] { return server.finished() == 1; }));
}

TEST_CASE("Scraper: an endless body is too_large, read no further than the limit") {
  std::atomic<uint64_t> sent{0};
  TestServer server([&](Conn& c) {
    if (!c.read_request()) return;
    if (!c.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n")) {
      return;
    }
    const std::string chunk = "4000\r\n" + std::string(0x4000, '[') + "\r\n";
    while (c.write(chunk)) sent += chunk.size();  // until the collector hangs up
  });
  Harness h;  // max_body_bytes 64 KiB
  const ProducerTarget t = h.add(server.address());
  check_one_failure(h, h.collect(t.id), "too_large");
  CHECK(eventually([&] { return server.finished() == 1; }));  // it hung up
}

TEST_CASE("Scraper: a declared length over the limit is too_large at once") {
  TestServer server([](Conn& c) {
    if (!c.read_request()) return;
    c.write(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Content-Length: 10000000000\r\n\r\n[");
    c.wait_closed();
  });
  Harness h;
  const ProducerTarget t = h.add(server.address());
  check_one_failure(h, h.collect(t.id), "too_large");
  CHECK(eventually([&] { return server.finished() == 1; }));
}

TEST_CASE("Scraper: more samples than max_samples_per_collection is too_many_samples") {
  KeepAliveProducer producer(response(200, "application/json", oximeter_body(101)));
  Harness h;  // max_samples_per_collection 100
  const ProducerTarget t = h.add(producer.server.address());
  check_one_failure(h, h.collect(t.id), "too_many_samples");
}

TEST_CASE("Scraper: an address outside allowed_networks is forbidden, without connecting") {
  KeepAliveProducer producer(response(200, "application/json", oximeter_body(1)));
  config::CollectionConfig c = collection_config();
  c.allowed_networks = {Network::parse("10.0.0.0/8").value()};
  Harness h(c);
  SUBCASE("an IP literal") {
    const ProducerTarget t = h.add(producer.server.address());
    check_one_failure(h, h.collect(t.id), "forbidden");
  }
  SUBCASE("a name") {
    const ProducerTarget t = h.add(
        "localhost:" + producer.server.address().substr(producer.server.address().find(':') + 1));
    check_one_failure(h, h.collect(t.id), "forbidden");
  }
  CHECK(producer.server.accepts() == 0);
}

TEST_CASE("Scraper: at most max_in_flight collections run at once, the rest wait in order") {
  // Holds every request until the test lets one through.
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    int arrived = 0, current = 0, max_current = 0, permits = 0;
    std::vector<std::string> routes;  // in order of arrival
    bool open = false;
    void release_one() {
      std::lock_guard lock(mu);
      ++permits;
      cv.notify_all();
    }
    int arrived_now() {
      std::lock_guard lock(mu);
      return arrived;
    }
  } gate;
  TestServer server([&](Conn& c) {
    std::string head;
    while (c.read_request(&head)) {
      {
        std::unique_lock lock(gate.mu);
        ++gate.arrived;
        gate.routes.push_back(head.substr(4, head.find(' ', 4) - 4));
        gate.max_current = std::max(gate.max_current, ++gate.current);
        gate.cv.wait(lock, [&] { return gate.open || gate.permits > 0; });
        if (gate.permits > 0) --gate.permits;
        --gate.current;
      }
      if (!c.write(response(200, "application/json", oximeter_body(1)))) return;
    }
  });
  struct OpenAtEnd {  // lets held handlers finish before the server joins them
    Gate& g;
    ~OpenAtEnd() {
      std::lock_guard lock(g.mu);
      g.open = true;
      g.cv.notify_all();
    }
  } open_at_end{gate};

  config::CollectionConfig c = collection_config();
  c.max_in_flight = 2;
  Harness h(c, /*io_threads=*/2);
  std::vector<ProducerTarget> targets;
  for (int i = 0; i < 6; ++i) targets.push_back(h.add(server.address(), "/p" + std::to_string(i)));
  for (const ProducerTarget& t : targets) REQUIRE(h.scheduler->collect_now(t.id).ok());

  REQUIRE(eventually([&] { return gate.arrived_now() == 2; }));
  ScraperStats stats = h.scraper.stats();
  CHECK(stats.in_flight == 2);
  CHECK(stats.queued == 4);
  for (int done = 1; done <= 6; ++done) {
    gate.release_one();
    const int expected_arrivals = std::min(6, done + 2);
    REQUIRE(eventually([&] {
      return h.scheduler->totals().successes == static_cast<uint64_t>(done) &&
             gate.arrived_now() == expected_arrivals;
    }));
    CHECK(h.scraper.stats().in_flight <= 2);
  }
  // The queue is FIFO: after the first two (started together), producers were served in the
  // order their collections were asked for.
  std::lock_guard lock(gate.mu);
  CHECK(gate.routes ==
        std::vector<std::string>{gate.routes[0], gate.routes[1], "/p2", "/p3", "/p4", "/p5"});
  CHECK(server.accepts() == 6);
  CHECK(gate.max_current == 2);
  CHECK(h.scheduler->totals().failures.empty());
}

TEST_CASE("Scraper: the timer polls on schedule over one connection") {
  KeepAliveProducer producer(response(200, "application/json", oximeter_body(2)));
  Harness h;
  const ProducerTarget t = h.add(producer.server.address(), "/collect",
                                 config::ProducerFormat::kOximeter, std::chrono::milliseconds(20));
  h.scheduler->start();
  REQUIRE(eventually([&] { return h.state(t.id).counts.successes >= 3; }));
  h.scheduler->stop();
  const ProducerState s = h.state(t.id);
  CHECK(s.counts.samples == 2 * s.counts.successes);
  CHECK(producer.server.accepts() == 1);
}

TEST_CASE("Scraper: removing a producer closes its connection") {
  KeepAliveProducer producer(response(200, "application/json", oximeter_body(1)));
  Harness h;
  const ProducerTarget t = h.add(producer.server.address());
  h.collect(t.id);
  CHECK(producer.server.finished() == 0);
  CHECK(h.scheduler->remove(t.id));
  CHECK(eventually([&] { return producer.server.finished() == 1; }));
  CHECK(eventually([&] { return h.scraper.stats().connections_open == 0; }));
}

TEST_CASE("Scraper: an address change moves the connection at the next poll") {
  KeepAliveProducer first(response(200, "application/json", oximeter_body(1)));
  KeepAliveProducer second(response(200, "application/json", oximeter_body(2)));
  Harness h;
  ProducerTarget t = h.add(first.server.address());
  h.collect(t.id);
  t.address = second.server.address();
  h.scheduler->upsert(t);
  const ProducerState s = h.collect(t.id);
  CHECK(s.counts.successes == 2);
  CHECK(s.counts.samples == 3);
  CHECK(eventually([&] { return first.server.finished() == 1; }));
  CHECK(second.server.accepts() == 1);
}

TEST_CASE("Scraper: stop cancels a running collection and later fetches") {
  TestServer server([](Conn& c) {
    if (c.read_request()) c.wait_closed();
  });
  Scraper scraper(ScraperOptions{.collection = collection_config()});
  scraper.start();
  std::mutex mu;
  std::vector<FetchResult> results;
  const auto record = [&](FetchResult r) {
    std::lock_guard lock(mu);
    results.push_back(std::move(r));
  };
  scraper.fetch({.producer_id = Uuid::random(), .address = server.address()}, record);
  REQUIRE(eventually([&] { return server.accepts() == 1; }));
  scraper.stop();
  scraper.fetch({.producer_id = Uuid::random(), .address = server.address()}, record);
  std::lock_guard lock(mu);
  REQUIRE(results.size() == 2);
  CHECK(results[0].reason == "cancelled");
  CHECK(results[1].reason == "cancelled");
}

TEST_CASE("Scraper: a second fetch of a producer while one runs fails with in_progress") {
  TestServer server([](Conn& c) {
    if (c.read_request()) c.wait_closed();
  });
  Scraper scraper(ScraperOptions{.collection = collection_config()});
  scraper.start();
  std::mutex mu;
  std::vector<FetchResult> results;
  const auto record = [&](FetchResult r) {
    std::lock_guard lock(mu);
    results.push_back(std::move(r));
  };
  const Uuid id = Uuid::random();
  scraper.fetch({.producer_id = id, .address = server.address()}, record);
  scraper.fetch({.producer_id = id, .address = server.address()}, record);
  {
    std::lock_guard lock(mu);
    REQUIRE(results.size() == 1);
    CHECK(results[0].reason == "in_progress");
  }
  scraper.close(id);
  REQUIRE(eventually([&] {
    std::lock_guard lock(mu);
    return results.size() == 2;
  }));
  std::lock_guard lock(mu);
  CHECK(results[1].reason == "cancelled");
}

}  // namespace
}  // namespace tally::collector
