// Runs one simulated store day per seed and checks it; many seeds across worker threads
// (each run itself single-threaded and deterministic).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "properties/invariants.h"
#include "sim/world.h"

namespace eventmart::apps {

struct RunPlan {
  sim::SimOptions base;  // the seed in it is replaced per run
  bool swarm = false;    // each seed draws its own faults
  bool check_determinism = false;
};

struct SeedOutcome {
  std::uint64_t seed = 0;
  sim::SimResult result;
  std::vector<properties::InvariantResult> invariants;
  double wall_seconds = 0;
  bool deterministic = true;       // with check_determinism: both runs gave the same trace
  std::string determinism_report;  // the first diverging entry of both runs, when not

  bool passed() const;
  // Names of what failed: invariants, "handler_failures", "determinism".
  std::vector<std::string> failures() const;
};

// The options a seed runs with (swarm faults drawn from the seed when asked).
sim::SimOptions options_for(const RunPlan& plan, std::uint64_t seed);

// Runs and checks one seed.
SeedOutcome run_seed(const RunPlan& plan, std::uint64_t seed,
                     std::function<void(const sim::TraceEntry&)> trace_listener = {});

// Runs seeds first..last (inclusive) on `jobs` threads. `on_done` is called (from the
// calling thread, in completion order) after each seed. Outcomes come back in seed order,
// without the runs' histories and warnings (checked already; a long swarm would otherwise
// hold every basket and stock reading of every seed).
std::vector<SeedOutcome> run_seeds(const RunPlan& plan, std::uint64_t first, std::uint64_t last,
                                   unsigned jobs,
                                   const std::function<void(const SeedOutcome&)>& on_done);

// The command that replays `seed` exactly.
std::string replay_command(const RunPlan& plan, std::uint64_t seed);

}  // namespace eventmart::apps
