// Cap'n Proto encoding of the domain events (core/events.capnp is the wire contract).
// Decoding never throws: malformed bytes or values that break the contract (a non-positive
// quantity, a negative total, an id out of range, a basket beyond the InputLimits) come back
// as an error that says what was wrong, found before any work proportional to the input.
// A payload must have exactly the struct layout of its type in this build's schema, so an
// event of one type wrapped as another is refused rather than read field by field.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/envelope.h"
#include "core/events.h"
#include "core/limits.h"
#include "core/result.h"

namespace eventmart {

std::string encode(const CustomerArrival& event);
std::string encode(const CustomerDeparted& event);
std::string encode(const PaymentDue& event);
std::string encode(const RestockNeeded& event);
std::string encode(const StockReplenished& event);

// Customer ids are 1..kMaxCustomerId, skus 1..kMaxSku.
Result<CustomerArrival> decode_customer_arrival(std::string_view bytes);
// At most limits.max_basket_lines items, each quantity 1..max_units_per_line, at most
// max_basket_units in all; a sku may appear once only.
Result<CustomerDeparted> decode_customer_departed(std::string_view bytes,
                                                  const InputLimits& limits = default_limits());
// Total >= 0; the departure id empty (a reference message) or a valid id; at most
// max_basket_lines unpriced skus.
Result<PaymentDue> decode_payment_due(std::string_view bytes,
                                      const InputLimits& limits = default_limits());
// Quantity 1..kMaxDeliveryUnits.
Result<RestockNeeded> decode_restock_needed(std::string_view bytes);
// Quantity 1..kMaxDeliveryUnits; the restock id empty or a valid id.
Result<StockReplenished> decode_stock_replenished(std::string_view bytes,
                                                  const InputLimits& limits = default_limits());

// The payload of `envelope` decoded as the type the envelope names, only to check it: the
// error of the decoder above when it is not sound. Dead letters are not checked.
Status check_payload(const Envelope& envelope, const InputLimits& limits = default_limits());

// Checks the envelope's own fields: a valid event id, source and caused-by (ids, see
// limits.h), a known event type, and an occurred-at time between the epoch and year 9999.
Status check_envelope_fields(const Envelope& envelope,
                             const InputLimits& limits = default_limits());

// The whole envelope, for transports that carry bytes (MQTT). decode_envelope checks the
// envelope's fields (check_envelope_fields) and its payload (check_payload).
std::string encode_envelope(const Envelope& envelope);
Result<Envelope> decode_envelope(std::string_view bytes,
                                 const InputLimits& limits = default_limits());

// A hash of an event's content (its type and decoded fields, not its encoding), so a
// redelivery of an id with other content can be told from a plain duplicate.
std::uint64_t content_hash(const CustomerArrival& event);
std::uint64_t content_hash(const CustomerDeparted& event);
std::uint64_t content_hash(const PaymentDue& event);
std::uint64_t content_hash(const RestockNeeded& event);
std::uint64_t content_hash(const StockReplenished& event);

// Builds an envelope around an encoded event.
template <typename Event>
Envelope make_envelope(EventType type, std::string event_id, std::string source,
                       std::int64_t occurred_at_us, std::string caused_by, const Event& event) {
  return Envelope{std::move(event_id),  type,         std::move(source), occurred_at_us,
                  std::move(caused_by), encode(event)};
}

}  // namespace eventmart
