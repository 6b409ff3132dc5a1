#include "services/inventory_intel.h"

#include <stdexcept>

#include "core/event_id.h"

namespace eventmart {

InventoryStore::InventoryStore(Database& db) : db_(db) {
  db_.exec(
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

void InventoryIntel::on_departure(const Delivery& delivery) {
  if (!expect_type(delivery, EventType::kCustomerDeparted)) return;
  auto departed = decode_customer_departed(delivery.envelope.payload);
  if (!departed) return reject(delivery, departed.error());
  const std::string& cause = delivery.envelope.event_id;

  std::vector<std::string> restock_notes, unknown_notes;  // logged after the commit
  InventoryStats delta;
  consume_once(cause, [&] {
    for (const LineItem& item : departed.value().items) {
      std::optional<StockRecord> before = store_.find(item.sku);
      if (!before) {
        ++delta.unknown_skus;
        unknown_notes.push_back("departure '" + cause + "' lists unknown sku " +
                                std::to_string(item.sku) + " (not in the catalog; skipped)");
        continue;
      }
      const StockDecision decision = decide_sale(*before, item.quantity);
      store_.update(item.sku, decision.after);
      if (decision.after.shortfall > before->shortfall) ++delta.shortfalls_recorded;
      if (decision.restock) {
        ++delta.restocks_raised;
        emit(Channel::kLogistics, ctx_.topics.restock_needed, EventType::kRestockNeeded,
             derive_event_id(cause, name_, "restock/" + std::to_string(item.sku)), cause,
             RestockNeeded{item.sku, decision.restock->quantity, decision.restock->level,
                           decision.after.restock_threshold});
        restock_notes.push_back("restock raised for sku " + std::to_string(item.sku) +
                                " at level " + std::to_string(decision.restock->level));
      }
    }
  });
  // Counted only once the transaction committed (a duplicate leaves `delta` unapplied too).
  inventory_stats_.restocks_raised += delta.restocks_raised;
  inventory_stats_.unknown_skus += delta.unknown_skus;
  inventory_stats_.shortfalls_recorded += delta.shortfalls_recorded;
  for (const std::string& note : restock_notes) info([&] { return note; });
  for (const std::string& note : unknown_notes) warn(note);
}

void InventoryIntel::on_replenished(const Delivery& delivery) {
  if (!expect_type(delivery, EventType::kStockReplenished)) return;
  auto replenished = decode_stock_replenished(delivery.envelope.payload);
  if (!replenished) return reject(delivery, replenished.error());
  const StockReplenished& event = replenished.value();

  bool unknown = false;
  consume_once(delivery.envelope.event_id, [&] {
    std::optional<StockRecord> before = store_.find(event.sku);
    if (!before) {
      unknown = true;
      return;
    }
    store_.update(event.sku, apply_replenishment(*before, event.quantity).after);
  });
  if (unknown) {
    ++inventory_stats_.unknown_skus;
    warn("replenishment '" + delivery.envelope.event_id + "' for unknown sku " +
         std::to_string(event.sku) + " (not in the catalog; skipped)");
  }
}

}  // namespace eventmart
