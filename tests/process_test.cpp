// The one process launcher (runtime/process.h): a child gets only what it is given, a program
// that cannot run is an exit status, a pid that was reaped is never signalled (kill(0) would hit
// this process's group, kill(-1) every process), and a child dies with its parent.
#include "runtime/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/mosquitto.h"  // wait_until

namespace eventmart::test {
namespace {

using runtime::Process;
using runtime::SpawnOptions;
using runtime::wait_until;

// A fresh directory, removed with the object.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/eventmart-process-test-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

SpawnOptions shell(const std::string& script, const std::string& log) {
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.log_file = log;
  return o;
}

TEST(Process, AChildHasNoneOfItsParentsDescriptors) {
  TempDir dir;
  // Not close-on-exec, and numbered well above stderr.
  const int mine = ::open(dir.file("held").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(::dup2(mine, 57), 0);
  Process p(shell("ls /proc/$$/fd", dir.file("fds.log")));
  EXPECT_EQ(p.wait(), 0);
  std::istringstream fds(read_file(dir.file("fds.log")));
  std::string fd;
  std::vector<std::string> seen;
  while (fds >> fd) seen.push_back(fd);
  EXPECT_EQ(seen, (std::vector<std::string>{"0", "1", "2"}));
  ::close(57);
  ::close(mine);
}

TEST(Process, AProgramThatCannotRunEndsWith127) {
  TempDir dir;
  Process p(SpawnOptions{{dir.file("no-such-program")}, "", false, 0, {}});
  EXPECT_EQ(p.wait(), 127);
  EXPECT_EQ(p.pid(), 0);
}

std::atomic<int> usr1{0};

TEST(Process, AReapedChildIsNeverSignalledAndItsPidIsGone) {
  // A group of this test's own: should the guard fail, kill(0, ...) reaches no one else.
  ::setpgid(0, 0);
  struct sigaction count {};
  count.sa_handler = [](int) { ++usr1; };
  struct sigaction before {};
  ::sigaction(SIGUSR1, &count, &before);
  TempDir dir;
  Process p(shell("exit 3", dir.file("log")));
  EXPECT_EQ(p.wait(), 3);
  EXPECT_EQ(p.pid(), 0);
  // With the pid forgotten, a signal must go nowhere: kill(0, SIGUSR1) would reach this test.
  p.signal(SIGUSR1);
  p.kill_now();
  EXPECT_EQ(p.terminate(std::chrono::milliseconds(10)), -1);
  EXPECT_EQ(p.wait(), -1);
  EXPECT_EQ(usr1.load(), 0) << "a signal reached this process's group";
  ::sigaction(SIGUSR1, &before, nullptr);
}

TEST(Process, ARunningChildIsKilledAndReapedWithItsHandle) {
  TempDir dir;
  pid_t pid = 0;
  {
    Process p(shell("exec sleep 100", dir.file("log")));
    pid = p.pid();
    ASSERT_GT(pid, 0);
    EXPECT_TRUE(p.running());
  }
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH) << "killed and reaped: no zombie left";
}

TEST(Process, AChildDiesWithItsParent) {
  TempDir dir;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const std::string log = dir.file("log");
  const pid_t parent = ::fork();  // a parent of its own, which dies without its destructors
  if (parent == 0) {
    Process child(shell("exec sleep 100", log));
    const pid_t pid = child.pid();
    (void)!::write(pipe_fds[1], &pid, sizeof pid);
    ::_exit(0);
  }
  pid_t child = 0;
  ASSERT_EQ(::read(pipe_fds[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  ::waitpid(parent, nullptr, 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  // The orphan is reparented and killed by PR_SET_PDEATHSIG; not ours to reap, so poll.
  EXPECT_TRUE(wait_until([&] { return ::kill(child, 0) != 0; }))
      << "pid " << child << " outlived its parent";
}

TEST(Process, ItsLimitEnvironmentAndStdinAreWhatItWasGiven) {
  TempDir dir;
  SpawnOptions o = shell("ulimit -n; echo \"$EVENTMART_PROCESS_TEST\"; cat", dir.file("log"));
  o.max_open_files = 50;
  o.env = {"EVENTMART_PROCESS_TEST=given"};
  o.stdin_pipe = true;
  Process p(o);
  EXPECT_TRUE(p.write_stdin("from the pipe\n"));
  p.close_stdin();
  EXPECT_EQ(p.wait(), 0);
  EXPECT_EQ(read_file(dir.file("log")), "50\ngiven\nfrom the pipe\n");
}

}  // namespace
}  // namespace eventmart::test
