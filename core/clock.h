// Time, behind an interface. Services and the simulator read time only from a Clock: in
// production a real steady clock, in simulation the virtual clock that advances only when
// the scheduler jumps to the next event.
#pragma once

#include <cstdint>
#include <functional>

namespace eventmart {

using TimerId = std::uint64_t;

class Clock {
 public:
  Clock() = default;
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;
  virtual ~Clock() = default;

  // Microseconds since the Unix epoch. Never decreases.
  virtual std::int64_t now_us() const = 0;

  // Runs `fn` once, at `at_us` or as soon after as the clock allows (at once if it has passed).
  // Timers due at the same instant run in the order they were scheduled.
  // Returns an id for cancel(). REQUIRES: fn is not empty (checked).
  virtual TimerId call_at(std::int64_t at_us, std::function<void()> fn) = 0;

  // Runs `fn` after `delay_us` microseconds (negative delays count as zero).
  TimerId call_after(std::int64_t delay_us, std::function<void()> fn) {
    return call_at(now_us() + (delay_us > 0 ? delay_us : 0), std::move(fn));
  }

  // The same for a callback that is a plain function of a pointer and a number: a clock may
  // keep it without a std::function (the simulator's scheduler does, for the memory
  // transport's packets). By default it is wrapped in one.
  using PlainCallback = void (*)(void* context, std::uint64_t argument);
  virtual TimerId call_at(std::int64_t at_us, PlainCallback fn, void* context,
                          std::uint64_t argument) {
    return call_at(at_us, [fn, context, argument] { fn(context, argument); });
  }
  TimerId call_after(std::int64_t delay_us, PlainCallback fn, void* context,
                     std::uint64_t argument) {
    return call_at(now_us() + (delay_us > 0 ? delay_us : 0), fn, context, argument);
  }

  // Prevents a pending timer from running. A timer that already ran, or an unknown id, is
  // ignored. Returns true when a pending timer was cancelled.
  virtual bool cancel(TimerId id) = 0;
};

}  // namespace eventmart
