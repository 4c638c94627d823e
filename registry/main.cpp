// tally-registry: parse arguments, load the config, migrate, serve until SIGINT/SIGTERM.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

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
)";

struct Args {
  std::string config;
  std::string port_file;
};

int usage_error(const std::string& message) {
  std::cerr << "tally-registry: " << message << "\n(see tally-registry --help)\n";
  return 2;
}

// Writes the port through a temporary file and a rename, so a reader never sees half of it.
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
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&](std::string_view flag) -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      (void)flag;
      return std::string(argv[++i]);
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--version") {
      std::cout << "tally-registry " << TALLY_VERSION << "\n";
      return 0;
    }
    if (arg == "--config" || arg == "--log-format" || arg == "--log-level" ||
        arg == "--port-file") {
      auto v = value(arg);
      if (!v) return usage_error(arg + " needs a value");
      if (arg == "--config") {
        args.config = *v;
      } else if (arg == "--port-file") {
        args.port_file = *v;
      } else if (arg == "--log-format") {
        auto format = parse_log_format(*v);
        if (!format) return usage_error("--log-format must be text or json, got '" + *v + "'");
        set_log_format(*format);
      } else {
        auto level = parse_log_level(*v);
        if (!level) {
          return usage_error("--log-level must be debug, info, warn or error, got '" + *v + "'");
        }
        set_log_level(*level);
      }
      continue;
    }
    return usage_error("unknown argument '" + arg + "'");
  }
  if (args.config.empty()) return usage_error("--config FILE is required");

  // Signals are taken by sigwait below; blocked before any thread starts, so every thread
  // inherits the mask and none is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto config = config::load_registry_config(args.config);
  if (!config.ok()) {
    std::cerr << "tally-registry: " << config.error() << "\n";
    return 1;
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

  int signal = 0;
  sigwait(&signals, &signal);
  log_info("registry_stopping", {{"signal", signal == SIGINT ? "SIGINT" : "SIGTERM"}});
  service.stop();
  log_info("registry_stopped", {});
  return 0;
}
