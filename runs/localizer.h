// Where a failure became inevitable (`eventmart sim --localize`). A failing run shows its
// symptom at its end, often hours of virtual time after the mistake that made it certain. From
// checkpoints along the run (quiet points while the store is open), the localizer forks the
// running world into futures that reseed every random stream there (sim/recipe.h, as the
// explorer's children do) and counts how many fail again. Futures from before the cause
// rarely fail; from after it, almost always. A first pass spreads checkpoints over the opening
// hours, then bisection narrows the last jump from under half failing to at least half (each
// step keeps the side of the point halfway between the fractions at the two ends) down to
// `resolution_us` (or to two neighbouring quiet points).
//
// Futures are run in batches of kBatch; a checkpoint stops early once its fraction is clearly
// on one side of one half (a 95% Wilson interval that excludes it), so the points far from the
// jump cost one batch and only those near it all `futures`. The two ends of the interval are
// topped up to all `futures`. The result is a pure function of the options: which futures run
// and when a checkpoint stops depend on their verdicts only, never on timing.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runs/seed_runner.h"
#include "sim/recipe.h"
#include "sim/trace.h"

namespace eventmart::runs {

struct LocalizeOptions {
  RunPlan plan;              // what the failing run ran; plan.base.splits: its recipe's splits
  std::uint64_t seed = 1;    // its seed
  unsigned futures = 50;     // at most, per checkpoint: 8..1000, a multiple of kBatch
  unsigned checkpoints = 8;  // the first pass: this many, evenly over the opening hours, 2..100
  std::int64_t resolution_us = 1'000'000;  // bisection stops at an interval this narrow
  unsigned jobs = 2;                       // futures running at once
  // How the localizer forks (tests make it fail: a clear error, every process reaped).
  pid_t (*fork_process)() = ::fork;
  static constexpr unsigned kBatch = 8;
};

struct Checkpoint {
  std::int64_t at_us = 0;                 // virtual time of its quiet point
  std::uint64_t step = 0;                 // after this many scheduler steps
  unsigned futures = 0;                   // run from here
  unsigned failing = 0;                   // ... that failed again (one of the run's own failures)
  std::uint32_t first_failing_child = 0;  // the lowest child number that failed again, 0: none
  double fraction() const { return futures == 0 ? 0 : static_cast<double>(failing) / futures; }
};

struct Localization {
  std::vector<std::string> failures;  // what the run itself failed
  std::vector<Checkpoint> curve;      // every checkpoint measured, by time
  enum class Verdict {
    kInterval,          // became likely between curve[before] and curve[after]
    kFromTheStart,      // likely from every checkpoint of the first pass: the plan decides it
    kNotBeforeClosing,  // still unlikely at the last checkpoint before closing
  } verdict = Verdict::kInterval;
  std::size_t before = 0, after = 0;  // kInterval: the interval's ends in `curve`
  sim::Recipe failing_future;         // a future that failed again, from right after it
  struct Entry {
    std::int64_t at_us;
    sim::TraceKind kind;
    std::string text;  // "10:41:07.2  crash  store  fastlane-finale  after-commit"
    bool operator==(const Entry&) const = default;
  };
  std::vector<Entry> inside;       // the trace entries inside the interval (at most kInside)
  std::uint64_t inside_total = 0;  // ... how many there were
  // The first crash, power loss, partition, broker restart, full disk or long outage after the
  // interval, within kStrikesWithinUs (none: nullopt): these are drawn at a tick and strike later
  // (a crash inside the service's next transaction), so one drawn inside the interval shows
  // here, not inside it.
  std::optional<Entry> next_fault;
  std::int64_t next_fault_after_us = 0;  // ... how long after the interval's end
  static constexpr std::int64_t kStrikesWithinUs = 3'600'000'000;  // an hour
  std::uint64_t futures_run = 0;
  double cpu_seconds = 0;  // this process and every future
  double wall_seconds = 0;
  static constexpr std::size_t kInside = 200;
};

// Localizes the failure of `options.seed` (with the plan's splits, a recipe). Throws
// std::invalid_argument for options out of range or a run that holds every invariant (nothing
// to localize), std::runtime_error when this process cannot fork safely (more than one thread)
// or a fork failed (after every future it started has ended).
Localization localize(const LocalizeOptions& options);

// "10:41:07.2" (a day past the first: "+1d 02:00:00.0"): a virtual time of the day, to 0.1 s.
std::string clock_text(std::int64_t at_us);

}  // namespace eventmart::runs
