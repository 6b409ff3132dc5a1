#include "sim/logistics.h"

#include "core/codec.h"
#include "core/event_id.h"

namespace eventmart::sim {

namespace {
constexpr std::string_view kLogistics = kLogisticsClient;
}

LogisticsModel::LogisticsModel(const LogisticsOptions& options, Bus& bus, Clock& clock,
                               const Topics& topics, Qos qos, Rng rng, Shelves& shelves,
                               History& history, Trace& trace)
    : options_(options),
      bus_(bus),
      clock_(clock),
      topics_(topics),
      qos_(qos),
      rng_(rng),
      shelves_(shelves),
      history_(history),
      trace_(trace) {}

void LogisticsModel::start() {
  bus_.subscribe(topics_.restock_needed,
                 [this](const Delivery& delivery) { on_restock_needed(delivery); });
}

void LogisticsModel::on_restock_needed(const Delivery& delivery) {
  const Envelope& envelope = delivery.envelope;
  auto order = decode_restock_needed(envelope.payload);
  if (envelope.type != EventType::kRestockNeeded || !order) {
    ++rejected_;
    return;
  }
  history_.restocks.push_back(ObservedRestock{envelope.event_id, order.value().sku, clock_.now_us(),
                                              order.value().stock_level});
  if (!orders_seen_.insert(envelope.event_id).second) return;  // the same order again
  ++requested_;
  const std::int64_t lead_us = rng_.uniform(options_.min_lead_time_us, options_.max_lead_time_us);
  clock_.call_after(lead_us, [this, sku = order.value().sku, quantity = order.value().quantity,
                              order_id = envelope.event_id] {
    shelves_[sku] += quantity;  // the truck is unloaded: the units are physically there
    ++delivered_;
    history_.restock_deliveries.push_back(RestockDelivery{order_id, sku, clock_.now_us()});
    const std::string event_id = derive_event_id(order_id, kLogistics);
    trace_.record(TraceKind::kLogisticsDelivery, BusId::kLogistics, kLogistics,
                  topics_.stock_replenished, event_id);
    publish_until_confirmed(make_envelope(EventType::kStockReplenished, event_id,
                                          std::string(kLogistics), clock_.now_us(), order_id,
                                          StockReplenished{sku, quantity, order_id}));
  });
}

void LogisticsModel::publish_until_confirmed(Envelope envelope) {
  Envelope copy = envelope;
  bus_.publish(topics_.stock_replenished, std::move(envelope), qos_,
               [this, copy = std::move(copy)](PublishOutcome outcome) mutable {
                 if (outcome == PublishOutcome::kConfirmed) return;
                 clock_.call_after(options_.retry_interval_us,
                                   [this, copy = std::move(copy)]() mutable {
                                     publish_until_confirmed(std::move(copy));
                                   });
               });
}

}  // namespace eventmart::sim
