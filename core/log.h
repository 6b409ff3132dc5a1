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
  // `source` is the service name. Called on the thread that runs the service; a logger shared
  // by services on several threads locks itself.
  virtual void log(LogLevel level, std::string_view source, std::string_view message) = 0;
  // False when lines of `level` are dropped anyway, so callers can skip formatting them.
  virtual bool wants(LogLevel level) const { return true; }
};

class NullLogger final : public Logger {
 public:
  void log(LogLevel, std::string_view, std::string_view) override {}
  bool wants(LogLevel) const override { return false; }
};

// Keeps warnings and errors; info lines are not even formatted.
class RecordingLogger final : public Logger {
 public:
  struct Entry {
    LogLevel level;
    std::string source;
    std::string message;
  };
  void log(LogLevel level, std::string_view source, std::string_view message) override {
    if (level != LogLevel::kInfo) {
      entries_.push_back(Entry{level, std::string(source), std::string(message)});
    }
  }
  bool wants(LogLevel level) const override { return level != LogLevel::kInfo; }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
};

}  // namespace eventmart
