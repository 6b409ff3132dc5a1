// Recipes (sim/recipe.h) and the explorer (runs/explorer.h): a recipe is refused when it
// cannot be meant, a timeline replays from its recipe with the same trace hash as the process
// that ran it, and an exploration finds what a bug variant breaks, within its budget, the
// same way twice with one worker.
#include "runs/explorer.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include "runs/seed_runner.h"
#include "services/catalog.h"
#include "sim/recipe.h"
#include "sim/world.h"
#include "tests/failing_fork.h"

namespace eventmart::test {
namespace {

TEST(Recipe, PrintsAndReadsBack) {
  const sim::Recipe recipe{17, {{48213, 3}, {90211, 1}}};
  EXPECT_EQ(sim::to_string(recipe), "17/48213:3/90211:1");
  auto back = sim::parse_recipe("17/48213:3/90211:1");
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back.value().seed, 17u);
  EXPECT_EQ(back.value().splits, recipe.splits);
  auto plain = sim::parse_recipe("18446744073709551615");
  ASSERT_TRUE(plain) << plain.error();
  EXPECT_EQ(plain.value().seed, UINT64_MAX);
  EXPECT_TRUE(plain.value().splits.empty());
  // A storm child is written CHILD+ and reads back as one.
  const sim::Recipe stormy{17, {{48213, 3, true}, {90211, 1}}};
  EXPECT_EQ(sim::to_string(stormy), "17/48213:3+/90211:1");
  auto storm_back = sim::parse_recipe("17/48213:3+/90211:1");
  ASSERT_TRUE(storm_back) << storm_back.error();
  EXPECT_EQ(storm_back.value().splits, stormy.splits);
  EXPECT_NE(sim::reseeded(17, {48213, 3, true}), sim::reseeded(17, {48213, 3, false}))
      << "a storm child's streams are its own";
}

TEST(Recipe, WhatCannotBeMeantIsRefusedWithTheReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "the seed is not a number"},
      {"x", "the seed is not a number"},
      {"-1", "the seed is not a number"},
      {"+1", "the seed is not a number"},
      {"18446744073709551616", "the seed is not a number"},
      {"1/", "is not STEP:CHILD"},
      {"1/5", "is not STEP:CHILD"},
      {"1/5:", "with numbers"},
      {"1/5:x", "with numbers"},
      {"1/5:1000001", "with numbers"},
      {"1/0:1", "must increase and be at least 1"},
      {"1/5:1/5:2", "must increase"},
      {"1/6:1/5:2", "must increase"},
      {"1/5:0", "a child number is 1..1000000"},
      {"1 /5:1", "the seed is not a number"},
      {"1/5:+", "with numbers"},
      {"1/5:1++", "with numbers"},
      {"1/5:+1", "with numbers"},
      {"1/5:1+x", "with numbers"},
      {"1/5+:1", "with numbers"},
      {"1/5:0+", "a child number is 1..1000000"},
  };
  for (const auto& [text, why] : cases) {
    auto r = sim::parse_recipe(text);
    ASSERT_FALSE(r) << "'" << text << "' was taken";
    EXPECT_NE(r.error().find(why), std::string::npos) << text << ": " << r.error();
  }
  std::string deep = "1";
  for (int i = 1; i <= 65; ++i) deep += "/" + std::to_string(i) + ":1";
  auto too_deep = sim::parse_recipe(deep);
  ASSERT_FALSE(too_deep);
  EXPECT_NE(too_deep.error().find("more than 64 splitpoints"), std::string::npos);
  auto too_long = sim::parse_recipe(std::string(3000, '1'));
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().find("at most 2048 bytes"), std::string::npos);
}

// Splits at chosen steps, in this process (no fork): what the explorer's children do.
class SplitAt final : public sim::Brancher {
 public:
  explicit SplitAt(std::vector<sim::Splitpoint> at) : at_(std::move(at)) {}
  std::optional<sim::Splitpoint> at_quiet_point(std::uint64_t step, std::int64_t,
                                                const MarkCounts&) override {
    if (next_ < at_.size() && at_[next_].step == step) return at_[next_++];
    return std::nullopt;
  }

 private:
  std::vector<sim::Splitpoint> at_;
  std::size_t next_ = 0;
};

sim::SimOptions swarm_day(std::uint64_t seed) {
  sim::SimOptions o;
  o.seed = seed;
  o.customers = 200;
  return sim::with_swarm(o);
}

