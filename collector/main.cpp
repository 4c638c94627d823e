// tally-collector: parse arguments, load the config, start the daemon, stop it on SIGINT/SIGTERM.
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "tally/collector/daemon.h"
#include "tally/common/log.h"
#include "tally/config/collector_config.h"

namespace {

constexpr const char* kUsage = R"(usage: tally-collector --config FILE [options]

The Tally collector: polls its producers (static ones from the config, and those the registry
assigns it), checks each timeseries' schema and stores the samples in PostgreSQL, spooling them
to disk while the database is away.

options:
  --config FILE          the collector's YAML config (docs/collector.md lists every key)
  --log-format FORMAT    text (default) or json, one line per event on stderr
  --log-level LEVEL      debug, info (default), warn or error
  --port-file FILE       after binding, write the API's port to FILE (useful with
                         listen: 127.0.0.1:0)
  --help                 show this help
  --version              show the version

environment:
  TALLY_DATABASE_URL     overrides database.url

exit codes: 0 stopped cleanly, 1 could not start (database, state_dir, listen), 2 usage or
invalid config.
)";

int usage_error(const std::string& message) {
  std::cerr << "tally-collector: " << message << "\n(see tally-collector --help)\n";
  return 2;
}

// Through a temporary file and a rename, so a reader never sees half of it.
bool write_port_file(const std::string& path, uint16_t port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tally;
  std::string config_path;
  std::string port_file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--version") {
      std::cout << "tally-collector " << TALLY_VERSION << "\n";
      return 0;
    }
    if (arg != "--config" && arg != "--log-format" && arg != "--log-level" &&
        arg != "--port-file") {
      return usage_error("unknown argument '" + arg + "'");
    }
    if (i + 1 >= argc) return usage_error(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--config") {
      config_path = value;
    } else if (arg == "--port-file") {
      port_file = value;
    } else if (arg == "--log-format") {
      auto format = parse_log_format(value);
      if (!format) return usage_error("--log-format must be text or json, got '" + value + "'");
      set_log_format(*format);
    } else {
      auto level = parse_log_level(value);
      if (!level) {
        return usage_error("--log-level must be debug, info, warn or error, got '" + value + "'");
      }
      set_log_level(*level);
    }
  }
  if (config_path.empty()) return usage_error("--config FILE is required");

  auto config = config::load_collector_config(config_path);
  if (!config.ok()) {
    std::cerr << "tally-collector: " << config.error() << "\n";
    return 2;
  }

  // Blocked before any thread starts, so every thread inherits the mask and sigwait below is
  // the only place the signals arrive.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto daemon = collector::Daemon::start({.config = std::move(*config), .version = TALLY_VERSION});
  if (!daemon.ok()) {
    log_error("start_failed", {{"reason", daemon.status().code()}, {"error", daemon.error()}});
    return 1;
  }
  log_info("listening",
           {{"address", (*daemon)->address()}, {"collector_id", (*daemon)->id().to_string()}});
  if (!port_file.empty() && !write_port_file(port_file, (*daemon)->port())) {
    log_error("port_file_failed", {{"path", port_file}, {"error", std::strerror(errno)}});
    (*daemon)->stop();
    return 1;
  }

  int signal = 0;
  sigwait(&signals, &signal);
  log_info("signal_received", {{"signal", signal == SIGINT ? "SIGINT" : "SIGTERM"}});
  (*daemon)->stop();
  return 0;
}
