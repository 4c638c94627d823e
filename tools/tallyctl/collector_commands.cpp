// tallyctl collector list
#include <iostream>

#include "cli.h"
#include "output.h"
#include "registry_client.h"

namespace tally::ctl {
namespace {

constexpr const char* kUsage = R"(usage: tallyctl collector COMMAND

  list [--format table|json]
                 every collector the registry knows, with its liveness and load
)";

int do_list(Context& ctx, const Args& args) {
  args.allow_only("collector list", {});
  args.expect_positionals("collector list", 2, 0, "no positional arguments");
  const OutputFormat format = output_format(args);
  RegistryClient client(ctx.registry_url, ctx.token);
  auto records = client.get_all("/v1/collectors");
  if (!records.ok()) {
    ctx.err << "tallyctl: " << records.error() << "\n";
    return kExitFailure;
  }
  if (format == OutputFormat::kJson) {
    std::vector<std::string> items;
    for (const Record& r : *records) items.push_back(r.json);
    print_json_array(ctx.out, items);
    return kExitOk;
  }
  Table table{{"id", "address", "alive", "producers", "last_seen"}};
  for (const Record& r : *records) {
    table.rows.push_back({r.get("id"), r.get("address"), r.get("alive") == "true" ? "yes" : "no",
                          r.get("n_producers"), r.get("last_seen")});
  }
  print_table(ctx.out, table);
  if (records->empty()) ctx.err << "no collectors have sent a heartbeat\n";
  return kExitOk;
}

}  // namespace

int collector_command(Context& ctx, const Args& args) {
  if (args.has("--help")) {
    ctx.out << kUsage;
    return kExitOk;
  }
  if (args.positionals.size() < 2)
    throw UsageError(std::string("'collector' needs a command\n") + kUsage);
  const std::string& command = args.positionals[1];
  if (command == "list") return do_list(ctx, args);
  throw UsageError("unknown command 'collector " + command + "'\n" + kUsage);
}

}  // namespace tally::ctl
