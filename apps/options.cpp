#include "apps/options.h"

#include <charconv>
#include <cmath>

namespace eventmart::apps {

std::int64_t parse_int64(const std::string& option, const std::string& text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError{option + ": '" + text + "' is not a whole number"};
  }
  return value;
}

std::uint64_t parse_uint64(const std::string& option, const std::string& text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError{option + ": '" + text + "' is not a whole number from 0 to " +
                     std::to_string(UINT64_MAX)};
  }
  return value;
}

double parse_double(const std::string& option, const std::string& text) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value)) {
    throw UsageError{option + ": '" + text + "' is not a number"};
  }
  return value;
}

}  // namespace eventmart::apps
