// Running the real binaries from tests: a child process with its output in files, a one-shot
// command with its output captured, and a temporary directory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace tally::test {

// A child process with stdin from /dev/null and stdout/stderr in `dir`/stdout and `dir`/stderr.
// `env` is added to (or replaces entries of) the test's environment, from which
// TALLY_DATABASE_URL, TALLY_REGISTRY_URL and TALLY_TOKEN are removed unless set in `env`: the
// tests say what the binaries under test get. The child dies with the test process, so a
// crashed test leaves no daemon running.
//
// Sanitizer builds (tools/test --sanitize, --tsan): the binaries under test are sanitized too
// and their reports go to their stderr. Whenever a child is found to have ended (running(),
// signal_and_wait(), the destructor), its stderr is scanned and a sanitizer report in it fails
// the current test, whatever the exit code the test expected.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& dir,
               const std::map<std::string, std::string>& env = {});
  ~ChildProcess();  // SIGKILL if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal` (0: none) and waits up to `timeout` (scaled by test_deadline), then kills it
  // and fails the check. Returns the exit code, or 128 + the signal that ended it.
  int signal_and_wait(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  void check_no_sanitizer_report() const;

  std::string program_;
  std::string dir_;
  pid_t pid_ = -1;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] is the program path) to completion, up to 60 s (scaled by
// test_deadline); environment and sanitizer check as for ChildProcess.
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env = {});

// The first sanitizer report (ASan, LSan, UBSan, TSan) in a process's `text` output, from the
// start of its line, at most 20,000 characters; "" when there is none.
std::string sanitizer_report(const std::string& text);

// A directory of its own under /tmp, removed with its files by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  // The path of `name` inside the directory.
  std::string sub(const std::string& name) const { return path_ + "/" + name; }
  // Writes `content` to `name` inside the directory; returns the file's path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// The whole content of a file ("" when it cannot be read).
std::string read_text_file(const std::string& path);

}  // namespace tally::test
