// Security end to end: the collector dials only addresses inside allowed_networks; names from
// producers never reach SQL (rejected when decoded) while field values with SQL in them are
// stored and read back verbatim; and no secret (database password, token) shows up in the logs
// or /metrics of tally-registry and tally-collector, even when things go wrong.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "e2e_support.h"
#include "support/test_db.h"
#include "tally/common/collect_json.h"
#include "tally/common/http_client.h"
#include "tally/common/pg.h"
#include "tally/common/sha256.h"
#include "tally/schema/views.h"

using namespace tally;
using namespace tally::test;
namespace json = boost::json;

namespace {

uint64_t failures(const json::value& producer, const std::string& reason) {
  if (producer.is_null()) return 0;
  const json::object& f = producer.at("counts").at("failures").as_object();
  const auto it = f.find(reason);
  return it == f.end() ? 0 : it->value().to_number<uint64_t>();
}

// A listening socket on 127.0.0.1 that never accepts: whoever dials it completes a handshake
// the kernel queues, so an empty queue proves nobody connected.
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { close(fd_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Whether a connection is waiting to be accepted.
  bool connected_to() {
    const int fd = accept(fd_, nullptr, nullptr);
    if (fd < 0) {
      CHECK(errno == EAGAIN);
      return false;
    }
    close(fd);
    return true;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace

TEST_CASE("security: producers outside allowed_networks are refused and never dialled") {
  TestDatabase db;
  RegistryProcess registry(db.url());
  Listener registered_target;
  Listener static_target;
  const std::string registered_id = "5ec00000-0000-4000-8000-000000000001";
  const std::string static_id = "5ec00000-0000-4000-8000-000000000002";
  TempDir state;
  CollectorProcess collector(collector_yaml(
      db.url(), state.path(),
      "registry: {url: \"" + registry.url() +
          "\", heartbeat_interval: 200ms, refresh_interval: 200ms}\n"
          "collection: {allowed_networks: [10.0.0.0/8, \"fd00::/8\"]}\n"
          "static_producers:\n"
          "  - {id: " +
          static_id + ", address: \"" + static_target.address() + "\", interval: 200ms}\n"));
  // Registered once the collector is live, so it is assigned to it.
  REQUIRE(eventually([&] {
    return call("POST", registry.url() + "/v1/producers",
                "{\"id\":\"" + registered_id + "\",\"address\":\"" + registered_target.address() +
                    "\",\"interval_ms\":200}")
               .status == 201;
  }));
  for (const std::string& id : {registered_id, static_id}) {
    CAPTURE(id);
    json::value view;
    REQUIRE_MESSAGE(eventually([&] {
                      view = collector.producer(id);
                      return failures(view, "forbidden") >= 2;
                    }),
                    json::serialize(view) << "\n"
                                          << collector.log());
    CHECK(view.at("counts").at("failures").as_object().size() == 1);
    CHECK(view.at("counts").at("successes").to_number<uint64_t>() == 0);
    const std::string message(view.at("last_failure").at("message").as_string());
    CHECK_MESSAGE(message.find("outside allowed_networks") != std::string::npos, message);
  }
  CHECK_FALSE(registered_target.connected_to());
  CHECK_FALSE(static_target.connected_to());
  CHECK(collector.metric("tally_collector_failures_total", "reason=\"forbidden\"") >= 4.0);
}

namespace {

// One sample of `<target>:<metric>` with one string field `field` = `value`, as producer JSON.
json::object sample_json(const std::string& target, const std::string& metric,
                         const std::string& field, const std::string& value, double datum) {
  json::object fields;
  fields[field] =
      json::object{{"name", field}, {"value", json::object{{"type", "string"}, {"value", value}}}};
  return json::object{
      {"timeseries_name", target + ":" + metric},
      {"timeseries_version", 1},
      {"target", json::object{{"name", target}, {"fields", json::object{}}}},
      {"metric", json::object{{"name", metric}, {"fields", std::move(fields)}}},
      {"measurement", json::object{{"timestamp", format_rfc3339(tally::now())},
                                   {"datum", json::object{{"type", "f64"}, {"datum", datum}}}}}};
}

std::string collect_body(json::array samples) {
  return json::serialize(json::array{json::object{{"status", "ok"}, {"info", std::move(samples)}}});
}

// Names a producer might send to get text into SQL, or just to break things. The collector logs
// the first one it meets: a forged log line with a terminal escape.
std::vector<std::string> hostile_names() {
  return {"cr\r2026-01-01T00:00:00Z error forged_event \x1b[2J",
          "a'b",
          "a\"b",
          "a;b",
          "\"; DROP TABLE sentinel; --",
          "x'); DROP TABLE sentinel; --",
          "back\\slash",
          "new\nline",
          std::string("nul\0byte", 8),
          "ünïcödé",
          "名前",
          "a b",
          "Upper",
          "-dash",
          "",
          std::string(10 * 1024, 'a')};  // matches the pattern, 10 KB long
}

}  // namespace

TEST_CASE("security: hostile timeseries and field names are rejected when decoded") {
  for (const std::string& name : hostile_names()) {
    CAPTURE(name.substr(0, 40));
    const std::string places[][3] = {
        {name, "m", "f"},  // target name
        {"t", name, "f"},  // metric name
        {"t", "m", name},  // field name
    };
    for (const auto& [target, metric, field] : places) {
      const std::string body =
          collect_body(json::array{sample_json(target, metric, field, "v", 1)});
      auto decoded = decode_collect_response(body);
      REQUIRE_FALSE(decoded.ok());
      CHECK(decoded.status().code() == "decode");
      // The message says which rule was broken.
      const std::string& message = decoded.error();
      CHECK_MESSAGE((message.find("must match") != std::string::npos ||
                     message.find("longer than") != std::string::npos),
                    message.substr(0, 300));
    }
  }
}

TEST_CASE(
    "security: a producer sending SQL in names fails decode and nothing reaches the "
    "database") {
  TestDatabase db;
  db.scalar("CREATE TABLE sentinel (x int); SELECT 1");
  std::vector<std::string> names = hostile_names();
  FakeProducer producer([&](const HttpRequest&) {
    json::array samples;
    samples.push_back(sample_json("sec_ok", "reading", "v", "fine", 1));
    for (const std::string& name : names) samples.push_back(sample_json("t", "m", name, "v", 2));
    return HttpResponse::json(200, collect_body(std::move(samples)));
  });
  const std::string id = "5ec00000-0000-4000-8000-000000000003";
  TempDir state;
  CollectorProcess collector(collector_yaml(db.url(), state.path(),
                                            "static_producers:\n  - {id: " + id + ", address: \"" +
                                                producer.address() + "\", interval: 200ms}\n"));
  json::value view;
  REQUIRE(eventually([&] {
    view = collector.producer(id);
    return failures(view, "decode") >= 2;
  }));
  CHECK(view.at("counts").at("successes").to_number<uint64_t>() == 0);
  CHECK(std::string(view.at("last_failure").at("message").as_string()).find("must match") !=
        std::string::npos);
  // The names are in the log, escaped: no line of their own, no terminal escapes.
  const std::string log = collector.log();
  CHECK(log.find("decode") != std::string::npos);
  CHECK(log.find('\r') == std::string::npos);
  CHECK(log.find('\x1b') == std::string::npos);
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    CHECK_MESSAGE(line.starts_with("20"), line.substr(0, 200));
  }
  CHECK(query_scalar(db.url(), "SELECT count(*) FROM sentinel") == "0");
  CHECK(query_scalar(db.url(), "SELECT count(*) FROM tally.timeseries") == "0");
  CHECK(query_scalar(db.url(),
                     "SELECT count(*) FROM tally.timeseries_schema WHERE "
                     "timeseries_name NOT LIKE 'tally_collector:%'") == "0");
}

namespace {

// Field values with SQL, COPY and shell syntax in them: stored as they are.
std::vector<std::string> hostile_values() {
  return {"'; DROP TABLE sentinel; --",
          "\"; DROP TABLE sentinel; --",
          "Robert'); DROP TABLE sentinel;--",
          "$$; DROP TABLE sentinel; $$",
          "$1",
          "back\\slash\\",
          "\\N",
          "\\.",
          "tab\there",
          "new\nline\r\n",
          "a=b!=c",
          "%s%n%x",
          "ünïcödé 名前 🚀",
          "",
          std::string(10 * 1024, '\'')};
}

}  // namespace

TEST_CASE("security: field values with SQL in them are stored verbatim and queried back equal") {
  TestDatabase db;
  db.scalar("CREATE TABLE sentinel (x int); SELECT 1");
  const std::vector<std::string> values = hostile_values();
  FakeProducer producer([&](const HttpRequest&) {
    json::array samples;
    for (std::size_t i = 0; i < values.size(); ++i) {
      samples.push_back(sample_json("sec_values", "reading", "v", values[i], double(i)));
    }
    return HttpResponse::json(200, collect_body(std::move(samples)));
  });
  const std::string id = "5ec00000-0000-4000-8000-000000000004";
  TempDir state;
  CollectorProcess collector(collector_yaml(db.url(), state.path(),
                                            "static_producers:\n  - {id: " + id + ", address: \"" +
                                                producer.address() + "\", interval: 200ms}\n"));
  const std::string view_sql = "SELECT v, datum FROM tally_ts.\"sec_values:reading\"";
  REQUIRE_MESSAGE(eventually([&] {
                    return query_scalar(db.url(),
                                        "SELECT count(DISTINCT timeseries_key) FROM "
                                        "tally.timeseries WHERE timeseries_name = "
                                        "'sec_values:reading'") == std::to_string(values.size());
                  }),
                  collector.log());
  // Through the view: every value once, with its own datum.
  std::map<std::string, std::set<std::string>> stored;
  for (const auto& row : query_rows(db.url(), view_sql)) stored[row[0]].insert(row[1]);
  REQUIRE(stored.size() == values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    CAPTURE(values[i].substr(0, 40));
    REQUIRE(stored.count(values[i]) == 1);
    CHECK(stored[values[i]] == std::set<std::string>{std::to_string(i)});
  }
  CHECK(query_scalar(db.url(), "SELECT count(*) FROM sentinel") == "0");

  // Through tallyctl query --where: the value is a bound parameter, one series matches.
  for (const std::string& value : values) {
    CAPTURE(value.substr(0, 40));
    const CommandResult r = tallyctl("", {"query", "sec_values:reading", "--db", db.url(),
                                          "--where", "v=" + value, "--format", "json"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    const json::value out = json::parse(r.out);
    REQUIRE(out.as_array().size() == 1);
    CHECK(out.at(0).at("fields").at("v").as_string() == value);
  }
  CHECK(query_scalar(db.url(), "SELECT count(*) FROM sentinel") == "0");
}

TEST_CASE("security: a field name quoted into SQL stays a literal under any string setting") {
  // Names are validated before they are stored, so this is the second line of defence: a name
  // written into tally.timeseries_schema by hand still only ever names a field.
  TestDatabase db;
  auto conn = db.connect();
  for (const std::string& name : hostile_names()) {
    if (name.find('\0') != std::string::npos) continue;  // not a Postgres text at all
    CAPTURE(name.substr(0, 40));
    const std::string expr = schema::field_sql_expr("t", name, FieldType::kString);
    for (const char* setting : {"on", "off"}) {
      CAPTURE(setting);
      REQUIRE(conn->exec(std::string("SET standard_conforming_strings = ") + setting).ok());
      auto rows = conn->exec("SELECT " + expr + " FROM (SELECT jsonb_build_object($1::text, " +
                                 "'found'::text) AS fields) t",
                             {name});
      REQUIRE_MESSAGE(rows.ok(), rows.error());
      CHECK(rows->get(0, 0) == "found");
    }
  }
}

TEST_CASE("security: the registry and the collector API refuse oversized requests") {
  TestDatabase db;
  RegistryProcess registry(db.url());
  TempDir state;
  CollectorProcess collector(collector_yaml(db.url(), state.path()));
  const std::string big_body = "{\"id\":\"" + std::string(100 * 1024, 'x') + "\"}";
  const HttpHeaders big_header = {{"X-Filler", std::string(32 * 1024, 'y')}};
  for (const std::string& base : {registry.url(), collector.url()}) {
    CAPTURE(base);
    const std::string path = base == registry.url() ? "/v1/producers" : "/producers";
    auto body = http_request({}, "POST", base + path, big_body);
    REQUIRE_MESSAGE(body.ok(), body.error());
    CHECK(body->status == 413);
    auto header = http_request({}, "GET", base + "/healthz", "", big_header);
    REQUIRE_MESSAGE(header.ok(), header.error());
    CHECK(header->status == 431);
    // Still serving.
    CHECK(call("GET", base + "/healthz").status == 200);
  }
}

TEST_CASE("security: redact_url hides every password form libpq accepts") {
  const std::pair<std::string, std::string> cases[] = {
      {"postgresql://tally:s3cret@db:5432/tally", "postgresql://tally:***@db:5432/tally"},
      {"postgres://tally:s3cret@db/tally?sslmode=require",
       "postgres://tally:***@db/tally?sslmode=require"},
      {"postgresql://tally:s3/cret@db/tally", "postgresql://tally:***@db/tally"},
      {"postgresql://tally@db/tally?password=s3cret&sslpassword=s3cret2",
       "postgresql://tally@db/tally?password=***&sslpassword=***"},
      {"postgresql://db:5432/tally?application_name=a@b",
       "postgresql://db:5432/tally?application_name=a@b"},
      {"host=db password=s3cret dbname=tally", "host=db password=*** dbname=tally"},
      {"host=db password = s3cret dbname=tally", "host=db password = *** dbname=tally"},
      {"host=db password='s3 cr\\'et' dbname=tally", "host=db password=*** dbname=tally"},
      {"password=a password=b", "password=*** password=***"},
      {"host=db dbname=tally", "host=db dbname=tally"},
  };
  for (const auto& [url, redacted] : cases) {
    CAPTURE(url);
    CHECK(pg::redact_url(url) == redacted);
  }
}

namespace {

// The test cluster's `url` (postgresql://postgres@…) with another user (and password).
std::string url_with_user(const std::string& url, const std::string& userinfo) {
  const std::string user = "://postgres@";
  const std::size_t at = url.find(user);
  REQUIRE_MESSAGE(at != std::string::npos, url);
  return url.substr(0, at) + "://" + userinfo + "@" + url.substr(at + user.size());
}

// A login role with a password on the test cluster (which trusts every local login, so the
// password is never checked: it only has to be in the URLs the daemons get), dropped at the end.
class PasswordRole {
 public:
  PasswordRole(std::string name, std::string password)
      : name_(std::move(name)), password_(std::move(password)) {
    auto created =
        admin().exec("CREATE ROLE " + name_ + " LOGIN SUPERUSER PASSWORD '" + password_ + "'");
    REQUIRE_MESSAGE(created.ok(), created.error());
  }
  // Best effort: a role left behind in the throwaway cluster harms no other test.
  ~PasswordRole() { (void)admin().exec("DROP ROLE IF EXISTS " + name_); }
  // `url` (postgresql://postgres@…) with this role and its password as the user.
  std::string url_for(const std::string& url) const {
    return url_with_user(url, name_ + ":" + password_);
  }

 private:
  static pg::Connection& admin() {
    static std::unique_ptr<pg::Connection> conn = [] {
      auto c = pg::Connection::open(server_url());
      REQUIRE_MESSAGE(c.ok(), c.error());
      return std::move(*c);
    }();
    return *conn;
  }
  std::string name_;
  std::string password_;
};

}  // namespace

TEST_CASE("security: passwords and tokens never appear in logs or /metrics, errors included") {
  const std::string tag = Uuid::random().to_string().substr(0, 8);
  // Every secret is unique to this run, so finding one anywhere is a leak, not a coincidence.
  const std::string db_password = "DbPw" + tag + "Secret";
  const std::string unreachable_password = "DownPw" + tag + "Secret";
  const std::string discovered_password = "DiscPw" + tag + "Secret";
  const std::string admin_token = "AdminTok" + tag + "Secret";
  const std::string producer_token = "ProdTok" + tag + "Secret";
  const std::string collector_token = "CollTok" + tag + "Secret";
  const std::string wrong_token = "WrongTok" + tag + "Secret";
  const std::string discovery_token = "DiscTok" + tag + "Secret";
  const std::vector<std::string> secrets = {db_password, unreachable_password, discovered_password,
                                            admin_token, producer_token,       collector_token,
                                            wrong_token, discovery_token};

  PasswordRole role("tally_leak_" + tag, db_password);
  TestDatabase db;
  const std::string url = role.url_for(db.url());
  const std::string unreachable =
      "postgresql://tally:" + unreachable_password + "@127.0.0.1:1/tally?connect_timeout=1";
  TempDir files;
  const std::string collector_token_file = files.write("collector.token", collector_token + "\n");
  const std::string wrong_token_file = files.write("wrong.token", wrong_token + "\n");
  const std::string discovery_token_file = files.write("discovery.token", discovery_token + "\n");

  RegistryProcess registry(url,
                           "auth:\n  tokens:\n"
                           "    - {name: root, role: admin, sha256: " +
                               to_hex(sha256(admin_token)) +
                               "}\n"
                               "    - {name: app, role: producer, sha256: " +
                               to_hex(sha256(producer_token)) +
                               "}\n"
                               "    - {name: coll, role: collector, token_file: " +
                               collector_token_file + "}\n");
  // pgstats discovery hands out a URL with a password in it (for a server that is not there).
  FakeProducer discovery([&](const HttpRequest& r) {
    if (r.header("authorization") != "Bearer " + discovery_token) {
      return HttpResponse::error(401, "unauthorized", "no");
    }
    return HttpResponse::json(200, "[{\"name\": \"discovered\", \"url\": \"postgresql://mon:" +
                                       discovered_password + "@127.0.0.1:1/postgres\"}]");
  });
  const std::string monitoring =
      "postgres_monitoring:\n  interval: 200ms\n  query_timeout: 1s\n  targets:\n"
      "    static:\n"
      "      - {name: main, url: \"" +
      url +
      "\"}\n"
      "      - {name: down, url: \"" +
      unreachable +
      "\"}\n"
      "    api: {url: \"http://" +
      discovery.address() + "/targets\", token_file: " + discovery_token_file +
      ", refresh_interval: 200ms}\n";
  const auto registry_yaml = [&](const std::string& token_file) {
    return "registry: {url: \"" + registry.url() + "\", token_file: " + token_file +
           ", heartbeat_interval: 200ms, refresh_interval: 200ms}\n";
  };
  TempDir state, wrong_state;
  CollectorProcess collector(
      collector_yaml(url, state.path(), registry_yaml(collector_token_file) + monitoring));
  CollectorProcess refused(
      collector_yaml(url, wrong_state.path(), registry_yaml(wrong_token_file)));

  // Refusals of every kind at the registry.
  for (const std::string& token : {wrong_token, producer_token, std::string()}) {
    CHECK(call("POST", registry.url() + "/v1/collectors",
               "{\"id\":\"" + Uuid::random().to_string() + "\",\"address\":\"127.0.0.1:1\"}", token)
              .status >= 400);
    CHECK(call("GET", registry.url() + "/v1/producers", "", token).status >= 400);
  }
  CHECK(call("POST", registry.url() + "/v1/producers", "{not json", admin_token).status == 400);
  // tallyctl with a wrong token, and with a database URL that has a password and no server.
  const CommandResult ctl_token =
      tallyctl(registry.url(), {"--token", wrong_token, "producer", "list"});
  CHECK(ctl_token.exit_code == 1);
  const CommandResult ctl_db = tallyctl(registry.url(), {"--db", unreachable, "schema", "list"});
  CHECK(ctl_db.exit_code == 1);
  // A registry whose database is down.
  TempDir down_dir;
  ChildProcess down_registry({TALLY_REGISTRY_PATH, "--config",
                              down_dir.write("registry.yaml",
                                             "listen: 127.0.0.1:0\n"
                                             "database: {url: \"" +
                                                 unreachable + "\"}\n"),
                              "--log-level", "debug"},
                             down_dir.path());

  // Wait until each error has happened and been logged.
  REQUIRE_MESSAGE(eventually([&] { return refused.log().find("401") != std::string::npos; }),
                  refused.log());
  REQUIRE_MESSAGE(
      eventually([&] {
        const std::string log = collector.log();
        return log.find("down") != std::string::npos &&
               log.find("discovered") != std::string::npos &&
               collector.metric("tally_collector_registry_heartbeats_total").value_or(0) > 0;
      }),
      collector.log());
  REQUIRE(eventually(
      [&] { return down_registry.stderr_text().find("127.0.0.1:1") != std::string::npos; }));
  REQUIRE(eventually([&] {
    return collector.metric("tally_collector_pgstats_connect_errors_total", "target=\"down\"")
                   .value_or(0) > 0 &&
           collector.metric("tally_collector_pgstats_connect_errors_total", "target=\"discovered\"")
                   .value_or(0) > 0;
  }));

  const std::vector<std::pair<std::string, std::string>> outputs = {
      {"registry log", registry.log()},
      {"registry /metrics", call("GET", registry.url() + "/metrics").body},
      {"collector log", collector.log()},
      {"collector /metrics", collector.get("/metrics").body},
      {"collector /producers", collector.get("/producers").body},
      {"collector /healthz", collector.get("/healthz").body},
      {"refused collector log", refused.log()},
      {"registry without database log", down_registry.stderr_text()},
      {"tallyctl (wrong token)", ctl_token.out + ctl_token.err},
      {"tallyctl (database down)", ctl_db.out + ctl_db.err},
  };
  for (const auto& [where, text] : outputs) {
    CAPTURE(where);
    CHECK(!text.empty());
    for (const std::string& secret : secrets) {
      CAPTURE(secret);
      const std::size_t at = text.find(secret);
      CHECK_MESSAGE(at == std::string::npos,
                    "leaked: …" << text.substr(at < 200 ? 0 : at - 200, 400) << "…");
    }
  }
  // The URLs were logged, redacted, so the test did look at messages that name them.
  CHECK(collector.log().find(":***@") != std::string::npos);
  CHECK(down_registry.stderr_text().find(":***@") != std::string::npos);
}

namespace {

// A file of this repository, by its path from the top.
std::string repository_file(const std::string& path) {
  const std::string here = __FILE__;
  const std::string text = read_text_file(here.substr(0, here.rfind("/tests/e2e/")) + "/" + path);
  REQUIRE_MESSAGE(!text.empty(), path);
  return text;
}

// Runs `sql` as `role` on the superuser connection `conn`; the error message ("" if it worked).
std::string error_as(pg::Connection& conn, const std::string& role, const std::string& sql) {
  REQUIRE(conn.exec("SET ROLE " + role).ok());
  auto r = conn.exec(sql);
  REQUIRE(conn.exec("RESET ROLE").ok());
  return r.ok() ? "" : r.error();
}

}  // namespace

TEST_CASE("operations: the daemons work under the least-privileged roles of tools/systemd") {
  TestDatabase db;
  auto admin = db.connect();
  const auto run = [&](const std::string& path) {
    auto r = admin->exec(repository_file(path));
    REQUIRE_MESSAGE(r.ok(), path << ": " << r.error());
  };
  run("tools/systemd/roles.sql");
  // The migrations, applied by the owner as docs/operations.md says: one start of tally-registry.
  {
    RegistryProcess owner(url_with_user(db.url(), "tally_owner"));
    REQUIRE(owner.stop() == 0);
  }
  CHECK(query_scalar(db.url(),
                     "SELECT tableowner FROM pg_tables WHERE schemaname = 'tally' "
                     "AND tablename = 'producers'") == "tally_owner");
  run("tools/systemd/grants.sql");

  RegistryProcess registry(url_with_user(db.url(), "tally_registry"));
  CounterProducer producer("sec_grants", 3);
  TempDir state;
  CollectorProcess collector(collector_yaml(url_with_user(db.url(), "tally_collector"),
                                            state.path(),
                                            "registry: {url: \"" + registry.url() +
                                                "\", heartbeat_interval: 200ms, "
                                                "refresh_interval: 200ms}\n"));
  const std::string id = Uuid::random().to_string();
  REQUIRE(eventually([&] {
    return call("POST", registry.url() + "/v1/producers",
                "{\"id\":\"" + id + "\",\"address\":\"" + producer.address() +
                    "\",\"interval_ms\":200}")
               .status == 201;
  }));
  // Registered, assigned, collected, its schema and series stored, its samples copied in.
  REQUIRE_MESSAGE(eventually([&] {
                    return query_scalar(db.url(),
                                        "SELECT count(*) FROM tally.measurements_cumulative_u64 m "
                                        "JOIN tally.timeseries t USING (timeseries_key) WHERE "
                                        "t.timeseries_name = 'sec_grants:ticks'") != "0";
                  }),
                  collector.log());
  CHECK(collector.producer(id).at("counts").at("successes").to_number<uint64_t>() > 0);
  // A reader sees the series through its view.
  CHECK(error_as(*admin, "tally_reader", "SELECT count(*) FROM tally_ts.\"sec_grants:ticks\"") ==
        "");
  // And no role can do more than its part.
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"tally_registry", "SELECT count(*) FROM tally.timeseries"},
      {"tally_registry", "SELECT count(*) FROM tally.measurements_cumulative_u64"},
      {"tally_registry", "DROP TABLE tally.collectors"},
      {"tally_collector", "DELETE FROM tally.producers"},
      {"tally_collector", "DELETE FROM tally.schema_migrations"},
      {"tally_collector", "DROP TABLE tally.timeseries"},
      {"tally_reader", "INSERT INTO tally.timeseries_schema (timeseries_name) VALUES ('x')"},
      {"tally_reader", "SELECT count(*) FROM tally.producers"},
  };
  for (const auto& [role, sql] : refused) {
    CAPTURE(role + ": " + sql);
    const std::string error = error_as(*admin, role, sql);
    CHECK_MESSAGE((error.find("permission denied") != std::string::npos ||
                   error.find("must be owner") != std::string::npos),
                  error);
  }
  // The collector's own upkeep (partitions, views, its own samples at stop) met no refusal.
  REQUIRE(collector.stop() == 0);
  CHECK_MESSAGE(collector.log().find("permission denied") == std::string::npos, collector.log());
  CHECK(registry.log().find("permission denied") == std::string::npos);
  run("tools/systemd/grants.sql");  // idempotent, also with the collector's partitions in place
}
