// Fetching producers' responses over HTTP/1.1: the Fetcher interface the scheduler is written
// against, and Scraper, its asynchronous implementation on Beast (which stays in scraper.cpp).
//
//   Scraper scraper({.collection = config.collection, .io_threads = 1});
//   scraper.start();
//   scraper.fetch({.producer_id = id, .address = "127.0.0.1:9100", .route = "/metrics",
//                  .format = config::ProducerFormat::kPrometheus},
//                 [](FetchResult r) { /* on an I/O thread: hand the body off, return quickly */ });
//   …
//   scraper.stop();
//
// docs/collection.md describes the behaviour in full (deadlines, limits, keep-alive, reasons).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "tally/collector/producer_target.h"
#include "tally/common/field.h"
#include "tally/common/time.h"
#include "tally/config/collector_config.h"

namespace tally::collector {

struct FetchRequest {
  Uuid producer_id;     // the connection is kept per producer
  std::string address;  // "host:port"
  std::string route = "/collect";
  config::ProducerFormat format = config::ProducerFormat::kOximeter;  // picks the Accept header
};

struct FetchResult {
  std::string reason;                     // "" on success, else a reason::* or http_<status>
  std::string message;                    // the failure in words, naming the address and the step
  std::string body;                       // the response body (2xx only)
  Timestamp started_at;                   // wall clock, when the collection left the queue
  std::chrono::microseconds duration{0};  // from leaving the queue to the body read (or failure)
  bool ok() const { return reason.empty(); }
};

using FetchCallback = std::function<void(FetchResult)>;

// Gets one producer's response. Implementations are thread-safe.
class Fetcher {
 public:
  virtual ~Fetcher() = default;
  // Starts (or queues) one collection; `done` is called exactly once, possibly on another
  // thread and possibly before fetch() returns. At most one fetch per producer at a time: a
  // second one while the first runs fails at once with reason "in_progress".
  virtual void fetch(FetchRequest request, FetchCallback done) = 0;
  // Forgets a producer: a queued or running fetch of it ends with reason "cancelled" and its
  // connection is closed. Unknown ids are ignored.
  virtual void close(const Uuid& producer_id) = 0;
};

struct ScraperOptions {
  // timeout (per collection: resolve + connect + write + read), max_body_bytes, max_in_flight and
  // allowed_networks are used; max_samples_per_collection is the scheduler's business.
  config::CollectionConfig collection;
  int io_threads = 1;                        // threads running the io_context (1–2 in the daemon)
  // Connections kept open between collections. Beyond it a collection closes its connection when
  // it ends (the next one connects again), so the producers' connections stay within the file
  // descriptors the process has. The daemon derives it from RLIMIT_NOFILE.
  std::size_t max_open_connections = SIZE_MAX;
  std::size_t max_header_bytes = 64 * 1024;  // a larger response header is "too_large"
  std::string user_agent = "tally-collector/0.1";
};

struct ScraperStats {
  uint64_t in_flight = 0;           // collections running now (≤ max_in_flight)
  uint64_t queued = 0;              // collections waiting for a slot
  uint64_t connections_open = 0;    // established keep-alive connections
  uint64_t connections_opened = 0;  // total connects that succeeded
  uint64_t requests_sent = 0;       // total requests written (a stale-connection retry counts)
};

// The Beast implementation. One keep-alive connection per producer, reconnected when it closes
// or breaks; at most collection.max_in_flight collections running at once, the rest wait in
// FIFO order and their deadline starts only when they leave the queue. Callbacks run on an I/O
// thread and must not block: hand the body to another thread for decoding.
class Scraper final : public Fetcher {
 public:
  explicit Scraper(ScraperOptions options);
  ~Scraper() override;  // stop()s
  Scraper(const Scraper&) = delete;
  Scraper& operator=(const Scraper&) = delete;

  // Starts the I/O threads. fetch() before start() queues work that runs once started.
  void start();
  // Cancels every queued and running collection (their callbacks get "cancelled"), closes every
  // connection and joins the I/O threads. Later fetches fail at once with "cancelled".
  // Idempotent.
  void stop();

  void fetch(FetchRequest request, FetchCallback done) override;
  void close(const Uuid& producer_id) override;

  ScraperStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::collector
