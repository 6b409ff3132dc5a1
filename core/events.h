// The domain events of the store, as plain C++ values. The wire encoding lives in codec.h;
// services decide on these types only. Money is integer cents, quantities are integers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace eventmart {

using CustomerId = std::int64_t;
using Sku = std::int64_t;

enum class EventType : std::uint8_t {
  kUnknown = 0,
  kCustomerArrival = 1,
  kCustomerDeparted = 2,
  kPaymentDue = 3,
  kRestockNeeded = 4,
  kStockReplenished = 5,
  // Not domain events: documents for people and devices, JSON whatever the wire format
  // (core/wire.h); transports carry their payload as is.
  kDeadLetter = 100,  // a message a service could not consume
  kWelcome = 101,     // a welcome for the entrance display
};

// Stable lower-case name of an event type ("customer-departed"), used in logs and traces.
std::string_view event_type_name(EventType type);

struct LineItem {
  Sku sku = 0;
  std::int64_t quantity = 0;
  friend bool operator==(const LineItem&, const LineItem&) = default;
};

struct CustomerArrival {
  CustomerId customer_id = 0;
  friend bool operator==(const CustomerArrival&, const CustomerArrival&) = default;
};

struct CustomerDeparted {
  CustomerId customer_id = 0;
  std::vector<LineItem> items;  // one entry per sku, quantity >= 1
  friend bool operator==(const CustomerDeparted&, const CustomerDeparted&) = default;
};

struct PaymentDue {
  CustomerId customer_id = 0;
  std::int64_t total_cents = 0;
  std::string departure_event_id;  // the CustomerDeparted this payment settles
  std::vector<Sku> unpriced_skus;  // basket items with no price on record (not charged)
  friend bool operator==(const PaymentDue&, const PaymentDue&) = default;
};

struct RestockNeeded {
  Sku sku = 0;
  std::int64_t quantity = 0;     // units to deliver
  std::int64_t stock_level = 0;  // the level that crossed below the threshold
  std::int64_t threshold = 0;
  friend bool operator==(const RestockNeeded&, const RestockNeeded&) = default;
};

struct StockReplenished {
  Sku sku = 0;
  std::int64_t quantity = 0;
  std::string restock_event_id;  // the RestockNeeded this delivery answers
  friend bool operator==(const StockReplenished&, const StockReplenished&) = default;
};

}  // namespace eventmart
