#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "renewal_schedule.h"
#include "tally/common/http_client.h"
#include "tally/common/log.h"
#include "tally/common/network.h"
#include "tally/producer/registration.h"

namespace tally {
namespace {

using Millis = std::chrono::milliseconds;
constexpr Millis kDefaultLease = std::chrono::minutes(10);  // the registry's default (§4)

enum class Outcome { kAssigned, kPending, kFailed };

struct Attempt {
  Outcome outcome = Outcome::kFailed;
  std::string collector_id;
  std::string collector_address;
  Millis lease = kDefaultLease;
  std::string error;
  Millis retry_after{0};  // the registry's Retry-After, a floor for the next delay
};

std::string registration_body(const RegistrationOptions& o) {
  std::string body = "{\"id\":";
  append_json_string(body, o.id.to_string());
  body += ",\"kind\":\"service\",\"address\":";
  append_json_string(body, o.address);
  body += ",\"route\":";
  append_json_string(body, o.route);
  body += ",\"interval_ms\":" + std::to_string(o.interval.count());
  body += ",\"format\":";
  append_json_string(body, o.format);
  if (!o.target_name.empty()) {
    body += ",\"target_name\":";
    append_json_string(body, o.target_name);
  }
  body += "}";
  return body;
}

// The registry's answers are small JSON objects; the DOM API is the simplest way to read them.
std::optional<simdjson::dom::object> parse_object(simdjson::dom::parser& parser,
                                                  const std::string& body) {
  simdjson::dom::object object;
  if (parser.parse(body).get_object().get(object) != simdjson::SUCCESS) return std::nullopt;
  return object;
}

std::string string_member(simdjson::dom::object object, std::string_view key) {
  std::string_view value;
  if (object[key].get_string().get(value) != simdjson::SUCCESS) return {};
  return std::string(value);
}

// Reads the 201 body; the assignment fields are informational, the lease is what we act on.
Attempt parse_assigned(const std::string& body) {
  Attempt a;
  simdjson::dom::parser parser;
  const auto object = parse_object(parser, body);
  if (!object) {
    a.error = "registry answered 201 with a body that is not a JSON object";
    return a;
  }
  a.outcome = Outcome::kAssigned;
  a.collector_id = string_member(*object, "collector_id");
  a.collector_address = string_member(*object, "collector_address");
  int64_t lease_ms = 0;
  if ((*object)["lease_ms"].get_int64().get(lease_ms) == simdjson::SUCCESS && lease_ms > 0) {
    a.lease = Millis(lease_ms);
  }
  return a;
}

// The "error" code of a §4 error body, or "" when the body is not one.
std::string error_code(const HttpResponse& r) {
  simdjson::dom::parser parser;
  const auto object = parse_object(parser, r.body);
  return object ? string_member(*object, "error") : std::string();
}

// "registry answered 401: token not accepted" from a §4 error body, or the status alone.
std::string error_from_response(const HttpResponse& r) {
  std::string text = "registry answered " + std::to_string(r.status);
  simdjson::dom::parser parser;
  if (const auto object = parse_object(parser, r.body)) {
    const std::string message = string_member(*object, "message");
    if (!message.empty()) text += ": " + message;
  }
  return text;
}

Millis retry_after(const HttpResponse& r) {
  const auto header = r.header("Retry-After");
  int64_t seconds = 0;
  if (!header ||
      std::from_chars(header->data(), header->data() + header->size(), seconds).ec != std::errc()) {
    return Millis(0);
  }
  return std::chrono::seconds(std::clamp<int64_t>(seconds, 0, 3600));
}

}  // namespace

struct RegistrationClient::Impl {
  explicit Impl(RegistrationOptions o)
      : options(std::move(o)),
        schedule({options.initial_backoff, options.max_backoff, options.jitter}) {
    if (!options.registry_url.starts_with("http://")) {
      throw std::invalid_argument("registration: registry_url '" + options.registry_url +
                                  "' is not an http:// URL");
    }
    while (options.registry_url.ends_with('/')) options.registry_url.pop_back();
    if (auto hp = HostPort::parse(options.address); !hp.ok()) {
      throw std::invalid_argument("registration: address: " + hp.error());
    }
    if (options.route.empty() || options.route[0] != '/') {
      throw std::invalid_argument("registration: route must start with '/'");
    }
    http_options.connect_timeout = options.request_timeout;
    http_options.timeout = options.request_timeout;
    http_options.max_body_bytes = 64 * 1024;
    if (!options.token.empty()) headers.emplace_back("Authorization", "Bearer " + options.token);
    body = registration_body(options);
  }

