// The localizer (runs/localizer.h): where a failing run's failure became inevitable. The curve
// is a pure function of the options (the same twice), the interval holds the fault the bug
// mishandles, the failing future it names replays failing, a run that holds is refused, and a
// fork that fails is a clear error with every future reaped.
#include "runs/localizer.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "runs/seed_runner.h"
#include "sim/bugs/bugs.h"
#include "sim/world.h"
#include "tests/failing_fork.h"

namespace eventmart::test {
namespace {

// A day with rare crashes (about one per service every eight hours), small enough for make
// test: with no-outbox it fails when a consumer dies between its commit and its publish.
runs::LocalizeOptions failing_day(sim::Bug bug, std::uint64_t seed) {
  runs::LocalizeOptions l;
  l.plan.base.customers = 300;
  l.plan.base.faults.crash_per_minute = 0.002;
  l.plan.base.bug = bug;
  l.seed = seed;
  l.futures = 24;
  l.checkpoints = 6;
  l.resolution_us = 60'000'000;
  l.jobs = 2;
  return l;
}

// Seed 1 of that day: fastlane-finale dies right after a commit at 19:35:15.3 (drawn at the
// 19:35:00 tick), its PaymentDue never sent.
TEST(Localizer, FindsTheCrashAndAFailingFutureThatReplaysFailing) {
  runs::LocalizeOptions l = failing_day(sim::Bug::kNoOutbox, 1);
  l.resolution_us = 1'000'000;
  const runs::Localization r = runs::localize(l);
  ASSERT_FALSE(r.failures.empty());
  ASSERT_GE(r.curve.size(), 2u);
  for (std::size_t i = 1; i < r.curve.size(); ++i) {
    EXPECT_LT(r.curve[i - 1].step, r.curve[i].step) << "the curve is ordered by step";
    EXPECT_LE(r.curve[i - 1].at_us, r.curve[i].at_us);
  }
  for (const runs::Checkpoint& c : r.curve) {
    EXPECT_GT(c.futures, 0u);
    EXPECT_LE(c.futures, l.futures);
    EXPECT_EQ(c.futures % runs::LocalizeOptions::kBatch, 0u);
    EXPECT_LE(c.failing, c.futures);
  }
  // A checkpoint clearly on one side stops after one batch: only those near the jump cost all.
  EXPECT_TRUE(std::any_of(r.curve.begin(), r.curve.end(), [](const runs::Checkpoint& c) {
    return c.futures == runs::LocalizeOptions::kBatch;
  }));
  ASSERT_EQ(r.verdict, runs::Localization::Verdict::kInterval);
  const runs::Checkpoint& a = r.curve[r.before];
  const runs::Checkpoint& b = r.curve[r.after];
  EXPECT_EQ(r.after, r.before + 1) << "the interval's ends are neighbours on the curve";
  EXPECT_LT(a.fraction(), b.fraction());
  EXPECT_GE(b.fraction(), 0.5);
  EXPECT_EQ(a.futures, l.futures) << "the interval's ends get every future";
  EXPECT_EQ(b.futures, l.futures);
  // Narrowed to the resolution, or to two neighbouring quiet points.
  EXPECT_TRUE(b.at_us - a.at_us <= l.resolution_us || b.step == a.step + 1)
      << (b.at_us - a.at_us) << " us wide";
  ASSERT_EQ(r.failing_future.seed, l.seed);
  ASSERT_FALSE(r.failing_future.splits.empty());
  EXPECT_EQ(r.failing_future.splits.back().step, b.step);
  runs::RunPlan plan = l.plan;
  plan.base.splits = r.failing_future.splits;
  const runs::SeedOutcome again = runs::run_seed(plan, l.seed);
  EXPECT_FALSE(again.passed()) << "the failing future " << sim::to_string(r.failing_future)
                               << " passed";
  EXPECT_GT(r.futures_run, 0u);
  EXPECT_GT(r.cpu_seconds, 0);
  // The cause: the crash drawn inside the interval, striking right after it.
  const bool crash_inside = std::any_of(
      r.inside.begin(), r.inside.end(),
      [](const runs::Localization::Entry& e) { return e.kind == sim::TraceKind::kCrash; });
  ASSERT_TRUE(crash_inside || r.next_fault) << "no crash inside or right after the interval";
  if (!crash_inside) {
    EXPECT_EQ(r.next_fault->kind, sim::TraceKind::kCrash) << r.next_fault->text;
    EXPECT_NE(r.next_fault->text.find("fastlane-finale"), std::string::npos) << r.next_fault->text;
    EXPECT_LT(r.next_fault_after_us, 60'000'000) << r.next_fault->text;
  }
}

TEST(Localizer, TheSameOptionsGiveTheSameCurve) {
  runs::LocalizeOptions l = failing_day(sim::Bug::kNoOutbox, 1);
  const runs::Localization a = runs::localize(l);
  l.jobs = 1;  // how many run at once changes nothing
  const runs::Localization b = runs::localize(l);
  ASSERT_EQ(a.curve.size(), b.curve.size());
  for (std::size_t i = 0; i < a.curve.size(); ++i) {
    EXPECT_EQ(a.curve[i].step, b.curve[i].step) << i;
    EXPECT_EQ(a.curve[i].at_us, b.curve[i].at_us) << i;
    EXPECT_EQ(a.curve[i].futures, b.curve[i].futures) << i;
    EXPECT_EQ(a.curve[i].failing, b.curve[i].failing) << i;
  }
  EXPECT_EQ(a.verdict, b.verdict);
  EXPECT_EQ(a.before, b.before);
  EXPECT_EQ(a.after, b.after);
  EXPECT_EQ(sim::to_string(a.failing_future), sim::to_string(b.failing_future));
  EXPECT_EQ(a.inside, b.inside);
}

// A recipe's own splits: a future forked before one of them leaves the rest behind, and its
// recipe (the splits before it, then its own) replays as it ran.
TEST(Localizer, WorksOnARecipeAndItsFutureReplays) {
  runs::LocalizeOptions l = failing_day(sim::Bug::kNoOutbox, 1);
  // A failing timeline with a split early in the day: a root reseeded at a quiet point.
  bool found = false;
  for (std::uint64_t seed = 1; seed < 60 && !found; ++seed) {
    for (std::uint32_t child = 1; child <= 4 && !found; ++child) {
      runs::RunPlan plan = l.plan;
      plan.base.splits = {{2000, child}};
      if (!runs::run_seed(plan, seed).passed()) {
        l.seed = seed;
        l.plan = plan;
        found = true;
      }
    }
  }
  ASSERT_TRUE(found);
  const runs::Localization r = runs::localize(l);
  ASSERT_FALSE(r.failures.empty());
  ASSERT_EQ(r.verdict, runs::Localization::Verdict::kInterval) << "seed " << l.seed;
  runs::RunPlan plan = l.plan;
  plan.base.splits = r.failing_future.splits;
  EXPECT_FALSE(runs::run_seed(plan, l.seed).passed()) << sim::to_string(r.failing_future);
}

// A brancher that turns the run itself into a child at its first quiet point from step `at`
// on (no fork: what a forked future does after its fork).
class SplitOnce final : public sim::Brancher {
 public:
  explicit SplitOnce(std::uint64_t at) : at_(at) {}
  bool within_recipe() const override { return true; }
  std::optional<sim::Splitpoint> at_quiet_point(std::uint64_t step, std::int64_t,
                                                const MarkCounts&) override {
    if (split_at != 0 || step < at_) return std::nullopt;
    split_at = step;
    return sim::Splitpoint{step, 7};
  }
  std::uint64_t split_at = 0;

