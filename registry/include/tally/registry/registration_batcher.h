// Group commit for registrations (docs/registry.md, "Registration throughput"): the HTTP
// handlers' registrations that arrive while one is being written wait, then the next of them to
// run writes them all in one RegistryStore::register_producers call — one assignment lock, one
// insert, one commit — and hands each its own result. Alone, a registration is written at once.
//
//   RegistrationBatcher batcher(store, pool);
//   Result<Registration> r = batcher.register_producer(spec, caller);  // from any thread
//
// Thread-safe. A batch holds at most `max_batch` registrations with distinct ids (a second
// registration of an id waits for the next batch, so each behaves as if it came alone).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>

#include "tally/common/result.h"
#include "tally/registry/connection_pool.h"
#include "tally/registry/store.h"

namespace tally::registry {

class RegistrationBatcher {
 public:
  RegistrationBatcher(const RegistryStore& store, ConnectionPool& pool, std::size_t max_batch = 64);

  // Blocks until this registration is written (by this thread or another). Errors as
  // RegistryStore::register_producer's; a database error fails the whole batch it was in.
  Result<Registration> register_producer(const ProducerSpec& spec, const Caller& caller);

 private:
  struct Waiter;

  const RegistryStore& store_;
  ConnectionPool& pool_;
  const std::size_t max_batch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Waiter*> queue_;  // mu_; the front one writes the next batch
};

}  // namespace tally::registry
