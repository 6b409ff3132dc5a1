// Whole-store properties over generated scenarios (tests/scenario_gen.h): the real
// services hold every invariant under generated stores, workloads and fault schedules; every
// bug variant is caught within a bounded number of cases with a small shrunk scenario; a
// standard run reaches the interesting paths.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <sys/wait.h>

#include <cstdio>

#include "tests/scenario_gen.h"
#include "stateful_support.h"

namespace eventmart::sim {
// gtest names a Bug parameter by this.
void PrintTo(Bug bug, std::ostream* os) {
  *os << bug_name(bug);
}
}  // namespace eventmart::sim

namespace eventmart::test {
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

// The shrunk counterexample replays with the one command the failure prints, through the
// shipped binary: it exits 1 naming the same violated invariant.
void expect_replays(const BoundedCheck& c) {
  const std::string prefix = "replay: ";
  const auto at = c.counterexample.rfind(prefix + "eventmart sim --scenario ");
  ASSERT_NE(at, std::string::npos) << "no replay command printed:\n" << c.counterexample;
  std::string cmd = c.counterexample.substr(at + prefix.size(),
                                            c.counterexample.find('\n', at) - at - prefix.size());
  cmd.replace(0, std::string("eventmart").size(), EVENTMART_BIN);
  const auto violated = c.counterexample.find("invariants violated:\n  ");
  ASSERT_NE(violated, std::string::npos) << c.counterexample;
  const auto name_at = violated + std::string("invariants violated:\n  ").size();
  const std::string name =
      c.counterexample.substr(name_at, c.counterexample.find(':', name_at) - name_at);
  std::string output;
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) output.append(buf, n);
  const int status = ::pclose(pipe);
  EXPECT_EQ(WEXITSTATUS(status), 1) << cmd << "\n" << output;
  if (name != "handler failures") {
    EXPECT_NE(output.find(name + " violated"), std::string::npos) << cmd << "\n" << output;
  }
}

TEST_P(ScenarioHarness, FindsTheBugWithASmallScenario) {
  const BoundedCheck c = check_bug(GetParam());
  ASSERT_FALSE(c.gave_up) << c.counterexample;
  expect_caught(c, sim::bug_name(GetParam()), 300, kMaxShrunkEvents);
  expect_replays(c);
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
}  // namespace eventmart::test
