#include <exception>
#include <stdexcept>

#include "prometheus_encode.h"
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

void collect_one(Producer& producer, bool trusted, CollectItem& item) {
  Status status = produce_checked(producer, trusted, item.samples);
  if (!status.ok()) {
    item.samples.clear();
    item.error = to_producer_error(status);
  }
}

}  // namespace

std::vector<std::shared_ptr<ProducerRegistry::Entry>> ProducerRegistry::entries() const {
  // Producers run outside the registry lock: a slow one must not block add() or remove().
  std::lock_guard lock(mu_);
  return entries_;
}

std::vector<CollectItem> ProducerRegistry::collect() const {
  const std::vector<std::shared_ptr<Entry>> entries = this->entries();
  std::vector<CollectItem> items(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::lock_guard lock(entries[i]->produce_mu);
    collect_one(*entries[i]->producer, entries[i]->trusted, items[i]);
  }
  return items;
}

std::string ProducerRegistry::collect_json() const {
  const std::vector<std::shared_ptr<Entry>> entries = this->entries();
  std::string out;
  out.reserve(json_size_hint_.load(std::memory_order_relaxed) + 4096);
  out.push_back('[');
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out.push_back(',');
    Entry& entry = *entries[i];
    std::lock_guard lock(entry.produce_mu);
    if (entry.trusted) {
      out += kOkItemJsonOpen;
      static_cast<const MetricSet&>(*entry.producer).append_samples_json(out);
      out += kOkItemJsonClose;
    } else {
      CollectItem item;
      collect_one(*entry.producer, entry.trusted, item);
      append_collect_item_json(out, item);
    }
  }
  out.push_back(']');
  json_size_hint_.store(out.size(), std::memory_order_relaxed);
  return out;
}

std::string ProducerRegistry::collect_prometheus() const {
  const std::vector<std::shared_ptr<Entry>> entries = this->entries();
  // First every producer is read, then the text is written: a family's samples come from all
  // producers, so nothing can be written before the last one is read.
  std::vector<std::pair<const PrometheusSeries*, Datum>> values;            // of the MetricSets
  std::vector<std::pair<std::size_t, std::size_t>> ranges(entries.size());  // in `values`
  std::vector<CollectItem> items(entries.size());                           // of the others
  for (std::size_t i = 0; i < entries.size(); ++i) {
    Entry& entry = *entries[i];
    std::lock_guard lock(entry.produce_mu);
    if (entry.trusted) {
      ranges[i].first = values.size();
      static_cast<const MetricSet&>(*entry.producer).read_prometheus(values);
      ranges[i].second = values.size();
    } else {
      collect_one(*entry.producer, entry.trusted, items[i]);
    }
  }
  PrometheusWriter writer;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i]->trusted) {
      for (std::size_t j = ranges[i].first; j < ranges[i].second; ++j) {
        writer.add(*values[j].first, values[j].second);
      }
    } else if (items[i].error) {
      writer.add_error(*items[i].error);
    } else {
      for (const Sample& s : items[i].samples) writer.add(s);
    }
  }
  return writer.finish();
}

}  // namespace tally
