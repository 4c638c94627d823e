// What every Tally daemon's main() does the same way (DESIGN.md §8): the common flags
// (--config, --log-format, --log-level, --port-file, --help, --version), the port file, and
// waiting for SIGINT/SIGTERM.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tally {

struct DaemonArgs {
  std::string config;
  std::string port_file;  // "" → none
};

// Parses argv; sets the log format and level as a side effect. Returns an exit code when the
// process should stop now: 0 after --help/--version (printed to stdout), 2 after a usage error
// (printed to stderr with a pointer to --help). `usage` is the whole --help text.
std::optional<int> parse_daemon_args(int argc, char** argv, std::string_view program,
                                     std::string_view version, std::string_view usage,
                                     DaemonArgs& out);

// Writes `port` to `path` through a temporary file and a rename, so a reader never sees half.
bool write_port_file(const std::string& path, uint16_t port);

// Blocks SIGINT and SIGTERM in the calling thread and every thread started after it; construct
// it first in main(), before any thread exists. wait() returns the signal's name.
class StopSignals {
 public:
  StopSignals();
  std::string_view wait();
};

}  // namespace tally
