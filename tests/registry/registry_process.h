// Test helpers for running the real binaries: a tally-registry child process on a free port,
// any command with its output captured, and HTTP calls against the registry.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tally/common/http_message.h"

namespace tally::test {

// tally-registry started with a config written for the test (listen 127.0.0.1:0, the given
// database, then `extra_yaml`), reading its port from --port-file. Stopped with SIGTERM by
// stop() or the destructor, which checks that it exits 0.
class RegistryProcess {
 public:
  RegistryProcess(const std::string& database_url, const std::string& extra_yaml = "");
  ~RegistryProcess();
  RegistryProcess(const RegistryProcess&) = delete;
  RegistryProcess& operator=(const RegistryProcess&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const;  // "http://127.0.0.1:<port>"
  // Sends SIGTERM and waits; returns the exit status (or 128 + signal).
  int stop();
  // What the registry wrote to stderr so far.
  std::string log() const;

 private:
  std::string dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] is the program path) with `env` added to (or replacing entries of) the
// environment, TALLY_DATABASE_URL, TALLY_REGISTRY_URL and TALLY_TOKEN removed unless set there;
// waits up to 60 s.
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env = {});

// One HTTP call; fails the test on a transport error. `token` empty: no Authorization.
HttpResponse call(const std::string& method, const std::string& url, const std::string& body = "",
                  const std::string& token = "");

// A directory of its own under /tmp, removed with its files by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

}  // namespace tally::test
