#include "runtime/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>

namespace eventmart::runtime {

Process::Process(SpawnOptions options) {
  if (options.argv.empty()) throw std::invalid_argument("a process needs a program");
  // Everything the child uses is made here, before the fork.
  std::vector<char*> argv;
  for (std::string& a : options.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment;  // this process's, with options.env over it
  std::vector<char*> envp;
  if (!options.env.empty()) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      const std::string_view entry(*e);
      const std::string_view name = entry.substr(0, entry.find('='));
      bool replaced = false;
      for (const std::string& mine : options.env) {
        replaced = replaced || mine.compare(0, name.size() + 1, std::string(name) + "=") == 0;
      }
      if (!replaced) environment.emplace_back(entry);
    }
    environment.insert(environment.end(), options.env.begin(), options.env.end());
    for (std::string& e : environment) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  const std::string log = options.log_file.empty() ? "/dev/null" : options.log_file;
  const rlimit files{static_cast<rlim_t>(options.max_open_files),
                     static_cast<rlim_t>(options.max_open_files)};
  int pipe_fds[2] = {-1, -1};
  if (options.stdin_pipe && ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe");
  }
  sigset_t none;
  sigemptyset(&none);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    if (pipe_fds[0] >= 0) ::close(pipe_fds[0]);
    if (pipe_fds[1] >= 0) ::close(pipe_fds[1]);
    throw std::system_error(error, std::generic_category(), "fork");
  }
  if (pid == 0) {
    // The child: async-signal-safe calls only, then exec or _exit.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    ::setpgid(0, 0);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) ::_exit(126);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    const int in = pipe_fds[0] >= 0 ? pipe_fds[0] : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0) ::_exit(126);
    ::dup2(in, STDIN_FILENO);
    ::close_range(3, ~0U, 0);  // nothing else of the parent goes along
    if (files.rlim_cur > 0 && ::setrlimit(RLIMIT_NOFILE, &files) != 0) ::_exit(126);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (envp.empty()) {
      ::execv(argv[0], argv.data());
    } else {
      ::execve(argv[0], argv.data(), envp.data());
    }
    ::_exit(127);
  }
  pid_ = pid;
  if (pipe_fds[0] >= 0) ::close(pipe_fds[0]);
  stdin_fd_ = pipe_fds[1];
}

Process::~Process() {
  kill_now();
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
}

int Process::reaped(int status) {
  pid_ = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped(status);
    return false;
  }
  return true;
}

void Process::signal(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

int Process::wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) {
      pid_ = 0;
      return -1;
    }
  }
  return reaped(status);
}

std::optional<int> Process::wait_for(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) return reaped(status);
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Process::kill_now() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  wait();
}

int Process::terminate(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGTERM);
  if (const std::optional<int> status = wait_for(timeout)) return *status;
  kill_now();
  return -1;
}

bool Process::write_stdin(const std::string& bytes) {
  if (stdin_fd_ < 0) return false;
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(stdin_fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

void Process::close_stdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

int run_to_end(const SpawnOptions& options) {
  Process process(options);
  return process.wait();
}

std::string find_program(const std::string& name, const std::string& env_override,
                         const std::string& package) {
  if (const char* p = std::getenv(env_override.c_str()); p != nullptr && *p != '\0') return p;
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/usr/local/sbin/", "/usr/local/bin/"}) {
    const std::string path = std::string(dir) + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  throw std::runtime_error(name + " not found (install the Debian package '" + package +
                           "', or set " + env_override + ")");
}

}  // namespace eventmart::runtime
