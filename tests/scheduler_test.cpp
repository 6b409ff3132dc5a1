// sim::Scheduler: the virtual clock.
#include "sim/scheduler.h"

#include <gtest/gtest.h>

#include <vector>

namespace eventmart::sim {
namespace {

TEST(Scheduler, RunsTimersInTimeOrderAndSameInstantInSchedulingOrder) {
  Scheduler s(1000);
  std::vector<int> order;
  s.call_at(3000, [&] { order.push_back(3); });
  s.call_at(2000, [&] { order.push_back(1); });
  s.call_at(2000, [&] { order.push_back(2); });
  s.run_until_idle();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(s.now_us(), 3000);
}

TEST(Scheduler, TimeJumpsToTheNextTimerAndNeverGoesBack) {
  Scheduler s(0);
  std::vector<std::int64_t> seen;
  s.call_at(500, [&] {
    seen.push_back(s.now_us());
    s.call_at(100, [&] { seen.push_back(s.now_us()); });  // in the past: runs "now"
  });
  s.run_until_idle();
  EXPECT_EQ(seen, (std::vector<std::int64_t>{500, 500}));
}

TEST(Scheduler, CancelledTimersDoNotRunAndCancelReportsWhetherItWasPending) {
  Scheduler s(0);
  int ran = 0;
  const TimerId a = s.call_after(10, [&] { ++ran; });
  s.call_after(20, [&] { ++ran; });
  EXPECT_TRUE(s.cancel(a));
  EXPECT_FALSE(s.cancel(a));
  EXPECT_EQ(s.pending(), 1u);
  s.run_until_idle();
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(s.cancel(a));
  EXPECT_FALSE(s.cancel(12345));
}

TEST(Scheduler, RunUntilStopsAtTheDeadlineAndSkipsCancelledTimersBeforeIt) {
  Scheduler s(0);
  int ran = 0;
  const TimerId early = s.call_at(5, [&] { ++ran; });
  s.call_at(50, [&] { ++ran; });
  s.cancel(early);
  s.run_until(10);
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(s.now_us(), 10);
  EXPECT_FALSE(s.drain(40));
  EXPECT_TRUE(s.drain(50));
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(s.now_us(), 50);
}

}  // namespace
}  // namespace eventmart::sim
