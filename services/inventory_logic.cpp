#include "services/inventory_logic.h"

#include <algorithm>

namespace eventmart {

StockDecision apply_sale(const StockRecord& before, std::int64_t quantity) {
  StockDecision decision{before, std::nullopt};
  StockRecord& after = decision.after;
  const std::int64_t covered = std::min(after.stock, quantity);
  after.stock -= covered;
  after.shortfall += quantity - covered;
  if (after.restock_armed && after.level() < after.restock_threshold) {
    after.restock_armed = false;
    decision.restock = RestockOrder{after.restock_quantity, after.level()};
  }
  return decision;
}

StockDecision apply_replenishment(const StockRecord& before, std::int64_t quantity) {
  StockDecision decision{before, std::nullopt};
  StockRecord& after = decision.after;
  const std::int64_t settled = std::min(after.shortfall, quantity);
  after.shortfall -= settled;
  after.stock += quantity - settled;
  if (after.level() >= after.restock_threshold) after.restock_armed = true;
  return decision;
}

}  // namespace eventmart
