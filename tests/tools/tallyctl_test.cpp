// tallyctl end to end: the real binary against a real tally-registry.
#include <doctest/doctest.h>

#include <boost/json.hpp>

#include "registry_process.h"
#include "support/test_db.h"
#include "tally/common/field.h"
#include "tally/common/sha256.h"

using namespace tally;
using namespace tally::test;
namespace json = boost::json;

namespace {

constexpr const char* kProducer = "6f1f3c1e-0c0e-4c5a-9f0e-3a2b1c0d9e8f";
constexpr const char* kCollector = "cc000000-0000-0000-0000-000000000001";

CommandResult tallyctl(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), TALLY_TALLYCTL_PATH);
  return run_command(args, env);
}

void heartbeat(const std::string& url, const std::string& token = "") {
  HttpResponse r =
      call("POST", url + "/v1/collectors",
           std::string("{\"id\":\"") + kCollector + "\",\"address\":\"127.0.0.1:12222\"}", token);
  REQUIRE(r.status == 200);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("register, list, show and delete a producer, in tables and in JSON") {
  TestDatabase db;
  RegistryProcess registry(db.url());
  heartbeat(registry.url());
  const std::map<std::string, std::string> env = {{"TALLY_REGISTRY_URL", registry.url()}};

  CommandResult reg =
      tallyctl({"producer", "register", "--id", kProducer, "--address", "127.0.0.1:9100",
                "--interval", "5s", "--format", "prometheus", "--target-name", "node"},
               env);
  CHECK(reg.exit_code == 0);
  CHECK_MESSAGE(
      contains(reg.out, std::string("registered producer ") + kProducer +
                            ": assigned to collector " + kCollector + " at 127.0.0.1:12222"),
      reg.out << reg.err);

  CommandResult list = tallyctl({"producer", "list"}, env);
  CHECK(list.exit_code == 0);
  CHECK(contains(list.out, "ID"));
  CHECK(contains(list.out, "COLLECTOR"));
  CHECK(contains(list.out, kProducer));
  CHECK(contains(list.out, "/metrics"));  // the prometheus default route
  CHECK(contains(list.out, "5s"));

  CommandResult as_json = tallyctl({"producer", "list", "--format", "json"}, env);
  CHECK(as_json.exit_code == 0);
  const json::value items = json::parse(as_json.out);
  REQUIRE(items.as_array().size() == 1);
  CHECK(items.at(0).at("id").as_string() == kProducer);
  CHECK(items.at(0).at("interval_ms").as_int64() == 5000);
  CHECK(items.at(0).at("target_name").as_string() == "node");
  CHECK(items.at(0).at("collector_id").as_string() == kCollector);

  CommandResult filtered =
      tallyctl({"producer", "list", "--collector", kCollector, "--format=json"}, env);
  CHECK(json::parse(filtered.out).as_array().size() == 1);

  CommandResult show = tallyctl({"producer", "show", kProducer}, env);
  CHECK(show.exit_code == 0);
  CHECK(contains(show.out, "format:"));
  CHECK(contains(show.out, "prometheus"));
  CommandResult show_json = tallyctl({"--format", "json", "producer", "show", kProducer}, env);
  CHECK(json::parse(show_json.out).at("address").as_string() == "127.0.0.1:9100");

  CommandResult collectors = tallyctl({"collector", "list"}, env);
  CHECK(collectors.exit_code == 0);
  CHECK(contains(collectors.out, kCollector));
  CHECK(contains(collectors.out, "yes"));
  CommandResult collectors_json = tallyctl({"collector", "list", "--format", "json"}, env);
  const json::value c = json::parse(collectors_json.out);
  CHECK(c.at(0).at("n_producers").as_int64() == 1);
  CHECK(c.at(0).at("alive").as_bool());

  CommandResult del = tallyctl({"producer", "delete", kProducer}, env);
  CHECK(del.exit_code == 0);
  CHECK(contains(del.out, std::string("deleted producer ") + kProducer));
  CommandResult gone = tallyctl({"producer", "show", kProducer}, env);
  CHECK(gone.exit_code == 1);
  CHECK(contains(gone.err, std::string("no producer ") + kProducer));
  CHECK(
      json::parse(tallyctl({"producer", "list", "--format", "json"}, env).out).as_array().empty());
}

TEST_CASE("flags override the environment, and a registration without a live collector warns") {
  TestDatabase db;
  RegistryProcess registry(db.url());
  CommandResult r = tallyctl({"--registry", registry.url(), "producer", "register", "--id",
                              kProducer, "--address", "127.0.0.1:9100"},
                             {{"TALLY_REGISTRY_URL", "http://127.0.0.1:1"}});
  CHECK(r.exit_code == 0);
  CHECK_MESSAGE(contains(r.err, "warning: no collector is live"), r.err);
}

TEST_CASE("messages a person can act on: registry down, bad token, bad input, bad usage") {
  TestDatabase db;
  RegistryProcess registry(
      db.url(),
      "auth:\n  tokens:\n    - {name: ops, role: admin, sha256: " + to_hex(sha256("s3cret")) +
          "}\n    - {name: ro, role: reader, sha256: " + to_hex(sha256("read-only")) + "}\n");
  heartbeat(registry.url(), "s3cret");

  CommandResult down = tallyctl({"--registry", "http://127.0.0.1:1", "producer", "list"});
  CHECK(down.exit_code == 1);
  CHECK_MESSAGE(contains(down.err,
                         "cannot reach the registry at http://127.0.0.1:1: connection refused "
                         "(is tally-registry running? set --registry or TALLY_REGISTRY_URL)"),
                down.err);

  const std::map<std::string, std::string> env = {{"TALLY_REGISTRY_URL", registry.url()}};
  CommandResult no_token = tallyctl({"producer", "list"}, env);
  CHECK(no_token.exit_code == 1);
  CHECK(contains(no_token.err, "the registry requires a token (401): set --token or TALLY_TOKEN"));
  CommandResult wrong = tallyctl({"--token", "guess", "producer", "list"}, env);
  CHECK(wrong.exit_code == 1);
  CHECK(contains(wrong.err, "the registry refused the token (401): check --token or TALLY_TOKEN"));
  CHECK_FALSE(contains(wrong.err, "guess"));
  CommandResult reader =
      tallyctl({"producer", "delete", kProducer},
               {{"TALLY_REGISTRY_URL", registry.url()}, {"TALLY_TOKEN", "read-only"}});
  CHECK(reader.exit_code == 1);
  CHECK(contains(reader.err, "(403)"));
  CHECK(contains(reader.err, "reader role"));

  std::map<std::string, std::string> admin = env;
  admin["TALLY_TOKEN"] = "s3cret";
  CommandResult invalid = tallyctl({"producer", "register", "--id", kProducer, "--address",
                                    "127.0.0.1:9100", "--format", "graphite"},
                                   admin);
  CHECK(invalid.exit_code == 1);
  CHECK(contains(invalid.err,
                 "invalid input: format: must be oximeter or prometheus, got 'graphite'"));
  CommandResult fast = tallyctl({"producer", "register", "--id", kProducer, "--address",
                                 "127.0.0.1:9100", "--interval", "10ms"},
                                admin);
  CHECK(fast.exit_code == 1);
  CHECK(contains(fast.err, "interval_ms: must be between 100 and 86400000, got 10"));

  struct Usage {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Usage> usage = {
      {{}, "a command is needed"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"producer"}, "'producer' needs a command"},
      {{"producer", "register", "--address", "127.0.0.1:1"}, "needs --id UUID"},
      {{"producer", "register", "--id", "123", "--address", "127.0.0.1:1"},
       "'123' is not a producer id"},
      {{"producer", "register", "--id", kProducer, "--address", "nohost"},
       "--address: 'nohost' is not host:port"},
      {{"producer", "register", "--id", kProducer, "--address", "h:1", "--interval", "often"},
       "--interval:"},
      {{"producer", "show"}, "'producer show' needs a producer ID"},
      {{"producer", "list", "--format", "xml"}, "--format must be table or json, got 'xml'"},
      {{"producer", "list", "--bogus", "1"}, "unknown option --bogus for 'producer list'"},
      {{"--bogus", "1", "producer", "list"}, "unknown option --bogus"},
      {{"producer", "list", "--token"}, "--token needs a value"},
  };
  for (const Usage& u : usage) {
    std::string joined;
    for (const auto& a : u.args) joined += a + " ";
    CAPTURE(joined);
    CommandResult r = tallyctl(u.args, admin);
    CHECK(r.exit_code == 2);
    CHECK_MESSAGE(contains(r.err, u.message), r.err);
  }
}

TEST_CASE("help and version") {
  CommandResult help = tallyctl({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(contains(help.out, "usage: tallyctl"));
  CHECK(contains(help.out, "TALLY_REGISTRY_URL"));
  CommandResult producer_help = tallyctl({"producer", "register", "--help"});
  CHECK(producer_help.exit_code == 0);
  CHECK(contains(producer_help.out, "--target-name"));
  CommandResult version = tallyctl({"--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.out.rfind("tallyctl ", 0) == 0);
}