  Attempt attempt() {
    auto r =
        http_request(http_options, "POST", options.registry_url + "/v1/producers", body, headers);
    if (!r.ok()) return Attempt{.error = r.error()};
    if (r->status == 201 || r->status == 200) return parse_assigned(r->body);
    Attempt a{.error = error_from_response(*r), .retry_after = retry_after(*r)};
    // no_live_collector: stored, to be assigned when a collector appears. Any other 503
    // (database_unavailable, a proxy) stored nothing and is a failure like the rest.
    if (r->status == 503 && error_code(*r) == "no_live_collector") a.outcome = Outcome::kPending;
    return a;
  }

  // Records the outcome, logs what changed and returns how long to wait.
  Millis record(const Attempt& a) {
    std::lock_guard lock(mu);
    ++state.attempts;
    const std::string id = options.id.to_string();
    if (a.outcome == Outcome::kAssigned) {
      const bool changed = !state.assigned || state.collector_id != a.collector_id;
      if (state.last_success) ++state.renewals;
      if (schedule.streak() > 0 && state.last_success) {
        log_info("producer_registration_recovered",
                 {{"id", id}, {"failed_attempts", std::to_string(schedule.streak())}});
      }
      if (changed) {
        log_info("producer_registered", {{"id", id},
                                         {"collector_id", a.collector_id},
                                         {"collector_address", a.collector_address},
                                         {"lease", format_duration(a.lease)}});
      }
      state.registered = state.assigned = true;
      state.collector_id = a.collector_id;
      state.collector_address = a.collector_address;
      state.lease = a.lease;
      state.last_error.clear();
      state.last_success = now();
      return schedule.after_success(a.lease);
    }
    if (a.outcome == Outcome::kPending) {
      state.registered = true;
      state.assigned = false;
      state.last_error = a.error;
      const Millis delay = std::max(schedule.after_pending(), a.retry_after);
      if (schedule.streak() == 1) {
        log_warn("producer_registration_pending",
                 {{"id", id}, {"reason", a.error}, {"retry_in", format_duration(delay)}});
      }
      return delay;
    }
    ++state.failures;
    state.last_error = a.error;
    const Millis delay = std::max(schedule.after_failure(), a.retry_after);
    // One warning per streak: a registry that is down for an hour must not flood the log.
    log(schedule.streak() == 1 ? LogLevel::kWarn : LogLevel::kDebug, "producer_registration_failed",
        {{"id", id}, {"error", a.error}, {"retry_in", format_duration(delay)}});
    return delay;
  }

  void run() {
    std::unique_lock lock(mu);
    while (!stopping) {
      lock.unlock();
      const Millis delay = record(attempt());
      lock.lock();
      cv.wait_for(lock, delay, [this] { return stopping; });
    }
  }

  void unregister() {
    const std::string id = options.id.to_string();
    auto r = http_request(http_options, "DELETE", options.registry_url + "/v1/producers/" + id, {},
                          headers);
    if (r.ok() && (r->status == 204 || r->status == 200 || r->status == 404)) {
      log_info("producer_unregistered", {{"id", id}});
    } else {
      log_warn("producer_unregister_failed",
               {{"id", id}, {"error", r.ok() ? error_from_response(*r) : r.error()}});
    }
  }

  RegistrationOptions options;
  HttpClientOptions http_options;
  HttpHeaders headers;
  std::string body;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  detail::RenewalSchedule schedule;  // used by the background thread only (under mu)
  RegistrationState state;
  std::thread thread;
};

RegistrationClient::RegistrationClient(RegistrationOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

RegistrationClient::~RegistrationClient() { stop(); }

void RegistrationClient::start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->thread.joinable() || impl_->stopping) return;
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

void RegistrationClient::stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (!impl_->thread.joinable()) return;
  impl_->thread.join();
  if (impl_->options.unregister_on_stop && state().registered) impl_->unregister();
}

RegistrationState RegistrationClient::state() const {
  std::lock_guard lock(impl_->mu);
  return impl_->state;
}

}  // namespace tally
