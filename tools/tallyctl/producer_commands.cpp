// tallyctl producer register|list|show|delete
#include <iostream>

#include "cli.h"
#include "output.h"
#include "registry_client.h"
#include "tally/common/field.h"
#include "tally/common/http_message.h"
#include "tally/common/network.h"
#include "tally/common/time.h"

namespace tally::ctl {
namespace {

constexpr const char* kUsage = R"(usage: tallyctl producer COMMAND

  register --id UUID --address HOST:PORT [--kind service] [--route /collect]
           [--interval 10s] [--format oximeter|prometheus] [--target-name NAME]
                 register a producer, or renew its lease (same id)
  list [--collector ID] [--format table|json]
                 every producer, or those assigned to one collector
  show ID [--format table|json]
                 one producer
  delete ID      remove a producer
)";

std::string checked_id(const std::string& text) {
  auto id = Uuid::parse(text);
  if (!id.ok()) throw UsageError("'" + text + "' is not a producer id (a UUID)");
  return id->to_string();
}

std::string interval_text(const std::string& ms) {
  try {
    return format_duration(std::chrono::milliseconds(std::stoll(ms)));
  } catch (...) {
    return ms;
  }
}

int fail(Context& ctx, const Status& s) {
  ctx.err << "tallyctl: " << s.message() << "\n";
  return kExitFailure;
}

int do_register(Context& ctx, const Args& args) {
  args.allow_only("producer register", {"--id", "--address", "--kind", "--route", "--interval",
                                        "--format", "--target-name"});
  args.expect_positionals("producer register", 2, 0, "no positional arguments");
  const auto id = args.command.count("--id") ? args.get("--id") : std::nullopt;
  const auto address = args.command.count("--address") ? args.get("--address") : std::nullopt;
  if (!id) throw UsageError("'producer register' needs --id UUID");
  if (!address) throw UsageError("'producer register' needs --address HOST:PORT");
  std::string body = "{\"id\":";
  append_json_string(body, checked_id(*id));
  if (auto hp = HostPort::parse(*address); !hp.ok()) throw UsageError("--address: " + hp.error());
  body += ",\"address\":";
  append_json_string(body, *address);
  const auto add_string = [&](const char* option, const char* key) {
    if (auto it = args.command.find(option); it != args.command.end()) {
      body += ",\"" + std::string(key) + "\":";
      append_json_string(body, it->second.back());
    }
  };
  add_string("--kind", "kind");
  add_string("--route", "route");
  add_string("--format", "format");
  add_string("--target-name", "target_name");
  if (auto it = args.command.find("--interval"); it != args.command.end()) {
    auto d = parse_duration(it->second.back());
    if (!d.ok()) throw UsageError("--interval: " + d.error() + " (e.g. 10s, 500ms, 1m)");
    body += ",\"interval_ms\":" +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
  }
  body += '}';
  // A global --format (before "producer") is the output format; after it, the producer's.
  const bool json_output =
      args.global.count("--format") && args.global.at("--format").back() == "json";

  RegistryClient client(ctx.registry_url, ctx.token);
  auto answer = client.post("/v1/producers", body);
  if (!answer.ok()) {
    if (answer.status().code() == "no_live_collector") {
      // The registry stored the producer: it is polled as soon as a collector appears.
      if (json_output) ctx.out << "{\"id\":\"" << checked_id(*id) << "\",\"collector_id\":null}\n";
      ctx.err << "tallyctl: warning: " << answer.error() << "\n";
      return kExitOk;
    }
    return fail(ctx, answer.status());
  }
  if (json_output) {
    ctx.out << answer->json << "\n";
    return kExitOk;
  }
  std::string lease = answer->get("lease_ms");
  ctx.out << "registered producer " << answer->get("id") << ": assigned to collector "
          << answer->get("collector_id") << " at " << answer->get("collector_address") << " (lease "
          << interval_text(lease) << "; register again to renew)\n";
  return kExitOk;
}

int do_list(Context& ctx, const Args& args) {
  args.allow_only("producer list", {"--collector"});
  args.expect_positionals("producer list", 2, 0, "no positional arguments");
  const OutputFormat format = output_format(args);
  std::string path = "/v1/producers";
  if (auto collector = args.get("--collector")) {
    auto cid = Uuid::parse(*collector);
    if (!cid.ok())
      throw UsageError("--collector: '" + *collector + "' is not a collector id (a UUID)");
    path += "?collector_id=" + cid->to_string();
  }
  RegistryClient client(ctx.registry_url, ctx.token);
  auto records = client.get_all(path);
  if (!records.ok()) return fail(ctx, records.status());
  if (format == OutputFormat::kJson) {
    std::vector<std::string> items;
    for (const Record& r : *records) items.push_back(r.json);
    print_json_array(ctx.out, items);
    return kExitOk;
  }
  Table table{
      {"id", "kind", "address", "route", "format", "interval", "collector", "lease_expires"}};
  for (const Record& r : *records) {
    table.rows.push_back({r.get("id"), r.get("kind"), r.get("address"), r.get("route"),
                          r.get("format"), interval_text(r.get("interval_ms")),
                          r.is_null("collector_id") ? "unassigned" : r.get("collector_address"),
                          r.get("lease_expires_at")});
  }
  print_table(ctx.out, table);
  if (records->empty()) ctx.err << "no producers registered\n";
  return kExitOk;
}

int do_show(Context& ctx, const Args& args) {
  args.allow_only("producer show", {});
  args.expect_positionals("producer show", 2, 1, "a producer ID");
  const OutputFormat format = output_format(args);
  const std::string id = checked_id(args.positionals[2]);
  RegistryClient client(ctx.registry_url, ctx.token);
  auto record = client.get("/v1/producers/" + id);
  if (!record.ok()) return fail(ctx, record.status());
  if (format == OutputFormat::kJson) {
    ctx.out << record->json << "\n";
    return kExitOk;
  }
  std::vector<std::pair<std::string, std::string>> fields;
  for (const auto& [key, value] : record->fields) {
    std::string text = value.value_or("-");
    if (key == "interval_ms") {
      fields.emplace_back("interval", interval_text(text));
      continue;
    }
    if (key == "collector_id" && !value) text = "unassigned";
    fields.emplace_back(key, text);
  }
  print_fields(ctx.out, fields);
  return kExitOk;
}

int do_delete(Context& ctx, const Args& args) {
  args.allow_only("producer delete", {});
  args.expect_positionals("producer delete", 2, 1, "a producer ID");
  const std::string id = checked_id(args.positionals[2]);
  RegistryClient client(ctx.registry_url, ctx.token);
  if (Status s = client.del("/v1/producers/" + id); !s.ok()) return fail(ctx, s);
  ctx.out << "deleted producer " << id << "\n";
  return kExitOk;
}

}  // namespace

int producer_command(Context& ctx, const Args& args) {
  if (args.has("--help")) {
    ctx.out << kUsage;
    return kExitOk;
  }
  if (args.positionals.size() < 2)
    throw UsageError(std::string("'producer' needs a command\n") + kUsage);
  const std::string& command = args.positionals[1];
  if (command == "register") return do_register(ctx, args);
  if (command == "list") return do_list(ctx, args);
  if (command == "show") return do_show(ctx, args);
  if (command == "delete") return do_delete(ctx, args);
  throw UsageError("unknown command 'producer " + command + "'\n" + kUsage);
}

}  // namespace tally::ctl
