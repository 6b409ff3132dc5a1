// Where services report what they did and what went wrong. Production logs to stderr; the
// simulator keeps warnings for its report and drops the chatter.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace eventmart {

enum class LogLevel { kInfo, kWarning, kError };

class Logger {
 public:
  virtual ~Logger() = default;
  // `source` is the service name. REQUIRES: called on the thread that runs the service.
  virtual void log(LogLevel level, std::string_view source, std::string_view message) = 0;
};

class NullLogger final : public Logger {
 public:
  void log(LogLevel, std::string_view, std::string_view) override {}
};

// Keeps warnings and errors (info lines are counted only).
class RecordingLogger final : public Logger {
 public:
  struct Entry {
    LogLevel level;
    std::string source;
    std::string message;
  };
  void log(LogLevel level, std::string_view source, std::string_view message) override {
    if (level == LogLevel::kInfo) {
      ++info_lines_;
      return;
    }
    entries_.push_back(Entry{level, std::string(source), std::string(message)});
  }
  const std::vector<Entry>& entries() const { return entries_; }
  std::size_t info_lines() const { return info_lines_; }

 private:
  std::vector<Entry> entries_;
  std::size_t info_lines_ = 0;
};

}  // namespace eventmart
