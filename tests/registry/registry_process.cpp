#include "registry_process.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/test_db.h"
#include "tally/common/field.h"
#include "tally/common/http_client.h"

extern char** environ;

namespace tally::test {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The environment for a child: ours without the variables that would change what the binaries
// under test do, plus `env`.
std::vector<std::string> child_environment(const std::map<std::string, std::string>& env) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (name == "TALLY_DATABASE_URL" || name == "TALLY_REGISTRY_URL" || name == "TALLY_TOKEN" ||
        env.count(name)) {
      continue;
    }
    out.push_back(entry);
  }
  for (const auto& [name, value] : env) out.push_back(name + "=" + value);
  return out;
}

// fork + exec rather than posix_spawn, for PR_SET_PDEATHSIG: a test that crashes must not leave
// a registry running. The child only makes async-signal-safe calls before exec.
pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
            const std::string& out_path, const std::string& err_path) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::vector<std::string> environment = child_environment(env);
  std::vector<char*> envp;
  for (const std::string& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  REQUIRE_MESSAGE(pid >= 0, "fork: " << std::strerror(errno));
  if (pid == 0) {
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(126);
    const int in = open("/dev/null", O_RDONLY);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
      _exit(126);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  return pid;
}

// Waits for `pid` up to `timeout`; kills it after that. Returns the exit code, or 128 + signal.
int wait_for(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (true) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL_CHECK("process " << pid << " did not exit within " << timeout.count() << " ms");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

TempDir::TempDir() {
  std::string id = Uuid::random().to_string();
  path_ = (fs::temp_directory_path() / ("tally-test-" + id.substr(0, 13))).string();
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  const std::string path = path_ + "/" + name;
  std::ofstream(path) << content;
  return path;
}

RegistryProcess::RegistryProcess(const std::string& database_url, const std::string& extra_yaml) {
  dir_ = (fs::temp_directory_path() / ("tally-registry-" + Uuid::random().to_string())).string();
  fs::create_directories(dir_);
  const std::string config = dir_ + "/registry.yaml";
  std::ofstream(config) << "listen: 127.0.0.1:0\n"
                        << "database: {url: \"" << database_url << "\"}\n"
                        << extra_yaml;
  const std::string port_file = dir_ + "/port";
  pid_ = spawn(
      {TALLY_REGISTRY_PATH, "--config", config, "--port-file", port_file, "--log-level", "debug"},
      {}, dir_ + "/stdout", dir_ + "/stderr");
  const bool up = eventually([&] {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return true;  // exited: reported below
    }
    const std::string text = read_all(port_file);
    if (text.empty()) return false;
    port_ = static_cast<uint16_t>(std::stoi(text));
    return true;
  });
  REQUIRE_MESSAGE((up && pid_ > 0), "tally-registry did not start; its log:\n" << log());
}

RegistryProcess::~RegistryProcess() {
  if (pid_ > 0) {
    const int code = stop();
    CHECK_MESSAGE(code == 0, "tally-registry exited with " << code << "; its log:\n" << log());
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string RegistryProcess::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

int RegistryProcess::stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const int code = wait_for(pid_, std::chrono::seconds(30));
  pid_ = -1;
  return code;
}

std::string RegistryProcess::log() const { return read_all(dir_ + "/stderr"); }

CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env) {
  TempDir dir;
  const pid_t pid = spawn(argv, env, dir.path() + "/out", dir.path() + "/err");
  CommandResult result;
  result.exit_code = wait_for(pid, std::chrono::seconds(60));
  result.out = read_all(dir.path() + "/out");
  result.err = read_all(dir.path() + "/err");
  return result;
}

HttpResponse call(const std::string& method, const std::string& url, const std::string& body,
                  const std::string& token) {
  HttpHeaders headers;
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  HttpClientOptions options;
  options.timeout = std::chrono::seconds(30);
  auto r = http_request(options, method, url, body, headers);
  REQUIRE_MESSAGE(r.ok(), method << " " << url << ": " << r.error());
  return std::move(r).value();
}

}  // namespace tally::test
