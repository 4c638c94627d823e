#include "support/child_process.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/deadline.h"
#include "tally/common/field.h"

extern char** environ;

namespace tally::test {
namespace {

namespace fs = std::filesystem;

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

// What the sanitizers print, one marker each: ASan's, LSan's and TSan's reports name their
// sanitizer; UBSan's name it only in their SUMMARY line (tools/test asks for one), so its
// "file:line:col: runtime error: …" first line is matched too.
constexpr const char* kSanitizerMarkers[] = {
    "AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "UndefinedBehaviorSanitizer",
    ": runtime error: "};

}  // namespace

std::string sanitizer_report(const std::string& text) {
  std::size_t at = std::string::npos;
  for (const char* marker : kSanitizerMarkers) at = std::min(at, text.find(marker));
  if (at == std::string::npos) return "";
  // From the start of the report's first line, stack included: that is what the reader needs.
  const std::size_t line = text.rfind('\n', at);
  return text.substr(line == std::string::npos ? 0 : line + 1, 20000);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// fork + exec rather than posix_spawn, for PR_SET_PDEATHSIG. The child only makes
// async-signal-safe calls before exec.
ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& dir,
                           const std::map<std::string, std::string>& env)
    : program_(argv.empty() ? "" : argv[0]), dir_(dir) {
  const std::string out = dir_ + "/stdout";
  const std::string err = dir_ + "/stderr";
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::vector<std::string> environment = child_environment(env);
  std::vector<char*> envp;
  for (const std::string& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  pid_ = fork();
  REQUIRE_MESSAGE(pid_ >= 0, "fork: " << std::strerror(errno));
  if (pid_ == 0) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(126);
    const int in_fd = open("/dev/null", O_RDONLY);
    const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in_fd < 0 || out_fd < 0 || err_fd < 0 || dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 ||
        dup2(err_fd, 2) < 0) {
      _exit(126);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (running()) signal_and_wait(SIGKILL);
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    check_no_sanitizer_report();
    return false;
  }
  return true;
}

int ChildProcess::signal_and_wait(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  if (signal != 0) ::kill(pid_, signal);
  const auto deadline = std::chrono::steady_clock::now() + test_deadline(timeout);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) != pid_) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      FAIL_CHECK("process " << pid_ << " did not exit within " << test_deadline(timeout).count()
                            << " ms (signal " << signal << ")");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
  check_no_sanitizer_report();
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

void ChildProcess::check_no_sanitizer_report() const {
  const std::string report = sanitizer_report(stderr_text());
  if (!report.empty()) FAIL_CHECK(program_ << " reported a sanitizer finding:\n" << report);
}

std::string ChildProcess::stdout_text() const { return read_text_file(dir_ + "/stdout"); }
std::string ChildProcess::stderr_text() const { return read_text_file(dir_ + "/stderr"); }

CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env) {
  TempDir dir;
  ChildProcess child(argv, dir.path(), env);
  CommandResult result;
  result.exit_code = child.signal_and_wait(0, std::chrono::seconds(60));
  result.out = child.stdout_text();
  result.err = child.stderr_text();
  return result;
}

TempDir::TempDir() {
  const std::string id = Uuid::random().to_string();
  path_ = (fs::temp_directory_path() / ("tally-test-" + id)).string();
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

}  // namespace tally::test
