// Pure decision logic of Inventory Intel.
//
// Stock is what the database believes is on the shelf, and it is never negative. Delivery is
// at-least-once and may reorder, so a sale can arrive before the replenishment that made it
// possible: the units the record could not cover are kept as `shortfall` and settled by the
// next replenishment. The level the restock policy watches is stock - shortfall.
//
// Restock policy: RestockNeeded fires once when the level crosses below the threshold
// (restock_armed goes false), and is re-armed only when the level rises back to or above it.
#pragma once

#include <cstdint>
#include <optional>

namespace eventmart {

struct StockRecord {
  std::int64_t stock = 0;      // units on record, >= 0
  std::int64_t shortfall = 0;  // units sold beyond the record, awaiting a replenishment, >= 0
  std::int64_t restock_threshold = 0;
  std::int64_t restock_quantity = 0;
  bool restock_armed = true;  // a restock may fire at the next downward crossing

  std::int64_t level() const { return stock - shortfall; }
  friend bool operator==(const StockRecord&, const StockRecord&) = default;
};

struct RestockOrder {
  std::int64_t quantity = 0;
  std::int64_t level = 0;  // the level that crossed below the threshold
  friend bool operator==(const RestockOrder&, const RestockOrder&) = default;
};

struct StockDecision {
  StockRecord after;
  std::optional<RestockOrder> restock;  // set at a downward threshold crossing
};

// `quantity` units left the store. REQUIRES: quantity >= 1, and no field of `before` below 0
// (checked).
// nullopt when the record cannot take it without overflowing 64 bits (a corrupt quantity, never a
// real sale): the caller refuses the event instead of storing a wrapped number.
std::optional<StockDecision> apply_sale(const StockRecord& before, std::int64_t quantity);

// `quantity` units arrived from logistics. REQUIRES: quantity >= 1, and no field of `before`
// below 0 (checked). nullopt on overflow.
std::optional<StockDecision> apply_replenishment(const StockRecord& before, std::int64_t quantity);

}  // namespace eventmart
