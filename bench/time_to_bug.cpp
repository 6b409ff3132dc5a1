// Time to bug: for every bug variant (sim --bug list), the CPU-seconds until the first failing
// timeline, with the swarm (seeds one after another from a root, one thread) and with the
// explorer (the same roots, one worker, stopping at its first failure), from several root
// seeds; prints each median and the ratio swarm / explorer (above 1: the explorer was faster).
//
//   eventmart-ttb-bench [--customers N] [--roots R] [--max-seeds M] [--deep-customers C]
//                       [--deep-roots Q] [--deep-max-seeds D] [--only NAME]
//                       [--no-storms] [--explorer-only]
//
// Deep variants (each needs two rare events in sequence, sim/bugs/bugs.h) run days of C
// customers (their rates were measured at 1000), from Q roots, with D seeds or roots each.
// scripts/time-to-bug.sh runs it longer. --no-storms: the explorer without storm children
// (sim/recipe.h), to see what they add; --explorer-only: no swarm column (to try the explorer's
// settings; the ratio needs both sides from one run).
//
// Both sides measure CPU time, not wall time. A side that finds nothing within M seeds (the
// swarm) or M root timelines (the explorer, which may run as many children besides) counts as
// "> its CPU time" and its median is marked with '>'.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "bench/flags.h"
#include "runs/explorer.h"
#include "runs/seed_runner.h"
#include "sim/bugs/bugs.h"

namespace {

using namespace eventmart;

double cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

struct Found {
  double cpu = 0;
  bool found = false;
};

// The swarm side from several roots: each seed runs once and keeps its CPU time, and a root's
// time to bug is the sum over its seeds up to its first failing one: the figure running from
// each root alone would give, without running twice the seeds that roots 1000 apart share
// when the budget is over 1000 seeds.
class SwarmSeeds {
 public:
  explicit SwarmSeeds(const runs::RunPlan& plan) : plan_(plan) {}
  Found from(std::uint64_t root, std::uint64_t max_seeds) {
    double cpu = 0;
    for (std::uint64_t seed = root; seed < root + max_seeds; ++seed) {
      const Seed& s = run(seed);
      cpu += s.cpu;
      if (s.failed) return {cpu, true};
    }
    return {cpu, false};
  }

 private:
  struct Seed {
    double cpu;
    bool failed;
  };
  const Seed& run(std::uint64_t seed) {
    if (const auto it = seeds_.find(seed); it != seeds_.end()) return it->second;
    const double start = cpu_seconds();
    bool failed = true;  // the run could not go on (a corrupt database) unless it returns
    try {
      failed = !runs::run_seed(plan_, seed).passed();
    } catch (const std::exception&) {
    }
    return seeds_.emplace(seed, Seed{cpu_seconds() - start, failed}).first->second;
  }
  runs::RunPlan plan_;
  std::map<std::uint64_t, Seed> seeds_;
};

Found explorer_to_bug(const runs::RunPlan& plan, std::uint64_t root, std::uint64_t max_seeds,
                      bool storms) {
  runs::ExploreOptions e;
  e.storms = storms;
  e.plan = plan;
  e.first_root = root;
  e.last_root = root + max_seeds - 1;
  e.budget_timelines = 2 * max_seeds;
  e.jobs = 1;
  e.stop_at_first_failure = true;
  const runs::ExploreSummary s = runs::explore(e);
  if (s.failing > 0) return {s.cpu_to_first_failure, true};
  return {s.cpu_seconds, false};
}

struct Median {
  double seconds;
  bool bounded;  // some runs found nothing: the true median may be higher
};

Median median(std::vector<Found> runs) {
  std::sort(runs.begin(), runs.end(), [](const Found& a, const Found& b) { return a.cpu < b.cpu; });
  const std::size_t mid = runs.size() / 2;
  bool bounded = false;  // a run at or below the median found nothing: only a lower bound
  for (std::size_t i = 0; i <= mid; ++i) bounded = bounded || !runs[i].found;
  return {runs[mid].cpu, bounded};
}

}  // namespace

int main(int argc, char** argv) {
  using bench::flag;
  const std::uint64_t customers = flag(argc, argv, "--customers", 500);
  const std::uint64_t roots = std::max<std::uint64_t>(1, flag(argc, argv, "--roots", 5));
  const std::uint64_t max_seeds = std::max<std::uint64_t>(1, flag(argc, argv, "--max-seeds", 200));
  const std::uint64_t deep_max_seeds =
      std::max<std::uint64_t>(1, flag(argc, argv, "--deep-max-seeds", 400));
  const std::uint64_t deep_customers = flag(argc, argv, "--deep-customers", 1000);
  const std::uint64_t deep_roots = std::max<std::uint64_t>(1, flag(argc, argv, "--deep-roots", 3));
  const char* only = nullptr;
  bool storms = true, swarm_side = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[i + 1];
    if (std::strcmp(argv[i], "--no-storms") == 0) storms = false;
    if (std::strcmp(argv[i], "--explorer-only") == 0) swarm_side = false;
  }
  std::printf(
      "time to bug: CPU-seconds to the first failing timeline, median of %llu roots "
      "(1, 1001, ...), %llu customers, swarm faults, at most %llu seeds or roots each; deep "
      "variants: %llu roots, %llu customers, at most %llu; %s\n",
      static_cast<unsigned long long>(roots), static_cast<unsigned long long>(customers),
      static_cast<unsigned long long>(max_seeds), static_cast<unsigned long long>(deep_roots),
      static_cast<unsigned long long>(deep_customers),
      static_cast<unsigned long long>(deep_max_seeds),
      storms ? "storm children on" : "no storm children (--no-storms)");
  std::printf("  %-24s %12s %12s %8s\n", "variant", "swarm", "explorer", "ratio");
  for (const sim::BugInfo& bug : sim::all_bugs()) {
    if (only != nullptr && bug.name != only) continue;
    const std::uint64_t budget = bug.deep ? deep_max_seeds : max_seeds;
    runs::RunPlan plan;
    plan.swarm = true;
    plan.base.customers = static_cast<std::int64_t>(bug.deep ? deep_customers : customers);
    plan.base.bug = bug.bug;
    std::vector<Found> swarm, explorer;
    SwarmSeeds swarm_seeds(plan);
    for (std::uint64_t r = 0; r < (bug.deep ? deep_roots : roots); ++r) {
      const std::uint64_t root = 1 + 1000 * r;
      if (swarm_side) swarm.push_back(swarm_seeds.from(root, budget));
      explorer.push_back(explorer_to_bug(plan, root, budget, storms));
    }
    const Median x = median(explorer);
    const std::string name = std::string(bug.name) + (bug.deep ? " (deep)" : "");
    if (!swarm_side) {
      std::printf("  %-24s %12s %s%11.3f %8s\n", name.c_str(), "-", x.bounded ? ">" : " ",
                  x.seconds, "-");
      std::fflush(stdout);
      continue;
    }
    const Median s = median(swarm);
    std::printf("  %-24s %s%11.3f %s%11.3f %8.2f\n", name.c_str(), s.bounded ? ">" : " ", s.seconds,
                x.bounded ? ">" : " ", x.seconds, s.seconds / std::max(x.seconds, 1e-9));
    std::fflush(stdout);
  }
  return 0;
}