TEST(Recipe, ATimelineReplaysFromItsRecipeWithTheSameTraceHash) {
  const sim::SimOptions plain = swarm_day(5);
  const sim::SimResult own = sim::run_simulation(plain);
  SplitAt brancher({{200, 2}, {900, 5}});
  sim::SimOptions explored = plain;
  explored.brancher = &brancher;
  const sim::SimResult child = sim::run_simulation(explored);
  ASSERT_TRUE(child.assertion.empty()) << child.assertion;
  ASSERT_EQ(child.splits, (std::vector<sim::Splitpoint>{{200, 2}, {900, 5}}));
  EXPECT_NE(child.trace_hash, own.trace_hash) << "a split reseeds the rest of the day";

  sim::SimOptions replay = plain;
  replay.splits = child.splits;
  const sim::SimResult again = sim::run_simulation(replay);
  EXPECT_EQ(again.trace_hash, child.trace_hash);
  EXPECT_EQ(again.stats.trace_entries, child.stats.trace_entries);
  EXPECT_EQ(again.splits, child.splits);

  // Another child of the same splitpoint is another future.
  replay.splits = {{200, 2}, {900, 6}};
  EXPECT_NE(sim::run_simulation(replay).trace_hash, child.trace_hash);
}

// A storm child (sim/recipe.h) on a day whose own mix has no process fault at all: from its
// split it suffers crashes, partitions or broker restarts for kStormUs, then none again; a
// plain child of the same splitpoint suffers none; the recipe replays the storm exactly.
TEST(Recipe, AStormChildHasItsStormForTenMinutesThenTheRunsOwnMix) {
  sim::SimOptions day;
  day.seed = 3;
  day.customers = 200;
  day.faults.duplicate_probability = 0.01;  // chaos, but no fault that strikes per minute
  std::int64_t split_at = -1, over_at = -1;
  const auto watch = [&](const sim::TraceEntry& e) {
    if (e.kind != sim::TraceKind::kSplit) return;
    (e.event_id == "storm-over" ? over_at : split_at) = e.at_us;
  };
  SplitAt brancher({{3000, 2, true}});
  sim::SimOptions explored = day;
  explored.brancher = &brancher;
  const sim::SimResult storm = sim::run_simulation(explored, watch);
  ASSERT_TRUE(storm.assertion.empty()) << storm.assertion;
  ASSERT_EQ(storm.splits, (std::vector<sim::Splitpoint>{{3000, 2, true}}));
  ASSERT_GE(split_at, 0);
  EXPECT_EQ(over_at, split_at + sim::kStormUs) << "the storm lasts kStormUs of virtual time";
  std::size_t inside = 0;
  std::set<std::string> struck_after;
  for (const sim::Outage& o : storm.outages) {
    EXPECT_GE(o.from_us, split_at) << sim::outage_kind_name(o.kind) << " before the storm";
    inside += o.from_us < over_at ? 1 : 0;
    if (o.from_us < over_at) continue;
    // After it only what the storm armed: a crash drawn at its last ticks strikes in the
    // service's next transaction, once.
    EXPECT_TRUE(o.kind == sim::Outage::Kind::kCrash || o.kind == sim::Outage::Kind::kPowerLoss)
        << sim::outage_kind_name(o.kind) << " after the storm";
    EXPECT_TRUE(struck_after.insert(o.who).second) << o.who << " struck twice after the storm";
  }
  EXPECT_GT(inside, 0u) << "a storm without a process fault";
  EXPECT_GT(storm.stats.faults.crashes + storm.stats.faults.partitions +
                storm.stats.faults.broker_restarts,
            0);

  sim::SimOptions replay = day;
  replay.splits = storm.splits;
  const sim::SimResult again = sim::run_simulation(replay);
  EXPECT_EQ(again.trace_hash, storm.trace_hash);
  EXPECT_EQ(again.outages.size(), storm.outages.size());

  replay.splits = {{3000, 2, false}};
  const sim::SimResult plain = sim::run_simulation(replay);
  EXPECT_TRUE(plain.outages.empty()) << "a plain child keeps the run's own mix";
  EXPECT_NE(plain.trace_hash, storm.trace_hash);
}

// The ticker a storm starts for a mix without one stops with the storm: a long outage (drawn
// at the ticks) never comes after it, and a storm split after closing is refused.
TEST(Recipe, AStormLeavesNoTickerBehindAndIsRefusedAfterClosing) {
  sim::SimOptions day;
  day.seed = 3;
  day.customers = 200;
  day.faults.long_outage_per_hour = 1;  // drawn at the ticks, which this mix alone never has
  std::int64_t over_at = -1;
  const auto watch = [&](const sim::TraceEntry& e) {
    if (e.kind == sim::TraceKind::kSplit && e.event_id == "storm-over") over_at = e.at_us;
  };
  sim::SimOptions storm = day;
  storm.splits = {{3000, 2, true}};
  const sim::SimResult r = sim::run_simulation(storm, watch);
  ASSERT_TRUE(r.assertion.empty()) << r.assertion;
  ASSERT_GT(over_at, 0);
  for (const sim::Outage& o : r.outages) {
    EXPECT_FALSE(o.kind == sim::Outage::Kind::kLongOutage && o.from_us >= over_at)
        << "a long outage after the storm, at " << o.from_us;
  }
  EXPECT_EQ(sim::run_simulation(day).stats.faults.long_outages, 0)
      << "this mix alone never ticks (as it always had)";

  const sim::SimResult whole = sim::run_simulation(day);
  sim::SimOptions late = day;
  late.splits = {{static_cast<std::uint64_t>(whole.stats.scheduler_steps) - 5, 1, true}};
  try {
    (void)sim::run_simulation(late);
    FAIL() << "a storm split after closing ran";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("outside the opening hours"), std::string::npos)
        << e.what();
  }
}

