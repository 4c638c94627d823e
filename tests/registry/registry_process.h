// Test helpers: a tally-registry child process on a free port, and HTTP calls against it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "support/child_process.h"
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
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
  uint16_t port_ = 0;
};

// One HTTP call; fails the test on a transport error. `token` empty: no Authorization.
HttpResponse call(const std::string& method, const std::string& url, const std::string& body = "",
                  const std::string& token = "");

}  // namespace tally::test
