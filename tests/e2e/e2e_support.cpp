#include "e2e_support.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "support/test_db.h"
#include "tally/common/http_client.h"
#include "tally/common/pg.h"

namespace tally::test {

std::string collector_yaml(const std::string& database_url, const std::string& state_dir,
                           const std::string& extra, const std::string& database_extra) {
  return "listen: 127.0.0.1:0\n"
         "state_dir: " +
         state_dir +
         "\n"
         "database: {url: \"" +
         database_url + "\", batch_interval: 100ms" + database_extra + "}\n" + extra;
}

CollectorProcess::CollectorProcess(const std::string& yaml) {
  const std::string config = dir_.write("collector.yaml", yaml);
  const std::string port_file = dir_.path() + "/port";
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{TALLY_COLLECTOR_PATH, "--config", config, "--port-file", port_file,
                               "--log-level", "debug"},
      dir_.path());
  bool exited = false;
  const bool up = eventually([&] {
    if (!process_->running()) return exited = true;
    const std::string text = read_text_file(port_file);
    if (text.empty()) return false;
    port_ = static_cast<uint16_t>(std::stoi(text));
    return true;
  });
  REQUIRE_MESSAGE((up && !exited), "tally-collector did not start; its log:\n" << log());
}

CollectorProcess::~CollectorProcess() {
  if (!stopped_) {
    const int code = stop();
    CHECK_MESSAGE(code == 0, "tally-collector exited with " << code << "; its log:\n" << log());
  }
}

HttpResponse CollectorProcess::get(const std::string& path) const {
  return call("GET", url() + path);
}

boost::json::value CollectorProcess::get_json(const std::string& path) const {
  const HttpResponse r = get(path);
  REQUIRE_MESSAGE(r.status == 200, "GET " << path << ": " << r.status << " " << r.body);
  return boost::json::parse(r.body);
}

std::optional<double> CollectorProcess::metric(const std::string& name,
                                               const std::string& labels) const {
  const std::string text = get("/metrics").body;
  const std::string prefix = labels.empty() ? name + " " : name + "{" + labels + "} ";
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(prefix.size()));
  }
  return std::nullopt;
}

boost::json::value CollectorProcess::producer(const std::string& id) const {
  const HttpResponse r = get("/producers/" + id);
  if (r.status == 404) return nullptr;
  REQUIRE_MESSAGE(r.status == 200, "GET /producers/" << id << ": " << r.status << " " << r.body);
  return boost::json::parse(r.body);
}

int CollectorProcess::stop() {
  stopped_ = true;
  return process_->signal_and_wait(SIGTERM);
}

void CollectorProcess::kill() {
  stopped_ = true;
  process_->signal_and_wait(SIGKILL);
}

std::string CollectorProcess::log() const { return process_->stderr_text(); }

ExampleProducer::ExampleProducer(const std::string& id) : id_(id) {
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{TALLY_EXAMPLE_PRODUCER_PATH, "--listen", "127.0.0.1:0", "--id", id,
                               "--interval", "500ms"},
      dir_.path());
  // "… info producer_serving address=127.0.0.1:41234 id=… collect=…"
  const bool up = eventually([&] {
    const std::string log = process_->stderr_text();
    const std::size_t at = log.find("producer_serving address=");
    if (at == std::string::npos) return !process_->running();
    const std::size_t start = at + std::strlen("producer_serving address=");
    const std::size_t end = log.find(' ', start);
    if (end == std::string::npos) return false;
    address_ = log.substr(start, end - start);
    return true;
  });
  REQUIRE_MESSAGE((up && !address_.empty()), "tally-example-producer did not start:\n"
                                                 << process_->stderr_text());
}

ExampleProducer::~ExampleProducer() {
  const int code = process_->signal_and_wait(SIGTERM);
  CHECK_MESSAGE(code == 0, "tally-example-producer exited with " << code);
}

std::vector<std::vector<std::string>> query_rows(const std::string& url, const std::string& sql) {
  auto conn = pg::Connection::open(url, std::chrono::seconds(5));
  REQUIRE_MESSAGE(conn.ok(), conn.error());
  auto rows = (*conn)->exec(sql);
  REQUIRE_MESSAGE(rows.ok(), sql << ": " << rows.error());
  std::vector<std::vector<std::string>> out;
  for (int r = 0; r < rows->size(); ++r) {
    std::vector<std::string> row;
    for (int c = 0; c < rows->columns(); ++c) row.emplace_back(rows->get(r, c));
    out.push_back(std::move(row));
  }
  return out;
}

std::string query_scalar(const std::string& url, const std::string& sql) {
  const auto rows = query_rows(url, sql);
  return rows.empty() || rows[0].empty() ? "" : rows[0][0];
}

CommandResult tallyctl(const std::string& registry_url, std::vector<std::string> args) {
  args.insert(args.begin(), TALLY_TALLYCTL_PATH);
  return run_command(args, {{"TALLY_REGISTRY_URL", registry_url}});
}

}  // namespace tally::test
