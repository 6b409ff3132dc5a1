#include "sim/scheduler.h"

#include <algorithm>

#include "core/assert.h"

namespace eventmart::sim {

Scheduler::Scheduler(std::int64_t start_us) : now_us_(start_us) {
  finished_.push_back(1);  // id 0 is never handed out
}

void Scheduler::release_slot(std::uint32_t slot) {
  callbacks_[slot] = nullptr;  // what the callback captured goes now
  free_slots_.push_back(slot);
}

void Scheduler::run_slot(void* scheduler, std::uint64_t slot) {
  auto& self = *static_cast<Scheduler*>(scheduler);
  std::function<void()> fn = std::move(self.callbacks_[slot]);
  EVENTMART_ASSERT(fn != nullptr, slot);  // a slot runs once: it held a callback till now
  self.release_slot(static_cast<std::uint32_t>(slot));
  fn();
}

TimerId Scheduler::call_at(std::int64_t at_us, std::function<void()> fn) {
  EVENTMART_REQUIRE(fn != nullptr);
  std::uint32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<std::uint32_t>(callbacks_.size());
    callbacks_.push_back(std::move(fn));
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
    // A free slot is empty: one handed out twice would overwrite a pending callback.
    EVENTMART_ASSERT(callbacks_[slot] == nullptr, slot);
    callbacks_[slot] = std::move(fn);
  }
  return enqueue(at_us, &Scheduler::run_slot, this, slot);
}

TimerId Scheduler::call_at(std::int64_t at_us, PlainCallback fn, void* context,
                           std::uint64_t argument) {
  EVENTMART_REQUIRE(fn != nullptr);
  return enqueue(at_us, fn, context, argument);
}

TimerId Scheduler::enqueue(std::int64_t at_us, PlainCallback fn, void* context,
                           std::uint64_t argument) {
  const TimerId id = next_id_++;
  if ((id & 63) == 0) finished_.push_back(0);
  const std::int64_t at = std::max(at_us, now_us_);
  ++queued_;
  const std::int64_t delay = at - now_us_;
  for (Lane& lane : lanes_) {
    if (lane.delay_us == delay) {
      // now only grows and ids only grow: the lane stays ordered
      EVENTMART_ASSERT(lane.timers.empty() || lane.timers.back().at_us <= at,
                       lane.timers.back().at_us, at, delay);
      lane.timers.push_back(at, id, fn, context, argument);
      return id;
    }
  }
  if (lanes_.size() < kMaxLanes) {
    lanes_.push_back(Lane{delay, {}});
    lanes_.back().timers.push_back(at, id, fn, context, argument);
    return id;
  }
  heap_.push_back(Timer{at, id, fn, context, argument});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  return id;
}

bool Scheduler::cancel(TimerId id) {
  if (id == 0 || id >= next_id_ || finished(id)) return false;
  finish(id);
  ++cancelled_pending_;
  return true;
}

void Scheduler::Ring::grow() {
  // Full: unroll into a ring twice the size, oldest first.
  const std::size_t capacity = capacity_ == 0 ? 64 : capacity_ * 2;
  auto grown = std::make_unique<Timer[]>(capacity);
  for (std::size_t i = 0; i < size_; ++i) grown[i] = slots_[(head_ + i) & (capacity_ - 1)];
  slots_ = std::move(grown);
  capacity_ = capacity;
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
    if (!finished(next.id)) return source;
    const bool owns_slot = next.fn == &Scheduler::run_slot;
    const auto slot = static_cast<std::uint32_t>(next.argument);
    pop_from(source);
    if (owns_slot) release_slot(slot);
    --cancelled_pending_;
  }
}

void Scheduler::run_from(int source) {
  EVENTMART_REQUIRE(source != kNone);
  const Timer& front = front_of(source);
  // The next live timer: not cancelled or run, not in the past.
  EVENTMART_REQUIRE(!finished(front.id) && front.at_us >= now_us_, front.id, front.at_us, now_us_);
  const PlainCallback fn = front.fn;
  void* const context = front.context;
  const std::uint64_t argument = front.argument;
  finish(front.id);
  now_us_ = front.at_us;
  pop_from(source);
  ++steps_;
  fn(context, argument);
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
    if (after_step_ != nullptr) after_step_(after_step_context_);
  }
}

std::uint64_t Scheduler::run_until_idle(std::uint64_t max_steps) {
  std::uint64_t ran = 0;
  while (ran < max_steps && run_next()) ++ran;
  return ran;
}

}  // namespace eventmart::sim
