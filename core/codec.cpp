#include "core/codec.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/array.h>
#include <kj/exception.h>

#include <cstring>
#include <set>

#include "core/event_id.h"
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

// The layout of each root struct in the first release (data words, pointers): every field
// there is one a reader needs. A release may add fields at the end (events.capnp): its structs
// are larger, and an older reader ignores what it does not know; a newer reader reads the
// fields an older writer did not send as their defaults. So a struct is accepted when it holds
// at least the first release's sections. Never change these numbers; add fields instead.
template <typename Root>
struct FirstLayout;
template <>
struct FirstLayout<wire::CustomerArrival> {
  static constexpr std::size_t kDataWords = 1, kPointers = 0;
};
template <>
struct FirstLayout<wire::CustomerDeparted> {
  static constexpr std::size_t kDataWords = 1, kPointers = 1;
};
template <>
struct FirstLayout<wire::PaymentDue> {
  static constexpr std::size_t kDataWords = 2, kPointers = 2;
};
template <>
struct FirstLayout<wire::RestockNeeded> {
  static constexpr std::size_t kDataWords = 4, kPointers = 0;
};
template <>
struct FirstLayout<wire::StockReplenished> {
  static constexpr std::size_t kDataWords = 2, kPointers = 1;
};
template <>
struct FirstLayout<wire::Envelope> {
  static constexpr std::size_t kDataWords = 2, kPointers = 4;
};

// Decodes `bytes` as a Cap'n Proto message with root `Root` and hands the reader to `read`.
// Cap'n Proto needs word-aligned input, so the bytes are copied into aligned storage. The root
// must hold at least the first release's layout of Root (FirstLayout): a smaller struct (another
// event in its place, or no event at all) is refused; a larger one is a later release's.
template <typename Root, typename T, typename Read>
Result<T> decode_with(std::string_view bytes, std::string_view what, Read read) {
  if (bytes.empty()) return Result<T>::error(std::string(what) + ": empty payload");
  if (bytes.size() % sizeof(capnp::word) != 0) {
    return Result<T>::error(std::string(what) + ": payload of " + std::to_string(bytes.size()) +
                            " bytes is not a whole number of 8-byte words");
  }
  kj::Array<capnp::word> aligned = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(aligned.begin(), bytes.data(), bytes.size());
  try {
    capnp::FlatArrayMessageReader message(aligned);
    const capnp::AnyStruct::Reader any = message.getRoot<capnp::AnyStruct>();
    static_assert(Root::_capnpPrivate::dataWordSize >= FirstLayout<Root>::kDataWords &&
                      Root::_capnpPrivate::pointerCount >= FirstLayout<Root>::kPointers,
                  "a struct lost a field of the first release (events.capnp: add, never remove)");
    const std::size_t data_words = any.getDataSection().size() / sizeof(capnp::word);
    const std::size_t pointers = any.getPointerSection().size();
    if (data_words < FirstLayout<Root>::kDataWords || pointers < FirstLayout<Root>::kPointers) {
      return Result<T>::error(std::string(what) + ": the payload is a struct of " +
                              std::to_string(data_words) + " data words and " +
                              std::to_string(pointers) + " pointers, smaller than any " +
                              std::string(what) + ": not a " + std::string(what));
    }
    return read(message.getRoot<Root>());
  } catch (const kj::Exception& e) {
    return Result<T>::error(std::string(what) +
                            ": undecodable: " + std::string(e.getDescription().cStr()));
  }
}

// A string as Cap'n Proto Text, all of its bytes (a std::string is NUL-terminated at size()).
capnp::Text::Reader as_text(const std::string& s) {
  return capnp::Text::Reader(s.data(), s.size());
}

// Text as bytes, embedded NULs included (cStr() would stop at the first one).
std::string text_of(capnp::Text::Reader text) {
  return std::string(text.begin(), text.size());
}

