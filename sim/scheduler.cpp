#include "sim/scheduler.h"

#include <algorithm>
#include <cassert>

namespace eventmart::sim {

Scheduler::Scheduler(std::int64_t start_us) : now_us_(start_us) {
  finished_.push_back(true);  // id 0 is never handed out
}

TimerId Scheduler::call_at(std::int64_t at_us, std::function<void()> fn) {
  assert(fn);
  const TimerId id = next_id_++;
  finished_.push_back(false);
  std::uint32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<std::uint32_t>(callbacks_.size());
    callbacks_.push_back(std::move(fn));
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
    callbacks_[slot] = std::move(fn);
  }
  const Timer timer{std::max(at_us, now_us_), id, slot};
  ++queued_;
  const std::int64_t delay = timer.at_us - now_us_;
  for (Lane& lane : lanes_) {
    if (lane.delay_us == delay) {
      lane.timers.push_back(timer);  // now only grows and ids only grow: stays ordered
      return id;
    }
  }
  if (lanes_.size() < kMaxLanes) {
    lanes_.push_back(Lane{delay, {timer}});
    return id;
  }
  heap_.push_back(timer);
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  return id;
}

bool Scheduler::cancel(TimerId id) {
  if (id == 0 || id >= next_id_ || finished_[id]) return false;
  finished_[id] = true;
  ++cancelled_pending_;
  return true;
}

const Scheduler::Timer* Scheduler::peek() const {
  const Timer* best = heap_.empty() ? nullptr : &heap_.front();
  for (const Lane& lane : lanes_) {
    if (!lane.timers.empty() && (best == nullptr || Later{}(*best, lane.timers.front()))) {
      best = &lane.timers.front();
    }
  }
  return best;
}

Scheduler::Timer Scheduler::take_next() {
  const Timer* best = peek();
  const Timer timer = *best;
  --queued_;
  if (!heap_.empty() && best == &heap_.front()) {
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    heap_.pop_back();
    return timer;
  }
  for (Lane& lane : lanes_) {
    if (!lane.timers.empty() && &lane.timers.front() == best) {
      lane.timers.pop_front();
      break;
    }
  }
  return timer;
}

void Scheduler::drop_cancelled_front() {
  while (const Timer* next = peek()) {
    if (!finished_[next->id]) return;
    const std::uint32_t slot = take_next().slot;
    callbacks_[slot] = nullptr;  // release what the callback captured
    free_slots_.push_back(slot);
    --cancelled_pending_;
  }
}

bool Scheduler::run_next() {
  drop_cancelled_front();
  if (peek() == nullptr) return false;
  const Timer timer = take_next();
  std::function<void()> fn = std::move(callbacks_[timer.slot]);
  callbacks_[timer.slot] = nullptr;
  free_slots_.push_back(timer.slot);
  finished_[timer.id] = true;
  now_us_ = timer.at_us;
  ++steps_;
  fn();
  return true;
}

void Scheduler::run_until(std::int64_t until_us) {
  while (true) {
    drop_cancelled_front();
    const Timer* next = peek();
    if (next == nullptr || next->at_us > until_us) break;
    run_next();
  }
  now_us_ = std::max(now_us_, until_us);
}

bool Scheduler::drain(std::int64_t deadline_us) {
  while (true) {
    drop_cancelled_front();
    const Timer* next = peek();
    if (next == nullptr) return true;
    if (next->at_us > deadline_us) return false;
    run_next();
  }
}

std::uint64_t Scheduler::run_until_idle(std::uint64_t max_steps) {
  std::uint64_t ran = 0;
  while (ran < max_steps && run_next()) ++ran;
  return ran;
}

}  // namespace eventmart::sim
