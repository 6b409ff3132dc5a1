// A fork that fails, simulated (the explorer's and the localizer's fork_process): after
// `forks_left` forks in a process, EAGAIN. Each process has its own count (a forked child
// starts from its parent's).
#pragma once

#include <unistd.h>

#include <cerrno>

namespace eventmart::test {

inline int forks_left = 0;

inline pid_t failing_fork() {
  if (forks_left-- <= 0) {
    errno = EAGAIN;
    return -1;
  }
  return ::fork();
}

}  // namespace eventmart::test
