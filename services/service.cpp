#include "services/service.h"

#include "core/event_id.h"
#include "core/wire.h"
#include "services/registry.h"

namespace eventmart {

namespace {

std::unique_ptr<OutboxRelay> make_relay(const ServiceContext& context, Journal& journal) {
  const OutboxRelay::Parts parts{journal,     context.clock,
                                 context.bus, context.logistics_bus,
                                 context.qos, context.relay_batches};
  if (context.make_relay) return context.make_relay(parts);
  return std::make_unique<OutboxRelay>(parts);
}

}  // namespace

Service::Service(std::string_view name, const ServiceContext& context)
    : name_(name),
      ctx_(context),
      journal_(context.db, context.instance),
      relay_holder_(make_relay(context, journal_)),
      relay_(*relay_holder_) {
  if (ctx_.prune_every < 1 || ctx_.inbox_retention_us < 0) {
    throw std::invalid_argument(name_ + ": prune_every must be >= 1 and the inbox retention >= 0");
  }
  auto on_malformed = [this](const std::string& topic, std::string_view bytes,
                             const std::string& reason) { dead_letter(topic, bytes, reason); };
  ctx_.bus.set_malformed_handler(on_malformed);
  if (ctx_.logistics_bus != nullptr && ctx_.logistics_bus != &ctx_.bus) {
    ctx_.logistics_bus->set_malformed_handler(on_malformed);
  }
}

Service::~Service() {
  ctx_.bus.set_malformed_handler(nullptr);
  if (ctx_.logistics_bus != nullptr) ctx_.logistics_bus->set_malformed_handler(nullptr);
}

void Service::prune_inbox() {
  consumed_since_prune_ = 0;
  std::int64_t pruned = 0;
  try {
    pruned = journal_.prune_inbox(ctx_.clock.now_us() - ctx_.inbox_retention_us);
  } catch (const SqliteError& e) {
    // Housekeeping after a commit that stands: a storage error here must not fail the
    // delivery (it would be retried as a duplicate for nothing). The next prune tries again.
    warn(std::string("inbox: pruning failed, tried again later: ") + e.what());
    return;
  }
  if (pruned > 0) {
    mark(Mark::kInboxPruned);
    info([&] { return "inbox: " + std::to_string(pruned) + " event ids past retention pruned"; });
  }
}

void Service::reject(const Delivery& delivery, std::string_view why) {
  if (!delivery.raw.empty()) return dead_letter(delivery.topic, delivery.raw, why);
  dead_letter(delivery.topic, encode_envelope(delivery.envelope),
              "event '" + excerpt(delivery.envelope.event_id, ctx_.limits.max_id_bytes) +
                  "': " + std::string(why));
}

void Service::dead_letter(const std::string& topic, std::string_view bytes,
                          std::string_view reason) {
  ++stats_.rejected;
  file_dead_letter(topic, bytes, reason);
}

void Service::file_dead_letter(const std::string& topic, std::string_view bytes,
                               std::string_view reason) {
  ctx_.logger.log(LogLevel::kWarning, name_,
                  "dead letter from '" + topic + "': " + std::string(reason));
  const std::string id = std::string(kDeadLetterIdPrefix) +
                         to_hex64(stable_hash(bytes, stable_hash(topic, stable_hash(name_))));
  written_.clear();
  {
    Transaction txn(ctx_.db);
    const Writing writing(writing_);
    if (admit(id, 0) != Admission::kNew) return;  // dead-lettered before (a redelivery)
    mark(Mark::kDeadLetter);
    write_outbox(Channel::kStore, ctx_.topics.dead_letter(name_),
                 Envelope{id, EventType::kDeadLetter, name_, ctx_.clock.now_us(), "",
                          dead_letter_document(name_, topic, reason, bytes, ctx_.clock.now_us(),
                                               ctx_.limits.max_payload_bytes)});
    crash_point(CrashSite::kBeforeCommit);
    txn.commit();
  }
  relay_.hand_over(std::move(written_));
  written_.clear();
}

namespace {

template <typename Event>
struct EventTraits;
template <>
struct EventTraits<CustomerArrival> {
  static constexpr EventType kType = EventType::kCustomerArrival;
  static Result<CustomerArrival> decode(std::string_view bytes, const InputLimits&) {
    return decode_customer_arrival(bytes);
  }
};
template <>
struct EventTraits<CustomerDeparted> {
  static constexpr EventType kType = EventType::kCustomerDeparted;
  static Result<CustomerDeparted> decode(std::string_view bytes, const InputLimits& limits) {
    return decode_customer_departed(bytes, limits);
  }
};
template <>
struct EventTraits<RestockNeeded> {
  static constexpr EventType kType = EventType::kRestockNeeded;
  static Result<RestockNeeded> decode(std::string_view bytes, const InputLimits&) {
    return decode_restock_needed(bytes);
  }
};
template <>
struct EventTraits<StockReplenished> {
  static constexpr EventType kType = EventType::kStockReplenished;
  static Result<StockReplenished> decode(std::string_view bytes, const InputLimits& limits) {
    return decode_stock_replenished(bytes, limits);
  }
};

}  // namespace

template <typename Event>
std::optional<Event> Service::receive(const Delivery& delivery) {
  const Envelope& envelope = delivery.envelope;
  if (envelope.type != EventTraits<Event>::kType) {
    reject(delivery, "expected a " + std::string(event_type_name(EventTraits<Event>::kType)) +
                         " event, got " + std::string(event_type_name(envelope.type)));
    return std::nullopt;
  }
  if (Status s = check_envelope_fields(envelope, ctx_.limits); !s) {
    reject(delivery, s.error());
    return std::nullopt;
  }
  // Older than the inbox remembers: its id may have been pruned after it was applied, so it
  // cannot be told from a first delivery. A visible refusal, never a second application.
  const std::int64_t age = ctx_.clock.now_us() - envelope.occurred_at_us;
  if (age > kLateDeliveryUs) {
    mark(Mark::kInboxLateDelivery);
    // The same, by consumer: which one is working off a backlog is a state of its own (the
    // explorer's rare states, runs/explorer.h: a bug of Inventory Intel's catch-up needs its
    // catch-up, not Hello Helper's).
    if (auto kind = service_kind(name_)) {
      if (auto catch_up = spec_of(*kind).catch_up) mark(*catch_up);
    }
  }
  if (age > max_event_age_us(ctx_.inbox_retention_us)) {
    mark(Mark::kInboxTooOldToTell);
    reject(delivery, "occurred " + std::to_string(age / 1'000'000) +
                         " s ago, longer than the inbox can tell a redelivery (it keeps ids " +
                         std::to_string(ctx_.inbox_retention_us / 1'000'000) +
                         " s): not applied, it may have been before");
    return std::nullopt;
  }
  auto event = EventTraits<Event>::decode(envelope.payload, ctx_.limits);
  if (!event) {
    reject(delivery, event.error());
    return std::nullopt;
  }
  return std::move(event.value());
}

template std::optional<CustomerArrival> Service::receive<CustomerArrival>(const Delivery&);
template std::optional<CustomerDeparted> Service::receive<CustomerDeparted>(const Delivery&);
template std::optional<RestockNeeded> Service::receive<RestockNeeded>(const Delivery&);
template std::optional<StockReplenished> Service::receive<StockReplenished>(const Delivery&);

}  // namespace eventmart
