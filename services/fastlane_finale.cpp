#include "services/fastlane_finale.h"

#include "core/assert.h"
#include "core/event_id.h"

namespace eventmart {

Result<PricedBasket> price_basket(const std::vector<LineItem>& items,
                                  const std::function<std::optional<std::int64_t>(Sku)>& price_of) {
  PricedBasket basket;
  for (const LineItem& item : items) {
    const std::optional<std::int64_t> price = price_of(item.sku);
    if (!price) {
      basket.unpriced_skus.push_back(item.sku);
      continue;
    }
    std::int64_t line = 0;
    if (__builtin_mul_overflow(*price, item.quantity, &line) ||
        __builtin_add_overflow(basket.total_cents, line, &basket.total_cents)) {
      return Result<PricedBasket>::error("basket total overflows at sku " +
                                         std::to_string(item.sku) + " x " +
                                         std::to_string(item.quantity));
    }
  }
  return Result<PricedBasket>::ok(std::move(basket));
}

PriceStore::PriceStore(Database& db) : db_(db) {
  db_.exec_once(
      "CREATE TABLE IF NOT EXISTS prices("
      "  sku INTEGER PRIMARY KEY,"
      "  name TEXT NOT NULL,"
      "  price_cents INTEGER NOT NULL CHECK(price_cents >= 0));"
      "CREATE TABLE IF NOT EXISTS payments("
      "  departure_event_id TEXT PRIMARY KEY,"
      "  payment_event_id TEXT NOT NULL,"
      "  customer_id INTEGER NOT NULL,"
      "  total_cents INTEGER NOT NULL,"
      "  raised_at_us INTEGER NOT NULL) WITHOUT ROWID;");
  insert_ = db_.prepare("INSERT OR IGNORE INTO prices(sku, name, price_cents) VALUES(?, ?, ?)");
  select_ = db_.prepare("SELECT price_cents FROM prices WHERE sku = ?");
  upsert_ = db_.prepare(
      "INSERT INTO prices(sku, name, price_cents) VALUES(?, ?, ?) "
      "ON CONFLICT(sku) DO UPDATE SET price_cents = excluded.price_cents");
  insert_payment_ = db_.prepare(
      "INSERT INTO payments(departure_event_id, payment_event_id, customer_id, total_cents, "
      "raised_at_us) VALUES(?, ?, ?, ?, ?)");
  count_payments_ = db_.prepare("SELECT count(*) FROM payments");
}

void PriceStore::seed(const std::vector<Product>& products) {
  Transaction txn(db_);
  for (const Product& p : products)
    insert_.bind(1, p.sku).bind(2, p.name).bind(3, p.price_cents).run();
  txn.commit();
}

std::optional<std::int64_t> PriceStore::price_cents(Sku sku) {
  select_.bind(1, sku);
  std::optional<std::int64_t> price;
  if (select_.step()) price = select_.column_int64(0);
  select_.reset();
  return price;
}

void PriceStore::set_price(Sku sku, const std::string& name, std::int64_t price_cents) {
  EVENTMART_REQUIRE(price_cents >= 0, sku, price_cents);
  upsert_.bind(1, sku).bind(2, name).bind(3, price_cents).run();
}

void PriceStore::record_payment(const std::string& departure_event_id,
                                const std::string& payment_event_id, CustomerId customer,
                                std::int64_t total_cents, std::int64_t at_us) {
  insert_payment_.bind(1, departure_event_id)
      .bind(2, payment_event_id)
      .bind(3, customer)
      .bind(4, total_cents)
      .bind(5, at_us)
      .run();
}

std::int64_t PriceStore::payments_recorded() {
  count_payments_.step();
  const std::int64_t n = count_payments_.column_int64(0);
  count_payments_.reset();
  return n;
}

FastlaneFinale::FastlaneFinale(const ServiceContext& context)
    : Service(kFastlaneFinale, context), store_(context.db) {}

void FastlaneFinale::start() {
  ctx_.bus.subscribe(ctx_.topics.customer_departure,
                     [this](const Delivery& delivery) { on_departure(delivery); });
  relay_.pump();
}

void FastlaneFinale::on_departure(const Delivery& delivery) {
  std::optional<CustomerDeparted> departed = receive<CustomerDeparted>(delivery);
  if (!departed) return;
  const std::string& cause = delivery.envelope.event_id;
  // Priced before the transaction: an overflowing basket is rejected without touching the
  // inbox. Prices change only on this service's thread, so the read cannot go stale.
  auto priced = price(departed->items);
  if (!priced) return reject(delivery, priced.error());

  const PaymentDue due{departed->customer_id, priced.value().total_cents, cause,
                       priced.value().unpriced_skus};
  const std::string payment_id = derive_event_id(cause, name_);
  const Consumption consumed = consume_once(cause, content_hash(*departed), [&] {
    store_.record_payment(cause, payment_id, due.customer_id, due.total_cents, ctx_.clock.now_us());
    emit(Channel::kStore, ctx_.topics.payment_due, EventType::kPaymentDue, payment_id, cause, due);
  });
  if (!consumed.applied()) return settle(delivery, consumed);
  if (!due.unpriced_skus.empty()) {
    mark(Mark::kUnpricedSku);
    warn("departure '" + cause + "' has " + std::to_string(due.unpriced_skus.size()) +
         " item(s) without a price; not charged");
  }
  info([&] {
    return "payment due from customer " + std::to_string(due.customer_id) + ": " +
           std::to_string(due.total_cents) + " cents";
  });
}

}  // namespace eventmart
