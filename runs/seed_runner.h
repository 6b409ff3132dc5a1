// Runs one simulated store day per seed and checks it; many seeds across worker threads
// (each run itself single-threaded and deterministic).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/marks.h"
#include "properties/invariants.h"
#include "sim/world.h"

namespace eventmart::runs {

struct RunPlan {
  sim::SimOptions base;  // the seed in it is replaced per run
  bool swarm = false;    // each seed draws its own faults
  bool check_determinism = false;
  // Applied to each seed's options after the swarm drew them (a benchmark's variation).
  std::function<void(sim::SimOptions&)> adjust = {};
  // The scenario file the run came from (`sim --scenario FILE`): its replay command.
  std::string scenario_file = {};
};

struct SeedOutcome {
  std::uint64_t seed = 0;
  sim::SimResult result;
  std::vector<properties::InvariantResult> invariants;
  double wall_seconds = 0;
  bool deterministic = true;       // with check_determinism: both runs gave the same trace
  std::string determinism_report;  // the first diverging entry of both runs, when not
  // Why the run could not go on to the end of its day (a database a bug left corrupt, which
  // the world can no longer read), or "": a failure of its own ("could_not_go_on").
  std::string could_not_go_on;

  bool passed() const;
  // Names of what failed: "could_not_go_on", "assertion" (a check in the code,
  // result.assertion), invariants, "handler_failures", "determinism".
  std::vector<std::string> failures() const;
};

// The options a seed runs with (swarm faults drawn from the seed when asked).
sim::SimOptions options_for(const RunPlan& plan, std::uint64_t seed);

// Runs and checks one seed. A run that cannot go on (std::runtime_error from the world) is a
// failing outcome ("could_not_go_on"); options it cannot run with throw std::invalid_argument.
SeedOutcome run_seed(const RunPlan& plan, std::uint64_t seed,
                     std::function<void(const sim::TraceEntry&)> trace_listener = {});

// A range of seeds can hold at most this many (about 290 days at 40 seeds/s): a larger one
// cannot be meant.
inline constexpr std::uint64_t kMaxSeedsPerRun = 1'000'000'000;
// A summary keeps the verdicts of at most this many failing seeds (the lowest ones).
inline constexpr std::size_t kKeptFailures = 1000;

// What one seed contributes to a summary: its verdict and counts, without its history. A
// shard writes one per seed (runs/shards.h), and `eventmart merge` folds them back exactly as
// run_seeds does.
struct SeedRecord {
  std::uint64_t seed = 0;
  std::vector<std::string> failures;  // as SeedOutcome::failures(); empty: it passed
  std::string assertion;              // the check that failed, if one did
  std::string determinism_report;     // with check_determinism, when the two runs differed
  std::string could_not_go_on;        // why the run stopped before the end of its day
  bool qos0 = false;                  // it ran at QoS 0
  std::uint64_t lost_departures = 0;  // ... departures lost there
  std::uint64_t dead_letters = 0;
  std::uint64_t trace_hash = 0;
  MarkCounts marks{};

  bool passed() const { return failures.empty(); }
};

SeedRecord record_of(const SeedOutcome& outcome);

// A deterministic share of a seed range for one of several machines: shard `index` of `count`
// (1-based) runs seeds first + (index - 1), first + (index - 1) + count, ... up to last, so the
// shards 1..count together run every seed of the range exactly once.
struct Shard {
  std::uint64_t index = 1;
  std::uint64_t count = 1;
};
// How many seeds of first..last the shard runs. Throws std::invalid_argument unless
// 1 <= index <= count.
std::uint64_t shard_size(std::uint64_t first, std::uint64_t last, Shard shard);
// Whether `seed` of first..last belongs to the shard.
bool in_shard(std::uint64_t first, std::uint64_t seed, Shard shard);

// What a range of seeds came to. Its memory does not grow with the range.
struct SeedSummary {
  std::uint64_t seeds = 0;
  std::uint64_t failing = 0;
  std::uint64_t qos0_seeds = 0;                    // seeds that ran at QoS 0
  std::uint64_t lost_departures = 0;               // at QoS 0: departures lost, expected there
  std::uint64_t dead_letter_seeds = 0;             // seeds with dead letters after retries
  std::uint64_t dead_letters = 0;                  // ... how many in all (visible losses)
  std::map<std::string, std::uint64_t> failed_by;  // failure name -> failing seeds
  MarkCounts mark_hits{};                          // coverage marks: hits over all seeds
  MarkCounts mark_seeds{};                         // ... and the seeds that hit each at least once
  // The lowest failing seeds (at most kKeptFailures), in seed order (the verdict only).
  std::vector<SeedRecord> failing_examples;
};

// Folds seed records into a summary, in any order: the same records give the same summary.
class SummaryBuilder {
 public:
  void add(SeedRecord record);
  SeedSummary finish() &&;

 private:
  SeedSummary summary_;
  std::map<std::uint64_t, SeedRecord> kept_;  // the lowest failing seeds
};

// Runs seeds first..last (inclusive) on `jobs` threads. `on_done` is called (from the
// calling thread, in completion order) after each seed. Throws std::invalid_argument unless
// first <= last and last - first < kMaxSeedsPerRun.
// With a shard, only its share of the range (`summary.seeds` counts what ran).
SeedSummary run_seeds(const RunPlan& plan, std::uint64_t first, std::uint64_t last, unsigned jobs,
                      const std::function<void(const SeedOutcome&)>& on_done, Shard shard = {});

// Departures lost at QoS 0 in one run (counted, not violations).
std::uint64_t lost_departures(const SeedOutcome& outcome);

// The command that replays `seed` exactly (with the plan's recipe splits, if it has any).
std::string replay_command(const RunPlan& plan, std::uint64_t seed);
// ... and the timeline of an exploration: `seed` reseeded at `splits` (`--recipe`).
std::string replay_command(const RunPlan& plan, std::uint64_t seed,
                           const std::vector<sim::Splitpoint>& splits);

}  // namespace eventmart::runs
