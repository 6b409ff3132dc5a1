// Whole-store properties over generated scenarios (properties/scenario_gen.h): the real
// services hold every invariant under generated stores, workloads and fault schedules; every
// bug variant is caught within a bounded number of cases with a small shrunk scenario; a
// standard run reaches the interesting paths.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "properties/scenario_gen.h"
#include "stateful_support.h"

namespace eventmart::sim {
// gtest names a Bug parameter by this.
void PrintTo(Bug bug, std::ostream* os) {
  *os << bug_name(bug);
}
}  // namespace eventmart::sim

namespace eventmart::testing {
namespace {

using properties::check_scenario;
using properties::gen_scenario;

RC_GTEST_PROP(StoreScenarios, TheRealServicesHoldEveryInvariant, ()) {
  check_scenario(*gen_scenario(), sim::Bug::kNone);
}

BoundedCheck check_bug(sim::Bug bug, int cases = 300) {
  return check_bounded(
      [bug](std::size_t* failing) { check_scenario(*gen_scenario(), bug, failing); }, cases);
}

// The bound the shrunk scenarios are held to (visits + packet faults + crashes).
constexpr std::size_t kMaxShrunkEvents = 6;

class ScenarioHarness : public ::testing::TestWithParam<sim::Bug> {};

TEST_P(ScenarioHarness, FindsTheBugWithASmallScenario) {
  const BoundedCheck c = check_bug(GetParam());
  ASSERT_FALSE(c.gave_up) << c.counterexample;
  expect_caught(c, sim::bug_name(GetParam()), 300, kMaxShrunkEvents);
}

INSTANTIATE_TEST_SUITE_P(AllBugs, ScenarioHarness,
                         ::testing::Values(sim::Bug::kNoDedup, sim::Bug::kAckBeforeCommit,
                                           sim::Bug::kRestockEveryEvent, sim::Bug::kNoOutbox,
                                           sim::Bug::kFloatMoney, sim::Bug::kSharedRestockId),
                         [](const ::testing::TestParamInfo<sim::Bug>& info) {
                           std::string name(sim::bug_name(info.param));
                           std::erase(name, '-');
                           return name;
                         });

TEST(ScenarioHarness, AStandardRunReachesEveryInterestingPath) {
  const BoundedCheck c = check_bounded(
      [](std::size_t* failing) { check_scenario(*gen_scenario(), sim::Bug::kNone, failing); }, 100,
      7);
  ASSERT_FALSE(c.gave_up) << c.counterexample;
  ASSERT_FALSE(c.failed) << c.counterexample;
  for (const char* path :
       {"faults hit", "duplicates detected", "restocks fired", "crashes recovered"}) {
    EXPECT_TRUE(c.classes.count(path)) << "no generated case reached: " << path;
  }
}

TEST(ScenarioHarness, TheRealServicesPassTheSameBoundedCheck) {
  const BoundedCheck c = check_bug(sim::Bug::kNone);
  EXPECT_FALSE(c.gave_up) << c.counterexample;
  EXPECT_FALSE(c.failed) << c.counterexample;
}

}  // namespace
}  // namespace eventmart::testing
