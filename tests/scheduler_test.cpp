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

// The plain-callback form (the memory transport's packets) runs in the same order as
// std::function timers around it and can be cancelled the same way.
TEST(Scheduler, PlainCallbacksKeepSchedulingOrderAmongOtherTimersAndCanBeCancelled) {
  Scheduler s(0);
  std::vector<std::uint64_t> order;
  const auto record = [](void* out, std::uint64_t n) {
    static_cast<std::vector<std::uint64_t>*>(out)->push_back(n);
  };
  s.call_at(10, [&] { order.push_back(1); });
  s.call_at(10, record, &order, 2);
  const TimerId cancelled = s.call_at(10, record, &order, 99);
  s.call_at(5, record, &order, 0);
  s.call_after(10, [&] { order.push_back(3); });
  EXPECT_TRUE(s.cancel(cancelled));
  for (std::uint64_t i = 4; i < 200; ++i) s.call_at(20, record, &order, i);  // grows a lane
  s.run_until_idle();
  std::vector<std::uint64_t> expected{0, 1, 2, 3};
  for (std::uint64_t i = 4; i < 200; ++i) expected.push_back(i);
  EXPECT_EQ(order, expected);
  EXPECT_EQ(s.pending(), 0u);
  EXPECT_EQ(s.now_us(), 20);
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
