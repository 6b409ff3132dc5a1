#include "sim/scheduler.h"

#include <algorithm>
#include <cassert>

namespace eventmart::sim {

Scheduler::Scheduler(std::int64_t start_us) : now_us_(start_us) {
  finished_.push_back(true);  // id 0 is never handed out
}

std::uint32_t Scheduler::take_slot() {
  if (free_slots_.empty()) {
    callbacks_.emplace_back();
    plain_.emplace_back();
    return static_cast<std::uint32_t>(callbacks_.size() - 1);
  }
  const std::uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  return slot;
}

void Scheduler::release_slot(std::uint32_t slot) {
  callbacks_[slot] = nullptr;  // what the callback captured goes now
  plain_[slot] = Plain{};
  free_slots_.push_back(slot);
}

TimerId Scheduler::call_at(std::int64_t at_us, std::function<void()> fn) {
  assert(fn);
  const std::uint32_t slot = take_slot();
  callbacks_[slot] = std::move(fn);
  return enqueue(at_us, slot);
}

TimerId Scheduler::call_at(std::int64_t at_us, PlainCallback fn, void* context,
                           std::uint64_t argument) {
  assert(fn != nullptr);
  const std::uint32_t slot = take_slot();
  plain_[slot] = Plain{fn, context, argument};
  return enqueue(at_us, slot);
}

TimerId Scheduler::enqueue(std::int64_t at_us, std::uint32_t slot) {
  const TimerId id = next_id_++;
  finished_.push_back(false);
  const std::int64_t at = std::max(at_us, now_us_);
  ++queued_;
  const std::int64_t delay = at - now_us_;
  for (Lane& lane : lanes_) {
    if (lane.delay_us == delay) {
      lane.timers.push_back(at, id, slot);  // now only grows and ids only grow: stays ordered
      return id;
    }
  }
  if (lanes_.size() < kMaxLanes) {
    lanes_.push_back(Lane{delay, {}});
    lanes_.back().timers.push_back(at, id, slot);
    return id;
  }
  heap_.push_back(Timer{at, id, slot});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  return id;
}

bool Scheduler::cancel(TimerId id) {
  if (id == 0 || id >= next_id_ || finished_[id]) return false;
  finished_[id] = true;
  ++cancelled_pending_;
  return true;
}

void Scheduler::Ring::grow() {
  // Full: unroll into a ring twice the size, oldest first.
  std::vector<Timer> grown(slots_.empty() ? 64 : slots_.size() * 2);
  for (std::size_t i = 0; i < size_; ++i) grown[i] = slots_[(head_ + i) & (slots_.size() - 1)];
  slots_ = std::move(grown);
  head_ = 0;
}

int Scheduler::next_source() const {
  int best = heap_.empty() ? kNone : kHeap;
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    const Ring& timers = lanes_[i].timers;
    if (!timers.empty() && (best == kNone || Later{}(front_of(best), timers.front()))) {
      best = static_cast<int>(i);
    }
  }
  return best;
}

void Scheduler::pop_from(int source) {
  --queued_;
  if (source == kHeap) {
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    heap_.pop_back();
  } else {
    lanes_[static_cast<std::size_t>(source)].timers.pop_front();
  }
}

int Scheduler::next_live_source() {
  while (true) {
    const int source = next_source();
    if (source == kNone) return kNone;
    const Timer& next = front_of(source);
    if (!finished_[next.id]) return source;
    const std::uint32_t slot = next.slot;
    pop_from(source);
    release_slot(slot);
    --cancelled_pending_;
  }
}

void Scheduler::run_from(int source) {
  const Timer timer = front_of(source);
  pop_from(source);
  finished_[timer.id] = true;
  now_us_ = timer.at_us;
  ++steps_;
  if (const Plain plain = plain_[timer.slot]; plain.fn != nullptr) {
    release_slot(timer.slot);
    plain.fn(plain.context, plain.argument);
    return;
  }
  std::function<void()> fn = std::move(callbacks_[timer.slot]);
  release_slot(timer.slot);
  fn();
}

bool Scheduler::run_next() {
  const int source = next_live_source();
  if (source == kNone) return false;
  run_from(source);
  return true;
}

void Scheduler::run_until(std::int64_t until_us) {
  while (true) {
    const int source = next_live_source();
    if (source == kNone || front_of(source).at_us > until_us) break;
    run_from(source);
  }
  now_us_ = std::max(now_us_, until_us);
}

bool Scheduler::drain(std::int64_t deadline_us) {
  while (true) {
    const int source = next_live_source();
    if (source == kNone) return true;
    if (front_of(source).at_us > deadline_us) return false;
    run_from(source);
  }
}

std::uint64_t Scheduler::run_until_idle(std::uint64_t max_steps) {
  std::uint64_t ran = 0;
  while (ran < max_steps && run_next()) ++ran;
  return ran;
}

}  // namespace eventmart::sim
