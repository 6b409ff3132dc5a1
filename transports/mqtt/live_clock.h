// Real time for services running on a real broker. A service's code is single-threaded by
// contract, while Paho calls back on its own thread and timers fire on another: every entry
// into a service (a delivery, a publish outcome, a timer) takes the service's Strand first, so
// the service never runs on two threads at once.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "core/clock.h"

namespace eventmart::mqtt {

// Microseconds since the Unix epoch, from the system clock (may step back; LiveClock does not).
std::int64_t wall_clock_us();

// The lock that serialises a service with its transport and timers. Recursive, so a service
// that publishes from inside a delivery (Strand held) may meet the transport taking it again
// on the same thread. It knows which thread holds it, so that code which must not be called
// under it (MqttBus::stop) can check.
class Strand {
 public:
  void lock() {
    mutex_.lock();
    if (depth_++ == 0) owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  bool try_lock() {
    if (!mutex_.try_lock()) return false;
    if (depth_++ == 0) owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    return true;
  }
  void unlock() {
    if (--depth_ == 0) owner_.store(std::thread::id(), std::memory_order_relaxed);
    mutex_.unlock();
  }
  // True when the calling thread holds it (exact: only the holder ever stores its own id).
  bool held_here() const {
    return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }

 private:
  std::recursive_mutex mutex_;
  std::atomic<std::thread::id> owner_{};
  unsigned depth_ = 0;  // guarded by mutex_
};

// One thread that runs every timer of the process.
//
// It must keep running whatever happens, or the process stays alive with nothing left to
// reconnect it (found with the process out of file descriptors: the first timer armed after
// the broker went away made Asio open its epoll descriptors then, that threw out of run(), and
// std::terminate ended the process). So everything the thread needs is made when it starts
// (the reactor with its epoll, eventfd and timerfd descriptors, the resolver), and an
// exception that escapes a handler is reported and the thread runs on.
class TimerThread {
 public:
  // Throws std::system_error when the thread or its descriptors cannot be made.
  TimerThread();
  ~TimerThread();  // stops the thread; timers not yet due never run
  TimerThread(const TimerThread&) = delete;
  TimerThread& operator=(const TimerThread&) = delete;

  boost::asio::io_context& io() { return io_; }
  void stop();

  // Exceptions that escaped a handler (reported on stderr; the thread went on).
  std::uint64_t escaped() const { return escaped_.load(); }
  // When the thread last ran a handler or woke for its heartbeat (wall_clock_us(); at most a
  // second old while the thread is running): a watchdog's sign that it is not stuck.
  std::int64_t last_beat_us() const { return last_beat_us_.load(); }

 private:
  void run();
  void beat();
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::unique_ptr<boost::asio::steady_timer> heartbeat_;
  std::atomic<std::uint64_t> escaped_{0};
  std::atomic<std::int64_t> last_beat_us_{0};
  std::thread thread_;
};

// Wall-clock time (microseconds since the Unix epoch, never decreasing) and timers that run
// under `strand`. A timer callback that throws is reported on stderr; the clock goes on.
class LiveClock final : public Clock {
 public:
  LiveClock(TimerThread& timers, Strand& strand);
  ~LiveClock() override;  // pending timers never run

  std::int64_t now_us() const override;
  using Clock::call_at;
  TimerId call_at(std::int64_t at_us, std::function<void()> fn) override;
  bool cancel(TimerId id) override;

  // Runs `fn` soon on the timer thread, under the strand. Unlike call_at it does not take the
  // strand itself, so it is safe from threads that must never wait for it (Paho's threads
  // while they hold the client's own lock).
  void post(std::function<void()> fn);
  // Runs `fn` soon on the timer thread, without the strand.
  void post_unlocked(std::function<void()> fn);

  // A function that does what post() does and may be kept and called from any thread after
  // the clock is gone (then it does nothing).
  std::function<void(std::function<void()>)> poster() const;

  boost::asio::io_context& io() { return timers_.io(); }

 private:
  struct State {
    explicit State(Strand& s) : strand(s) {}
    Strand& strand;
    std::map<TimerId, std::function<void()>> pending;  // guarded by strand
    TimerId next_id = 1;
    bool closed = false;
  };
  TimerThread& timers_;
  std::shared_ptr<State> state_;  // timer handlers hold it: a destroyed clock's timers do nothing
  mutable std::atomic<std::int64_t> last_us_{0};
};

}  // namespace eventmart::mqtt
