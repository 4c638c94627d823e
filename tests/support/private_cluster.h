// A Postgres 15 cluster of the test's own, so that a test can stop and restart it (the shared
// one from tools/test must stay up). Made the way tools/pg makes one: initdb with trust auth and
// durability off, in a temporary directory, as the postgres user when the tests run as root.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "support/child_process.h"

namespace tally::test {

class PrivateCluster {
 public:
  // initdb and start; with `standby_of`, a streaming standby (pg_basebackup -R) of the cluster
  // on that port instead.
  explicit PrivateCluster(std::optional<uint16_t> standby_of = std::nullopt);
  ~PrivateCluster();  // stop and remove
  PrivateCluster(const PrivateCluster&) = delete;
  PrivateCluster& operator=(const PrivateCluster&) = delete;

  // postgresql://<user>@127.0.0.1:<port>/postgres
  std::string url(const std::string& user = "postgres") const;
  uint16_t port() const { return port_; }
  void start();
  void stop();  // fast shutdown; start() again brings it back on the same port

 private:
  CommandResult pg_ctl(const std::string& args) const;
  std::string dir_;
  uint16_t port_ = 0;
  bool running_ = false;
};

// A loopback TCP port nothing listens on right now (the kernel's pick for an ephemeral bind).
uint16_t unused_port();

}  // namespace tally::test
