#include "services/service.h"

#include "core/event_id.h"
#include "core/wire.h"

namespace eventmart {

Service::Service(std::string_view name, const ServiceContext& context)
    : name_(name),
      ctx_(context),
      journal_(context.db, context.instance),
      relay_(journal_, context.clock, context.bus, context.logistics_bus, context.qos) {
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
  const std::int64_t pruned = journal_.prune_inbox(ctx_.clock.now_us() - ctx_.inbox_retention_us);
  if (pruned > 0) {
    info([&] { return "inbox: " + std::to_string(pruned) + " event ids past retention pruned"; });
  }
}

void Service::reject(const Delivery& delivery, std::string_view why) {
  if (!delivery.raw.empty()) return dead_letter(delivery.topic, delivery.raw, why);
  dead_letter(delivery.topic, encode_envelope(delivery.envelope),
              "event '" + delivery.envelope.event_id + "': " + std::string(why));
}

void Service::dead_letter(const std::string& topic, std::string_view bytes,
                          std::string_view reason) {
  ++stats_.rejected;
  ctx_.logger.log(LogLevel::kWarning, name_,
                  "dead letter from '" + topic + "': " + std::string(reason));
  const std::string id =
      "dead-letter-" + to_hex64(stable_hash(bytes, stable_hash(topic, stable_hash(name_))));
  written_.clear();
  {
    Transaction txn(ctx_.db);
    if (!admit(id)) return;  // dead-lettered before (a redelivery)
    write_outbox(Channel::kStore, ctx_.topics.dead_letter(name_),
                 Envelope{id, EventType::kDeadLetter, name_, ctx_.clock.now_us(), "",
                          dead_letter_document(name_, topic, reason, bytes, ctx_.clock.now_us())});
    txn.commit();
  }
  relay_.hand_over(std::move(written_));
  written_.clear();
}

bool Service::expect_type(const Delivery& delivery, EventType expected) {
  if (delivery.envelope.type == expected) return true;
  reject(delivery, "expected a " + std::string(event_type_name(expected)) + " event, got " +
                       std::string(event_type_name(delivery.envelope.type)));
  return false;
}

}  // namespace eventmart
