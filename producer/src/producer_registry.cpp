#include <exception>
#include <stdexcept>

#include "tally/producer/metric_set.h"
#include "tally/producer/producer.h"

namespace tally {

Producer::~Producer() = default;

struct ProducerRegistry::Entry {
  Id id;
  std::shared_ptr<Producer> producer;
  // MetricSet checks names and fields when a metric is created; its samples need no second look,
  // which matters when one collection holds tens of thousands of them.
  bool trusted;
  // Serialises produce() per producer, so producers need not be re-entrant.
  std::mutex produce_mu;
};

ProducerRegistry::ProducerRegistry() = default;
ProducerRegistry::~ProducerRegistry() = default;

ProducerRegistry::Id ProducerRegistry::add(std::shared_ptr<Producer> producer) {
  if (!producer) throw std::invalid_argument("ProducerRegistry::add: null producer");
  const bool trusted = dynamic_cast<const MetricSet*>(producer.get()) != nullptr;
  std::lock_guard lock(mu_);
  const Id id = next_id_++;
  entries_.push_back(std::make_shared<Entry>(id, std::move(producer), trusted));
  return id;
}

bool ProducerRegistry::remove(Id id) {
  std::lock_guard lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if ((*it)->id == id) {
      entries_.erase(it);
      return true;
    }
  }
  return false;
}

std::size_t ProducerRegistry::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

namespace {

ProducerError to_producer_error(const Status& status) {
  // "error" is Status's catch-all code; oximeter calls a failing producer a datum_error.
  return ProducerError{status.code() == "error" ? "datum_error" : status.code(), status.message()};
}

Status produce_checked(Producer& producer, bool trusted, std::vector<Sample>& out) {
  try {
    if (Status s = producer.produce(out); !s.ok()) return s;
  } catch (const std::exception& e) {
    return Status::error(std::string("producer threw: ") + e.what(), "datum_error");
  } catch (...) {
    return Status::error("producer threw a non-standard exception", "datum_error");
  }
  if (!trusted) {
    // One bad sample would make a collector reject the whole response, hiding every other
    // producer's samples with it; report this producer alone as failing instead.
    for (const Sample& sample : out) {
      if (Status s = validate_sample(sample); !s.ok()) {
        return Status::error("invalid sample: " + s.message(), "datum_error");
      }
    }
  }
  return {};
}

}  // namespace

std::vector<CollectItem> ProducerRegistry::collect() const {
  std::vector<std::shared_ptr<Entry>> entries;
  {
    // Producers run outside the registry lock: a slow one must not block add() or remove().
    std::lock_guard lock(mu_);
    entries = entries_;
  }
  std::vector<CollectItem> items(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    Entry& entry = *entries[i];
    std::lock_guard lock(entry.produce_mu);
    Status status = produce_checked(*entry.producer, entry.trusted, items[i].samples);
    if (!status.ok()) {
      items[i].samples.clear();
      items[i].error = to_producer_error(status);
    }
  }
  return items;
}

}  // namespace tally
