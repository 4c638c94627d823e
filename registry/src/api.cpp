#include "tally/registry/api.h"

#include <charconv>

#include "tally/common/log.h"
#include "tally/common/prometheus_text.h"

namespace tally::registry {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const std::size_t slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return parts;
}

HttpResponse bad_request(const std::string& message) {
  return HttpResponse::error(400, "bad_request", message);
}

HttpResponse auth_error(const Status& s) {
  if (s.code() == "forbidden") return HttpResponse::error(403, "forbidden", s.message());
  HttpResponse r = HttpResponse::error(401, "unauthorized", s.message());
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"tally-registry\"");
  return r;
}

HttpResponse method_not_allowed(const HttpRequest& request, std::string_view allow) {
  HttpResponse r = HttpResponse::error(405, "method_not_allowed",
                                       request.method + " is not allowed on " + request.path +
                                           " (allowed: " + std::string(allow) + ")");
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

Result<Uuid> parse_path_id(std::string_view text, std::string_view what) {
  auto id = Uuid::parse(text);
  if (!id.ok()) {
    return Status::error(
        std::string(what) + ": '" + std::string(text) + "' is not a UUID (8-4-4-4-12 hex digits)",
        "bad_request");
  }
  return *id;
}

template <class T>
std::string page_json(const Page<T>& page, std::string (*to_json)(const T&)) {
  std::string out = "{\"items\":[";
  for (std::size_t i = 0; i < page.items.size(); ++i) {
    if (i > 0) out += ',';
    out += to_json(page.items[i]);
  }
  out += "],\"next\":";
  if (page.next) {
    append_json_string(out, page.next->to_string());
  } else {
    out += "null";
  }
  out += '}';
  return out;
}

Caller caller_of(const Principal& p) { return Caller{p.owner(), p.may_change_any_producer()}; }

}  // namespace

Result<PageQuery> parse_page_query(const HttpRequest& request) {
  PageQuery page;
  page.limit = kDefaultPageLimit;
  if (auto limit = request.query_param("limit")) {
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
    if (ec != std::errc() || end != limit->data() + limit->size() || n < 1) {
      return Status::error("limit: expected a whole number from 1 to " +
                               std::to_string(kMaxPageLimit) + ", got '" + std::string(*limit) +
                               "'",
                           "bad_request");
    }
    page.limit = static_cast<int>(std::min<int64_t>(n, kMaxPageLimit));
  }
  if (auto after = request.query_param("after"); after && !after->empty()) {
    auto id = parse_path_id(*after, "after");
    if (!id.ok()) return id.status();
    page.after = *id;
  }
  return page;
}

RegistryApi::RegistryApi(ApiDependencies deps)
    : deps_(std::move(deps)), registrations_(deps_.store, deps_.pool) {}

HttpResponse RegistryApi::handle(const HttpRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  std::string_view route_name = "other";
  HttpResponse response = route(request, route_name);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  deps_.metrics.observe_request(route_name, response.status, seconds);
  log_debug("http_request", {{"method", request.method},
                             {"route", route_name},
                             {"status", std::to_string(response.status)},
                             {"seconds", std::to_string(seconds)},
                             {"remote", request.remote_address}});
  return response;
}

HttpResponse RegistryApi::route(const HttpRequest& request, std::string_view& route_name) {
  const std::vector<std::string_view> parts = split_path(request.path);
  const std::string& m = request.method;
  const auto is = [&](std::initializer_list<std::string_view> expected) {
    if (parts.size() != expected.size()) return false;
    std::size_t i = 0;
    for (std::string_view e : expected) {
      if (e != "*" && parts[i] != e) return false;
      ++i;
    }
    return true;
  };

  if (is({"healthz"})) {
    route_name = "/healthz";
    return m == "GET" ? healthz() : method_not_allowed(request, "GET");
  }
  if (is({"metrics"})) {
    route_name = "/metrics";
    return m == "GET" ? metrics() : method_not_allowed(request, "GET");
  }
  if (is({"v1", "producers"})) {
    route_name = "/v1/producers";
    if (m == "POST") return register_producer(request);
    if (m == "GET") return list_producers(request);
    return method_not_allowed(request, "GET, POST");
  }
  if (is({"v1", "producers", "*"})) {
    route_name = "/v1/producers/{id}";
    if (m == "GET") return get_producer(request, parts[2]);
    if (m == "DELETE") return delete_producer(request, parts[2]);
    return method_not_allowed(request, "GET, DELETE");
  }
  if (is({"v1", "collectors"})) {
    route_name = "/v1/collectors";
    if (m == "POST") return heartbeat(request);
    if (m == "GET") return list_collectors(request);
    return method_not_allowed(request, "GET, POST");
  }
  if (is({"v1", "collectors", "*", "producers"})) {
    route_name = "/v1/collectors/{id}/producers";
    if (m == "GET") return collector_producers(request, parts[2]);
    return method_not_allowed(request, "GET");
  }
  return HttpResponse::error(404, "not_found", "no route for " + m + " " + request.path);
}

