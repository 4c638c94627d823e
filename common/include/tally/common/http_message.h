// Plain HTTP request and response structs shared by HttpServer and http_request(). They carry
// no Boost types, so code that serves or calls HTTP does not compile Beast.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tally/common/json_text.h"  // append_json_string, for handlers writing JSON

namespace tally {

// Header names keep the case they arrived with; look them up with find_header().
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// The value of the first header called `name` (ASCII case-insensitive), or nullopt.
std::optional<std::string_view> find_header(const HttpHeaders& headers, std::string_view name);

struct HttpRequest {
  std::string method;  // "GET", "POST", …
  std::string target;  // as sent: "/v1/producers?limit=10"
  std::string path;    // the target before '?', not percent-decoded: "/v1/producers"
  std::vector<std::pair<std::string, std::string>> query;  // decoded ('+' is a space), in order
  HttpHeaders headers;
  std::string body;
  std::string remote_address;  // "127.0.0.1:53412"

  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(headers, name);
  }
  // The first query parameter called `name` (case-sensitive), or nullopt.
  std::optional<std::string_view> query_param(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  HttpHeaders headers;  // extra headers; Content-Type and Content-Length are set from the fields
  std::string body;

  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(headers, name);
  }

  static HttpResponse json(int status, std::string body);
  static HttpResponse text(int status, std::string body);
  // The error body of DESIGN.md §4: {"error": "<code>", "message": "<text>"}.
  static HttpResponse error(int status, std::string_view code, std::string_view message);
};

// Splits "a=1&b=x%20y" into decoded pairs; a key without '=' gets an empty value.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);
// Decodes %XX escapes (and '+' as a space when `plus_is_space`); bad escapes stay as they are.
std::string percent_decode(std::string_view text, bool plus_is_space);

}  // namespace tally
