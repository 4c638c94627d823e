// tallyctl: global options, then dispatch to a command group (DESIGN.md §8).
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"

namespace {

using namespace tally::ctl;

constexpr const char* kUsage =
    R"(usage: tallyctl [--registry URL] [--token TOKEN] [--db URL] COMMAND ...

commands:
  producer register --id UUID --address HOST:PORT [--kind service] [--route /collect]
                    [--interval 10s] [--format oximeter|prometheus] [--target-name NAME]
  producer list [--collector ID] | producer show ID | producer delete ID
  collector list
  schema list | schema show NAME
  query NAME [--where FIELD=VALUE ...] [--since 1h | --from TIME --to TIME] [--step 1m]
             [--agg mean|min|max|sum|count|last|delta|rate|p50|p90|p95|p99] [--group-by F1,F2]
             [--format table|csv|json|chart]          (tallyctl query --help)

options:
  --registry URL   the registry (TALLY_REGISTRY_URL; default http://127.0.0.1:12221)
  --token TOKEN    bearer token for the registry (TALLY_TOKEN)
  --db URL         the Postgres database, for commands that read it (TALLY_DATABASE_URL)
  --format FORMAT  table (default) or json (csv for schema list and query), for listing commands
  --help           help (also after a command: tallyctl producer --help)
  --version        the version

exit codes: 0 ok, 1 failure, 2 usage error
)";

struct Command {
  const char* name;
  int (*run)(Context&, const Args&);
};

// New command groups (schema, query) go here.
constexpr Command kCommands[] = {
    {"producer", &producer_command},
    {"collector", &collector_command},
    {"schema", &schema_command},
    {"query", &query_command},
};

std::string from_env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

int run(const std::vector<std::string>& argv) {
  const Args args = Args::parse(argv);
  for (const auto& [name, values] : args.global) {
    if (!kGlobalOptions.count(name) && name != "--version") {
      throw UsageError("unknown option " + name);
    }
  }
  if (args.global.count("--version")) {
    std::cout << "tallyctl " << TALLY_VERSION << "\n";
    return kExitOk;
  }
  if (args.positionals.empty()) {
    if (args.global.count("--help")) {
      std::cout << kUsage;
      return kExitOk;
    }
    throw UsageError("a command is needed");
  }

  Context ctx{from_env("TALLY_REGISTRY_URL"), from_env("TALLY_TOKEN"),
              from_env("TALLY_DATABASE_URL"), std::cout, std::cerr};
  if (auto v = args.get("--registry")) ctx.registry_url = *v;
  if (auto v = args.get("--token")) ctx.token = *v;
  if (auto v = args.get("--db")) ctx.database_url = *v;
  if (ctx.registry_url.empty()) ctx.registry_url = "http://127.0.0.1:12221";

  for (const Command& c : kCommands) {
    if (args.positionals[0] == c.name) return c.run(ctx, args);
  }
  throw UsageError("unknown command '" + args.positionals[0] + "'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    std::cerr << "tallyctl: " << e.what() << "\n";
    const std::string message = e.what();
    if (message.find("usage:") == std::string::npos) std::cerr << "(see tallyctl --help)\n";
    return kExitUsage;
  }
}
