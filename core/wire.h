// What goes on an MQTT connection: an Envelope as bytes in one of two wire formats, and the
// dead-letter document a service publishes for a message it could not consume.
//   capnp  the Cap'n Proto Envelope of core/events.capnp (the default; compact, versioned)
//   json   the JSON format of core/json_wire.h, compatible with the reference implementation
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/codec.h"
#include "core/envelope.h"
#include "core/limits.h"
#include "core/topics.h"

namespace eventmart {

enum class WireFormat : std::uint8_t { kCapnp, kJson };

std::string_view wire_format_name(WireFormat format);
// "capnp" or "json"; nullopt otherwise.
std::optional<WireFormat> parse_wire_format(std::string_view name);

// The event type a store or logistics topic carries ("{chain}/{store}/payment-due" ->
// kPaymentDue), or kUnknown for any other topic. The JSON format needs it: a reference message
// does not say its own type.
EventType event_type_of_topic(const Topics& topics, std::string_view topic);

// The bytes of `envelope` in `format`. A dead letter or a welcome (documents, not domain
// events) is its payload, as is, in every format. Fails only when a JSON payload cannot be decoded.
Result<std::string> encode_wire(WireFormat format, const Envelope& envelope);

// Whether the broker keeps the last event of this type for subscribers that come later: the
// entrance display's welcome is retained, so a display that (re)connects shows the current one.
bool retained_on_wire(EventType type);

// Reads a message received on `topic`. Everything is checked before it is used: the size
// first (limits.max_payload_bytes), then every field of envelope and event. Errors say what
// was wrong (oversized, undecodable, a missing or invalid field, a type that does not belong
// on the topic).
Result<Envelope> decode_wire(WireFormat format, const Topics& topics, std::string_view topic,
                             std::string_view bytes, const InputLimits& limits = default_limits());

// The dead-letter document, one JSON object:
//   {"service": ..., "topic": ..., "reason": ..., "received_at": "2026-...",
//    "payload_bytes": N, "payload": "<the bytes, if valid UTF-8 without NUL>",
//    "payload_base64": "<the bytes>"}
// so a person can read it and a tool can replay the exact bytes. A payload longer than
// `max_payload_bytes` (refused for its size) keeps only its first max_payload_bytes, in
// base64, with "payload_truncated": true and "payload_hash" (stable_hash, hex): a dead letter
// never costs more than the limit it enforces.
std::string dead_letter_document(std::string_view service, std::string_view topic,
                                 std::string_view reason, std::string_view payload,
                                 std::int64_t received_at_us,
                                 std::size_t max_payload_bytes = 64 * 1024);

std::string base64_encode(std::string_view bytes);

// The welcome the entrance display shows, one JSON object:
//   {"timestamp": "2026-...", "customer_id": 3, "message": "Welcome, ...!",
//    "arrival_event_id": "..."}
// A display shows each arrival_event_id once (the document may be delivered twice).
std::string welcome_document(CustomerId customer, std::string_view text,
                             std::string_view arrival_event_id, std::int64_t at_us);
struct ShownText {
  CustomerId customer_id = 0;
  std::string message;
  std::string arrival_event_id;
  std::int64_t at_us = 0;  // the document's timestamp; 0 when it has none that reads
};
Result<ShownText> read_welcome_document(std::string_view document);

}  // namespace eventmart
