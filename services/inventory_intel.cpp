#include "services/inventory_intel.h"

#include <stdexcept>

#include "core/event_id.h"

namespace eventmart {

InventoryStore::InventoryStore(Database& db) : db_(db) {
  db_.exec_once(
      "CREATE TABLE IF NOT EXISTS products("
      "  sku INTEGER PRIMARY KEY,"
      "  name TEXT NOT NULL,"
      "  stock INTEGER NOT NULL,"
      "  shortfall INTEGER NOT NULL DEFAULT 0,"
      "  restock_threshold INTEGER NOT NULL,"
      "  restock_quantity INTEGER NOT NULL,"
      "  restock_armed INTEGER NOT NULL)");
  insert_ = db_.prepare(
      "INSERT OR IGNORE INTO products(sku, name, stock, restock_threshold, restock_quantity, "
      "restock_armed) VALUES(?, ?, ?, ?, ?, ?)");
  select_ = db_.prepare(
      "SELECT stock, shortfall, restock_threshold, restock_quantity, restock_armed "
      "FROM products WHERE sku = ?");
  update_ =
      db_.prepare("UPDATE products SET stock = ?, shortfall = ?, restock_armed = ? WHERE sku = ?");
  select_all_ = db_.prepare(
      "SELECT sku, stock, shortfall, restock_threshold, restock_quantity, restock_armed "
      "FROM products ORDER BY sku");
}

void InventoryStore::seed(const std::vector<Product>& products) {
  Transaction txn(db_);
  for (const Product& p : products) {
    insert_.bind(1, p.sku)
        .bind(2, p.name)
        .bind(3, p.stock)
        .bind(4, p.restock_threshold)
        .bind(5, p.restock_quantity)
        .bind(6, std::int64_t{p.stock >= p.restock_threshold})
        .run();
  }
  txn.commit();
}

std::optional<StockRecord> InventoryStore::find(Sku sku) {
  select_.bind(1, sku);
  std::optional<StockRecord> record;
  if (select_.step()) {
    record = StockRecord{select_.column_int64(0), select_.column_int64(1), select_.column_int64(2),
                         select_.column_int64(3), select_.column_int64(4) != 0};
  }
  select_.reset();
  return record;
}

void InventoryStore::update(Sku sku, const StockRecord& record) {
  update_.bind(1, record.stock)
      .bind(2, record.shortfall)
      .bind(3, std::int64_t{record.restock_armed})
      .bind(4, sku)
      .run();
  if (db_.changes() != 1) throw SqliteError("update of unknown sku " + std::to_string(sku));
}

std::vector<std::pair<Sku, StockRecord>> InventoryStore::all() {
  std::vector<std::pair<Sku, StockRecord>> rows;
  while (select_all_.step()) {
    rows.emplace_back(select_all_.column_int64(0),
                      StockRecord{select_all_.column_int64(1), select_all_.column_int64(2),
                                  select_all_.column_int64(3), select_all_.column_int64(4),
                                  select_all_.column_int64(5) != 0});
  }
  select_all_.reset();
  return rows;
}

InventoryIntel::InventoryIntel(const ServiceContext& context)
    : Service(kInventoryIntel, context), store_(context.db) {
  if (context.logistics_bus == nullptr) {
    throw std::invalid_argument("inventory-intel needs the logistics bus");
  }
}

void InventoryIntel::start() {
  ctx_.bus.subscribe(ctx_.topics.customer_departure,
                     [this](const Delivery& delivery) { on_departure(delivery); });
  ctx_.logistics_bus->subscribe(ctx_.topics.stock_replenished,
                                [this](const Delivery& delivery) { on_replenished(delivery); });
  relay_.pump();
}

std::string InventoryIntel::restock_event_id(const std::string& departure_id, Sku sku) const {
  return derive_event_id(departure_id, name_, "restock/" + std::to_string(sku));
}

void InventoryIntel::on_departure(const Delivery& delivery) {
  std::optional<CustomerDeparted> departed = receive<CustomerDeparted>(delivery);
  if (!departed) return;
  const std::string& cause = delivery.envelope.event_id;

  std::vector<std::string> restock_notes;  // logged after the commit
  std::vector<Sku> unknown;                // summarised in one line after the commit
  std::vector<Sku> raised;                 // products whose threshold this sale crossed
  InventoryStats delta;
  const Consumption consumed = consume_once(cause, content_hash(*departed), [&]() -> std::string {
    restock_notes.clear();
    unknown.clear();
    raised.clear();
    delta = {};
    for (const LineItem& item : departed->items) {
      std::optional<StockRecord> before = store_.find(item.sku);
      if (!before) {
        ++delta.unknown_skus;
        unknown.push_back(item.sku);
        continue;
      }
      const std::optional<StockDecision> decision = decide_sale(*before, item.quantity);
      if (!decision) {
        return "selling " + std::to_string(item.quantity) + " units of sku " +
               std::to_string(item.sku) + " overflows its record (stock " +
               std::to_string(before->stock) + ", shortfall " + std::to_string(before->shortfall) +
               ")";
      }
      store_.update(item.sku, decision->after);
      if (decision->after.shortfall > before->shortfall) ++delta.shortfalls_recorded;
      if (decision->restock) {
        ++delta.restocks_raised;
        raised.push_back(item.sku);
        emit(Channel::kLogistics, ctx_.topics.restock_needed, EventType::kRestockNeeded,
             restock_event_id(cause, item.sku), cause,
             RestockNeeded{item.sku, decision->restock->quantity, decision->restock->level,
                           decision->after.restock_threshold});
        restock_notes.push_back("restock raised for sku " + std::to_string(item.sku) +
                                " at level " + std::to_string(decision->restock->level));
      }
    }
    return {};
  });
  if (!consumed.applied()) return settle(delivery, consumed);
  // Counted (and marked) only once the transaction committed.
  if (delta.restocks_raised > 0) mark(Mark::kRestockRaised);
  if (delta.restocks_raised > 1) mark(Mark::kTwoRestocksInOneBasket);
  for (Sku sku : raised) {
    if (!crossed_.insert(sku).second) mark(Mark::kThresholdCrossedAgain);
  }
  if (delta.shortfalls_recorded > 0) mark(Mark::kShortfall);
  if (delta.unknown_skus > 0) mark(Mark::kUnknownSku);
  inventory_stats_.restocks_raised += delta.restocks_raised;
  inventory_stats_.unknown_skus += delta.unknown_skus;
  inventory_stats_.shortfalls_recorded += delta.shortfalls_recorded;
  for (const std::string& note : restock_notes) info([&] { return note; });
  if (!unknown.empty()) warn(unknown_skus_note(cause, unknown));
}

std::string InventoryIntel::unknown_skus_note(const std::string& cause,
                                              const std::vector<Sku>& unknown) {
  // One line per departure, whatever its size: the count and the first few skus.
  constexpr std::size_t kShown = 5;
  if (unknown.size() == 1) {
    return "departure '" + cause + "' lists unknown sku " + std::to_string(unknown[0]) +
           " (not in the catalog; skipped)";
  }
  std::string skus;
  for (std::size_t i = 0; i < unknown.size() && i < kShown; ++i) {
    skus += (i == 0 ? "" : ", ") + std::to_string(unknown[i]);
  }
  if (unknown.size() > kShown) skus += ", ...";
  return "departure '" + cause + "' lists " + std::to_string(unknown.size()) +
         " unknown skus: " + skus + " (not in the catalog; skipped)";
}

void InventoryIntel::on_replenished(const Delivery& delivery) {
  std::optional<StockReplenished> replenished = receive<StockReplenished>(delivery);
  if (!replenished) return;
  const StockReplenished& event = *replenished;

  bool rearmed = false;
  bool unknown = false;
  const Consumption consumed =
      consume_once(delivery.envelope.event_id, content_hash(event), [&]() -> std::string {
        std::optional<StockRecord> before = store_.find(event.sku);
        if (!before) {
          // Units for a product this store does not stock: not to be applied, but never lost
          // in a log line either: dead-lettered (kept, with the delivery) and counted.
          unknown = true;
          return "a delivery of " + std::to_string(event.quantity) + " units of sku " +
                 std::to_string(event.sku) + ", which is not in the catalog";
        }
        const std::optional<StockDecision> decision = apply_replenishment(*before, event.quantity);
        if (!decision) {
          return "a delivery of " + std::to_string(event.quantity) + " units of sku " +
                 std::to_string(event.sku) + " overflows its record (stock " +
                 std::to_string(before->stock) + ")";
        }
        store_.update(event.sku, decision->after);
        rearmed = !before->restock_armed && decision->after.restock_armed;
        return {};
      });
  if (unknown) ++inventory_stats_.unknown_skus;
  if (!consumed.applied()) return settle(delivery, consumed);
  if (rearmed) mark(Mark::kRestockRearmed);
}

}  // namespace eventmart
