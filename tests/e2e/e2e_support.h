// End-to-end test helpers: the real binaries as child processes (tally-collector,
// tally-example-producer; tally-registry and tallyctl come from tests/registry/registry_process.h),
// producers written in the test (well-behaved and misbehaving ones), a private Postgres cluster
// the test may stop and start, and small readers for the collector's API.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "registry_process.h"
#include "support/private_cluster.h"
#include "tally/common/http_server.h"
#include "tally/common/sample.h"
#include "tally/common/time.h"

namespace tally::test {

// The YAML of a collector on 127.0.0.1:0 with its state under `state_dir`, storing into
// `database_url` with short batches; `extra` is appended (static_producers, registry, …).
std::string collector_yaml(const std::string& database_url, const std::string& state_dir,
                           const std::string& extra = "", const std::string& database_extra = "");

// tally-collector started on a config (see collector_yaml), its port read from --port-file.
// The destructor stops it with SIGTERM and checks that it exits 0 (unless killed()).
class CollectorProcess {
 public:
  explicit CollectorProcess(const std::string& yaml);
  ~CollectorProcess();

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_.path(); }
  HttpResponse get(const std::string& path) const;
  boost::json::value get_json(const std::string& path) const;
  // The value of one sample of GET /metrics, e.g. metric("tally_collector_failures_total",
  // "reason=\"schema\""); nullopt when absent.
  std::optional<double> metric(const std::string& name, const std::string& labels = "") const;
  // GET /producers/{id} (null when 404).
  boost::json::value producer(const std::string& id) const;

  int stop();   // SIGTERM; the exit code
  void kill();  // SIGKILL
  std::string log() const;
  pid_t pid() const { return process_->pid(); }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
  uint16_t port_ = 0;
  bool stopped_ = false;
};

// tally-example-producer on 127.0.0.1:0, without --registry (tests register it with tallyctl).
class ExampleProducer {
 public:
  explicit ExampleProducer(const std::string& id);
  ~ExampleProducer();
  const std::string& address() const { return address_; }
  const std::string& id() const { return id_; }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
  std::string id_;
  std::string address_;
};

// A producer written in the test: an HttpServer on 127.0.0.1:0 running `handler`.
class FakeProducer {
 public:
  explicit FakeProducer(HttpHandler handler);
  ~FakeProducer();
  std::string address() const { return server_->address(); }

 private:
  std::unique_ptr<HttpServer> server_;
};

// A deterministic producer for exact counting: every GET serves `series` samples of
// `<target>:ticks` (cumulative_u64, field `n` = 0…series-1) with the same value, which grows by
// one per response, and a timestamp of its own that grows strictly. Once frozen it serves [].
class CounterProducer {
 public:
  CounterProducer(std::string target_name, int series, std::string field_type = "u16");
  std::string address() const { return server_.address(); }
  // (timestamp, value) of every response served with samples, in order.
  std::vector<std::pair<Timestamp, uint64_t>> served() const;
  uint64_t responses() const;
  void freeze();
  void unfreeze();
  const Timestamp& start_time() const { return start_time_; }

 private:
  HttpResponse serve();

  std::string target_name_;
  int series_;
  std::string field_type_;
  Timestamp start_time_;
  mutable std::mutex mu_;
  bool frozen_ = false;                                 // mu_
  Timestamp last_;                                      // mu_
  std::vector<std::pair<Timestamp, uint64_t>> served_;  // mu_
  FakeProducer server_;
};

// A listening TCP socket on 127.0.0.1 with a port from the kernel, which it stores in `port`
// (for the hand-written producers below that need control below HTTP).
int listen_on_loopback(uint16_t& port);

// A producer that misbehaves at the TCP/HTTP level, on 127.0.0.1:0, served by one thread.
class RawProducer {
 public:
  enum class Behaviour {
    kHang,     // reads the request, never answers
    kReset,    // reads the request, closes with a TCP reset
    kGarbage,  // answers 200 with a body that is not a collect response
    kEndless,  // answers 200 with a chunked body that never ends
  };
  explicit RawProducer(Behaviour behaviour);
  ~RawProducer();
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  void run();
  Behaviour behaviour_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Runs `sql` on `url` and returns the first column of the first row ("" when none).
std::string query_scalar(const std::string& url, const std::string& sql);
// Every row of `sql`, each column as text.
std::vector<std::vector<std::string>> query_rows(const std::string& url, const std::string& sql);

// tallyctl with `args`, TALLY_REGISTRY_URL set to `registry_url`.
CommandResult tallyctl(const std::string& registry_url, std::vector<std::string> args);

}  // namespace tally::test
