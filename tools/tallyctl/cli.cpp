#include "cli.h"

namespace tally::ctl {

Args Args::parse(const std::vector<std::string>& argv) {
  Args args;
  bool options_done = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (options_done || arg.size() < 2 || arg[0] != '-' || arg == "-") {
      args.positionals.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    auto& target = args.positionals.empty() ? args.global : args.command;
    if (kFlags.count(arg)) {
      target[arg == "-h" ? "--help" : arg].push_back("");
      continue;
    }
    if (arg.rfind("--", 0) != 0) throw UsageError("unknown option '" + arg + "'");
    const std::size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      target[arg.substr(0, eq)].push_back(arg.substr(eq + 1));
      continue;
    }
    if (i + 1 >= argv.size()) throw UsageError(arg + " needs a value");
    target[arg].push_back(argv[++i]);
  }
  return args;
}

std::optional<std::string> Args::get(const std::string& name) const {
  if (auto it = command.find(name); it != command.end()) return it->second.back();
  if (auto it = global.find(name); it != global.end()) return it->second.back();
  return std::nullopt;
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  std::vector<std::string> out;
  if (auto it = global.find(name); it != global.end()) out = it->second;
  if (auto it = command.find(name); it != command.end()) {
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

bool Args::has(const std::string& name) const { return global.count(name) || command.count(name); }

void Args::allow_only(std::string_view command_name, const std::set<std::string>& allowed) const {
  for (const auto& [name, values] : command) {
    if (!allowed.count(name) && !kGlobalOptions.count(name)) {
      throw UsageError("unknown option " + name + " for '" + std::string(command_name) + "'");
    }
  }
}

void Args::expect_positionals(std::string_view command_name, std::size_t skip, std::size_t n,
                              std::string_view what) const {
  const std::size_t got = positionals.size() > skip ? positionals.size() - skip : 0;
  if (got < n) {
    throw UsageError("'" + std::string(command_name) + "' needs " + std::string(what));
  }
  if (got > n) {
    throw UsageError("unexpected argument '" + positionals[skip + n] + "' for '" +
                     std::string(command_name) + "'");
  }
}

OutputFormat output_format(const Args& args, bool allow_csv) {
  const auto format = args.get("--format");
  if (!format || *format == "table") return OutputFormat::kTable;
  if (*format == "json") return OutputFormat::kJson;
  if (*format == "csv" && allow_csv) return OutputFormat::kCsv;
  throw UsageError("--format must be " +
                   std::string(allow_csv ? "table, json or csv" : "table or json") + ", got '" +
                   *format + "'");
}

}  // namespace tally::ctl