std::string check_customer(std::string_view what, std::int64_t customer) {
  if (customer < 1 || customer > kMaxCustomerId) {
    return std::string(what) + ": customer id " + std::to_string(customer) + " is not 1.." +
           std::to_string(kMaxCustomerId);
  }
  return {};
}

std::string check_sku(std::string_view what, std::int64_t sku) {
  if (sku < 1 || sku > kMaxSku) {
    return std::string(what) + ": sku " + std::to_string(sku) + " is not 1.." +
           std::to_string(kMaxSku);
  }
  return {};
}

std::string check_delivery_units(std::string_view what, std::int64_t quantity) {
  if (quantity < 1 || quantity > kMaxDeliveryUnits) {
    return std::string(what) + ": quantity " + std::to_string(quantity) + " is not 1.." +
           std::to_string(kMaxDeliveryUnits);
  }
  return {};
}

// An id field that may be empty (a message from the reference implementation has none).
std::string check_optional_id(std::string_view what, std::string_view id, std::size_t max_bytes) {
  if (id.empty()) return {};
  return check_id(id, max_bytes, what).error();
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
  root.setDepartureEventId(as_text(event.departure_event_id));
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
  root.setRestockEventId(as_text(event.restock_event_id));
  return to_bytes(message);
}

Result<CustomerArrival> decode_customer_arrival(std::string_view bytes) {
  using D = Result<CustomerArrival>;
  return decode_with<wire::CustomerArrival, CustomerArrival>(
      bytes, "CustomerArrival", [](wire::CustomerArrival::Reader r) {
        if (auto error = check_customer("CustomerArrival", r.getCustomerId()); !error.empty()) {
          return D::error(error);
        }
        return D::ok(CustomerArrival{r.getCustomerId()});
      });
}

Result<CustomerDeparted> decode_customer_departed(std::string_view bytes,
                                                  const InputLimits& limits) {
  using D = Result<CustomerDeparted>;
  return decode_with<wire::CustomerDeparted, CustomerDeparted>(
      bytes, "CustomerDeparted", [&limits](wire::CustomerDeparted::Reader r) {
        if (auto error = check_customer("CustomerDeparted", r.getCustomerId()); !error.empty()) {
          return D::error(error);
        }
        const auto items = r.getItems();
        if (static_cast<std::int64_t>(items.size()) > limits.max_basket_lines) {
          return D::error("CustomerDeparted: " + std::to_string(items.size()) +
                          " lines in one basket (the limit is " +
                          std::to_string(limits.max_basket_lines) + ")");
        }
        CustomerDeparted event{r.getCustomerId(), {}};
        event.items.reserve(items.size());
        std::set<Sku> seen;
        std::int64_t units = 0;
        for (auto item : items) {
          if (auto error = check_sku("CustomerDeparted", item.getSku()); !error.empty()) {
            return D::error(error);
          }
          if (item.getQuantity() < 1 || item.getQuantity() > limits.max_units_per_line) {
            return D::error("CustomerDeparted: sku " + std::to_string(item.getSku()) +
                            " has quantity " + std::to_string(item.getQuantity()) +
                            " (must be 1.." + std::to_string(limits.max_units_per_line) + ")");
          }
          if (!seen.insert(item.getSku()).second) {
            return D::error("CustomerDeparted: sku " + std::to_string(item.getSku()) +
                            " listed twice");
          }
          units += item.getQuantity();  // both bounded: cannot overflow
          if (units > limits.max_basket_units) {
            return D::error("CustomerDeparted: more than " +
                            std::to_string(limits.max_basket_units) +
                            " units in one basket (the limit)");
          }
          event.items.push_back(LineItem{item.getSku(), item.getQuantity()});
        }
        return D::ok(std::move(event));
      });
}

