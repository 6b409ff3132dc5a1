#include "runtime/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>

namespace eventmart::runtime {

SystemdNotifier::SystemdNotifier(Probes probes, std::chrono::milliseconds stuck_after)
    : probes_(std::move(probes)), stuck_after_(stuck_after) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr || *socket == '\0') return;
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) watchdog_ = std::chrono::microseconds(usec);
  thread_ = std::thread([this] { run(); });
}

SystemdNotifier::~SystemdNotifier() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

SystemdNotifier::Look SystemdNotifier::look(std::int64_t now_us) const {
  Look l;
  const std::vector<ServiceReadiness> services = probes_.readiness();
  std::size_t ready = 0;
  bool all_going = true;
  std::string not_ready;
  for (const ServiceReadiness& s : services) {
    all_going = all_going && s.keeps_going;
    if (s.ready) {
      ++ready;
      continue;
    }
    not_ready += (not_ready.empty() ? "" : "; ") + s.service +
                 (!s.connected        ? (s.keeps_going ? ": not connected (reconnecting)"
                                                       : ": not connected, not reconnecting")
                  : s.refused_now > 0 ? ": a subscription was refused"
                                      : ": subscribing");
  }
  l.ready = ready == services.size();
  l.status = std::to_string(ready) + " of " + std::to_string(services.size()) + " services ready" +
             (not_ready.empty() ? "" : ": " + not_ready);
  const std::int64_t beat_age_us = now_us - probes_.timer_beat_us();
  const bool timers_beat = beat_age_us <= std::chrono::microseconds(stuck_after_).count();
  if (!timers_beat) {
    l.status +=
        "; the timer thread has not run for " + std::to_string(beat_age_us / 1'000'000) + " s";
  }
  l.healthy = timers_beat && all_going;
  return l;
}

void SystemdNotifier::run() {
  // Often enough for a watchdog of any interval, and to report a change within a second.
  const auto every = watchdog_.count() > 0 ? std::min<std::chrono::microseconds>(
                                                 watchdog_ / 3, std::chrono::seconds(1))
                                           : std::chrono::microseconds(std::chrono::seconds(1));
  bool ready_sent = false;
  std::string last_status;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    const Look l = look(mqtt::wall_clock_us());
    std::string message;
    if (l.ready && !ready_sent) {
      message += "READY=1\n";
      ready_sent = true;
    }
    if (l.status != last_status) {
      message += "STATUS=" + l.status + "\n";
      last_status = l.status;
    }
    if (watchdog_.count() > 0 && l.healthy) message += "WATCHDOG=1\n";
    if (!message.empty()) sd_notify(0, message.c_str());
    lock.lock();
    wake_.wait_for(lock, every, [this] { return stopping_; });
  }
}

}  // namespace eventmart::runtime