 private:
  std::uint64_t at_;
};

TEST(Localizer, AFutureForkedBeforeARecipesSplitLeavesTheRestOfTheRecipeBehind) {
  sim::SimOptions o;
  o.customers = 300;
  o.seed = 3;
  o.faults.crash_per_minute = 0.002;
  o.splits = {{3000, 2}};
  ASSERT_NO_THROW((void)sim::run_simulation(o)) << "the recipe's split is inside the day";
  SplitOnce future(500);
  o.brancher = &future;
  const sim::SimResult r = sim::run_simulation(o);
  ASSERT_GE(future.split_at, 500u);
  ASSERT_LT(future.split_at, 3000u);
  ASSERT_EQ(r.splits.size(), 1u) << "the recipe's split at step 3000 was taken too";
  EXPECT_EQ(r.splits[0].step, future.split_at);
  EXPECT_EQ(r.splits[0].child, 7u);
  sim::SimOptions again = o;
  again.brancher = nullptr;
  again.splits = r.splits;
  EXPECT_EQ(sim::run_simulation(again).trace_hash, r.trace_hash) << "its recipe replays it";
}

// A mistake that needs no fault (a basket summed in floating point): every future from every
// checkpoint fails too; the answer is the day's plan, not an interval.
TEST(Localizer, AFailureEveryFutureSharesIsDecidedFromTheStart) {
  runs::LocalizeOptions l = failing_day(sim::Bug::kFloatMoney, 1);
  l.plan.base.faults = sim::FaultOptions{};
  const runs::Localization r = runs::localize(l);
  ASSERT_FALSE(r.failures.empty());
  EXPECT_EQ(r.verdict, runs::Localization::Verdict::kFromTheStart);
  EXPECT_EQ(r.curve.size(), l.checkpoints) << "the first pass only";
  for (const runs::Checkpoint& c : r.curve) EXPECT_GE(c.fraction(), 0.5) << c.at_us;
  EXPECT_TRUE(r.failing_future.splits.empty());
}

TEST(Localizer, ARunThatHoldsIsRefused) {
  runs::LocalizeOptions l = failing_day(sim::Bug::kNone, 1);
  try {
    (void)runs::localize(l);
    ADD_FAILURE() << "a passing run was localized";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no failure to localize"), std::string::npos) << e.what();
  }
}

TEST(Localizer, RefusesOptionsOutOfRange) {
  runs::LocalizeOptions l = failing_day(sim::Bug::kNoOutbox, 1);
  l.futures = 20;  // not a multiple of 8
  EXPECT_THROW((void)runs::localize(l), std::invalid_argument);
  l.futures = 24;
  l.checkpoints = 1;
  EXPECT_THROW((void)runs::localize(l), std::invalid_argument);
}

TEST(Localizer, AForkThatFailsIsAClearErrorAndEveryFutureIsReaped) {
  runs::LocalizeOptions l = failing_day(sim::Bug::kNoOutbox, 1);
  l.fork_process = failing_fork;
  forks_left = 3;
  try {
    (void)runs::localize(l);
    ADD_FAILURE() << "a failed fork went unsaid";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("a fork failed (Resource temporarily unavailable)"),
              std::string::npos)
        << e.what();
  }
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a future is left running";
  EXPECT_EQ(errno, ECHILD);
}

TEST(Localizer, ClockText) {
  EXPECT_EQ(runs::clock_text(sim::kStoreOpensAtUs), "08:00:00.0");
  EXPECT_EQ(runs::clock_text(sim::kStoreOpensAtUs + 9'907'250'000), "10:45:07.2");
  EXPECT_EQ(runs::clock_text(sim::kStoreOpensAtUs + 18 * sim::kHourUs), "+1d 02:00:00.0");
}

}  // namespace
}  // namespace eventmart::test
