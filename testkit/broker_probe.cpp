#include "testkit/broker_probe.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>

namespace eventmart::test {

void SharedLogger::log(LogLevel, std::string_view source, std::string_view message) {
  std::lock_guard lock(mutex_);
  lines_.push_back(std::string(source) + ": " + std::string(message));
  if (std::getenv("EVENTMART_TEST_VERBOSE") != nullptr) std::cerr << lines_.back() << "\n";
}

bool SharedLogger::contains(const std::string& text) const {
  std::lock_guard lock(mutex_);
  for (const std::string& l : lines_) {
    if (l.find(text) != std::string::npos) return true;
  }
  return false;
}

Probe::Probe(const std::string& broker, const std::string& client_id, Logger& logger,
             const Topics& topics, mqtt::MqttOptions options)
    : topics_(topics), clock_(timers_, strand_) {
  options.broker = broker;
  options.client_id = client_id;
  if (options.status_topic.empty()) options.clean_session = true;
  bus_ = std::make_unique<mqtt::MqttBus>(options, topics_, clock_, strand_, logger, client_id);
}

Probe::~Probe() {
  bus_->stop(std::chrono::milliseconds(100));
}

void Probe::record(const std::string& filter) {
  bus_->subscribe_bytes(filter, [this](const std::string& topic, std::string_view bytes, bool dup) {
    std::lock_guard lock(mutex_);
    messages_.push_back(Message{topic, std::string(bytes), dup});
  });
}

bool Probe::start(std::uint64_t subscriptions) {
  bus_->start();
  return wait_until([&] {
    return bus_->connected() && bus_->stats().subscriptions_acknowledged >= subscriptions;
  });
}

void Probe::publish(const std::string& topic, const std::string& bytes, mqtt::Retain retain) {
  bus_->publish_bytes(topic, bytes, Qos::kAtLeastOnce, retain, nullptr);
}

std::vector<Message> Probe::messages(const std::string& topic_prefix) const {
  std::lock_guard lock(mutex_);
  std::vector<Message> out;
  for (const Message& m : messages_) {
    if (m.topic.rfind(topic_prefix, 0) == 0) out.push_back(m);
  }
  return out;
}

std::size_t Probe::count(const std::string& topic_prefix) const {
  return messages(topic_prefix).size();
}

std::size_t Probe::count_saying(const std::string& topic, const std::string& bytes) const {
  std::size_t n = 0;
  for (const Message& m : messages(topic)) n += m.bytes == bytes;
  return n;
}

const char* ServeProcess::binary() {
  // EVENTMART_TEST_BINARY: another build's binary (an older release, in the upgrade test).
  const char* other = std::getenv("EVENTMART_TEST_BINARY");
  return other != nullptr && *other != '\0' ? other : EVENTMART_BINARY;
}

ServeProcess::ServeProcess(std::vector<std::string> args, std::string log_file, bool with_stdin)
    : ServeProcess(std::move(args), std::move(log_file), Options{with_stdin, 0, "serve", ""}) {}

ServeProcess::ServeProcess(std::vector<std::string> args, std::string log_file, Options options)
    : args_(std::move(args)), log_file_(std::move(log_file)), options_(std::move(options)) {
  start();
}

ServeProcess::~ServeProcess() = default;  // the process is killed and reaped if it runs

void ServeProcess::start() {
  if (process_ && process_->running()) return;
  runtime::SpawnOptions spawn;
  spawn.argv = {options_.binary.empty() ? binary() : options_.binary, options_.command};
  spawn.argv.insert(spawn.argv.end(), args_.begin(), args_.end());
  spawn.log_file = log_file_;
  spawn.stdin_pipe = options_.with_stdin;
  spawn.max_open_files = options_.max_open_files;
  process_ = std::make_unique<runtime::Process>(std::move(spawn));
}

pid_t ServeProcess::pid() const {
  return process_ ? process_->pid() : 0;
}

void ServeProcess::write_line(const std::string& line) {
  if (!process_ || !process_->write_stdin(line + "\n")) {
    throw std::runtime_error("cannot write to the serve process's stdin");
  }
}

void ServeProcess::kill_now() {
  if (process_) process_->kill_now();
}

int ServeProcess::terminate() {
  if (!process_ || process_->pid() <= 0) return -1;
  process_->signal(SIGTERM);
  return process_->wait();
}

}  // namespace eventmart::test
