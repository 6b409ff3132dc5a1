// One simulated store day: the five services on two in-memory buses (the store's and the
// external logistics bus) under one virtual clock, driven by the workload, with logistics
// answering restocks. A run is a pure function of (options, code): same seed, same trace hash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/marks.h"
#include "core/topics.h"
#include "sim/bugs/bugs.h"
#include "sim/faults.h"
#include "sim/history.h"
#include "sim/knobs.h"
#include "sim/recipe.h"
#include "sim/scenario.h"
#include "sim/trace.h"
#include "sim/workload.h"

namespace eventmart::sim {

// 2026-11-26T08:00:00Z: the virtual clock starts at opening time on this (fixed) day.
inline constexpr std::int64_t kStoreOpensAtUs = 1'795'680'000'000'000;

// A service whose start failed (its database could not be opened or recovered) is started
// again by its supervisor after this long: RestartSec=2 in deploy/systemd/eventmart@.service.
inline constexpr std::int64_t kSupervisorRestartUs = 2 * kSecondUs;

struct SimOptions {
  std::uint64_t seed = 1;         // root of every random stream of the run
  std::int64_t customers = 2000;  // visits over the day
  std::int64_t products = 100;    // catalog size; up to 100 = the default store's products
  std::int64_t open_duration_us = 12 * kHourUs;  // arrivals happen while the store is open
  std::int64_t latency_us = 200;                 // one-way client <-> broker latency on both buses
  std::string chain = std::string(kDefaultChain);
  std::string store = std::string(kDefaultStore);
  // After closing, how much virtual time the system gets to settle (all messages delivered,
  // all restocks delivered) before the run counts as not quiescent.
  std::int64_t settle_limit_us = 24 * kHourUs;
  // Faults during opening hours (the chaos phase); at closing time they heal.
  FaultOptions faults;
  // The kind of day: stock against thresholds, bursts, bag order, unknown things, misreads.
  WorkloadShape shape;
  // How the services' databases commit, as `serve --durability` (the same default), on the
  // simulated disk (sim/disk.h), which a run uses when it has power losses.
  Durability durability = Durability::kFull;
  // The databases on the simulated disk even without a storage fault (to measure its cost;
  // a run with a storage fault is always on it).
  bool on_disk = false;
  // Benchmarks only: a folder on the machine's own file system where the databases go instead,
  // through SQLite's default VFS (no power loss there), to measure the simulated disk against
  // the same journal on real files. Each run uses its own subfolder and removes its files.
  std::string native_folder;
  // The real code's tunables (sim/knobs.h): production's values unless a swarm seed drew
  // others or the command line set them (--knob).
  Knobs knobs;
  // A deliberately broken service variant (sim/bugs), or Bug::kNone for the real services.
  Bug bug = Bug::kNone;
  // An explicit scenario (property tests): its store, visits and fault schedule replace the
  // catalog, the workload and the fault options drawn from the seed.
  std::shared_ptr<const Scenario> scenario;
  // A recipe's splitpoints (sim/recipe.h): after each one's step, every stream drawn from while
  // the day runs is reseeded. Empty: the seed's own timeline.
  std::vector<Splitpoint> splits;
  // The explorer (runs/explorer.h), asked at every quiet point while the store is open and
  // after the recipe's own splits; null: no exploration. Not owned.
  Brancher* brancher = nullptr;
};

// `options` with its faults, its workload's shape and its knobs drawn from the seed (swarm
// testing: each seed its own mix of faults, its own kind of day, its own tunables).
SimOptions with_swarm(SimOptions options);

// Why `options` cannot run, or nullopt when they can.
OptionCheck validate(const SimOptions& options);

struct SimStats {
  std::int64_t customers = 0;           // visits planned
  std::int64_t arrivals = 0;            // entrance scans accepted by Gateway Guardian
  std::int64_t welcomes_shown = 0;      // entrance display updates by Hello Helper
  std::int64_t unknown_cards = 0;       // arrivals welcomed generically
  std::int64_t departures = 0;          // customers through the exit gate (ground truth)
  std::int64_t payments = 0;            // distinct PaymentDue events seen by the terminal
  std::int64_t revenue_cents = 0;       // sum of those payments
  std::int64_t units_sold = 0;          // units carried out (ground truth)
  std::int64_t restocks_requested = 0;  // distinct RestockNeeded orders logistics received
  std::int64_t restocks_delivered = 0;
  std::int64_t deliveries = 0;           // messages delivered to subscribers, both buses
  std::int64_t publishes = 0;            // messages published, both buses
  std::int64_t duplicates_detected = 0;  // deliveries the services' inboxes recognised
  std::int64_t rejected_events = 0;      // malformed or unexpected deliveries (logged)
  std::int64_t handler_failures = 0;     // handlers that threw, no fault to blame (a bug)
  std::int64_t storage_failures = 0;     // handlers an injected storage fault made throw
  std::int64_t failed_starts = 0;        // service starts a storage fault made fail
  std::int64_t dead_letters = 0;         // deliveries dead-lettered after every retry failed
  std::int64_t scheduler_steps = 0;
  std::int64_t virtual_us = 0;  // from opening to quiescence (or the settle limit)
  std::int64_t trace_entries = 0;
  // Coverage marks: rare paths this run went through.
  std::int64_t redelivered_after_loss = 0;  // a delivery arrived only by retransmission
  std::int64_t crash_recoveries = 0;        // crashed services that came back
  FaultCounts faults;
};

struct SimResult {
  SimOptions options;
  SimStats stats;
  MarkCounts marks{};  // how often each coverage mark (core/marks.h) was hit in the run
  History history;
  std::uint64_t trace_hash = 0;
  std::vector<std::string> warnings;  // what the services logged as warnings or errors
  std::vector<Outage> outages;        // what was out when (for reports; in the order begun)
  // A check in the code (core/assert.h) that failed and ended the run there ("assertion failed
  // at FILE:LINE: CONDITION (VALUES)"), or empty. The history and the stats stop where it did.
  std::string assertion;
  // The splitpoints this timeline took: the recipe's, then any the explorer added. With
  // options.seed, its recipe.
  std::vector<Splitpoint> splits;
};

// Runs one store day. Throws std::invalid_argument (OptionError::describe()) when
// validate(options) finds a problem. A check that fails in the code it runs ends the run
// there: the result says which (SimResult::assertion); nothing is thrown.
// `trace_listener`, if set, sees every trace entry as it is folded in.
SimResult run_simulation(const SimOptions& options,
                         std::function<void(const TraceEntry&)> trace_listener = {});

}  // namespace eventmart::sim
