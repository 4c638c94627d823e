// tally-collector: parse arguments, load the config, start the daemon, stop it on SIGINT/SIGTERM.
#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>

#include "tally/collector/daemon.h"
#include "tally/common/daemon_cli.h"
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

}  // namespace

int main(int argc, char** argv) {
  using namespace tally;
  DaemonArgs args;
  if (auto exit_code =
          parse_daemon_args(argc, argv, "tally-collector", TALLY_VERSION, kUsage, args)) {
    return *exit_code;
  }
  StopSignals stop_signals;

  auto config = config::load_collector_config(args.config);
  if (!config.ok()) {
    std::cerr << "tally-collector: " << config.error() << "\n";
    return 2;
  }

  auto daemon = collector::Daemon::start({.config = std::move(*config), .version = TALLY_VERSION});
  if (!daemon.ok()) {
    log_error("start_failed", {{"reason", daemon.status().code()}, {"error", daemon.error()}});
    return 1;
  }
  log_info("listening",
           {{"address", (*daemon)->address()}, {"collector_id", (*daemon)->id().to_string()}});
  if (!args.port_file.empty() && !write_port_file(args.port_file, (*daemon)->port())) {
    log_error("port_file_failed", {{"path", args.port_file}, {"error", std::strerror(errno)}});
    (*daemon)->stop();
    return 1;
  }

  log_info("signal_received", {{"signal", std::string(stop_signals.wait())}});
  (*daemon)->stop();
  return 0;
}
