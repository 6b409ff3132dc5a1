#include "transports/mqtt/live_clock.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "core/assert.h"

namespace eventmart::mqtt {
namespace {

// Runs `fn`; an exception is reported on stderr and goes no further (the timer thread lives on).
void run_reporting(const char* what, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    std::cerr << "eventmart: " << what << " failed: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "eventmart: " << what << " failed with an unknown exception\n";
  }
}

}  // namespace

TimerThread::TimerThread() : work_(boost::asio::make_work_guard(io_)) {
  // Made now, while descriptors are there: the reactor (a timer needs it; its first use would
  // otherwise open epoll, eventfd and timerfd descriptors) and the resolver's service (the
  // broker diagnosis resolves host names).
  heartbeat_ = std::make_unique<boost::asio::steady_timer>(io_);
  boost::asio::ip::tcp::resolver warm_resolver(io_);
  last_beat_us_ = wall_clock_us();
  beat();
  thread_ = std::thread([this] { run(); });
}

void TimerThread::run() {
  for (;;) {
    try {
      io_.run();
      return;  // stopped
    } catch (const std::exception& e) {
      ++escaped_;
      std::fprintf(stderr, "eventmart: the timer thread caught '%s' from a handler; going on\n",
                   e.what());
    } catch (...) {
      ++escaped_;
      std::fprintf(stderr, "eventmart: the timer thread caught an exception; going on\n");
    }
  }
}

void TimerThread::beat() {
  last_beat_us_ = wall_clock_us();
  heartbeat_->expires_after(std::chrono::seconds(1));
  heartbeat_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) beat();
  });
}

TimerThread::~TimerThread() {
  stop();
}

void TimerThread::stop() {
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

LiveClock::LiveClock(TimerThread& timers, Strand& strand)
    : timers_(timers), state_(std::make_shared<State>(strand)) {}

LiveClock::~LiveClock() {
  std::lock_guard lock(state_->strand);
  state_->closed = true;
  state_->pending.clear();
}

std::int64_t wall_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t LiveClock::now_us() const {
  const std::int64_t now = wall_clock_us();
  // The contract says time never decreases; the system clock may be stepped back.
  std::int64_t last = last_us_.load(std::memory_order_relaxed);
  while (now > last && !last_us_.compare_exchange_weak(last, now, std::memory_order_relaxed)) {
  }
  return now > last ? now : last;
}

TimerId LiveClock::call_at(std::int64_t at_us, std::function<void()> fn) {
  EVENTMART_REQUIRE(fn != nullptr);
  std::lock_guard lock(state_->strand);
  const TimerId id = state_->next_id++;
  state_->pending.emplace(id, std::move(fn));
  const auto delay = std::chrono::microseconds(std::max<std::int64_t>(0, at_us - now_us()));
  boost::asio::post(timers_.io(), [io = &timers_.io(), state = state_, id, delay] {
    auto timer = std::make_shared<boost::asio::steady_timer>(*io, delay);
    timer->async_wait([state, id, timer](const boost::system::error_code& ec) {
      if (ec) return;  // the timer thread is stopping
      std::lock_guard lock(state->strand);
      if (state->closed) return;
      auto it = state->pending.find(id);
      if (it == state->pending.end()) return;  // cancelled
      std::function<void()> run = std::move(it->second);
      state->pending.erase(it);
      run_reporting("a timer", run);
    });
  });
  return id;
}

void LiveClock::post(std::function<void()> fn) {
  boost::asio::post(timers_.io(), [state = state_, fn = std::move(fn)] {
    std::lock_guard lock(state->strand);
    if (state->closed) return;
    run_reporting("a posted task", fn);
  });
}

std::function<void(std::function<void()>)> LiveClock::poster() const {
  return [io = &timers_.io(), state = state_](std::function<void()> fn) {
    boost::asio::post(*io, [state, fn = std::move(fn)] {
      std::lock_guard lock(state->strand);
      if (state->closed) return;
      run_reporting("a posted task", fn);
    });
  };
}

void LiveClock::post_unlocked(std::function<void()> fn) {
  boost::asio::post(timers_.io(), [fn = std::move(fn)] { run_reporting("a posted task", fn); });
}

bool LiveClock::cancel(TimerId id) {
  std::lock_guard lock(state_->strand);
  return state_->pending.erase(id) == 1;
}

}  // namespace eventmart::mqtt
