// The simulator's scheduler and virtual clock. Single-threaded: time advances only when the
// scheduler jumps to the next due timer, so a store day runs in milliseconds. Timers due at
// the same instant run in the order they were scheduled, which makes every run with the same
// inputs take the same path.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "core/clock.h"

namespace eventmart::sim {

class Scheduler final : public Clock {
 public:
  explicit Scheduler(std::int64_t start_us);

  std::int64_t now_us() const override { return now_us_; }
  TimerId call_at(std::int64_t at_us, std::function<void()> fn) override;
  bool cancel(TimerId id) override;

  // Jumps to the earliest pending timer and runs it. Returns false when none is pending.
  bool run_next();

  // Runs every timer due at or before `until_us` (including ones they schedule), then sets
  // the clock to `until_us` if it is later than now.
  void run_until(std::int64_t until_us);

  // Runs timers due at or before `deadline_us` without moving the clock past the last one run.
  // Returns true when no timer is left pending (the system is idle).
  bool drain(std::int64_t deadline_us);

  // Runs timers until none is pending or `max_steps` have run. Returns the number run.
  std::uint64_t run_until_idle(std::uint64_t max_steps = UINT64_MAX);

  // Pending (not cancelled) timers.
  std::size_t pending() const { return queued_ - cancelled_pending_; }

  // Timers run so far.
  std::uint64_t steps() const { return steps_; }

 private:
  // Timers scheduled "now + d" for the same d arrive in (at_us, id) order, so each of the
  // first kMaxLanes distinct delays gets a FIFO lane; everything else goes to a heap. The
  // next timer is the least (at_us, id) among the lane fronts and the heap top. Entries are
  // small and plain; the callbacks wait in a slab, so no std::function is ever sifted.
  struct Timer {
    std::int64_t at_us;
    TimerId id;          // also the tie-breaker: scheduling order
    std::uint32_t slot;  // index into callbacks_
  };
  struct Later {
    bool operator()(const Timer& a, const Timer& b) const {
      return a.at_us != b.at_us ? a.at_us > b.at_us : a.id > b.id;
    }
  };
  static constexpr std::size_t kMaxLanes = 8;
  struct Lane {
    std::int64_t delay_us;
    std::deque<Timer> timers;
  };
  // The next timer in (at_us, id) order, or null when none; cancelled ones included.
  const Timer* peek() const;
  Timer take_next();  // REQUIRES: peek() != nullptr

  void drop_cancelled_front();

  std::int64_t now_us_;
  TimerId next_id_ = 1;
  std::uint64_t steps_ = 0;
  std::vector<Timer> heap_;
  std::vector<Lane> lanes_;
  std::size_t queued_ = 0;  // timers in lanes_ and heap_, cancelled ones included
  std::vector<std::function<void()>> callbacks_;
  std::vector<std::uint32_t> free_slots_;
  // finished_[id]: the timer ran or was cancelled. One bit per timer ever scheduled.
  std::vector<bool> finished_;
  std::size_t cancelled_pending_ = 0;  // cancelled timers still sitting in heap_
};

}  // namespace eventmart::sim
