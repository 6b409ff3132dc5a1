// What travels on the bus: an encoded event plus the metadata every consumer needs to
// deduplicate it and trace its cause.
#pragma once

#include <cstdint>
#include <string>

#include "core/events.h"

namespace eventmart {

struct Envelope {
  // Assigned by the producer and stable across retries: a redelivered or re-published event
  // carries the same id, which is what consumers deduplicate on.
  std::string event_id;
  EventType type = EventType::kUnknown;
  std::string source;               // the emitting service, e.g. "fastlane-finale"
  std::int64_t occurred_at_us = 0;  // microseconds since the Unix epoch, from Clock
  std::string caused_by;            // event id this one answers; empty for a root event
  std::string payload;              // the event encoded with the codec in codec.h

  friend bool operator==(const Envelope&, const Envelope&) = default;
};

}  // namespace eventmart
