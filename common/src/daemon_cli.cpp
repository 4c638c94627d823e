#include "tally/common/daemon_cli.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "tally/common/log.h"

namespace tally {
namespace {

sigset_t stop_signal_set() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

}  // namespace

std::optional<int> parse_daemon_args(int argc, char** argv, std::string_view program,
                                     std::string_view version, std::string_view usage,
                                     DaemonArgs& out) {
  const auto usage_error = [&](const std::string& message) {
    std::cerr << program << ": " << message << "\n(see " << program << " --help)\n";
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    }
    if (arg == "--version") {
      std::cout << program << " " << version << "\n";
      return 0;
    }
    if (arg != "--config" && arg != "--log-format" && arg != "--log-level" &&
        arg != "--port-file") {
      return usage_error("unknown argument '" + arg + "'");
    }
    if (i + 1 >= argc) return usage_error(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--config") {
      out.config = value;
    } else if (arg == "--port-file") {
      out.port_file = value;
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
  if (out.config.empty()) return usage_error("--config FILE is required");
  return std::nullopt;
}

bool write_port_file(const std::string& path, uint16_t port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream file(tmp, std::ios::trunc);
    file << port << "\n";
    if (!file) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

StopSignals::StopSignals() {
  const sigset_t signals = stop_signal_set();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

std::string_view StopSignals::wait() {
  const sigset_t signals = stop_signal_set();
  int signal = 0;
  sigwait(&signals, &signal);
  return signal == SIGINT ? "SIGINT" : "SIGTERM";
}

}  // namespace tally
