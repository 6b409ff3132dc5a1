// The scheduler against a model: a plain ordered multimap of (time, scheduling order). The
// real one keeps a FIFO lane for each of its first 8 distinct delays and a heap for the rest,
// and merges them; with many distinct delays, cancellations, timers scheduled from inside
// timers and runs up to a deadline, every timer must run exactly when and in the order the
// model says, and the clock must stand where the model's does.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "sim/scheduler.h"

namespace eventmart::sim {
namespace {

// One step of a run, drawn by rapidcheck.
struct Op {
  enum Kind { kSchedule, kScheduleFromInside, kCancel, kRunNext, kRunUntil } kind;
  std::int64_t delay;  // kSchedule(FromInside): after now; kRunUntil: how far past now
  std::size_t pick;    // kCancel: which scheduled timer (modulo how many there are)
};

rc::Gen<Op> op_gen() {
  // Delays from a pool far larger than the 8 lanes, with repeats (a lane's FIFO) and ties.
  const auto delay = rc::gen::weightedOneOf<std::int64_t>(
      {{3, rc::gen::elementOf(std::vector<std::int64_t>{0, 1, 5, 200, 1000})},
       {2, rc::gen::inRange<std::int64_t>(0, 5000)}});
  return rc::gen::build<Op>(
      rc::gen::set(&Op::kind, rc::gen::weightedElement<Op::Kind>({{6, Op::kSchedule},
                                                                  {2, Op::kScheduleFromInside},
                                                                  {2, Op::kCancel},
                                                                  {3, Op::kRunNext},
                                                                  {1, Op::kRunUntil}})),
      rc::gen::set(&Op::delay, delay), rc::gen::set(&Op::pick, rc::gen::arbitrary<std::size_t>()));
}

struct Model {
  std::int64_t now;
  std::multimap<std::pair<std::int64_t, std::uint64_t>, int> pending;  // (at, order) -> label
};

RC_GTEST_PROP(SchedulerModel, RunsEveryTimerWhenAndInTheOrderAnOrderedMapSays, ()) {
  const auto ops = *rc::gen::container<std::vector<Op>>(op_gen());
  constexpr std::int64_t kStart = 1'000'000;
  Scheduler scheduler(kStart);
  Model model{kStart, {}};
  std::vector<int> ran, expected;
  std::vector<std::pair<TimerId, std::pair<std::int64_t, std::uint64_t>>> handles;
  std::uint64_t order = 0;
  int next_label = 0;

  // Schedules in both (the model's order is the scheduling order, as the real one's ids).
  std::function<void(std::int64_t, bool)> schedule = [&](std::int64_t delay, bool nested) {
    const int label = next_label++;
    const std::int64_t at = scheduler.now_us() + delay;
    const auto key = std::pair(at, order++);
    model.pending.emplace(key, label);
    const TimerId id = scheduler.call_at(at, [&, label, nested, delay] {
      ran.push_back(label);
      if (nested) schedule(delay / 2 + 7, false);  // a timer that schedules another
    });
    handles.emplace_back(id, key);
  };
  // Runs the model's first timer (and what it schedules, as the real one does).
  const auto model_run_first = [&] {
    auto first = model.pending.begin();
    model.now = first->first.first;
    expected.push_back(first->second);
    model.pending.erase(first);
  };

  for (const Op& op : ops) {
    switch (op.kind) {
      case Op::kSchedule:
        schedule(op.delay, false);
        break;
      case Op::kScheduleFromInside:
        schedule(op.delay, true);
        break;
      case Op::kCancel: {
        if (handles.empty()) break;
        const auto& [id, key] = handles[op.pick % handles.size()];
        const bool was_pending = model.pending.count(key) > 0;
        RC_ASSERT(scheduler.cancel(id) == was_pending);
        model.pending.erase(key);
        break;
      }
      case Op::kRunNext: {
        const std::size_t before = ran.size();
        const bool any = scheduler.run_next();
        RC_ASSERT(any == !model.pending.empty());
        if (!any) break;
        const int label = ran[before];
        auto first = model.pending.begin();
        RC_ASSERT(first->second == label);
        model_run_first();
        // A nested timer scheduled itself from inside: mirror it.
        if (ran.size() > before + 1) RC_FAIL("run_next ran more than one timer");
        break;
      }
      case Op::kRunUntil: {
        const std::int64_t until = scheduler.now_us() + op.delay;
        scheduler.run_until(until);
        while (!model.pending.empty() && model.pending.begin()->first.first <= until) {
          model_run_first();
        }
        model.now = std::max(model.now, until);
        break;
      }
    }
    RC_ASSERT(scheduler.now_us() == model.now);
    RC_ASSERT(scheduler.pending() == model.pending.size());
  }
  while (scheduler.run_next()) {
  }
  while (!model.pending.empty()) model_run_first();
  RC_ASSERT(ran == expected);
}

}  // namespace
}  // namespace eventmart::sim
