// Fastlane Finale: prices each departure's basket from its own price table, in integer cents,
// and emits PaymentDue for it. Every departure gets exactly one PaymentDue (an empty basket
// is due 0 cents); items without a price are listed in it, not charged.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "services/catalog.h"
#include "services/service.h"

namespace eventmart {

struct PricedBasket {
  std::int64_t total_cents = 0;
  std::vector<Sku> unpriced_skus;
  friend bool operator==(const PricedBasket&, const PricedBasket&) = default;
};

// Pure logic: sum of price x quantity over the items with a price. Returns an error when the
// total would overflow 64-bit cents (a corrupt quantity, not a real basket).
Result<PricedBasket> price_basket(const std::vector<LineItem>& items,
                                  const std::function<std::optional<std::int64_t>(Sku)>& price_of);

class PriceStore {
 public:
  explicit PriceStore(Database& db);
  // Inserts the products that are not in the table yet (existing prices are kept).
  void seed(const std::vector<Product>& products);
  std::optional<std::int64_t> price_cents(Sku sku);
  // Sets a price (insert or replace). REQUIRES: price_cents >= 0 (checked).
  void set_price(Sku sku, const std::string& name, std::int64_t price_cents);
  // The ledger of payments raised: one row per settled departure.
  void record_payment(const std::string& departure_event_id, const std::string& payment_event_id,
                      CustomerId customer, std::int64_t total_cents, std::int64_t at_us);
  std::int64_t payments_recorded();

 private:
  Database& db_;
  Statement insert_;
  Statement select_;
  Statement upsert_;
  Statement insert_payment_;
  Statement count_payments_;
};

class FastlaneFinale : public Service {
 public:
  explicit FastlaneFinale(const ServiceContext& context);
  void start() override;

  PriceStore& store() { return store_; }

 protected:
  // Prices a basket from the price table. A seam: sim/bugs overrides it.
  virtual Result<PricedBasket> price(const std::vector<LineItem>& items) {
    return price_basket(items, [this](Sku sku) { return store_.price_cents(sku); });
  }

 private:
  void on_departure(const Delivery& delivery);

  PriceStore store_;
};

}  // namespace eventmart
