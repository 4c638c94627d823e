// Where the Postgres monitor's targets come from (DESIGN.md §5 "Postgres monitoring"): the
// static list of the YAML and/or an HTTP API answering GET with
// [{"name": "...", "url": "postgresql://..."}], fetched every refresh_interval.
//
//   Discovery discovery(api_config, http_discovery_fetch(), [&](std::vector<PgTarget> list) {
//     monitor.set_api_targets(std::move(list));   // only called with a good list
//   });
//   discovery.start();  …  discovery.stop();
//
// A failed fetch (transport error, a status other than 200, JSON that is not such a list, an item
// without a name or a postgresql:// URL, a name twice) is counted and logged, and the last good
// list stays in force: the callback is not called.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tally/common/result.h"
#include "tally/config/collector_config.h"

namespace tally::collector::pgstats {

enum class TargetSource { kStatic, kApi };
std::string_view to_string(TargetSource source);  // "static", "api"

struct PgTarget {
  std::string name;
  std::string url;  // libpq URI or key=value string; may hold a password: log redact_url(url)
  TargetSource source = TargetSource::kStatic;
  bool operator==(const PgTarget&) const = default;
};

// Parses the API's answer. Errors (code "decode") say what is wrong: "not a JSON list",
// "item 3: 'url' must be a postgresql:// URL", "item 4: name 'db1' appears twice", "item 5: port
// 'x' is not a number in 1..65535".
Result<std::vector<PgTarget>> parse_discovery_list(std::string_view json);

// The targets to poll: every static target, then the API's whose names no static target has
// (a clash is reported in `clashes`, and the static one wins). Sorted by name.
std::vector<PgTarget> merge_targets(const std::vector<PgTarget>& static_targets,
                                    const std::vector<PgTarget>& api_targets,
                                    std::vector<std::string>* clashes = nullptr);

// Fetches the API's body: an error for a transport failure or a status other than 200.
using DiscoveryFetch = std::function<Result<std::string>(const config::DiscoveryApiConfig&)>;
// GET url with "Authorization: Bearer <token>" when a token is set, a 10 s timeout and a 16 MiB
// body limit.
DiscoveryFetch http_discovery_fetch();

struct DiscoveryStats {
  std::atomic<uint64_t> refreshes{0};  // fetches attempted, failures included
  std::atomic<uint64_t> failures{0};   // fetches whose list was not used
};

class Discovery {
 public:
  using OnList = std::function<void(std::vector<PgTarget>)>;

  Discovery(config::DiscoveryApiConfig config, DiscoveryFetch fetch, OnList on_list);
  ~Discovery();  // stop()s
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // Starts the thread: a fetch at once, then one every refresh_interval.
  void start();
  // Joins the thread (a fetch in progress finishes first: at most its timeout). Idempotent.
  void stop();
  // One fetch on the calling thread (tests; the thread calls it too). True when the list was
  // good and handed to the callback.
  bool refresh();

  const DiscoveryStats& stats() const { return stats_; }

 private:
  void run();

  const config::DiscoveryApiConfig config_;
  const DiscoveryFetch fetch_;
  const OnList on_list_;
  DiscoveryStats stats_;
  bool failing_ = false;  // the refreshing thread only: log failures and recovery once each

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // mu_
  std::thread thread_;
};

}  // namespace tally::collector::pgstats
