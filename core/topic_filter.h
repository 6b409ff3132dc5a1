// MQTT topic names and filters (MQTT 3.1.1 section 4.7, MQTT 5 section 4.7). The one matcher
// every transport uses, so a filter means the same thing in simulation and in production.
#pragma once

#include <string_view>

namespace eventmart {

// A topic name a message may be published to: 1..65535 bytes, no NUL, no '+' or '#'.
bool is_valid_topic_name(std::string_view topic);

// A subscription filter: 1..65535 bytes, no NUL; '+' occupies a whole level; '#' occupies
// a whole level and only the last one.
bool is_valid_topic_filter(std::string_view filter);

// True when `topic` matches `filter` with MQTT semantics:
//  - '+' matches exactly one level, which may be empty ("a/+" matches "a/" but not "a");
//  - '#' matches any number of levels, including zero, so "a/#" matches "a" and "a/b/c";
//  - a filter starting with a wildcard does not match a topic starting with '$'.
// False when the filter or the topic is not valid (is_valid_topic_filter, is_valid_topic_name).
bool topic_matches(std::string_view filter, std::string_view topic);

// topic_matches() without the validity checks, for transports that validated the filter at
// subscribe() and the topic at publish(). REQUIRES: both valid; checked only as far as
// matching needs (both non-empty): validity is the caller's, once per filter and topic.
bool topic_matches_validated(std::string_view filter, std::string_view topic);

}  // namespace eventmart
