// tallyctl's command-line plumbing: argument parsing, the shared context and the command
// entry points. Each command group lives in its own file (producer_commands.cpp, …) and is
// listed in main.cpp's command table.
#pragma once

#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tally::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Bad usage: main prints the message and a hint and exits with kExitUsage.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Options are "--name value" or "--name=value"; "--" ends them. Options before the first
// positional argument are global (tallyctl --format json producer list); the rest belong to the
// command. Flags without a value (--help, --version) are listed in `kFlags`.
struct Args {
  std::vector<std::string> positionals;
  std::map<std::string, std::vector<std::string>> global;   // "--registry" → values
  std::map<std::string, std::vector<std::string>> command;  // after the command word

  static Args parse(const std::vector<std::string>& argv);  // argv without the program name

  // The last value of a command option, else of a global one.
  std::optional<std::string> get(const std::string& name) const;
  std::vector<std::string> get_all(const std::string& name) const;  // global then command
  bool has(const std::string& name) const;
  // Throws UsageError naming the first command option not in `allowed` (global options such
  // as --registry are always allowed).
  void allow_only(std::string_view command_name, const std::set<std::string>& allowed) const;
  // Throws UsageError unless there are exactly `n` positionals after the `skip` command words.
  void expect_positionals(std::string_view command_name, std::size_t skip, std::size_t n,
                          std::string_view what) const;
};

// Options every command accepts, wherever they appear.
inline const std::set<std::string> kGlobalOptions = {"--registry", "--token", "--db", "--format",
                                                     "--help"};
inline const std::set<std::string> kFlags = {"--help", "-h", "--version"};

struct Context {
  std::string registry_url;  // --registry, TALLY_REGISTRY_URL, default http://127.0.0.1:12221
  std::string token;         // --token, TALLY_TOKEN; never printed
  std::string database_url;  // --db, TALLY_DATABASE_URL (schema and query commands)
  std::ostream& out;
  std::ostream& err;
};

// The output format of a listing command: --format table|json (csv where `allow_csv`).
enum class OutputFormat { kTable, kJson, kCsv };
OutputFormat output_format(const Args& args, bool allow_csv = false);

// Command groups: args.positionals[0] is the group's name. They return an exit code and throw
// UsageError for bad usage.
int producer_command(Context& ctx, const Args& args);
int collector_command(Context& ctx, const Args& args);
int schema_command(Context& ctx, const Args& args);  // schema_commands.cpp
int query_command(Context& ctx, const Args& args);   // query_command.cpp

}  // namespace tally::ctl