HttpResponse RegistryApi::store_error(const Status& s) {
  const std::string& code = s.code();
  if (code == "not_found") return HttpResponse::error(404, "not_found", s.message());
  if (code == "conflict") return HttpResponse::error(409, "conflict", s.message());
  if (code == "forbidden") return HttpResponse::error(403, "forbidden", s.message());
  if (code == "bad_request") return bad_request(s.message());
  if (is_unavailable(s)) {
    deps_.metrics.set_database_up(false);
    log_warn("database_unavailable", {{"error", s.message()}});
    HttpResponse r = HttpResponse::error(
        503, "database_unavailable", "the registry cannot use its database right now; retry later");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  log_error("database_error", {{"error", s.message()}, {"code", code}});
  return HttpResponse::error(500, "internal", "internal error; the registry's log has the details");
}

HttpResponse RegistryApi::register_producer(const HttpRequest& request) {
  auto principal = deps_.auth.authorize(request.header("Authorization"), Action::kRegisterProducer);
  if (!principal.ok()) return auth_error(principal.status());
  auto spec = parse_producer_spec(request.body);
  if (!spec.ok()) return bad_request(spec.error());
  if (Status s = check_producer_address(*spec, deps_.allowed_networks); !s.ok()) {
    return bad_request(s.message());
  }

  auto registered = registrations_.register_producer(*spec, caller_of(*principal));
  if (!registered.ok()) return store_error(registered.status());
  const Registration& reg = *registered;
  deps_.metrics.set_database_up(true);

  const std::string id = reg.id.to_string();
  const std::string collector = reg.collector_id ? reg.collector_id->to_string() : "";
  if (reg.moved_from) {
    deps_.metrics.add_reassignments(1);
    log_info("producer_reassigned",
             {{"id", id}, {"from", reg.moved_from->to_string()}, {"to", collector}});
  }
  if (reg.created) {
    log_info("producer_registered", {{"id", id},
                                     {"address", spec->address},
                                     {"collector", collector},
                                     {"by", principal->name}});
  } else {
    log_debug("producer_renewed", {{"id", id}, {"collector", collector}});
  }
  if (!reg.assigned_to_live) {
    HttpResponse r = HttpResponse::error(
        503, "no_live_collector",
        "no collector is live; producer " + id +
            " is stored and will be assigned when a collector sends a heartbeat");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  std::string body = "{\"id\":";
  append_json_string(body, id);
  body += ",\"collector_id\":";
  append_json_string(body, collector);
  body += ",\"collector_address\":";
  append_json_string(body, reg.collector_address.value_or(""));
  body += ",\"lease_ms\":" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                deps_.store.options().producer_lease)
                                                .count());
  body += '}';
  return HttpResponse::json(201, std::move(body));
}

HttpResponse RegistryApi::list_producers(const HttpRequest& request) {
  auto principal = deps_.auth.authorize(request.header("Authorization"), Action::kReadProducers);
  if (!principal.ok()) return auth_error(principal.status());
  auto page = parse_page_query(request);
  if (!page.ok()) return bad_request(page.error());
  std::optional<Uuid> collector;
  if (auto text = request.query_param("collector_id"); text && !text->empty()) {
    auto id = parse_path_id(*text, "collector_id");
    if (!id.ok()) return bad_request(id.error());
    collector = *id;
  }
  Page<ProducerRecord> result;
  Status s = deps_.pool.with_connection([&](pg::Connection& conn) {
    auto r = deps_.store.list_producers(conn, *page, collector);
    if (!r.ok()) return r.status();
    result = std::move(r).value();
    return Status();
  });
  if (!s.ok()) return store_error(s);
  return HttpResponse::json(200, page_json(result, &producer_json));
}

HttpResponse RegistryApi::get_producer(const HttpRequest& request, std::string_view id_text) {
  auto principal = deps_.auth.authorize(request.header("Authorization"), Action::kReadProducers);
  if (!principal.ok()) return auth_error(principal.status());
  auto id = parse_path_id(id_text, "producer id");
  if (!id.ok()) return bad_request(id.error());
  std::optional<ProducerRecord> found;
  Status s = deps_.pool.with_connection([&](pg::Connection& conn) {
    auto r = deps_.store.get_producer(conn, *id);
    if (!r.ok()) return r.status();
    found = std::move(r).value();
    return Status();
  });
  if (!s.ok()) return store_error(s);
  if (!found) return HttpResponse::error(404, "not_found", "no producer " + id->to_string());
  return HttpResponse::json(200, producer_json(*found));
}

