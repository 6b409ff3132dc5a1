#include "core/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/array.h>
#include <kj/exception.h>

#include <cstring>
#include <set>

#include "core/events.capnp.h"

namespace eventmart {
namespace {

// Our events are tens of bytes; the default first segment (1024 words, zeroed) would cost an
// 8 KiB calloc per encode. Larger messages (a big basket) still grow as needed.
constexpr unsigned kFirstSegmentWords = 32;

std::string to_bytes(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// Decodes `bytes` as a Cap'n Proto message with root `Root` and hands the reader to `read`.
// Cap'n Proto needs word-aligned input, so the bytes are copied into aligned storage.
template <typename Root, typename T, typename Read>
Decoded<T> decode_with(std::string_view bytes, std::string_view what, Read read) {
  if (bytes.empty()) return Decoded<T>::error(std::string(what) + ": empty payload");
  if (bytes.size() % sizeof(capnp::word) != 0) {
    return Decoded<T>::error(std::string(what) + ": payload of " + std::to_string(bytes.size()) +
                             " bytes is not a whole number of 8-byte words");
  }
  kj::Array<capnp::word> aligned = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(aligned.begin(), bytes.data(), bytes.size());
  try {
    capnp::FlatArrayMessageReader message(aligned);
    return read(message.getRoot<Root>());
  } catch (const kj::Exception& e) {
    return Decoded<T>::error(std::string(what) +
                             ": undecodable: " + std::string(e.getDescription().cStr()));
  }
}

wire::EventType to_wire(EventType type) {
  return static_cast<wire::EventType>(type);
}

EventType from_wire(wire::EventType type) {
  switch (type) {
    case wire::EventType::CUSTOMER_ARRIVAL:
      return EventType::kCustomerArrival;
    case wire::EventType::CUSTOMER_DEPARTED:
      return EventType::kCustomerDeparted;
    case wire::EventType::PAYMENT_DUE:
      return EventType::kPaymentDue;
    case wire::EventType::RESTOCK_NEEDED:
      return EventType::kRestockNeeded;
    case wire::EventType::STOCK_REPLENISHED:
      return EventType::kStockReplenished;
    default:
      return EventType::kUnknown;
  }
}

}  // namespace

std::string encode(const CustomerArrival& event) {
  capnp::MallocMessageBuilder message(kFirstSegmentWords);
  auto root = message.initRoot<wire::CustomerArrival>();
  root.setCustomerId(event.customer_id);
  return to_bytes(message);
}

std::string encode(const CustomerDeparted& event) {
  capnp::MallocMessageBuilder message(kFirstSegmentWords);
  auto root = message.initRoot<wire::CustomerDeparted>();
  root.setCustomerId(event.customer_id);
  auto items = root.initItems(static_cast<unsigned>(event.items.size()));
  for (unsigned i = 0; i < event.items.size(); ++i) {
    items[i].setSku(event.items[i].sku);
    items[i].setQuantity(event.items[i].quantity);
  }
  return to_bytes(message);
}

std::string encode(const PaymentDue& event) {
  capnp::MallocMessageBuilder message(kFirstSegmentWords);
  auto root = message.initRoot<wire::PaymentDue>();
  root.setCustomerId(event.customer_id);
  root.setTotalCents(event.total_cents);
  root.setDepartureEventId(event.departure_event_id);
  auto unpriced = root.initUnpricedSkus(static_cast<unsigned>(event.unpriced_skus.size()));
  for (unsigned i = 0; i < event.unpriced_skus.size(); ++i) unpriced.set(i, event.unpriced_skus[i]);
  return to_bytes(message);
}

std::string encode(const RestockNeeded& event) {
  capnp::MallocMessageBuilder message(kFirstSegmentWords);
  auto root = message.initRoot<wire::RestockNeeded>();
  root.setSku(event.sku);
  root.setQuantity(event.quantity);
  root.setStockLevel(event.stock_level);
  root.setThreshold(event.threshold);
  return to_bytes(message);
}

std::string encode(const StockReplenished& event) {
  capnp::MallocMessageBuilder message(kFirstSegmentWords);
  auto root = message.initRoot<wire::StockReplenished>();
  root.setSku(event.sku);
  root.setQuantity(event.quantity);
  root.setRestockEventId(event.restock_event_id);
  return to_bytes(message);
}

Decoded<CustomerArrival> decode_customer_arrival(std::string_view bytes) {
  using D = Decoded<CustomerArrival>;
  return decode_with<wire::CustomerArrival, CustomerArrival>(
      bytes, "CustomerArrival",
      [](wire::CustomerArrival::Reader r) { return D::ok(CustomerArrival{r.getCustomerId()}); });
}

Decoded<CustomerDeparted> decode_customer_departed(std::string_view bytes) {
  using D = Decoded<CustomerDeparted>;
  return decode_with<wire::CustomerDeparted, CustomerDeparted>(
      bytes, "CustomerDeparted", [](wire::CustomerDeparted::Reader r) {
        CustomerDeparted event{r.getCustomerId(), {}};
        std::set<Sku> seen;
        for (auto item : r.getItems()) {
          if (item.getQuantity() < 1) {
            return D::error("CustomerDeparted: sku " + std::to_string(item.getSku()) +
                            " has quantity " + std::to_string(item.getQuantity()) +
                            " (must be >= 1)");
          }
          if (!seen.insert(item.getSku()).second) {
            return D::error("CustomerDeparted: sku " + std::to_string(item.getSku()) +
                            " listed twice");
          }
          event.items.push_back(LineItem{item.getSku(), item.getQuantity()});
        }
        return D::ok(std::move(event));
      });
}

Decoded<PaymentDue> decode_payment_due(std::string_view bytes) {
  using D = Decoded<PaymentDue>;
  return decode_with<wire::PaymentDue, PaymentDue>(
      bytes, "PaymentDue", [](wire::PaymentDue::Reader r) {
        if (r.getTotalCents() < 0) {
          return D::error("PaymentDue: negative total " + std::to_string(r.getTotalCents()));
        }
        PaymentDue event{r.getCustomerId(), r.getTotalCents(), r.getDepartureEventId().cStr(), {}};
        for (auto sku : r.getUnpricedSkus()) event.unpriced_skus.push_back(sku);
        return D::ok(std::move(event));
      });
}

Decoded<RestockNeeded> decode_restock_needed(std::string_view bytes) {
  using D = Decoded<RestockNeeded>;
  return decode_with<wire::RestockNeeded,
                     RestockNeeded>(bytes, "RestockNeeded", [](wire::RestockNeeded::Reader r) {
    if (r.getQuantity() < 1) {
      return D::error("RestockNeeded: quantity " + std::to_string(r.getQuantity()) +
                      " (must be >= 1)");
    }
    return D::ok(RestockNeeded{r.getSku(), r.getQuantity(), r.getStockLevel(), r.getThreshold()});
  });
}

Decoded<StockReplenished> decode_stock_replenished(std::string_view bytes) {
  using D = Decoded<StockReplenished>;
  return decode_with<wire::StockReplenished, StockReplenished>(
      bytes, "StockReplenished", [](wire::StockReplenished::Reader r) {
        if (r.getQuantity() < 1) {
          return D::error("StockReplenished: quantity " + std::to_string(r.getQuantity()) +
                          " (must be >= 1)");
        }
        return D::ok(StockReplenished{r.getSku(), r.getQuantity(), r.getRestockEventId().cStr()});
      });
}

std::string encode_envelope(const Envelope& envelope) {
  capnp::MallocMessageBuilder message(kFirstSegmentWords);
  auto root = message.initRoot<wire::Envelope>();
  root.setEventId(envelope.event_id);
  root.setType(to_wire(envelope.type));
  root.setSource(envelope.source);
  root.setOccurredAtUs(envelope.occurred_at_us);
  root.setCausedBy(envelope.caused_by);
  root.setPayload(kj::arrayPtr(reinterpret_cast<const kj::byte*>(envelope.payload.data()),
                               envelope.payload.size()));
  return to_bytes(message);
}

Decoded<Envelope> decode_envelope(std::string_view bytes) {
  using D = Decoded<Envelope>;
  return decode_with<wire::Envelope, Envelope>(bytes, "Envelope", [](wire::Envelope::Reader r) {
    if (r.getEventId().size() == 0) return D::error("Envelope: empty event id");
    EventType type = from_wire(r.getType());
    if (type == EventType::kUnknown) return D::error("Envelope: unknown event type");
    auto payload = r.getPayload();
    return D::ok(
        Envelope{r.getEventId().cStr(), type, r.getSource().cStr(), r.getOccurredAtUs(),
                 r.getCausedBy().cStr(),
                 std::string(reinterpret_cast<const char*>(payload.begin()), payload.size())});
  });
}

}  // namespace eventmart
