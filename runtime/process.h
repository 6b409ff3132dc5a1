// The one way eventmart starts another program: `eventmart chaos` its `serve` processes and
// its broker, the tests and benchmarks theirs.
//
// What every child gets, whoever starts it:
// - only what it is given: every descriptor of this process above stderr is closed in the
//   child (a copy of a proxy's or a client's socket in a child would keep that connection open
//   after it was closed here);
// - stdout and stderr appended to a log file (or /dev/null), stdin from /dev/null or a pipe;
// - a process group of its own (a terminal's Ctrl-C is for the parent, which stops its
//   children itself), and death with its parent (PR_SET_PDEATHSIG: nothing outlives a killed
//   test or chaos run);
// - optionally an RLIMIT_NOFILE, and a signal mask with nothing blocked.
//
// Between fork and exec the child makes only async-signal-safe system calls, on memory made
// before the fork (the parent has Paho's and Asio's threads, which may hold locks). posix_spawn
// was the first choice; it cannot set PR_SET_PDEATHSIG or a resource limit in the child, so
// this is fork + exec with that discipline, in one place.
//
// A Process never signals a pid it does not hold: after it was reaped, or when the start
// failed, signal() does nothing (kill(0, ...) would signal this process's group, and
// kill(-1, ...) every process the user may signal: CI runs as root).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace eventmart::runtime {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0]: the program's path (not looked up in PATH)
  std::string log_file;           // stdout and stderr appended here; "" for /dev/null
  bool stdin_pipe = false;        // write_stdin() feeds it; else stdin is /dev/null
  int max_open_files = 0;         // > 0: the child's RLIMIT_NOFILE
  std::vector<std::string> env;   // "NAME=VALUE" set in the child, over this process's own
};

class Process {
 public:
  // Starts the program. Throws std::system_error when no process could be made; a program that
  // cannot be executed exits 127 (its log says nothing, wait() says 127).
  explicit Process(SpawnOptions options);
  ~Process();  // a child still running is killed (SIGKILL) and reaped
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // The child's pid while it is not reaped; 0 after.
  pid_t pid() const { return pid_; }
  // Not reaped yet: still running, or exited and not waited for (then reaps it, and false).
  bool running();
  // Sends `signal` to the child if it is not reaped. Never to pid 0 or -1.
  void signal(int signal);
  // Waits for the child to end; its exit status, or 128 + the signal that ended it. -1 when it
  // was reaped already.
  int wait();
  // As wait(), for at most `timeout`; nullopt while it still runs.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  // SIGKILL and reap.
  void kill_now();
  // SIGTERM (and SIGCONT, in case it is stopped); SIGKILL after `timeout`. Its exit status,
  // or -1 when it had to be killed or was not running.
  int terminate(std::chrono::milliseconds timeout);
  // Writes to the child's stdin (SpawnOptions::stdin_pipe); false when it cannot.
  bool write_stdin(const std::string& bytes);
  // Closes it: the child reads the end of its input.
  void close_stdin();

 private:
  int reaped(int status);  // the exit status from waitpid's, and forgets the pid
  pid_t pid_ = 0;
  int stdin_fd_ = -1;
};

// Runs a program to its end (stdout and stderr to `log_file`, or /dev/null); its exit status.
int run_to_end(const SpawnOptions& options);

// The path of a program from Debian's packages: $env_override when set, else the first of
// /usr/sbin, /usr/bin, /usr/local/sbin, /usr/local/bin that has it. Throws std::runtime_error
// naming the package to install.
std::string find_program(const std::string& name, const std::string& env_override,
                         const std::string& package);

}  // namespace eventmart::runtime
