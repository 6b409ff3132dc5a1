#include "testkit/broker_probe.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>

namespace eventmart::testing {

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
  return EVENTMART_BINARY;
}

ServeProcess::ServeProcess(std::vector<std::string> args, std::string log_file, bool with_stdin)
    : args_(std::move(args)), log_file_(std::move(log_file)), with_stdin_(with_stdin) {
  start();
}

ServeProcess::~ServeProcess() {
  if (pid_ > 0) kill_now();
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
}

void ServeProcess::start() {
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
    argv.push_back(const_cast<char*>(binary()));
    argv.push_back(const_cast<char*>("serve"));
    for (std::string& a : args_) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(binary(), argv.data());
    ::_exit(127);
  }
  if (with_stdin_) {
    ::close(pipe_fds[0]);
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = pipe_fds[1];
  }
}

void ServeProcess::write_line(const std::string& line) {
  const std::string text = line + "\n";
  if (::write(stdin_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    throw std::runtime_error("cannot write to the serve process's stdin");
  }
}

void ServeProcess::kill_now() {
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = 0;
}

int ServeProcess::terminate() {
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace eventmart::testing
