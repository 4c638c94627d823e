#include "tally/registry/registration_batcher.h"

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

namespace tally::registry {

struct RegistrationBatcher::Waiter {
  RegistrationRequest request;
  std::optional<Result<Registration>> result;  // set when written
};

RegistrationBatcher::RegistrationBatcher(const RegistryStore& store, ConnectionPool& pool,
                                         std::size_t max_batch)
    : store_(store), pool_(pool), max_batch_(std::max<std::size_t>(1, max_batch)) {}

Result<Registration> RegistrationBatcher::register_producer(const ProducerSpec& spec,
                                                            const Caller& caller) {
  Waiter self{RegistrationRequest{spec, caller}, std::nullopt};
  std::unique_lock lock(mu_);
  queue_.push_back(&self);
  cv_.wait(lock, [&] { return self.result.has_value() || queue_.front() == &self; });
  if (self.result) return std::move(*self.result);

  // This thread writes the next batch: itself and those queued behind it, ids distinct.
  std::vector<Waiter*> batch;
  std::set<Uuid> ids;
  for (Waiter* w : queue_) {
    if (batch.size() == max_batch_) break;
    if (ids.insert(w->request.spec.id).second) batch.push_back(w);
  }
  lock.unlock();

  std::vector<RegistrationRequest> requests;
  requests.reserve(batch.size());
  for (const Waiter* w : batch) requests.push_back(w->request);
  std::optional<Result<std::vector<Result<Registration>>>> written;
  Status s = pool_.with_connection([&](pg::Connection& conn) {
    written = store_.register_producers(conn, requests);
    return written->ok() ? Status() : written->status();
  });

  lock.lock();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (s.ok()) {
      batch[i]->result = std::move((**written)[i]);
    } else {
      batch[i]->result = Result<Registration>(s);
    }
    queue_.erase(std::find(queue_.begin(), queue_.end(), batch[i]));
  }
  // Wakes the written ones and the new front, which writes the next batch.
  cv_.notify_all();
  return std::move(*self.result);
}

}  // namespace tally::registry
