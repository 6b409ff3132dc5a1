#include "core/wire.h"

#include <algorithm>

#include "core/event_id.h"
#include "core/json.h"
#include "core/json_wire.h"

namespace eventmart {

std::string_view wire_format_name(WireFormat format) {
  return format == WireFormat::kJson ? "json" : "capnp";
}

std::optional<WireFormat> parse_wire_format(std::string_view name) {
  if (name == "capnp") return WireFormat::kCapnp;
  if (name == "json") return WireFormat::kJson;
  return std::nullopt;
}

EventType event_type_of_topic(const Topics& topics, std::string_view topic) {
  if (topic == topics.customer_arrival) return EventType::kCustomerArrival;
  if (topic == topics.customer_departure) return EventType::kCustomerDeparted;
  if (topic == topics.payment_due) return EventType::kPaymentDue;
  if (topic == topics.restock_needed) return EventType::kRestockNeeded;
  if (topic == topics.stock_replenished) return EventType::kStockReplenished;
  return EventType::kUnknown;
}

Result<std::string> encode_wire(WireFormat format, const Envelope& envelope) {
  if (envelope.type == EventType::kDeadLetter || envelope.type == EventType::kWelcome) {
    return Result<std::string>::ok(envelope.payload);
  }
  if (format == WireFormat::kJson) return json_wire::encode(envelope);
  return Result<std::string>::ok(encode_envelope(envelope));
}

bool retained_on_wire(EventType type) {
  return type == EventType::kWelcome;
}

Result<Envelope> decode_wire(WireFormat format, const Topics& topics, std::string_view topic,
                             std::string_view bytes, const InputLimits& limits) {
  if (bytes.size() > limits.max_payload_bytes) {
    return Result<Envelope>::error("a message of " + std::to_string(bytes.size()) +
                                   " bytes is over the limit of " +
                                   std::to_string(limits.max_payload_bytes) + " bytes");
  }
  const EventType expected = event_type_of_topic(topics, topic);
  if (format == WireFormat::kJson) {
    if (expected == EventType::kUnknown) {
      return Result<Envelope>::error("no JSON message format is defined for topic '" +
                                     std::string(topic) + "'");
    }
    return json_wire::decode(expected, topic, bytes, limits);
  }
  Result<Envelope> envelope = decode_envelope(bytes, limits);
  if (envelope && expected != EventType::kUnknown && envelope.value().type != expected) {
    return Result<Envelope>::error("a " + std::string(event_type_name(envelope.value().type)) +
                                   " event does not belong on '" + std::string(topic) + "'");
  }
  return envelope;
}

namespace {

// True when `text` goes into a JSON string as it is: printable ASCII, no quote, no backslash.
bool json_plain(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'; });
}

}  // namespace

std::string welcome_document(CustomerId customer, std::string_view text,
                             std::string_view arrival_event_id, std::int64_t at_us) {
  const std::string timestamp = json_wire::format_timestamp(at_us);
  if (json_plain(text) && json_plain(arrival_event_id)) {
    // One welcome per arrival: written directly, byte for byte what json::dump writes.
    std::string out;
    out.reserve(80 + text.size() + arrival_event_id.size());
    out.append("{\"timestamp\":\"").append(timestamp).append("\",\"customer_id\":");
    out.append(std::to_string(customer)).append(",\"message\":\"").append(text);
    out.append("\",\"arrival_event_id\":\"").append(arrival_event_id).append("\"}");
    return out;
  }
  json::Document doc = json::Document::object();
  doc["timestamp"] = timestamp;
  doc["customer_id"] = customer;
  doc["message"] = std::string(text);
  doc["arrival_event_id"] = std::string(arrival_event_id);
  return json::dump(doc);
}

Result<ShownText> read_welcome_document(std::string_view document) {
  using D = Result<ShownText>;
  auto doc = json::parse(document);
  if (!doc) return D::error(doc.error());
  const json::Value* customer = doc.value().find("customer_id");
  const json::Value* message = doc.value().find("message");
  const json::Value* arrival = doc.value().find("arrival_event_id");
  if (customer == nullptr || message == nullptr || arrival == nullptr ||
      message->kind != json::Value::Kind::kString || arrival->kind != json::Value::Kind::kString) {
    return D::error("a welcome needs customer_id, message and arrival_event_id");
  }
  auto id = json::as_int64(*customer);
  if (!id) return D::error("customer_id is not an integer");
  std::int64_t at_us = 0;
  if (const json::Value* when = doc.value().find("timestamp");
      when != nullptr && when->kind == json::Value::Kind::kString) {
    at_us = json_wire::parse_timestamp(when->text).value_or(0);
  }
  return D::ok(ShownText{*id, message->text, arrival->text, at_us});
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                            static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string dead_letter_document(std::string_view service, std::string_view topic,
                                 std::string_view reason, std::string_view payload,
                                 std::int64_t received_at_us, std::size_t max_payload_bytes) {
  json::Document doc = json::Document::object();
  doc["service"] = std::string(service);
  doc["topic"] = std::string(topic);
  doc["reason"] = std::string(reason);
  doc["received_at"] = json_wire::format_timestamp(received_at_us);
  doc["payload_bytes"] = payload.size();
  const bool whole = payload.size() <= max_payload_bytes;
  const std::string_view kept = whole ? payload : payload.substr(0, max_payload_bytes);
  if (whole && is_valid_utf8(payload)) doc["payload"] = std::string(payload);
  doc["payload_base64"] = base64_encode(kept);
  if (!whole) {
    doc["payload_truncated"] = true;
    doc["payload_hash"] = to_hex64(stable_hash(payload));
  }
  return json::dump(doc);
}

}  // namespace eventmart