Result<PaymentDue> decode_payment_due(std::string_view bytes, const InputLimits& limits) {
  using D = Result<PaymentDue>;
  return decode_with<wire::PaymentDue, PaymentDue>(
      bytes, "PaymentDue", [&limits](wire::PaymentDue::Reader r) {
        if (auto error = check_customer("PaymentDue", r.getCustomerId()); !error.empty()) {
          return D::error(error);
        }
        if (r.getTotalCents() < 0) {
          return D::error("PaymentDue: negative total " + std::to_string(r.getTotalCents()));
        }
        std::string departure = text_of(r.getDepartureEventId());
        if (auto error =
                check_optional_id("PaymentDue: departure event id", departure, limits.max_id_bytes);
            !error.empty()) {
          return D::error(error);
        }
        const auto unpriced = r.getUnpricedSkus();
        if (static_cast<std::int64_t>(unpriced.size()) > limits.max_basket_lines) {
          return D::error("PaymentDue: " + std::to_string(unpriced.size()) +
                          " unpriced skus (more lines than a basket may have)");
        }
        PaymentDue event{r.getCustomerId(), r.getTotalCents(), std::move(departure), {}};
        for (auto sku : unpriced) {
          if (auto error = check_sku("PaymentDue", sku); !error.empty()) return D::error(error);
          event.unpriced_skus.push_back(sku);
        }
        return D::ok(std::move(event));
      });
}

Result<RestockNeeded> decode_restock_needed(std::string_view bytes) {
  using D = Result<RestockNeeded>;
  return decode_with<wire::RestockNeeded,
                     RestockNeeded>(bytes, "RestockNeeded", [](wire::RestockNeeded::Reader r) {
    if (auto error = check_sku("RestockNeeded", r.getSku()); !error.empty()) {
      return D::error(error);
    }
    if (auto error = check_delivery_units("RestockNeeded", r.getQuantity()); !error.empty()) {
      return D::error(error);
    }
    return D::ok(RestockNeeded{r.getSku(), r.getQuantity(), r.getStockLevel(), r.getThreshold()});
  });
}

Result<StockReplenished> decode_stock_replenished(std::string_view bytes,
                                                  const InputLimits& limits) {
  using D = Result<StockReplenished>;
  return decode_with<wire::StockReplenished, StockReplenished>(
      bytes, "StockReplenished", [&limits](wire::StockReplenished::Reader r) {
        if (auto error = check_sku("StockReplenished", r.getSku()); !error.empty()) {
          return D::error(error);
        }
        if (auto error = check_delivery_units("StockReplenished", r.getQuantity());
            !error.empty()) {
          return D::error(error);
        }
        std::string restock = text_of(r.getRestockEventId());
        if (auto error = check_optional_id("StockReplenished: restock event id", restock,
                                           limits.max_id_bytes);
            !error.empty()) {
          return D::error(error);
        }
        return D::ok(StockReplenished{r.getSku(), r.getQuantity(), std::move(restock)});
      });
}

Status check_payload(const Envelope& e, const InputLimits& limits) {
  const auto status = [](const auto& decoded) {
    return decoded ? Status::ok() : Status::error(decoded.error());
  };
  switch (e.type) {
    case EventType::kCustomerArrival:
      return status(decode_customer_arrival(e.payload));
    case EventType::kCustomerDeparted:
      return status(decode_customer_departed(e.payload, limits));
    case EventType::kPaymentDue:
      return status(decode_payment_due(e.payload, limits));
    case EventType::kRestockNeeded:
      return status(decode_restock_needed(e.payload));
    case EventType::kStockReplenished:
      return status(decode_stock_replenished(e.payload, limits));
    case EventType::kDeadLetter:
    case EventType::kWelcome:
      return Status::ok();
    case EventType::kUnknown:
      break;
  }
  return Status::error("unknown event type");
}

Status check_envelope_fields(const Envelope& e, const InputLimits& limits) {
  if (Status s = check_id(e.event_id, limits.max_id_bytes, "event id"); !s) return s;
  if (Status s = check_id(e.source, limits.max_id_bytes, "source"); !s) return s;
  if (!e.caused_by.empty()) {
    if (Status s = check_id(e.caused_by, limits.max_id_bytes, "caused-by id"); !s) return s;
  }
  if (e.type == EventType::kUnknown) return Status::error("unknown event type");
  if (e.occurred_at_us < 0 || e.occurred_at_us > kMaxTimestampUs) {
    return Status::error("occurred-at time " + std::to_string(e.occurred_at_us) +
                         " us is not between the Unix epoch and the end of year 9999");
  }
  return Status::ok();
}

