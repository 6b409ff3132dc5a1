// Clients for the tests and benchmarks that run against a real mosquitto (testkit/mosquitto.h):
// a logger that any thread may use, a probe client that publishes and records like a device,
// and `eventmart serve` as a child process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/topics.h"
#include "runtime/process.h"
#include "testkit/mosquitto.h"
#include "transports/mqtt/live_clock.h"
#include "transports/mqtt/mqtt_bus.h"

namespace eventmart::test {

// Keeps every line; prints them too when EVENTMART_TEST_VERBOSE is set.
class SharedLogger final : public Logger {
 public:
  void log(LogLevel level, std::string_view source, std::string_view message) override;
  bool contains(const std::string& text) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

struct Message {
  std::string topic;
  std::string bytes;
  bool redelivered = false;
};

// One MQTT client with its own strand, clock and timer thread.
class Probe {
 public:
  Probe(const std::string& broker, const std::string& client_id, Logger& logger,
        const Topics& topics = Topics(), mqtt::MqttOptions options = {});
  ~Probe();

  mqtt::MqttBus& bus() { return *bus_; }
  mqtt::Strand& strand() { return strand_; }

  // Records every message on `filter`, as bytes.
  void record(const std::string& filter);
  // Connects and waits until `subscriptions` SUBACKs came back.
  bool start(std::uint64_t subscriptions = 0);
  void publish(const std::string& topic, const std::string& bytes,
               mqtt::Retain retain = mqtt::Retain::kNo);
  std::vector<Message> messages(const std::string& topic_prefix = "") const;
  std::size_t count(const std::string& topic_prefix = "") const;
  // How many messages on `topic` (or below it) carried exactly `bytes` ("online", ...).
  std::size_t count_saying(const std::string& topic, const std::string& bytes) const;

 private:
  Topics topics_;
  mqtt::TimerThread timers_;
  mqtt::Strand strand_;
  mqtt::LiveClock clock_;
  std::unique_ptr<mqtt::MqttBus> bus_;
  mutable std::mutex mutex_;
  std::vector<Message> messages_;
};

// `eventmart serve` (the binary this build made) in a child process, its output in a log file.
class ServeProcess {
 public:
  struct Options {
    bool with_stdin = false;        // write_line() feeds the process's stdin (scanner lines)
    int max_open_files = 0;         // > 0: the process's RLIMIT_NOFILE
    std::string command = "serve";  // or "display"
    std::string binary;             // another build's eventmart; empty: binary()
  };
  // With `with_stdin`, write_line() feeds the process's stdin (scanner lines).
  ServeProcess(std::vector<std::string> args, std::string log_file, bool with_stdin = false);
  ServeProcess(std::vector<std::string> args, std::string log_file, Options options);
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  void start();
  void write_line(const std::string& line);
  void kill_now();
  // SIGTERM; the exit status.
  int terminate();
  // The child's pid while it runs (0 before start and after it was reaped).
  pid_t pid() const;

  // The `eventmart` binary of this build, or $EVENTMART_TEST_BINARY when set.
  static const char* binary();

 private:
  std::vector<std::string> args_;
  std::string log_file_;
  Options options_;
  std::unique_ptr<runtime::Process> process_;  // started (and restarted) through the launcher
};

}  // namespace eventmart::test
