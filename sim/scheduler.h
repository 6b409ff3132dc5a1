// The simulator's scheduler and virtual clock. Single-threaded: time advances only when the
// scheduler jumps to the next due timer, so a store day runs in milliseconds. Timers due at
// the same instant run in the order they were scheduled, which makes every run with the same
// inputs take the same path.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/clock.h"

namespace eventmart::sim {

class Scheduler final : public Clock {
 public:
  explicit Scheduler(std::int64_t start_us);

  std::int64_t now_us() const override { return now_us_; }
  TimerId call_at(std::int64_t at_us, std::function<void()> fn) override;
  TimerId call_at(std::int64_t at_us, PlainCallback fn, void* context,
                  std::uint64_t argument) override;
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

  // Called after every timer drain() runs: a quiet point, where no timer's code is on the stack
  // (the explorer's splitpoints, sim/recipe.h). Null: nothing is called.
  using AfterStep = void (*)(void* context);
  void set_after_step(AfterStep fn, void* context) {
    after_step_ = fn;
    after_step_context_ = context;
  }

  // Pending (not cancelled) timers.
  std::size_t pending() const { return queued_ - cancelled_pending_; }

  // Timers run so far.
  std::uint64_t steps() const { return steps_; }

 private:
  // Timers scheduled "now + d" for the same d arrive in (at_us, id) order, so each of the
  // first kMaxLanes distinct delays gets a FIFO lane; everything else goes to a heap. The
  // next timer is the least (at_us, id) among the lane fronts and the heap top. A timer
  // carries its callback as a plain function of a pointer and a number; a std::function
  // waits in callbacks_[argument] behind run_slot, so none is ever sifted.
  struct Timer {
    std::int64_t at_us;
    TimerId id;  // also the tie-breaker: scheduling order
    PlainCallback fn;
    void* context;
    std::uint64_t argument;
  };
  struct Later {
    bool operator()(const Timer& a, const Timer& b) const {
      return a.at_us != b.at_us ? a.at_us > b.at_us : a.id > b.id;
    }
  };
  static constexpr std::size_t kMaxLanes = 8;
  // A FIFO on a ring of slots that only grows: a lane's steady state allocates nothing and
  // writes to memory it used a moment ago.
  class Ring {
   public:
    bool empty() const { return size_ == 0; }
    const Timer& front() const { return slots_[head_]; }
    const Timer& back() const { return slots_[(head_ + size_ - 1) & (capacity_ - 1)]; }
    void pop_front() {
      head_ = (head_ + 1) & (capacity_ - 1);
      --size_;
    }
    // Field by field: a Timer just built on the stack and copied whole would wait on the
    // stores that built it (a store-forwarding stall, a third of the bus's time).
    void push_back(std::int64_t at_us, TimerId id, PlainCallback fn, void* context,
                   std::uint64_t argument) {
      if (size_ == capacity_) grow();
      Timer& t = slots_[(head_ + size_) & (capacity_ - 1)];
      t.at_us = at_us;
      t.id = id;
      t.fn = fn;
      t.context = context;
      t.argument = argument;
      ++size_;
    }

   private:
    void grow();
    std::unique_ptr<Timer[]> slots_;
    std::size_t capacity_ = 0;  // of slots_: a power of two (or zero)
    std::size_t head_ = 0;
    std::size_t size_ = 0;
  };
  struct Lane {
    std::int64_t delay_us;
    Ring timers;
  };
  // Where the next timer in (at_us, id) order waits: kHeap, a lane's index, or kNone.
  static constexpr int kHeap = -1;
  static constexpr int kNone = -2;
  int next_source() const;
  const Timer& front_of(int source) const {
    return source == kHeap ? heap_.front()
                           : lanes_[static_cast<std::size_t>(source)].timers.front();
  }
  void pop_from(int source);
  // Drops cancelled timers at the front; returns where the next live timer waits (or kNone).
  int next_live_source();
  // Runs the live timer at `source`. REQUIRES: source == next_live_source() (checked: the
  // timer there is live and not in the past).
  void run_from(int source);
  TimerId enqueue(std::int64_t at_us, PlainCallback fn, void* context, std::uint64_t argument);
  // The callback of a timer whose std::function waits in callbacks_[slot]: runs it.
  static void run_slot(void* scheduler, std::uint64_t slot);
  void release_slot(std::uint32_t slot);  // empty again, and free

  std::int64_t now_us_;
  TimerId next_id_ = 1;
  std::uint64_t steps_ = 0;
  std::vector<Timer> heap_;
  std::vector<Lane> lanes_;
  std::size_t queued_ = 0;  // timers in lanes_ and heap_, cancelled ones included
  std::vector<std::function<void()>> callbacks_;  // of timers scheduled with one, by slot
  std::vector<std::uint32_t> free_slots_;
  // Bit `id` of finished_: the timer ran or was cancelled. One bit per timer ever scheduled,
  // a word added every 64 timers.
  std::vector<std::uint64_t> finished_;
  bool finished(TimerId id) const { return (finished_[id >> 6] >> (id & 63)) & 1u; }
  void finish(TimerId id) { finished_[id >> 6] |= std::uint64_t{1} << (id & 63); }
  std::size_t cancelled_pending_ = 0;
  AfterStep after_step_ = nullptr;
  void* after_step_context_ = nullptr;  // cancelled timers still sitting in heap_
};

}  // namespace eventmart::sim
