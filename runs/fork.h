// What forking a running simulated world takes (the explorer, the localizer): a process with
// one thread and no descriptor it did not have when it began, children that die with their
// parent, and CPU time per process.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "sim/world.h"

namespace eventmart::runs {

// This process's CPU time, in nanoseconds.
std::uint64_t cpu_ns();

// The threads of this process (/proc/self/task).
std::size_t threads();

// The descriptors open in this process (/proc/self/fd, without the one that lists them).
std::set<int> open_fds();

// In a child just forked from `parent`: die with it (PR_SET_PDEATHSIG, SIGKILL), and at once if
// it is already gone. An interrupted run leaves no process behind.
void die_with_parent(pid_t parent);

// Throws unless a world with these options may be forked by `who` ("explore", "localize"):
// std::invalid_argument for options it cannot run or databases on real files (a copy would
// share them), std::runtime_error for a process with more than one thread.
void check_world_forkable(const sim::SimOptions& options, const std::string& who);

// Checks (always on) that this process may fork a world: one thread, and no descriptor beyond
// `allowed` (a world holds no real file or socket).
void check_fork_safe(const std::set<int>& allowed);

}  // namespace eventmart::runs
