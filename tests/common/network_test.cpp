#include "tally/common/network.h"

#include <doctest/doctest.h>

using tally::HostPort;
using tally::IpAddr;
using tally::Network;

TEST_CASE("host:port parses names, IPv4 and bracketed IPv6") {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
  };
  for (const Case& c :
       {Case{"localhost:80", "localhost", 80}, Case{"10.1.2.3:65535", "10.1.2.3", 65535},
        Case{"[::1]:12221", "::1", 12221}}) {
    CAPTURE(c.text);
    auto hp = HostPort::parse(c.text);
    REQUIRE_MESSAGE(hp.ok(), hp.error());
    CHECK(hp->host == c.host);
    CHECK(hp->port == c.port);
    CHECK(hp->to_string() == c.text);
  }
}

TEST_CASE("bad host:port is refused with the reason") {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c :
       {Case{"localhost", "is not host:port"}, Case{":80", "is not host:port"},
        Case{"::1:80", "is not host:port"}, Case{"a:0", "port must be"},
        Case{"a:65536", "port must be"}, Case{"a:http", "port must be"},
        Case{"[::1]80", "is not host:port"}, Case{"[]:80", "in brackets is not an IPv6 address"},
        Case{"[[1]:91", "in brackets is not an IPv6 address"},
        Case{"[10.0.0.1]:80", "in brackets is not an IPv6 address"},
        Case{"a b:80", "may hold only letters"}, Case{"a]:80", "may hold only"}}) {
    CAPTURE(c.text);
    auto hp = HostPort::parse(c.text);
    REQUIRE_FALSE(hp.ok());
    CHECK(hp.error().find(c.message) != std::string::npos);
  }
  CHECK(HostPort::parse("a:0", /*allow_zero=*/true).ok());
}

TEST_CASE("networks contain the addresses under their prefix") {
  const Network v4 = *Network::parse("10.0.0.0/8");
  CHECK(v4.contains(*IpAddr::parse("10.255.1.2")));
  CHECK_FALSE(v4.contains(*IpAddr::parse("11.0.0.1")));
  CHECK(v4.contains(*IpAddr::parse("::ffff:10.1.1.1")));  // IPv4-mapped
  const Network odd = *Network::parse("192.168.4.0/22");
  CHECK(odd.contains(*IpAddr::parse("192.168.7.255")));
  CHECK_FALSE(odd.contains(*IpAddr::parse("192.168.8.0")));
  const Network v6 = *Network::parse("fd00::/8");
  CHECK(v6.contains(*IpAddr::parse("fd12::1")));
  CHECK_FALSE(v6.contains(*IpAddr::parse("10.0.0.1")));
  CHECK(Network::parse("127.0.0.1")->prefix_length == 32);
  CHECK(Network::parse("0.0.0.0/0")->contains(*IpAddr::parse("8.8.8.8")));
  CHECK_FALSE(Network::parse("10.0.0.0/33").ok());
  CHECK_FALSE(Network::parse("banana/8").ok());
}

TEST_CASE("an empty allow-list allows everything") {
  CHECK(tally::allowed({}, *IpAddr::parse("8.8.8.8")));
  CHECK_FALSE(tally::allowed({*Network::parse("127.0.0.0/8")}, *IpAddr::parse("8.8.8.8")));
}

TEST_CASE("loopback and resolution") {
  CHECK(tally::is_loopback(*IpAddr::parse("127.0.0.2")));
  CHECK(tally::is_loopback(*IpAddr::parse("::1")));
  CHECK_FALSE(tally::is_loopback(*IpAddr::parse("10.0.0.1")));
  auto local = tally::resolve_host("localhost");
  REQUIRE_MESSAGE(local.ok(), local.error());
  CHECK(tally::is_loopback(local->front()));
  auto bad = tally::resolve_host("no-such-host.invalid");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().find("cannot resolve 'no-such-host.invalid'") != std::string::npos);
}
