#include "testkit/broker_probe.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
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

ServeProcess::~ServeProcess() {
  if (pid_ > 0) kill_now();
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
}

void ServeProcess::start() {
  int pipe_fds[2] = {-1, -1};
  if (options_.with_stdin && ::pipe(pipe_fds) != 0) throw std::runtime_error("pipe failed");
  const char* program = options_.binary.empty() ? binary() : options_.binary.c_str();
  std::vector<char*> argv;  // made before fork: the child may only exec
  argv.push_back(const_cast<char*>(program));
  argv.push_back(options_.command.data());
  for (std::string& a : args_) argv.push_back(a.data());
  argv.push_back(nullptr);
  const rlimit files{static_cast<rlim_t>(options_.max_open_files),
                     static_cast<rlim_t>(options_.max_open_files)};
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    if (options_.max_open_files > 0 && ::setrlimit(RLIMIT_NOFILE, &files) != 0) ::_exit(126);
    // Only async-signal-safe calls between fork and exec (the parent has Paho's threads).
    const int log = ::open(log_file_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (log < 0) ::_exit(126);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    if (options_.with_stdin) {
      ::dup2(pipe_fds[0], STDIN_FILENO);
      ::close(pipe_fds[0]);
      ::close(pipe_fds[1]);
    } else {
      const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (null >= 0) ::dup2(null, STDIN_FILENO);
    }
    ::execv(program, argv.data());
    ::_exit(127);
  }
  if (options_.with_stdin) {
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
  if (pid_ <= 0) return;  // kill(0) or kill(-1) would signal the group, or everyone
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = 0;
}

int ServeProcess::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace eventmart::testing
