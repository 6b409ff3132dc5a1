#include "core/topic_filter.h"

#include "core/assert.h"

namespace eventmart {
namespace {

constexpr std::size_t kMaxTopicBytes = 65535;

bool valid_length_and_bytes(std::string_view s) {
  return !s.empty() && s.size() <= kMaxTopicBytes && s.find('\0') == std::string_view::npos;
}

}  // namespace

bool is_valid_topic_name(std::string_view topic) {
  if (topic.empty() || topic.size() > kMaxTopicBytes) return false;
  for (char c : topic) {  // one pass: this runs on every publish
    if (c == '\0' || c == '+' || c == '#') return false;
  }
  return true;
}

bool is_valid_topic_filter(std::string_view filter) {
  if (!valid_length_and_bytes(filter)) return false;
  std::size_t level_start = 0;
  for (std::size_t i = 0; i <= filter.size(); ++i) {
    if (i != filter.size() && filter[i] != '/') continue;
    std::string_view level = filter.substr(level_start, i - level_start);
    if (level.find_first_of("+#") != std::string_view::npos) {
      if (level.size() != 1) return false;                   // "a+" or "#b": wildcard not alone
      if (level == "#" && i != filter.size()) return false;  // '#' only as the last level
    }
    level_start = i + 1;
  }
  return true;
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  return is_valid_topic_filter(filter) && is_valid_topic_name(topic) &&
         topic_matches_validated(filter, topic);
}

bool topic_matches_validated(std::string_view filter, std::string_view topic) {
  EVENTMART_REQUIRE(!filter.empty() && !topic.empty(), filter, topic);
  if (topic.front() == '$' && (filter.front() == '+' || filter.front() == '#')) return false;

  std::size_t f = 0;  // start of the current filter level
  std::size_t t = 0;  // start of the current topic level
  while (true) {
    std::size_t f_end = filter.find('/', f);
    if (f_end == std::string_view::npos) f_end = filter.size();
    std::string_view f_level = filter.substr(f, f_end - f);
    if (f_level == "#") return true;  // matches this level and everything below, or nothing

    std::size_t t_end = topic.find('/', t);
    if (t_end == std::string_view::npos) t_end = topic.size();
    std::string_view t_level = topic.substr(t, t_end - t);
    if (f_level != "+" && f_level != t_level) return false;

    const bool filter_done = f_end == filter.size();
    const bool topic_done = t_end == topic.size();
    if (filter_done || topic_done) {
      if (filter_done && topic_done) return true;
      if (topic_done) {
        // "a/#" matches "a": the rest of the filter must be exactly "/#".
        return filter.substr(f_end) == "/#";
      }
      return false;  // filter exhausted, topic has more levels
    }
    f = f_end + 1;
    t = t_end + 1;
  }
}

}  // namespace eventmart
