// The registry's HTTP API (DESIGN.md §4), as a handler for HttpServer: routing, auth, request
// validation, the store call and the JSON answer. docs/registry.md lists every route.
//
// handle() blocks on the database and the resolver, so it runs on the server's worker threads,
// and may run concurrently for different requests.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "tally/common/http_message.h"
#include "tally/common/network.h"
#include "tally/registry/auth.h"
#include "tally/registry/connection_pool.h"
#include "tally/registry/metrics.h"
#include "tally/registry/registration_batcher.h"
#include "tally/registry/store.h"

namespace tally::registry {

inline constexpr int kDefaultPageLimit = 100;
inline constexpr int kMaxPageLimit = 1000;

struct ApiDependencies {
  const RegistryStore& store;
  ConnectionPool& pool;
  const Authenticator& auth;
  RegistryMetrics& metrics;
  std::vector<Network> allowed_networks;  // for producer addresses; empty: any
  // Called after a heartbeat from a collector that was not live: the GC can hand it the
  // producers waiting for one without waiting for its next period.
  std::function<void()> on_collector_live;
};

// `limit` (default 100, at most 1000: larger values are clamped) and `after` (an id) from the
// query string. Errors have code "bad_request".
Result<PageQuery> parse_page_query(const HttpRequest& request);

class RegistryApi {
 public:
  explicit RegistryApi(ApiDependencies deps);
  HttpResponse handle(const HttpRequest& request);

 private:
  HttpResponse route(const HttpRequest& request, std::string_view& route_name);
  HttpResponse register_producer(const HttpRequest& request);
  HttpResponse list_producers(const HttpRequest& request);
  HttpResponse get_producer(const HttpRequest& request, std::string_view id);
  HttpResponse delete_producer(const HttpRequest& request, std::string_view id);
  HttpResponse heartbeat(const HttpRequest& request);
  HttpResponse list_collectors(const HttpRequest& request);
  HttpResponse collector_producers(const HttpRequest& request, std::string_view id);
  HttpResponse healthz();
  HttpResponse metrics();

  // 403/404/409 for the store's own errors, 503 when the database is unavailable, else 500.
  HttpResponse store_error(const Status& s);

  ApiDependencies deps_;
  RegistrationBatcher registrations_;  // after deps_: built from its store and pool
};

}  // namespace tally::registry
