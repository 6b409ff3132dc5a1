// Set-up shared by the tests that run against a real mosquitto (tests/mosquitto.h): a logger
// that any thread may use, and a probe client that publishes and records like a device.
#pragma once

#include <gtest/gtest.h>

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
  void publish(const std::string& topic, const std::string& bytes, bool retain = false) {
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

 private:
  Topics topics_;
  mqtt::TimerThread timers_;
  mqtt::Strand strand_;
  mqtt::LiveClock clock_;
  std::unique_ptr<mqtt::MqttBus> bus_;
  mutable std::mutex mutex_;
  std::vector<Message> messages_;
};

}  // namespace eventmart::testing
