// Parsing of numeric command-line values with messages that say what was wrong. Boost's
// lexical_cast would quietly wrap "-1" into a huge unsigned number; these do not.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace eventmart::apps {

// Throws UsageError ("--customers: 'x' is not a whole number") on malformed input.
std::int64_t parse_int64(const std::string& option, const std::string& text);
std::uint64_t parse_uint64(const std::string& option, const std::string& text);
double parse_double(const std::string& option, const std::string& text);

struct UsageError {
  std::string message;
};

}  // namespace eventmart::apps
