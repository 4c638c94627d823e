// The blocking client runs Beast's asynchronous operations on a private io_context, one step at
// a time, because only the asynchronous operations of beast::tcp_stream honour a deadline.
#include "tally/common/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "tally/common/http_append_body.h"
#include "tally/common/network.h"
#include "tally/common/time.h"

namespace tally {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using boost::system::error_code;

struct Url {
  HostPort endpoint;
  std::string authority;  // as written, for the Host header
  std::string target;     // "/path?query"
};

Result<Url> parse_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  const auto bad = [&](std::string_view why) {
    return Status::error("'" + std::string(url) + "' " + std::string(why), "bad_url");
  };
  if (url.starts_with("https://")) return bad("uses https, but only plain http is supported");
  if (!url.starts_with(kScheme)) return bad("is not an http:// URL");
  const std::string_view rest = url.substr(kScheme.size());
  const std::size_t slash = rest.find_first_of("/?#");
  Url parsed;
  parsed.authority = std::string(rest.substr(0, slash));
  if (parsed.authority.empty()) return bad("has no host");
  if (parsed.authority.find('@') != std::string::npos) return bad("has user info");
  std::string_view target = slash == std::string_view::npos ? "/" : rest.substr(slash);
  if (const std::size_t hash = target.find('#'); hash != std::string_view::npos) {
    target = target.substr(0, hash);
  }
  parsed.target =
      target.empty() || target[0] != '/' ? "/" + std::string(target) : std::string(target);
  // A port is optional in a URL but not in HostPort: an authority without one gets ":80".
  const std::size_t bracket = parsed.authority.rfind(']');
  const std::size_t colon = parsed.authority.rfind(':');
  const bool has_port = colon != std::string::npos &&
                        (bracket == std::string::npos || colon > bracket) &&
                        (bracket != std::string::npos || parsed.authority.find(':') == colon);
  auto hp = HostPort::parse(has_port ? parsed.authority : parsed.authority + ":80");
  if (!hp.ok()) return bad("has no valid host:port");
  parsed.endpoint = std::move(*hp);
  return parsed;
}

std::string lowercase_first(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

std::string timeout_text(std::chrono::milliseconds d) {
  return "timeout after " +
         format_duration(std::chrono::duration_cast<std::chrono::microseconds>(d));
}

// Runs one asynchronous step to completion on `ioc` and returns its error code.
template <class Start>
error_code run_step(net::io_context& ioc, Start&& start) {
  error_code result = net::error::would_block;
  start([&result](error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

}  // namespace

std::string format_byte_size(std::size_t bytes) {
  constexpr std::size_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
  if (bytes >= kGiB && bytes % kGiB == 0) return std::to_string(bytes / kGiB) + " GiB";
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  if (bytes >= kKiB && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + " KiB";
  return std::to_string(bytes) + " bytes";
}

Result<HttpResponse> http_request(const HttpClientOptions& options, std::string_view method,
                                  std::string_view url, std::string_view body,
                                  const HttpHeaders& headers) {
  auto parsed = parse_url(url);
  if (!parsed.ok()) return parsed.status();
  const std::string peer = parsed->endpoint.to_string();

  net::io_context ioc(1);
  tcp::resolver resolver(ioc);
  error_code ec;
  const auto endpoints =
      resolver.resolve(parsed->endpoint.host, std::to_string(parsed->endpoint.port), ec);
  if (ec) {
    return Status::error(
        "cannot resolve " + parsed->endpoint.host + ": " + lowercase_first(ec.message()),
        "unreachable");
  }

  beast::tcp_stream stream(ioc);
  stream.expires_after(options.connect_timeout);
  ec = run_step(ioc, [&](auto handler) { stream.async_connect(endpoints, std::move(handler)); });
  if (ec == beast::error::timeout) {
    return Status::error("cannot connect to " + peer + ": " + timeout_text(options.connect_timeout),
                         "timeout");
  }
  if (ec) {
    return Status::error("cannot connect to " + peer + ": " + lowercase_first(ec.message()),
                         "unreachable");
  }

  http::request<http::string_body> request;
  const auto verb = http::string_to_verb(method);
  if (verb == http::verb::unknown)
    request.method_string(method);
  else
    request.method(verb);
  request.target(parsed->target);
  request.version(11);
  request.set(http::field::host, parsed->authority);
  request.set(http::field::user_agent, options.user_agent);
  for (const auto& [name, value] : headers) request.insert(name, value);
  if (!body.empty() && !find_header(headers, "Content-Type")) {
    request.set(http::field::content_type, "application/json");
  }
  request.body() = std::string(body);
  request.keep_alive(false);
  request.prepare_payload();

  const auto fail_exchange = [&](error_code step_ec, const char* step) -> Status {
    if (step_ec == beast::error::timeout)
      return Status::error(timeout_text(options.timeout), "timeout");
    if (step_ec == http::error::body_limit) {
      return Status::error("response body over " + format_byte_size(options.max_body_bytes),
                           "too_large");
    }
    return Status::error(std::string(step) + " " + peer + ": " + lowercase_first(step_ec.message()),
                         "protocol");
  };

  stream.expires_after(options.timeout);
  ec = run_step(ioc, [&](auto handler) { http::async_write(stream, request, std::move(handler)); });
  if (ec) return fail_exchange(ec, "cannot send to");

  // Beast reads at most what the buffer has room for (512 bytes for an empty one, and the parser
  // consumes the body as it goes): without room a 6 MB body takes 12,000 reads.
  beast::flat_buffer buffer;
  buffer.reserve(64 * 1024);
  http::response_parser<AppendBody> parser;
  parser.body_limit(options.max_body_bytes);
  parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
  ec = run_step(
      ioc, [&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); });
  if (ec) return fail_exchange(ec, "bad response from");

  stream.socket().shutdown(tcp::socket::shutdown_both, ec);  // the peer may be gone already

  auto& message = parser.get();
  HttpResponse response;
  response.status = static_cast<int>(message.result_int());
  response.content_type = std::string(message[http::field::content_type]);
  for (const auto& field : message) {
    response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  response.body = std::move(message.body());
  return response;
}

}  // namespace tally
