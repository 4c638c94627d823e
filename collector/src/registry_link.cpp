#include "tally/collector/registry_link.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tally/common/http_client.h"
#include "tally/common/log.h"

namespace tally::collector {
namespace {

namespace json = boost::json;

std::string as_string(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

Result<AssignedProducer> parse_producer(const json::value& item) {
  if (!item.is_object()) return Status::error("an item is not an object", "decode");
  const json::object& o = item.as_object();
  AssignedProducer p;
  auto id = Uuid::parse(as_string(o, "id"));
  if (!id.ok()) return Status::error("item id: " + id.error(), "decode");
  p.id = *id;
  p.address = as_string(o, "address");
  p.route = as_string(o, "route");
  auto format = config::parse_producer_format(as_string(o, "format"));
  if (p.address.empty() || p.route.empty() || !format) {
    return Status::error("producer " + p.id.to_string() + ": address, route or format missing",
                         "decode");
  }
  p.format = *format;
  const json::value* interval = o.if_contains("interval_ms");
  if (!interval || !interval->is_int64() || interval->as_int64() <= 0) {
    return Status::error("producer " + p.id.to_string() + ": bad interval_ms", "decode");
  }
  p.interval = std::chrono::milliseconds(interval->as_int64());
  p.target_name = as_string(o, "target_name");
  return p;
}

HttpHeaders auth_headers(const std::string& token) {
  if (token.empty()) return {};
  return {{"Authorization", "Bearer " + token}};
}

}  // namespace

Result<std::vector<AssignedProducer>> parse_assignment_page(std::string_view text,
                                                            std::string& next) {
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec || !doc.is_object()) return Status::error("the registry answered malformed JSON", "decode");
  const json::object& o = doc.as_object();
  const json::value* items = o.if_contains("items");
  if (!items || !items->is_array()) return Status::error("no 'items' list in the answer", "decode");
  std::vector<AssignedProducer> out;
  for (const json::value& item : items->as_array()) {
    auto p = parse_producer(item);
    if (!p.ok()) return p.status();
    out.push_back(std::move(*p));
  }
  const json::value* n = o.if_contains("next");
  next = n && n->is_string() ? std::string(n->as_string()) : std::string();
  return out;
}

Result<Uuid> load_or_create_collector_id(const std::string& state_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  if (ec) return Status::error("cannot create state_dir " + state_dir + ": " + ec.message(), "io");
  const fs::path path = fs::path(state_dir) / "collector_id";
  if (std::ifstream in(path); in) {
    std::string text;
    in >> text;
    auto id = Uuid::parse(text);
    if (!id.ok()) return Status::error(path.string() + ": " + id.error(), "io");
    return *id;
  }
  const Uuid id = Uuid::random();
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << id.to_string() << "\n";
    if (!out) return Status::error("cannot write " + tmp.string(), "io");
  }
  fs::rename(tmp, path, ec);
  if (ec) return Status::error("cannot write " + path.string() + ": " + ec.message(), "io");
  return id;
}

RegistryLink::RegistryLink(config::RegistryClientConfig config, Uuid collector_id,
                           std::string advertised_address, OnAssignments on_assignments)
    : config_(std::move(config)),
      collector_id_(collector_id),
      advertised_address_(std::move(advertised_address)),
      on_assignments_(std::move(on_assignments)) {}

RegistryLink::~RegistryLink() { stop(); }

void RegistryLink::start() { thread_ = std::thread([this] { run(); }); }

void RegistryLink::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RegistryLink::refresh_now() {
  {
    std::lock_guard lock(mu_);
    refresh_requested_ = true;
  }
  wake_.notify_all();
}

Status RegistryLink::heartbeat() {
  std::string body = "{\"id\":\"" + collector_id_.to_string() + "\",\"address\":";
  append_json_string(body, advertised_address_);
  body += "}";
  auto r = http_request({}, "POST", config_.url + "/v1/collectors", body,
                        auth_headers(config_.token));
  if (!r.ok()) return r.status();
  if (r->status != 200 && r->status != 201) {
    return Status::error("heartbeat answered " + std::to_string(r->status) + ": " + r->body,
                         "http_" + std::to_string(r->status));
  }
  return {};
}

Result<std::vector<AssignedProducer>> RegistryLink::fetch_assignments() {
  std::vector<AssignedProducer> all;
  std::string after;
  // Bounded so that a registry answering the same page forever cannot hold us here.
  for (int page = 0; page < 100'000; ++page) {
    std::string url = config_.url + "/v1/collectors/" + collector_id_.to_string() +
                      "/producers?limit=1000";
    if (!after.empty()) url += "&after=" + after;
    HttpClientOptions options;
    options.max_body_bytes = 64 << 20;
    auto r = http_request(options, "GET", url, {}, auth_headers(config_.token));
    if (!r.ok()) return r.status();
    if (r->status != 200) {
      return Status::error("assignments answered " + std::to_string(r->status) + ": " + r->body,
                           "http_" + std::to_string(r->status));
    }
    std::string next;
    auto items = parse_assignment_page(r->body, next);
    if (!items.ok()) return items.status();
    all.insert(all.end(), items->begin(), items->end());
    if (next.empty()) return all;
    if (next <= after) return Status::error("the registry's pagination went backwards", "decode");
    after = next;
  }
  return Status::error("too many pages of assignments", "decode");
}

void RegistryLink::run() {
  using Clock = std::chrono::steady_clock;
  Clock::time_point next_heartbeat = Clock::now();
  Clock::time_point next_refresh = Clock::now();
  bool heartbeat_ok = false;
  while (true) {
    {
      std::unique_lock lock(mu_);
      wake_.wait_until(lock, std::min(next_heartbeat, next_refresh),
                       [this] { return stopping_ || refresh_requested_; });
      if (stopping_) return;
      if (refresh_requested_) {
        refresh_requested_ = false;
        next_heartbeat = next_refresh = Clock::now();
      }
    }
    const auto now = Clock::now();
    if (now >= next_heartbeat) {
      Status s = heartbeat();
      ++stats_.heartbeats;
      if (!s.ok()) {
        ++stats_.heartbeat_failures;
        if (heartbeat_ok) log_warn("registry_heartbeat_failed", {{"error", s.message()}});
      } else if (!heartbeat_ok) {
        log_info("registry_connected", {{"url", config_.url}, {"collector_id", collector_id_.to_string()}});
        next_refresh = now;  // fetch assignments right after the first good heartbeat
      }
      heartbeat_ok = s.ok();
      next_heartbeat = now + config_.heartbeat_interval;
    }
    if (Clock::now() >= next_refresh) {
      auto producers = fetch_assignments();
      ++stats_.refreshes;
      if (producers.ok()) {
        on_assignments_(std::move(*producers));
      } else {
        ++stats_.refresh_failures;
        log_warn("registry_refresh_failed",
                 {{"error", producers.error()}, {"action", "keeping the last good list"}});
        // A 404 means the registry forgot us: heartbeat again at once.
        if (producers.status().code() == "http_404") next_heartbeat = Clock::now();
      }
      next_refresh = Clock::now() + config_.refresh_interval;
    }
  }
}

}  // namespace tally::collector
