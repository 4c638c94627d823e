#include "tally/collector/pgstats/discovery.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <set>

#include "tally/collector/pgstats/target_poller.h"
#include "tally/common/http_client.h"
#include "tally/common/log.h"
#include "tally/common/pg.h"

namespace tally::collector::pgstats {
namespace {

namespace json = boost::json;

bool is_postgres_uri(std::string_view url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

// Target names end up in log lines and a field value: printable, one line, not huge.
bool good_name(std::string_view name) {
  if (name.empty() || name.size() > 200) return false;
  return std::none_of(name.begin(), name.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

}  // namespace

std::string_view to_string(TargetSource source) {
  return source == TargetSource::kStatic ? "static" : "api";
}

Result<std::vector<PgTarget>> parse_discovery_list(std::string_view text) {
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec) return Status::error("not JSON: " + ec.message(), "decode");
  if (!doc.is_array()) return Status::error("not a JSON list", "decode");
  std::vector<PgTarget> out;
  std::set<std::string, std::less<>> names;
  std::size_t i = 0;
  for (const json::value& item : doc.as_array()) {
    const std::string where = "item " + std::to_string(i++);
    if (!item.is_object()) return Status::error(where + ": not an object", "decode");
    const json::object& o = item.as_object();
    const json::value* name = o.if_contains("name");
    const json::value* url = o.if_contains("url");
    if (!name || !name->is_string() || !good_name(name->as_string())) {
      return Status::error(where + ": 'name' must be a non-empty string of printable characters",
                           "decode");
    }
    if (!url || !url->is_string() || !is_postgres_uri(url->as_string())) {
      return Status::error(where + ": 'url' must be a postgresql:// URL", "decode");
    }
    PgTarget t{std::string(name->as_string()), std::string(url->as_string()), TargetSource::kApi};
    if (auto instance = parse_instance(t.name, t.url); !instance.ok()) {
      return Status::error(where + ": " + instance.error(), "decode");
    }
    if (!names.insert(t.name).second) {
      return Status::error(where + ": name '" + t.name + "' appears twice", "decode");
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<PgTarget> merge_targets(const std::vector<PgTarget>& static_targets,
                                    const std::vector<PgTarget>& api_targets,
                                    std::vector<std::string>* clashes) {
  std::vector<PgTarget> out = static_targets;
  std::set<std::string, std::less<>> names;
  for (const PgTarget& t : static_targets) names.insert(t.name);
  for (const PgTarget& t : api_targets) {
    if (names.insert(t.name).second) {
      out.push_back(t);
    } else if (clashes) {
      clashes->push_back(t.name);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const PgTarget& a, const PgTarget& b) { return a.name < b.name; });
  return out;
}

DiscoveryFetch http_discovery_fetch() {
  return [](const config::DiscoveryApiConfig& config) -> Result<std::string> {
    HttpClientOptions options;
    options.timeout = std::chrono::seconds(10);
    options.max_body_bytes = 16 << 20;
    HttpHeaders headers;
    if (!config.token.empty()) headers.emplace_back("Authorization", "Bearer " + config.token);
    auto r = http_request(options, "GET", config.url, {}, headers);
    if (!r.ok()) return r.status();
    if (r->status != 200) {
      return Status::error("answered " + std::to_string(r->status) + ": " + r->body.substr(0, 200),
                           "http_" + std::to_string(r->status));
    }
    return std::move(r->body);
  };
}

Discovery::Discovery(config::DiscoveryApiConfig config, DiscoveryFetch fetch, OnList on_list)
    : config_(std::move(config)), fetch_(std::move(fetch)), on_list_(std::move(on_list)) {}

Discovery::~Discovery() { stop(); }

void Discovery::start() {
  thread_ = std::thread([this] { run(); });
}

void Discovery::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Discovery::refresh() {
  ++stats_.refreshes;
  auto body = fetch_(config_);
  Result<std::vector<PgTarget>> list =
      body.ok() ? parse_discovery_list(*body) : Result<std::vector<PgTarget>>(body.status());
  if (!list.ok()) {
    ++stats_.failures;
    // Every failure is logged: at the usual refresh_interval (a minute) that is one line a
    // minute while the API is away, and the last good list stays in force meanwhile.
    log_warn("pgstats_discovery_failed", {{"url", config_.url},
                                          {"reason", list.status().code()},
                                          {"error", list.error()},
                                          {"action", "keeping the last good list"}});
    failing_ = true;
    return false;
  }
  if (failing_) {
    log_info("pgstats_discovery_recovered",
             {{"url", config_.url}, {"targets", std::to_string(list->size())}});
    failing_ = false;
  }
  on_list_(std::move(*list));
  return true;
}

void Discovery::run() {
  while (true) {
    (void)refresh();
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, config_.refresh_interval, [this] { return stopping_; });
    if (stopping_) return;
  }
}

}  // namespace tally::collector::pgstats
