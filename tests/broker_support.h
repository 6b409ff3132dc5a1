// Set-up shared by the tests that run against a real mosquitto (tests/mosquitto.h): a logger
// that any thread may use, and a probe client that publishes and records like a device.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/topics.h"
#include "tests/mosquitto.h"
#include "transports/mqtt/live_clock.h"
#include "transports/mqtt/mqtt_bus.h"

namespace eventmart::testing {

// Keeps every line; prints them too when EVENTMART_TEST_VERBOSE is set.
class SharedLogger final : public Logger {
 public:
  void log(LogLevel level, std::string_view source, std::string_view message) override {
    std::lock_guard lock(mutex_);
    lines_.push_back(std::string(source) + ": " + std::string(message));
    if (std::getenv("EVENTMART_TEST_VERBOSE") != nullptr) std::cerr << lines_.back() << "\n";
  }
  bool contains(const std::string& text) const {
    std::lock_guard lock(mutex_);
    for (const std::string& l : lines_) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }

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
        const Topics& topics = Topics(), mqtt::MqttOptions options = {})
      : topics_(topics), clock_(timers_, strand_) {
    options.broker = broker;
    options.client_id = client_id;
    if (options.status_topic.empty()) options.clean_session = true;
    bus_ = std::make_unique<mqtt::MqttBus>(options, topics_, clock_, strand_, logger, client_id);
  }
  ~Probe() { bus_->stop(std::chrono::milliseconds(100)); }

  mqtt::MqttBus& bus() { return *bus_; }
  mqtt::Strand& strand() { return strand_; }

  // Records every message on `filter`, as bytes.
  void record(const std::string& filter) {
    bus_->subscribe_bytes(filter,
                          [this](const std::string& topic, std::string_view bytes, bool dup) {
                            std::lock_guard lock(mutex_);
                            messages_.push_back(Message{topic, std::string(bytes), dup});
                          });
  }
  // Connects and waits until `subscriptions` SUBACKs came back.
  bool start(std::uint64_t subscriptions = 0) {
    bus_->start();
    return wait_until([&] {
      return bus_->connected() && bus_->stats().subscriptions_acknowledged >= subscriptions;
    });
  }
  void publish(const std::string& topic, const std::string& bytes,
               mqtt::Retain retain = mqtt::Retain::kNo) {
    bus_->publish_bytes(topic, bytes, Qos::kAtLeastOnce, retain, nullptr);
  }
  std::vector<Message> messages(const std::string& topic_prefix = "") const {
    std::lock_guard lock(mutex_);
    std::vector<Message> out;
    for (const Message& m : messages_) {
      if (m.topic.rfind(topic_prefix, 0) == 0) out.push_back(m);
    }
    return out;
  }
  std::size_t count(const std::string& topic_prefix = "") const {
    return messages(topic_prefix).size();
  }
  // How many messages on `topic` (or below it) carried exactly `bytes` ("online", ...).
  std::size_t count_saying(const std::string& topic, const std::string& bytes) const {
    std::size_t n = 0;
    for (const Message& m : messages(topic)) n += m.bytes == bytes;
    return n;
  }

 private:
  Topics topics_;
  mqtt::TimerThread timers_;
  mqtt::Strand strand_;
  mqtt::LiveClock clock_;
  std::unique_ptr<mqtt::MqttBus> bus_;
  mutable std::mutex mutex_;
  std::vector<Message> messages_;
};

// `eventmart serve` in a child process, its output in a log file.
class ServeProcess {
 public:
  // With `with_stdin`, write_line() feeds the process's stdin (scanner lines).
  ServeProcess(std::vector<std::string> args, std::string log_file, bool with_stdin = false)
      : args_(std::move(args)), log_file_(std::move(log_file)), with_stdin_(with_stdin) {
    start();
  }
  ~ServeProcess() {
    if (pid_ > 0) kill_now();
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
  }
  void start() {
    int pipe_fds[2] = {-1, -1};
    if (with_stdin_ && ::pipe(pipe_fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      std::freopen(log_file_.c_str(), "a", stdout);
      std::freopen(log_file_.c_str(), "a", stderr);
      if (with_stdin_) {
        ::dup2(pipe_fds[0], STDIN_FILENO);
        ::close(pipe_fds[0]);
        ::close(pipe_fds[1]);
      } else {
        std::freopen("/dev/null", "r", stdin);
      }
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(EVENTMART_BINARY));
      argv.push_back(const_cast<char*>("serve"));
      for (std::string& a : args_) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(EVENTMART_BINARY, argv.data());
      ::_exit(127);
    }
    if (with_stdin_) {
      ::close(pipe_fds[0]);
      if (stdin_fd_ >= 0) ::close(stdin_fd_);
      stdin_fd_ = pipe_fds[1];
    }
  }
  void write_line(const std::string& line) {
    const std::string text = line + "\n";
    if (::write(stdin_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      throw std::runtime_error("cannot write to the serve process's stdin");
    }
  }
  void kill_now() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  // SIGTERM; the exit status.
  int terminate() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  std::vector<std::string> args_;
  std::string log_file_;
  bool with_stdin_ = false;
  int stdin_fd_ = -1;
  pid_t pid_ = 0;
};

}  // namespace eventmart::testing