TEST(Recipe, AStormCannotSplitAScriptedScenario) {
  sim::SimOptions o;
  auto scenario = std::make_shared<sim::Scenario>();
  scenario->products = {default_store().products.front()};
  scenario->visits = {sim::ScenarioVisit{}};
  o.scenario = scenario;
  o.splits = {{5, 1, true}};
  try {
    (void)sim::run_simulation(o);
    FAIL() << "a storm split a scenario's schedule";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("storm"), std::string::npos) << e.what();
  }
}

TEST(Recipe, ASplitpointPastTheEndOfTheDayIsRefused) {
  sim::SimOptions o = swarm_day(5);
  o.splits = {{100, 1}, {1'000'000'000, 1}};
  try {
    (void)sim::run_simulation(o);
    FAIL() << "a recipe made with other options ran";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("past the end of this day"), std::string::npos)
        << e.what();
  }
  o.splits = {{5, 1}, {5, 2}};
  EXPECT_THROW((void)sim::run_simulation(o), std::invalid_argument);
}

constexpr std::int64_t kDeepCustomers = 1000;  // the deep variants' odds were measured there

runs::ExploreOptions exploration(sim::Bug bug, std::uint64_t budget) {
  runs::ExploreOptions e;
  e.plan.swarm = true;
  e.plan.base.customers = 200;
  e.plan.base.bug = bug;
  e.first_root = 1;
  e.budget_timelines = budget;
  e.jobs = 1;
  return e;
}

TEST(Explorer, FindsABugAndEveryFailingTimelineReplaysFromItsRecipe) {
  const runs::ExploreOptions e = exploration(sim::Bug::kNoOutbox, 60);
  const runs::ExploreSummary s = runs::explore(e);
  EXPECT_LE(s.timelines, 60u);
  EXPECT_GT(s.roots, 0u);
  EXPECT_GT(s.splitpoints, 0u);
  EXPECT_GE(s.max_depth, 1u);
  ASSERT_GT(s.failing, 0u);
  ASSERT_FALSE(s.failures.empty());
  EXPECT_GE(s.cpu_to_first_failure, 0);
  bool from_a_child = false;
  for (const runs::ExploredFailure& f : s.failures) {
    if (f.recipe.splits.empty()) continue;
    from_a_child = true;
    runs::RunPlan plan = e.plan;
    plan.base.splits = f.recipe.splits;
    const runs::SeedOutcome again = runs::run_seed(plan, f.recipe.seed);
    EXPECT_EQ(again.result.trace_hash, f.trace_hash) << sim::to_string(f.recipe);
    EXPECT_FALSE(again.passed()) << sim::to_string(f.recipe);
    EXPECT_EQ(again.failures(), f.failures) << sim::to_string(f.recipe);
  }
  EXPECT_TRUE(from_a_child) << "no failure came from a child timeline";
}

// A deep variant (it needs two rare events in sequence: sim/bugs/bugs.h): from the same roots
// and with the same number of timelines, the explorer finds it and the swarm does not. A
// pinned root and budget; the odds are in docs/simulation.md ("The bug zoo"). Two variants:
// skips-sync and holds-restocks (from root 1, found at root 191's Inventory Intel catch-up within
// 400); the time-to-bug benchmark covers all four.
struct DeepPin {
  sim::Bug bug;
  std::uint64_t first_root;
  std::uint64_t budget;  // timelines for the explorer
};

class DeepBugs : public ::testing::TestWithParam<DeepPin> {};

TEST_P(DeepBugs, TheExplorerFindsItAndTheSwarmWithTheSameBudgetDoesNot) {
  const DeepPin& pin = GetParam();
  runs::ExploreOptions e = exploration(pin.bug, pin.budget);
  e.plan.base.customers = kDeepCustomers;
  e.first_root = pin.first_root;
  e.stop_at_first_failure = true;
  const runs::ExploreSummary s = runs::explore(e);
  ASSERT_GT(s.failing, 0u) << "the explorer missed it in " << s.timelines << " timelines";
  ASSERT_FALSE(s.failures.empty());
  EXPECT_FALSE(s.failures[0].recipe.splits.empty()) << "found by a root: the swarm would too";

  // The swarm gets as many seeds as the explorer ran timelines until it found the bug.
  const std::uint64_t seeds = std::max<std::uint64_t>(s.timelines, 1);
  const runs::SeedSummary swarm =
      runs::run_seeds(e.plan, pin.first_root, pin.first_root + seeds - 1, 2, {});
  EXPECT_EQ(swarm.failing, 0u) << "the swarm found it in " << seeds << " seeds";
}

INSTANTIATE_TEST_SUITE_P(Pinned, DeepBugs,
                         ::testing::Values(DeepPin{sim::Bug::kCatchUpSkipsSync, 1, 200},
                                           DeepPin{sim::Bug::kCatchUpHoldsRestocks, 1, 400}),
                         [](const ::testing::TestParamInfo<DeepPin>& info) {
                           std::string name(sim::bug_name(info.param.bug));
                           std::erase(name, '-');
                           return name;
                         });

TEST(Explorer, WithOneWorkerTheSameExplorationTwice) {
  const runs::ExploreOptions e = exploration(sim::Bug::kNoOutbox, 40);
  const runs::ExploreSummary a = runs::explore(e);
  const runs::ExploreSummary b = runs::explore(e);
  EXPECT_EQ(a.timelines, b.timelines);
  EXPECT_EQ(a.roots, b.roots);
  EXPECT_EQ(a.splitpoints, b.splitpoints);
  EXPECT_EQ(a.mark_timelines, b.mark_timelines);
  ASSERT_EQ(a.failures.size(), b.failures.size());
  for (std::size_t i = 0; i < a.failures.size(); ++i) {
    EXPECT_EQ(sim::to_string(a.failures[i].recipe), sim::to_string(b.failures[i].recipe));
    EXPECT_EQ(a.failures[i].trace_hash, b.failures[i].trace_hash);
  }
}

TEST(Explorer, KeepsToItsBudgetAndTheRealServicesPass) {
  runs::ExploreOptions e = exploration(sim::Bug::kNone, 50);
  e.jobs = 2;
  const runs::ExploreSummary s = runs::explore(e);
  EXPECT_EQ(s.failing, 0u);
  for (const runs::ExploredFailure& f : s.failures) ADD_FAILURE() << sim::to_string(f.recipe);
  EXPECT_LE(s.timelines, 50u);
  EXPECT_GE(s.roots, 25u) << "children take at most half of the budget";
  EXPECT_GT(s.timelines, s.roots) << "no child ran";
  std::size_t reached = 0;
  for (std::uint64_t n : s.mark_timelines) reached += n > 0;
  EXPECT_GT(reached, kMarkCount / 2);
}

TEST(Explorer, DepthZeroRunsRootsOnlyAsTheSwarmDoes) {
  runs::ExploreOptions e = exploration(sim::Bug::kNone, 10);
  e.max_depth = 0;
  const runs::ExploreSummary s = runs::explore(e);
  EXPECT_EQ(s.timelines, 10u);
  EXPECT_EQ(s.roots, 10u);
  EXPECT_EQ(s.splitpoints, 0u);
}

TEST(Explorer, AForkThatFailsStopsItWithAClearErrorAndReapsEveryProcess) {
  // In a worker (its first splitpoint's fork), and here (the second worker's).
  for (unsigned jobs : {1u, 2u}) {
    runs::ExploreOptions e = exploration(sim::Bug::kNone, 40);
    e.jobs = jobs;
    e.fork_process = failing_fork;
    forks_left = 1;
    try {
      (void)runs::explore(e);
      ADD_FAILURE() << "a failed fork went unsaid (jobs " << jobs << ")";
    } catch (const std::runtime_error& error) {
      EXPECT_NE(std::string(error.what()).find("a fork failed (Resource temporarily unavailable)"),
                std::string::npos)
          << error.what();
    }
    errno = 0;
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a process of the exploration is left";
    EXPECT_EQ(errno, ECHILD);
  }
}

TEST(Explorer, RefusesWhatCannotRun) {
  runs::ExploreOptions e = exploration(sim::Bug::kNone, 10);
  e.plan.base.customers = -1;
  EXPECT_THROW((void)runs::explore(e), std::invalid_argument);
  e = exploration(sim::Bug::kNone, 0);
  EXPECT_THROW((void)runs::explore(e), std::invalid_argument) << "no budget, no last root";
  e = exploration(sim::Bug::kNone, 10);
  e.plan.base.splits = {{5, 1}};
  EXPECT_THROW((void)runs::explore(e), std::invalid_argument);
  e = exploration(sim::Bug::kNone, 10);
  e.plan.base.native_folder = "/tmp";
  EXPECT_THROW((void)runs::explore(e), std::invalid_argument);
}

}  // namespace
}  // namespace eventmart::test