std::string encode_envelope(const Envelope& envelope) {
  capnp::MallocMessageBuilder message(kFirstSegmentWords);
  auto root = message.initRoot<wire::Envelope>();
  root.setEventId(as_text(envelope.event_id));
  root.setType(to_wire(envelope.type));
  root.setSource(as_text(envelope.source));
  root.setOccurredAtUs(envelope.occurred_at_us);
  root.setCausedBy(as_text(envelope.caused_by));
  root.setPayload(kj::arrayPtr(reinterpret_cast<const kj::byte*>(envelope.payload.data()),
                               envelope.payload.size()));
  return to_bytes(message);
}

Result<Envelope> decode_envelope(std::string_view bytes, const InputLimits& limits) {
  using D = Result<Envelope>;
  auto decoded =
      decode_with<wire::Envelope, Envelope>(bytes, "Envelope", [](wire::Envelope::Reader r) {
        auto payload = r.getPayload();
        return D::ok(
            Envelope{text_of(r.getEventId()), from_wire(r.getType()), text_of(r.getSource()),
                     r.getOccurredAtUs(), text_of(r.getCausedBy()),
                     std::string(reinterpret_cast<const char*>(payload.begin()), payload.size())});
      });
  if (!decoded) return decoded;
  if (Status s = check_envelope_fields(decoded.value(), limits); !s) {
    return D::error("Envelope: " + s.error());
  }
  if (Status s = check_payload(decoded.value(), limits); !s) {
    return D::error("Envelope '" + decoded.value().event_id + "': " + s.error());
  }
  return decoded;
}

std::uint64_t content_hash(const CustomerArrival& e) {
  return hash_combine(static_cast<std::uint64_t>(EventType::kCustomerArrival),
                      static_cast<std::uint64_t>(e.customer_id));
}

std::uint64_t content_hash(const CustomerDeparted& e) {
  std::uint64_t h = hash_combine(static_cast<std::uint64_t>(EventType::kCustomerDeparted),
                                 static_cast<std::uint64_t>(e.customer_id));
  for (const LineItem& item : e.items) {
    h = hash_combine(hash_combine(h, static_cast<std::uint64_t>(item.sku)),
                     static_cast<std::uint64_t>(item.quantity));
  }
  return hash_combine(h, e.items.size());
}

std::uint64_t content_hash(const PaymentDue& e) {
  std::uint64_t h = hash_combine(static_cast<std::uint64_t>(EventType::kPaymentDue),
                                 static_cast<std::uint64_t>(e.customer_id));
  h = hash_combine(h, static_cast<std::uint64_t>(e.total_cents));
  h = hash_combine(h, stable_hash(e.departure_event_id));
  for (Sku sku : e.unpriced_skus) h = hash_combine(h, static_cast<std::uint64_t>(sku));
  return hash_combine(h, e.unpriced_skus.size());
}

std::uint64_t content_hash(const RestockNeeded& e) {
  std::uint64_t h = hash_combine(static_cast<std::uint64_t>(EventType::kRestockNeeded),
                                 static_cast<std::uint64_t>(e.sku));
  h = hash_combine(h, static_cast<std::uint64_t>(e.quantity));
  h = hash_combine(h, static_cast<std::uint64_t>(e.stock_level));
  return hash_combine(h, static_cast<std::uint64_t>(e.threshold));
}

std::uint64_t content_hash(const StockReplenished& e) {
  std::uint64_t h = hash_combine(static_cast<std::uint64_t>(EventType::kStockReplenished),
                                 static_cast<std::uint64_t>(e.sku));
  h = hash_combine(h, static_cast<std::uint64_t>(e.quantity));
  return hash_combine(h, stable_hash(e.restock_event_id));
}

}  // namespace eventmart
