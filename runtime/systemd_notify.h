// systemd's service protocol (sd_notify, libsystemd) for `serve` and `display`, run as
// Type=notify units with a watchdog (deploy/systemd/):
//
//   READY=1     once every service of the process is connected with every subscription
//               granted (what the status topic calls "online"), the first time;
//   STATUS=...  whenever the connection state changes: "5 of 5 services ready", or which ones
//               are not and why ("fastlane-finale: not connected (reconnecting)");
//   WATCHDOG=1  every watchdog interval / 3, but only while the process is healthy or actively
//               reconnecting: the timer thread (which runs every reconnect) beat within
//               `stuck_after`, and every service either is connected or has a connection
//               attempt under way or scheduled (MqttBus::keeps_going). A process that stopped
//               trying is left to systemd's watchdog, which kills and restarts it.
//   STOPPING=1  when it is destroyed (the process shuts down).
//
// Without NOTIFY_SOCKET (not started by systemd) nothing is sent and no thread runs.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/live_store.h"

namespace eventmart::runtime {

class SystemdNotifier {
 public:
  struct Probes {
    // What each service of the process says now (without waiting for any of them).
    std::function<std::vector<ServiceReadiness>()> readiness;
    // When the timer thread last beat (mqtt::TimerThread::last_beat_us).
    std::function<std::int64_t()> timer_beat_us;
  };
  explicit SystemdNotifier(Probes probes,
                           std::chrono::milliseconds stuck_after = std::chrono::seconds(30));
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  // NOTIFY_SOCKET names a socket: the protocol is spoken.
  bool enabled() const { return thread_.joinable(); }

  // One look, as the thread takes it every interval (for tests): the STATUS= text, whether the
  // process is healthy (a WATCHDOG=1 is due) and whether every service is ready.
  struct Look {
    std::string status;
    bool healthy = false;
    bool ready = false;
  };
  Look look(std::int64_t now_us) const;

 private:
  void run();
  Probes probes_;
  std::chrono::milliseconds stuck_after_;
  std::chrono::microseconds watchdog_{0};  // 0: no watchdog asked for
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace eventmart::runtime
