// Inventory Intel: keeps stock in its own database. Consumes CustomerDeparted (units leave)
// and StockReplenished from logistics (units arrive); raises RestockNeeded on the external
// logistics bus once per downward threshold crossing (see inventory_logic.h).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "services/catalog.h"
#include "services/inventory_logic.h"
#include "services/service.h"

namespace eventmart {

class InventoryStore {
 public:
  // Creates the products table if missing. `db` must outlive the store.
  explicit InventoryStore(Database& db);
  // Inserts the products that are not in the table yet (existing stock is kept).
  void seed(const std::vector<Product>& products);
  std::optional<StockRecord> find(Sku sku);
  // Throws SqliteError when the sku does not exist.
  void update(Sku sku, const StockRecord& record);
  // Every product's record, ordered by sku.
  std::vector<std::pair<Sku, StockRecord>> all();

 private:
  Database& db_;
  Statement insert_;
  Statement select_;
  Statement update_;
  Statement select_all_;
};

struct InventoryStats {
  std::uint64_t restocks_raised = 0;
  std::uint64_t unknown_skus = 0;         // line items for skus not in the catalog (skipped)
  std::uint64_t shortfalls_recorded = 0;  // sales beyond the units on record
};

class InventoryIntel : public Service {
 public:
  // Throws std::invalid_argument when context.logistics_bus is not set.
  explicit InventoryIntel(const ServiceContext& context);
  void start() override;

  InventoryStore& store() { return store_; }
  const InventoryStats& inventory_stats() const { return inventory_stats_; }

 protected:
  // The restock policy applied to one sale. A seam: sim/bugs overrides it.
  virtual std::optional<StockDecision> decide_sale(const StockRecord& before,
                                                   std::int64_t quantity) const {
    return apply_sale(before, quantity);
  }
  // The event id of the restock order a departure raises for one product: derived from the
  // departure and the sku, so each product's order is its own and a redelivered departure
  // raises the same id. A seam: sim/bugs overrides it.
  virtual std::string restock_event_id(const std::string& departure_id, Sku sku) const;

 private:
  void on_departure(const Delivery& delivery);
  void on_replenished(const Delivery& delivery);
  static std::string unknown_skus_note(const std::string& cause, const std::vector<Sku>& unknown);

  InventoryStore store_;
  InventoryStats inventory_stats_;
  // Products this process raised a restock for (coverage: a threshold crossed again).
  std::set<Sku> crossed_;
};

}  // namespace eventmart
