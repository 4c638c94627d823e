// The only tallyctl translation unit that includes Boost.JSON.
#include "registry_client.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "tally/common/http_client.h"

namespace tally::ctl {
namespace {

namespace json = boost::json;

constexpr std::string_view kRegistryHint =
    "is tally-registry running? set --registry or TALLY_REGISTRY_URL";

std::optional<std::string> display(const json::value& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return std::string(v.as_string());
  return json::serialize(v);
}

Result<json::value> parse_json(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec)
    return Status::error("the registry answered with malformed JSON: " + ec.message(), "protocol");
  return v;
}

Result<Record> to_record(const json::value& v) {
  if (!v.is_object())
    return Status::error("the registry answered with JSON that is not an object", "protocol");
  Record r;
  for (const auto& [key, value] : v.as_object()) {
    r.fields.emplace_back(std::string(key), display(value));
  }
  r.json = json::serialize(v);
  return r;
}

// "cannot connect to 127.0.0.1:12221: connection refused" → "connection refused".
std::string reason_of(const std::string& message) {
  const std::size_t colon = message.rfind(": ");
  return colon == std::string::npos ? message : message.substr(colon + 2);
}

}  // namespace

std::string Record::get(std::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return v.value_or("");
  }
  return "";
}

bool Record::is_null(std::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return !v.has_value();
  }
  return true;
}

RegistryClient::RegistryClient(std::string base_url, std::string token)
    : base_url_(std::move(base_url)), token_(std::move(token)) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

Result<RegistryClient::Answer> RegistryClient::send(std::string_view method,
                                                    const std::string& path,
                                                    const std::string& body) {
  HttpClientOptions options;
  options.timeout = std::chrono::seconds(15);
  options.user_agent = "tallyctl/0.1";
  HttpHeaders headers;
  if (!token_.empty()) headers.emplace_back("Authorization", "Bearer " + token_);
  auto response = http_request(options, method, base_url_ + path, body, headers);
  if (!response.ok()) {
    const Status& s = response.status();
    if (s.code() == "bad_url") {
      return Status::error(
          "the registry URL " + s.message() + " (check --registry or TALLY_REGISTRY_URL)",
          "bad_url");
    }
    if (s.code() == "timeout") {
      return Status::error("the registry at " + base_url_ + " did not answer: " +
                               reason_of(s.message()) + " (" + std::string(kRegistryHint) + ")",
                           "timeout");
    }
    return Status::error("cannot reach the registry at " + base_url_ + ": " +
                             reason_of(s.message()) + " (" + std::string(kRegistryHint) + ")",
                         "unreachable");
  }
  return Answer{response->status, std::move(response->body)};
}

Status RegistryClient::failure(const Answer& answer) const {
  std::string code = "error";
  std::string message;
  if (auto v = parse_json(answer.body); v.ok() && v->is_object()) {
    const json::object& o = v->as_object();
    if (const auto* c = o.if_contains("error"); c && c->is_string())
      code = std::string(c->as_string());
    if (const auto* m = o.if_contains("message"); m && m->is_string())
      message = std::string(m->as_string());
  }
  const std::string status = std::to_string(answer.status);
  switch (answer.status) {
    case 401:
      return Status::error(
          token_.empty() ? "the registry requires a token (401): set --token or TALLY_TOKEN"
                         : "the registry refused the token (401): check --token or TALLY_TOKEN",
          "unauthorized");
    case 403:
      return Status::error("the token is not allowed to do this (403): " + message +
                               " (use a token with the right role)",
                           "forbidden");
    case 404:
      return Status::error(message.empty()
                               ? "not found (404) at " + base_url_ + "; is this a tally-registry?"
                               : message,
                           "not_found");
    case 400:
      return Status::error("invalid input: " + message, "bad_request");
    case 409:
      return Status::error(message, "conflict");
    case 413:
      return Status::error("the request is too large for the registry (413): " + message,
                           "too_large");
    default:
      break;
  }
  if (code == "no_live_collector") return Status::error(message, code);
  if (answer.status == 503) {
    return Status::error("the registry is unavailable (503): " +
                             (message.empty() ? std::string("try again later") : message),
                         code == "error" ? "unavailable" : code);
  }
  if (message.empty()) {
    return Status::error("unexpected answer from the registry at " + base_url_ + ": HTTP " + status,
                         "protocol");
  }
  return Status::error("the registry failed (" + status + "): " + message, code);
}

Result<Record> RegistryClient::get(const std::string& path) {
  auto answer = send("GET", path, "");
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) return failure(*answer);
  auto v = parse_json(answer->body);
  if (!v.ok()) return v.status();
  return to_record(*v);
}

Result<std::vector<Record>> RegistryClient::get_all(const std::string& path) {
  std::vector<Record> records;
  std::optional<std::string> after;
  const char separator = path.find('?') == std::string::npos ? '?' : '&';
  while (true) {
    std::string page_path = path + separator + "limit=1000";
    if (after) page_path += "&after=" + *after;
    auto answer = send("GET", page_path, "");
    if (!answer.ok()) return answer.status();
    if (answer->status != 200) return failure(*answer);
    auto v = parse_json(answer->body);
    if (!v.ok()) return v.status();
    const json::object* page = v->if_object();
    const json::value* items = page ? page->if_contains("items") : nullptr;
    if (items == nullptr || !items->is_array()) {
      return Status::error("the registry answered without an \"items\" list", "protocol");
    }
    for (const json::value& item : items->as_array()) {
      auto record = to_record(item);
      if (!record.ok()) return record.status();
      records.push_back(std::move(record).value());
    }
    const json::value* next = page->if_contains("next");
    if (next == nullptr || !next->is_string()) break;
    after = std::string(next->as_string());
  }
  return records;
}

Result<Record> RegistryClient::post(const std::string& path, const std::string& json_body) {
  auto answer = send("POST", path, json_body);
  if (!answer.ok()) return answer.status();
  if (answer->status < 200 || answer->status > 299) return failure(*answer);
  auto v = parse_json(answer->body);
  if (!v.ok()) return v.status();
  return to_record(*v);
}

Status RegistryClient::del(const std::string& path) {
  auto answer = send("DELETE", path, "");
  if (!answer.ok()) return answer.status();
  if (answer->status < 200 || answer->status > 299) return failure(*answer);
  return {};
}

}  // namespace tally::ctl
