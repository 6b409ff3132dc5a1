// The explorer (`eventmart explore`): runs root seeds like the swarm, and where a timeline does
// something rare for the first time it forks the running world into children, each of which
// reseeds the day's random streams from there (sim/recipe.h) and lives on to the end of the
// day and the usual checks. A bug that needs two rare events in sequence is then found with
// about p1 + p2 timelines instead of p1 x p2 (Antithesis, moonpool-explorer).
//
// Splitpoints, at quiet points while the store is open (faults still on), when the marks so far
// show (docs/simulation.md, "Exploring from snapshots"):
//   - a mark hit for the first time in the whole exploration;
//   - a mark hit more often in one timeline than ever before, by powers of two (1, 2, 4, ...:
//     a count that doubled is a new situation, one more of the same is not);
//   - two marks hit in one timeline that no timeline hit together before;
//   - a rare mark (reached while the store is open by fewer than 1 in 32 timelines so far) hit
//     for the first time in this timeline: rare states are worth more futures than one.
// Energy: every timeline (a root or a child) costs one unit of the budget; children may take
// at most half of it (the roots find the first rare events), and each root run earns half a
// child (breadth first: at the first root every mark is new). A splitpoint gets `children`
// children at depth 1, half as many at each depth below, none past `max_depth`; each mark
// opens at most `splits_per_mark` splitpoints for news in the whole exploration. A rare state
// gets twice the children, a whole child per root, and no per-mark cap: it is what the
// roots are run to find. Every other child of a splitpoint (three in four at a rare state) is a
// storm child (sim/recipe.h), whose faults for ten minutes are a fresh swarm mix with every
// process fault on at up to ten times the swarm's strongest rate. When the first half of a
// splitpoint's children discover nothing new (no rule above fired anywhere while they ran),
// it stops and the rest of its energy stays in the pool (not at a rare state: its futures are
// the point). A timeline that has just split does not split again within a minute of virtual
// time (a child's future must diverge first), nor does the parent of a split (its own future
// from there is one more of its children's).
//
// Processes: `jobs` workers are forked from this (single-threaded) process; each runs roots one
// after another and forks its children itself, waiting for each in turn, so at most `jobs`
// timelines run at once. Coverage, energy and results live in one shared anonymous mapping
// (atomics only). A process forks only with one thread and only the descriptors it had when
// the worker started (checked before every fork: /proc/self/task and /proc/self/fd); a child
// ends with _exit, never running the parent's destructors or flushing its buffers.
//
// With jobs = 1 an exploration is deterministic; with more, which worker discovers a mark first
// depends on timing, so the tree differs from run to run. Every timeline's recipe replays
// exactly either way (`sim --recipe`).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/marks.h"
#include "runs/seed_runner.h"
#include "sim/recipe.h"

namespace eventmart::runs {

struct ExploreOptions {
  RunPlan plan;                  // the day each root runs (swarm or not); no determinism check
  std::uint64_t first_root = 1;  // roots first_root..last_root, while the budget lasts
  std::uint64_t last_root = UINT64_MAX;
  std::uint64_t budget_timelines = 1000;  // 0: no limit in timelines
  double budget_cpu_seconds = 0;          // 0: no limit in CPU time
  unsigned jobs = 1;
  // One machine's share of a search over several (`--shard K/N`): the roots first_root +
  // (index - 1) + i * count, and 1/count of the budget (runs/seed_runner.h, Shard).
  Shard shard = {};
  unsigned children = 8;  // at a splitpoint of depth 1; half as many a level deeper
  unsigned max_depth = 3;
  unsigned splits_per_mark = 8;
  bool storms = true;  // every other child (three in four at a rare state) is a storm child
  bool stop_at_first_failure = false;  // time to bug (bench): stop everything at the first
  // How the explorer forks (tests make it fail: a clear error, every process reaped).
  pid_t (*fork_process)() = ::fork;
};

struct ExploredFailure {
  sim::Recipe recipe;
  std::vector<std::string> failures;  // as SeedOutcome::failures(), or "crashed (signal N)"
  std::string assertion;              // the check that failed, if one did
  std::uint64_t trace_hash = 0;       // of the timeline as it ran (0: it crashed)
  double cpu_seconds = 0;             // the exploration's CPU time when it was found
};

struct ExploreSummary {
  std::uint64_t roots = 0;      // root timelines run
  std::uint64_t timelines = 0;  // roots and children
  std::uint64_t splitpoints = 0;
  std::uint64_t failing = 0;    // failing timelines
  unsigned max_depth = 0;       // the deepest timeline (a root is depth 0)
  MarkCounts mark_timelines{};  // timelines that hit each mark
  double cpu_seconds = 0;       // of every timeline, summed
  double wall_seconds = 0;
  double cpu_to_first_failure = -1;  // CPU-seconds until the first failing timeline; -1: none
  std::map<std::string, std::uint64_t> failed_by;  // over the kept failures
  std::vector<ExploredFailure> failures;           // the first ones found (at most kKept)
  static constexpr std::size_t kKept = 64;
};

struct ExploreProgress {
  std::uint64_t roots, timelines, failing, marks_reached;
  unsigned max_depth;
  double wall_seconds;
};

// Runs an exploration. `progress` is called from this process about twice a second. Throws
// std::invalid_argument for options that cannot run (as run_simulation would) and
// std::runtime_error when this process cannot fork safely (more than one thread) or a fork
// failed (then after every process it started has ended). Every process it forks dies with
// its parent (PR_SET_PDEATHSIG): an exploration interrupted anyhow leaves none behind, and its
// shared memory is an anonymous mapping, gone with the last of them.
ExploreSummary explore(const ExploreOptions& options,
                       const std::function<void(const ExploreProgress&)>& progress = {});

}  // namespace eventmart::runs
