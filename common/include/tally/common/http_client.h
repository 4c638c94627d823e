// A simple blocking HTTP/1.1 client for control-plane calls (registration, the CLI, tests):
// one request per connection, plain HTTP only (no TLS).
//
//   auto r = http_request({}, "POST", "http://127.0.0.1:12221/v1/producers", body);
//   if (!r.ok()) log_warn("register_failed", {{"error", r.error()}});
//   else if (r->status == 201) …
//
// Thread-safe: each call has its own connection and I/O context. A high-volume scraper should
// not use this (it opens a connection per call and blocks a thread).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "tally/common/http_message.h"
#include "tally/common/result.h"

namespace tally {

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5'000};  // resolving is not covered (see below)
  // From the connection being established to the whole response being read.
  std::chrono::milliseconds timeout{5'000};
  std::size_t max_body_bytes = 16 * 1024 * 1024;  // larger responses fail with "too_large"
  std::size_t max_header_bytes = 64 * 1024;
  std::string user_agent = "tally/0.1";
};

// Sends one request to `url` ("http://host:port/path?query"; the port defaults to 80) and reads
// the response. Any status is a successful result; only transport failures are errors, with
// these codes and messages:
//   "bad_url"      "'ftp://x' is not an http:// URL"
//   "unreachable"  "cannot connect to 127.0.0.1:12221: connection refused"
//   "timeout"      "cannot connect to 10.0.0.1:80: timeout after 5s", "timeout after 5s"
//   "too_large"    "response body over 16 MiB"
//   "protocol"     a malformed response, or the peer closing the connection early
// `headers` are sent as given; when `body` is not empty and no Content-Type is among them, it is
// sent as application/json. Host names are resolved with the system resolver, which keeps its
// own timeouts; IP literals involve no lookup.
Result<HttpResponse> http_request(const HttpClientOptions& options, std::string_view method,
                                  std::string_view url, std::string_view body = {},
                                  const HttpHeaders& headers = {});

// "16 MiB", "64 KiB", "1000 bytes": sizes in error messages.
std::string format_byte_size(std::size_t bytes);

}  // namespace tally
