// core/assert.h: always-on checks that name their values; in the simulator a failed check is
// a failing seed with its replay, not the end of the process.
#include "core/assert.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "runs/seed_runner.h"

namespace eventmart {
namespace {

int add(int a, int b) {
  return a + b;
}

std::string failure_text(void (*check)()) {
  const ThrowOnAssertion throwing;
  try {
    check();
  } catch (const AssertionFailed& failed) {
    return failed.failure.describe();
  }
  return "(nothing failed)";
}

TEST(Assert, AFailedCheckNamesTheConditionThePlaceAndEveryValue) {
  const std::string text = failure_text([] {
    const int confirmed = 7, handed = 5;
    EVENTMART_ASSERT(confirmed <= handed, confirmed, handed, add(1, 2));
  });
  EXPECT_NE(text.find("assertion failed at "), std::string::npos) << text;
  EXPECT_NE(text.find("assert_test.cpp:"), std::string::npos) << text;
  EXPECT_NE(text.find(": confirmed <= handed"), std::string::npos) << text;
  // Names are split at top-level commas only: add(1, 2) stays whole.
  EXPECT_NE(text.find("(confirmed = 7, handed = 5, add(1, 2) = 3)"), std::string::npos) << text;
}

TEST(Assert, APreconditionSaysSoAndAHeldCheckDoesNothing) {
  const std::string text = failure_text([] {
    const int lo = 3, hi = 2;
    EVENTMART_REQUIRE(lo <= hi, lo, hi);
  });
  EXPECT_EQ(text.rfind("precondition failed at ", 0), 0u) << text;
  EXPECT_EQ(failure_text([] { EVENTMART_ASSERT(1 + 1 == 2); }), "(nothing failed)");
}

TEST(Assert, EveryFailureIsCounted) {
  const std::uint64_t before = failed_assertions();
  failure_text([] { EVENTMART_ASSERT(false); });
  failure_text([] { EVENTMART_REQUIRE(false); });
  EXPECT_EQ(failed_assertions(), before + 2);
}

TEST(Assert, AFailureIsNoStdExceptionSoNoBadInputHandlerSwallowsIt) {
  const ThrowOnAssertion throwing;
  bool swallowed = false, reached = false;
  try {
    try {
      EVENTMART_ASSERT(false);
    } catch (const std::exception&) {
      swallowed = true;
    }
  } catch (const AssertionFailed&) {
    reached = true;
  }
  EXPECT_FALSE(swallowed);
  EXPECT_TRUE(reached);
}

// Outside the simulator (serve, display, chaos): the message on stderr, then abort. systemd
// restarts the unit (Restart=on-failure); what was not committed was not acknowledged, so the
// broker delivers it again (the crash and upgrade tests kill serve mid-load the same way).
TEST(AssertDeathTest, TheDefaultHandlerPrintsTheFailureAndAborts) {
  EXPECT_DEATH(
      {
        const int stock = -1;
        EVENTMART_ASSERT(stock >= 0, stock);
      },
      "eventmart: assertion failed at .*assert_test.cpp:[0-9]+: stock >= 0 \\(stock = -1\\)");
}

TEST(AssertDeathTest, ACheckFailingWhileAnExceptionUnwindsStillStopsTheProcess) {
  struct FailsOnUnwind {
    ~FailsOnUnwind() { EVENTMART_ASSERT(false, "in a destructor"); }
  };
  EXPECT_DEATH(
      {
        const ThrowOnAssertion throwing;
        try {
          FailsOnUnwind f;
          throw std::runtime_error("unwinding");
        } catch (...) {
        }
      },
      "assertion failed at .*: false");
}

namespace handler_test {
std::string seen;
void remember_and_throw(const AssertionFailure& failure) {
  seen = failure.describe();
  throw std::runtime_error("handled");
}
}  // namespace handler_test

TEST(Assert, AnInstalledHandlerSeesTheFailure) {
  const AssertionHandler previous = set_assertion_handler(&handler_test::remember_and_throw);
  EXPECT_THROW(EVENTMART_REQUIRE(2 < 1), std::runtime_error);
  set_assertion_handler(previous);
  EXPECT_NE(handler_test::seen.find("precondition failed"), std::string::npos);
}

// ---- in the simulator -------------------------------------------------------------------------

runs::RunPlan small_plan() {
  runs::RunPlan plan;
  plan.base.customers = 40;
  plan.base.products = 10;
  plan.base.open_duration_us = sim::kHourUs;
  return plan;
}

TEST(Assert, ACheckFailingInsideARunEndsThatRunAsAFailingSeedWithTheReason) {
  // The trace listener runs inside the simulated day, like the real code's checks.
  const auto fail_at_entry_100 = [](const sim::TraceEntry& e) {
    EVENTMART_ASSERT(e.index < 100, e.index);
  };
  const runs::SeedOutcome outcome = runs::run_seed(small_plan(), 3, fail_at_entry_100);
  EXPECT_FALSE(outcome.passed());
  ASSERT_EQ(outcome.failures(), std::vector<std::string>{"assertion"});
  EXPECT_NE(outcome.result.assertion.find("e.index < 100 (e.index = 100)"), std::string::npos)
      << outcome.result.assertion;
  EXPECT_TRUE(outcome.invariants.empty()) << "a day cut short is not checked";
  EXPECT_EQ(outcome.result.stats.trace_entries, 100);  // the 101st stopped it
  // The same seed stops at the same place: it replays.
  const runs::SeedOutcome again = runs::run_seed(small_plan(), 3, fail_at_entry_100);
  EXPECT_EQ(again.result.trace_hash, outcome.result.trace_hash);
  EXPECT_EQ(again.result.assertion, outcome.result.assertion);
  // And the process goes on: the next run is whole.
  EXPECT_TRUE(runs::run_seed(small_plan(), 3).passed());
}

}  // namespace
}  // namespace eventmart
