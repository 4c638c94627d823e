#include "tally/common/network.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace tally {

Result<HostPort> HostPort::parse(std::string_view text, bool allow_zero) {
  const std::string quoted = "'" + std::string(text) + "'";
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::error(quoted + " is not host:port ([v6]:port for IPv6)", "invalid");
    }
    hp.host = std::string(text.substr(1, close - 1));
    // Brackets hold an IPv6 literal and nothing else: "[]:80" or "[[1]:80" parsed before and
    // printed as text that does not (found by tools/fuzz).
    const Result<IpAddr> ip = IpAddr::parse(hp.host);
    if (!ip.ok() || !ip->v6) {
      return Status::error(quoted + ": '" + hp.host + "' in brackets is not an IPv6 address",
                           "invalid");
    }
    port_text = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0 ||
        text.substr(0, colon).find(':') != std::string_view::npos) {
      return Status::error(quoted + " is not host:port ([v6]:port for IPv6)", "invalid");
    }
    hp.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    // A DNS name or an IPv4 literal; anything else would not survive to_string and parse.
    const auto name_char = [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-' || c == '_';
    };
    if (!std::all_of(hp.host.begin(), hp.host.end(), name_char)) {
      return Status::error(
          quoted + ": host '" + hp.host + "' may hold only letters, digits, '.', '-' and '_'",
          "invalid");
    }
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535 ||
      (port == 0 && !allow_zero)) {
    return Status::error(quoted + ": port must be a number from 1 to 65535", "invalid");
  }
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<Network> Network::parse(std::string_view text) {
  Network n;
  const std::size_t slash = text.find('/');
  auto ip = IpAddr::parse(text.substr(0, slash));
  if (!ip.ok())
    return Status::error("'" + std::string(text) + "' is not a network (CIDR)", "invalid");
  n.base = *ip;
  const int max = n.base.v6 ? 128 : 32;
  n.prefix_length = max;
  if (slash != std::string_view::npos) {
    const std::string_view len = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), n.prefix_length);
    if (ec != std::errc() || ptr != len.data() + len.size() || n.prefix_length < 0 ||
        n.prefix_length > max) {
      return Status::error(
          "'" + std::string(text) + "': prefix length must be 0–" + std::to_string(max), "invalid");
    }
  }
  return n;
}

bool Network::contains(const IpAddr& ip) const {
  IpAddr candidate = ip;
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address it maps.
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (candidate.v6 && !base.v6 && std::memcmp(candidate.bytes.data(), kMapped, 12) == 0) {
    candidate.v6 = false;
    std::memmove(candidate.bytes.data(), candidate.bytes.data() + 12, 4);
  }
  if (candidate.v6 != base.v6) return false;
  int bits = prefix_length;
  for (std::size_t i = 0; bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((candidate.bytes[i] & mask) != (base.bytes[i] & mask)) return false;
  }
  return true;
}

std::string Network::to_string() const {
  return base.to_string() + "/" + std::to_string(prefix_length);
}

bool allowed(const std::vector<Network>& networks, const IpAddr& ip) {
  if (networks.empty()) return true;
  for (const Network& n : networks) {
    if (n.contains(ip)) return true;
  }
  return false;
}

Result<std::vector<IpAddr>> resolve_host(const std::string& host) {
  if (auto literal = IpAddr::parse(host); literal.ok()) return std::vector<IpAddr>{*literal};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0) {
    return Status::error("cannot resolve '" + host + "': " + gai_strerror(rc), "unresolvable");
  }
  std::vector<IpAddr> out;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    IpAddr ip;
    if (a->ai_family == AF_INET) {
      std::memcpy(ip.bytes.data(), &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, 4);
    } else if (a->ai_family == AF_INET6) {
      ip.v6 = true;
      std::memcpy(ip.bytes.data(), &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    out.push_back(ip);
  }
  freeaddrinfo(found);
  if (out.empty()) return Status::error("'" + host + "' has no IP address", "unresolvable");
  return out;
}

bool is_loopback(const IpAddr& ip) {
  static const Network kV4 = *Network::parse("127.0.0.0/8");
  static const Network kV6 = *Network::parse("::1/128");
  return kV4.contains(ip) || kV6.contains(ip);
}

}  // namespace tally
