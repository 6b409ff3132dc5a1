#include "core/wire.h"

#include "core/json.h"
#include "core/json_wire.h"

namespace eventmart {
namespace {

// Strict UTF-8 (no overlongs, no surrogates) without NUL, so the text can go into JSON as is.
bool printable_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<std::size_t>(extra) >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

}  // namespace

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

Decoded<std::string> encode_wire(WireFormat format, const Envelope& envelope) {
  if (envelope.type == EventType::kDeadLetter) return Decoded<std::string>::ok(envelope.payload);
  if (format == WireFormat::kJson) return json_wire::encode(envelope);
  return Decoded<std::string>::ok(encode_envelope(envelope));
}

Decoded<Envelope> decode_wire(WireFormat format, const Topics& topics, std::string_view topic,
                              std::string_view bytes) {
  const EventType expected = event_type_of_topic(topics, topic);
  if (format == WireFormat::kJson) {
    if (expected == EventType::kUnknown) {
      return Decoded<Envelope>::error("no JSON message format is defined for topic '" +
                                      std::string(topic) + "'");
    }
    return json_wire::decode(expected, topic, bytes);
  }
  Decoded<Envelope> envelope = decode_envelope(bytes);
  if (envelope && expected != EventType::kUnknown && envelope.value().type != expected) {
    return Decoded<Envelope>::error("a " + std::string(event_type_name(envelope.value().type)) +
                                    " event does not belong on '" + std::string(topic) + "'");
  }
  return envelope;
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
                                 std::int64_t received_at_us) {
  std::string doc = "{\"service\": " + json::quote(service) + ", \"topic\": " + json::quote(topic) +
                    ", \"reason\": " + json::quote(reason) + ", \"received_at\": " +
                    json::quote(json_wire::format_timestamp(received_at_us));
  if (printable_utf8(payload)) doc += ", \"payload\": " + json::quote(payload);
  doc += ", \"payload_base64\": \"" + base64_encode(payload) + "\"}";
  return doc;
}

}  // namespace eventmart
