// Cap'n Proto encoding of the domain events (core/events.capnp is the wire contract).
// Decoding never throws: malformed bytes or values that break the contract (a non-positive
// quantity, a negative total) come back as an error that says what was wrong.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/envelope.h"
#include "core/events.h"

namespace eventmart {

template <typename T>
class Decoded {
 public:
  static Decoded ok(T value) { return Decoded(std::move(value), {}); }
  static Decoded error(std::string why) { return Decoded(std::nullopt, std::move(why)); }

  explicit operator bool() const { return value_.has_value(); }
  const T& value() const { return *value_; }
  T& value() { return *value_; }
  const std::string& error() const { return error_; }

 private:
  Decoded(std::optional<T> value, std::string error)
      : value_(std::move(value)), error_(std::move(error)) {}
  std::optional<T> value_;
  std::string error_;
};

std::string encode(const CustomerArrival& event);
std::string encode(const CustomerDeparted& event);
std::string encode(const PaymentDue& event);
std::string encode(const RestockNeeded& event);
std::string encode(const StockReplenished& event);

Decoded<CustomerArrival> decode_customer_arrival(std::string_view bytes);
// Items must have quantity >= 1; a sku may appear once only.
Decoded<CustomerDeparted> decode_customer_departed(std::string_view bytes);
Decoded<PaymentDue> decode_payment_due(std::string_view bytes);
// Quantity must be >= 1.
Decoded<RestockNeeded> decode_restock_needed(std::string_view bytes);
// Quantity must be >= 1.
Decoded<StockReplenished> decode_stock_replenished(std::string_view bytes);

// The whole envelope, for transports that carry bytes (MQTT).
std::string encode_envelope(const Envelope& envelope);
Decoded<Envelope> decode_envelope(std::string_view bytes);

// Builds an envelope around an encoded event.
template <typename Event>
Envelope make_envelope(EventType type, std::string event_id, std::string source,
                       std::int64_t occurred_at_us, std::string caused_by, const Event& event) {
  return Envelope{std::move(event_id),  type,         std::move(source), occurred_at_us,
                  std::move(caused_by), encode(event)};
}

}  // namespace eventmart
