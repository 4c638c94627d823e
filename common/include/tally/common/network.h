// Addresses: "host:port" endpoints and CIDR networks (allowed_networks in the configs).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tally/common/field.h"
#include "tally/common/result.h"

namespace tally {

struct HostPort {
  std::string host;  // a name or an IP literal (IPv6 without brackets)
  uint16_t port = 0;

  // "host:port", "1.2.3.4:80", "[::1]:80". The host is a DNS name or IPv4 literal (letters,
  // digits, '.', '-', '_'), or an IPv6 literal in brackets; the port must be 1–65535 unless
  // allow_zero. to_string() gives back text that parses to the same HostPort.
  static Result<HostPort> parse(std::string_view text, bool allow_zero = false);
  std::string to_string() const;  // brackets around IPv6 literals
};

struct Network {
  IpAddr base;
  int prefix_length = 0;

  // "10.0.0.0/8", "::1/128", or a lone address (a /32 or /128).
  static Result<Network> parse(std::string_view text);
  bool contains(const IpAddr& ip) const;
  std::string to_string() const;
};

// True when `ip` is inside one of `networks`; an empty list allows everything.
bool allowed(const std::vector<Network>& networks, const IpAddr& ip);

// Resolves `host` to its addresses (numeric literals without a lookup).
Result<std::vector<IpAddr>> resolve_host(const std::string& host);

bool is_loopback(const IpAddr& ip);

}  // namespace tally