HttpResponse RegistryApi::delete_producer(const HttpRequest& request, std::string_view id_text) {
  auto principal = deps_.auth.authorize(request.header("Authorization"), Action::kDeleteProducer);
  if (!principal.ok()) return auth_error(principal.status());
  auto id = parse_path_id(id_text, "producer id");
  if (!id.ok()) return bad_request(id.error());
  Status s = deps_.pool.with_connection([&](pg::Connection& conn) {
    return deps_.store.delete_producer(conn, *id, caller_of(*principal));
  });
  if (!s.ok()) return store_error(s);
  log_info("producer_deleted", {{"id", id->to_string()}, {"by", principal->name}});
  HttpResponse r;
  r.status = 204;
  return r;
}

HttpResponse RegistryApi::heartbeat(const HttpRequest& request) {
  auto principal = deps_.auth.authorize(request.header("Authorization"), Action::kHeartbeat);
  if (!principal.ok()) return auth_error(principal.status());
  auto spec = parse_collector_spec(request.body);
  if (!spec.ok()) return bad_request(spec.error());
  Heartbeat beat;
  Status s = deps_.pool.with_connection([&](pg::Connection& conn) {
    auto r = deps_.store.heartbeat(conn, *spec);
    if (!r.ok()) return r.status();
    beat = std::move(r).value();
    return Status();
  });
  if (!s.ok()) return store_error(s);
  deps_.metrics.set_database_up(true);
  const CollectorRecord& c = beat.collector;
  if (beat.revived) {
    log_info("collector_live", {{"id", c.id.to_string()},
                                {"address", c.address},
                                {"n_producers", std::to_string(c.n_producers)}});
    if (deps_.on_collector_live) deps_.on_collector_live();
  }
  std::string body = "{\"id\":";
  append_json_string(body, c.id.to_string());
  body += ",\"address\":";
  append_json_string(body, c.address);
  body += ",\"n_producers\":" + std::to_string(c.n_producers) + "}";
  return HttpResponse::json(200, std::move(body));
}

HttpResponse RegistryApi::list_collectors(const HttpRequest& request) {
  auto principal = deps_.auth.authorize(request.header("Authorization"), Action::kReadCollectors);
  if (!principal.ok()) return auth_error(principal.status());
  auto page = parse_page_query(request);
  if (!page.ok()) return bad_request(page.error());
  Page<CollectorRecord> result;
  Status s = deps_.pool.with_connection([&](pg::Connection& conn) {
    auto r = deps_.store.list_collectors(conn, *page);
    if (!r.ok()) return r.status();
    result = std::move(r).value();
    return Status();
  });
  if (!s.ok()) return store_error(s);
  return HttpResponse::json(200, page_json(result, &collector_json));
}

HttpResponse RegistryApi::collector_producers(const HttpRequest& request,
                                              std::string_view id_text) {
  auto principal = deps_.auth.authorize(request.header("Authorization"), Action::kReadAssignments);
  if (!principal.ok()) return auth_error(principal.status());
  auto id = parse_path_id(id_text, "collector id");
  if (!id.ok()) return bad_request(id.error());
  auto page = parse_page_query(request);
  if (!page.ok()) return bad_request(page.error());
  std::optional<Page<ProducerRecord>> result;
  Status s = deps_.pool.with_connection([&](pg::Connection& conn) {
    auto collector = deps_.store.get_collector(conn, *id);
    if (!collector.ok()) return collector.status();
    if (!collector->has_value()) return Status();
    auto r = deps_.store.list_producers(conn, *page, *id);
    if (!r.ok()) return r.status();
    result = std::move(r).value();
    return Status();
  });
  if (!s.ok()) return store_error(s);
  if (!result) {
    return HttpResponse::error(
        404, "not_found", "no collector " + id->to_string() + " (it has not sent a heartbeat)");
  }
  return HttpResponse::json(200, page_json(*result, &producer_json));
}

HttpResponse RegistryApi::healthz() {
  Status s = deps_.pool.with_connection([](pg::Connection& conn) {
    auto r = conn.exec("SELECT 1");
    return r.ok() ? Status() : r.status();
  });
  deps_.metrics.set_database_up(s.ok());
  if (!s.ok()) {
    log_warn("healthz_database_failed", {{"error", s.message()}});
    return HttpResponse::error(503, "database_unavailable",
                               "the registry cannot reach its database: " + s.message());
  }
  return HttpResponse::json(200, "{\"status\":\"ok\",\"database\":\"ok\"}");
}

HttpResponse RegistryApi::metrics() {
  Status s = deps_.pool.with_connection([&](pg::Connection& conn) {
    auto counts = deps_.store.counts(conn);
    if (!counts.ok()) return counts.status();
    deps_.metrics.set_counts(*counts);
    return Status();
  });
  // Without the database the gauges keep their last values and database_up says why.
  deps_.metrics.set_database_up(s.ok());
  HttpResponse r = HttpResponse::text(200, deps_.metrics.render());
  r.content_type = std::string(prometheus::kContentType);
  return r;
}

}  // namespace tally::registry
