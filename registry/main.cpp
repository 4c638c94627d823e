// tally-registry: parse arguments, load the config, migrate, serve until SIGINT/SIGTERM.
#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>

#include "tally/common/daemon_cli.h"
#include "tally/common/log.h"
#include "tally/common/pg.h"
#include "tally/common/time.h"
#include "tally/config/registry_config.h"
#include "tally/registry/service.h"
#include "tally/schema/migrations.h"

namespace {

constexpr const char* kUsage = R"(usage: tally-registry --config FILE [options]

The Tally registry: producers register here and are assigned to live collectors.
State lives in PostgreSQL, so several registries can share one database.

options:
  --config FILE          the registry's YAML config (docs/registry.md lists every key)
  --log-format FORMAT    text (default) or json, one line per event on stderr
  --log-level LEVEL      debug, info (default), warn or error
  --port-file FILE       after binding, write the listening port to FILE (useful with
                         listen: 127.0.0.1:0)
  --help                 show this help
  --version              show the version

environment:
  TALLY_DATABASE_URL     overrides database.url

exit codes: 0 stopped cleanly, 1 could not start (database, listen), 2 usage or invalid config.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace tally;
  DaemonArgs args;
  if (auto exit_code = parse_daemon_args(argc, argv, "tally-registry", TALLY_VERSION, kUsage, args)) {
    return *exit_code;
  }
  StopSignals stop_signals;

  auto config = config::load_registry_config(args.config);
  if (!config.ok()) {
    std::cerr << "tally-registry: " << config.error() << "\n";
    return 2;
  }
  log_info("registry_starting",
           {{"version", TALLY_VERSION},
            {"config", args.config},
            {"listen", config->listen},
            {"database", pg::redact_url(config->database_url)},
            {"auth",
             config->auth.none ? "none" : std::to_string(config->auth.tokens.size()) + " tokens"},
            {"collector_ttl", format_duration(config->collector_ttl)},
            {"producer_lease", format_duration(config->producer_lease)},
            {"gc_interval", format_duration(config->gc_interval)}});

  {
    auto conn = pg::Connection::open(config->database_url, std::chrono::seconds(10));
    if (!conn.ok()) {
      log_error("database_unavailable", {{"error", conn.error()}});
      return 1;
    }
    if (Status s = schema::apply_migrations(**conn); !s.ok()) {
      log_error("migrations_failed", {{"error", s.message()}});
      return 1;
    }
  }

  registry::RegistryService service(registry::ServiceOptions{.config = *config});
  if (Status s = service.start(); !s.ok()) {
    log_error("listen_failed", {{"error", s.message()}});
    return 1;
  }
  log_info("listening", {{"address", service.address()}});
  if (!args.port_file.empty() && !write_port_file(args.port_file, service.port())) {
    log_error("port_file_failed", {{"path", args.port_file}, {"error", std::strerror(errno)}});
    service.stop();
    return 1;
  }

  log_info("registry_stopping", {{"signal", std::string(stop_signals.wait())}});
  service.stop();
  log_info("registry_stopped", {});
  return 0;
}
