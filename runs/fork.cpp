#include "runs/fork.h"

#include <dirent.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <ctime>
#include <stdexcept>

#include "core/assert.h"

namespace eventmart::runs {

std::uint64_t cpu_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(t.tv_nsec);
}

std::size_t threads() {
  std::size_t n = 0;
  if (DIR* dir = ::opendir("/proc/self/task")) {
    while (const dirent* e = ::readdir(dir)) n += e->d_name[0] != '.';
    ::closedir(dir);
  }
  return n;
}

// The descriptors open in this process (not the one that lists them).
std::set<int> open_fds() {
  std::set<int> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  const int own = ::dirfd(dir);
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd != own) fds.insert(fd);
  }
  ::closedir(dir);
  return fds;
}

void die_with_parent(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);  // the parent was gone before prctl took effect
}

void check_world_forkable(const sim::SimOptions& options, const std::string& who) {
  if (const sim::OptionCheck error = sim::validate(options)) {
    throw std::invalid_argument(error->describe());
  }
  if (!options.native_folder.empty()) {
    throw std::invalid_argument(who + " forks the world: no databases on real files");
  }
  if (const std::size_t n = threads(); n != 1) {
    throw std::runtime_error(who +
                             " forks: it must run in a process with one thread (this one has " +
                             std::to_string(n) + ")");
  }
}

void check_fork_safe(const std::set<int>& allowed) {
  const std::size_t n = threads();
  EVENTMART_ASSERT(n == 1, n);
  for (const int fd : open_fds()) EVENTMART_ASSERT(allowed.count(fd) == 1, fd);
}

}  // namespace eventmart::runs
