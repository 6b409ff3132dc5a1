#include "services/logistics_desk.h"

#include <stdexcept>

#include "core/codec.h"
#include "core/event_id.h"

namespace eventmart {

LogisticsDesk::LogisticsDesk(const ServiceContext& context) : Service(kLogisticsDesk, context) {
  if (context.logistics_bus == nullptr) {
    throw std::invalid_argument("the logistics desk needs the logistics bus");
  }
}

void LogisticsDesk::start() {
  ctx_.logistics_bus->subscribe(ctx_.topics.restock_needed,
                                [this](const Delivery& d) { on_restock(d); });
  relay_.pump();
}

void LogisticsDesk::on_restock(const Delivery& delivery) {
  std::optional<RestockNeeded> restock = receive<RestockNeeded>(delivery);
  if (!restock) return;
  const std::string& cause = delivery.envelope.event_id;
  const RestockNeeded& r = *restock;
  const Consumption consumed = consume_once(cause, content_hash(r), [&] {
    emit(Channel::kLogistics, ctx_.topics.stock_replenished, EventType::kStockReplenished,
         derive_event_id(cause, name_, "delivery"), cause,
         StockReplenished{r.sku, r.quantity, cause});
  });
  if (!consumed.applied()) return settle(delivery, consumed);
  info([&] {
    return "delivered " + std::to_string(r.quantity) + " units of sku " + std::to_string(r.sku);
  });
}

}  // namespace eventmart
