#include "registry_process.h"

#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>

#include "support/test_db.h"
#include "tally/common/http_client.h"

namespace tally::test {

RegistryProcess::RegistryProcess(const std::string& database_url, const std::string& extra_yaml) {
  const std::string config = dir_.write("registry.yaml", "listen: 127.0.0.1:0\n"
                                                         "database: {url: \"" +
                                                             database_url + "\"}\n" + extra_yaml);
  const std::string port_file = dir_.path() + "/port";
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{TALLY_REGISTRY_PATH, "--config", config, "--port-file", port_file,
                               "--log-level", "debug"},
      dir_.path());
  const bool up = eventually([&] {
    if (!process_->running()) return true;  // exited: reported below
    const std::string text = read_text_file(port_file);
    if (text.empty()) return false;
    port_ = static_cast<uint16_t>(std::stoi(text));
    return true;
  });
  REQUIRE_MESSAGE((up && process_->running()), "tally-registry did not start; its log:\n" << log());
}

RegistryProcess::~RegistryProcess() {
  if (process_->running()) {
    const int code = stop();
    CHECK_MESSAGE(code == 0, "tally-registry exited with " << code << "; its log:\n" << log());
  }
}

std::string RegistryProcess::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

int RegistryProcess::stop() { return process_->signal_and_wait(SIGTERM); }

std::string RegistryProcess::log() const { return process_->stderr_text(); }

HttpResponse call(const std::string& method, const std::string& url, const std::string& body,
                  const std::string& token) {
  HttpHeaders headers;
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  HttpClientOptions options;
  options.timeout = std::chrono::seconds(30);
  auto r = http_request(options, method, url, body, headers);
  REQUIRE_MESSAGE(r.ok(), method << " " << url << ": " << r.error());
  return std::move(r).value();
}

}  // namespace tally::test
