#include "support/private_cluster.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "tally/common/field.h"

namespace tally::test {
namespace {

namespace fs = std::filesystem;

std::string pg_bin() {
  const char* dir = std::getenv("TALLY_PG_BIN");
  return dir != nullptr ? dir : "/usr/lib/postgresql/15/bin";
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

// `command` (a shell line) as the cluster's owner.
CommandResult as_owner(const std::string& command) {
  if (geteuid() == 0) return run_command({"/bin/su", "postgres", "-s", "/bin/sh", "-c", command});
  return run_command({"/bin/sh", "-c", command});
}

}  // namespace

uint16_t unused_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

PrivateCluster::PrivateCluster(std::optional<uint16_t> standby_of) {
  dir_ = (fs::temp_directory_path() / ("tally-test-pg-" + Uuid::random().to_string())).string();
  fs::create_directories(dir_);
  if (geteuid() == 0) {
    const CommandResult chown = run_command({"/bin/chown", "postgres", dir_});
    REQUIRE_MESSAGE(chown.exit_code == 0, chown.err);
  }
  const std::string data = quote(dir_ + "/data");
  const CommandResult made =
      standby_of ? as_owner(pg_bin() + "/pg_basebackup -h 127.0.0.1 -p " +
                            std::to_string(*standby_of) + " -U postgres -D " + data +
                            " -R -X stream --no-sync")
                 : as_owner(pg_bin() + "/initdb -D " + data +
                            " -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8");
  REQUIRE_MESSAGE(made.exit_code == 0, "creating the cluster failed: " << made.out << made.err);
  port_ = unused_port();
  start();
}

PrivateCluster::~PrivateCluster() {
  if (running_) stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string PrivateCluster::url(const std::string& user) const {
  return "postgresql://" + user + "@127.0.0.1:" + std::to_string(port_) + "/postgres";
}

CommandResult PrivateCluster::pg_ctl(const std::string& args) const {
  return as_owner(pg_bin() + "/pg_ctl -D " + quote(dir_ + "/data") + " " + args);
}

void PrivateCluster::start() {
  const CommandResult r =
      pg_ctl("-w -t 60 -l " + quote(dir_ + "/server.log") + " -o \"-p " + std::to_string(port_) +
             " -k " + dir_ +
             " -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
             " -c full_page_writes=off\" start");
  REQUIRE_MESSAGE(r.exit_code == 0, "pg_ctl start failed: " << r.out << r.err);
  running_ = true;
}

void PrivateCluster::stop() {
  const CommandResult r = pg_ctl("-m fast -w stop");
  CHECK_MESSAGE(r.exit_code == 0, "pg_ctl stop failed: " << r.out << r.err);
  running_ = false;
}

}  // namespace tally::test
