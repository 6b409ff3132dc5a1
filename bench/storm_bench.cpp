// What a storm child (sim/recipe.h) adds at the state a deep bug needs: for each deep variant,
// the swarm days (1,000 customers) where Inventory Intel (every deep variant's mistake is in
// it) starts a catch-up while the store is open (the first `inventory.catch_up`), and from the
// first quiet point after it N plain children and N storm children; prints the fraction of
// each that fail. A plain child's fraction is the swarm's odds of the second event once the
// first happened: no explorer that reaches the first event as often as the swarm does can find
// the bug more than about 1 / that fraction times sooner.
//
//   eventmart-storm-bench [--customers C] [--states S] [--children N] [--only NAME]
//
// Each child is a whole day replayed from its recipe (no fork): slower than the explorer, the
// same futures.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "bench/flags.h"
#include "runs/seed_runner.h"
#include "sim/bugs/bugs.h"
#include "sim/recipe.h"

namespace {

using namespace eventmart;

// Notes the first quiet point after a mark is first hit (while the store is open).
class FirstHit final : public sim::Brancher {
 public:
  explicit FirstHit(Mark mark) : mark_(mark) {}
  std::optional<sim::Splitpoint> at_quiet_point(std::uint64_t step, std::int64_t,
                                                const MarkCounts& marks) override {
    if (!step_ && marks[static_cast<std::size_t>(mark_)] > 0) step_ = step;
    return std::nullopt;
  }
  std::optional<std::uint64_t> step() const { return step_; }

 private:
  Mark mark_;
  std::optional<std::uint64_t> step_;
};

bool fails(const runs::RunPlan& plan, std::uint64_t seed) {
  try {
    return !runs::run_seed(plan, seed).passed();
  } catch (const std::exception&) {
    return true;  // the run could not go on (a database the bug left corrupt)
  }
}

}  // namespace

int main(int argc, char** argv) {
  using bench::flag;
  const auto customers = static_cast<std::int64_t>(flag(argc, argv, "--customers", 1000));
  const std::uint64_t states = std::max<std::uint64_t>(1, flag(argc, argv, "--states", 8));
  const auto children =
      static_cast<std::uint32_t>(std::max<std::uint64_t>(1, flag(argc, argv, "--children", 16)));
  const char* only = nullptr;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--only") == 0) only = argv[i + 1];
  }
  std::printf(
      "storm children: %llu swarm days (seeds 1, 2, ...) where Inventory Intel starts a catch-up "
      "while open, %u plain and %u storm children each from the quiet point after it, %lld "
      "customers\n",
      static_cast<unsigned long long>(states), children, children,
      static_cast<long long>(customers));
  std::printf("  %-26s %6s %8s %14s %14s\n", "variant", "states", "seeds", "plain fail",
              "storm fail");
  for (const sim::BugInfo& bug : sim::all_bugs()) {
    if (!bug.deep || (only != nullptr && bug.name != only)) continue;
    runs::RunPlan plan;
    plan.swarm = true;
    plan.base.customers = customers;
    plan.base.bug = bug.bug;
    std::uint64_t found = 0, seed = 0, plain = 0, storm = 0;
    while (found < states) {
      ++seed;
      FirstHit hit(Mark::kInventoryCatchUp);
      runs::RunPlan probe = plan;
      probe.base.brancher = &hit;
      if (fails(probe, seed) || !hit.step()) continue;  // failing already: not the second event
      ++found;
      for (std::uint32_t child = 1; child <= children; ++child) {
        for (const bool stormy : {false, true}) {
          runs::RunPlan future = plan;
          future.base.splits = {sim::Splitpoint{*hit.step(), child, stormy}};
          const bool failed = fails(future, seed);
          (stormy ? storm : plain) += failed ? 1 : 0;
        }
      }
    }
    const double each = static_cast<double>(found * children);
    std::printf("  %-26s %6llu %8llu %6llu (%4.1f%%) %6llu (%4.1f%%)\n",
                std::string(bug.name).c_str(), static_cast<unsigned long long>(found),
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(plain),
                100.0 * static_cast<double>(plain) / each, static_cast<unsigned long long>(storm),
                100.0 * static_cast<double>(storm) / each);
    std::fflush(stdout);
  }
  return 0;
}
