// The store's master data: products (price, stock, restock policy) and loyalty customers.
// Each service seeds its own database from it on first start. A default store is embedded in
// the binary (data/catalog.csv and data/customers.csv).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/codec.h"
#include "core/events.h"
#include "core/limits.h"

namespace eventmart {

struct Product {
  Sku sku = 0;
  std::string name;
  std::int64_t price_cents = 0;
  std::int64_t stock = 0;              // units on the shelf at opening
  std::int64_t restock_threshold = 0;  // restock when stock falls below this
  std::int64_t restock_quantity = 0;   // units ordered per restock
};

struct Customer {
  CustomerId customer_id = 0;
  std::string name;
};

struct StoreData {
  std::vector<Product> products;
  std::vector<Customer> customers;
  // Products the price list lacks (a catalog ahead of its prices): Fastlane Finale lists them
  // as unpriced. Inventory Intel knows them all.
  std::vector<Sku> without_price = {};
};

// Prices are at most ten million currency units, so a basket within the InputLimits never
// sums past 10^15 cents (exact in JSON's doubles too).
inline constexpr std::int64_t kMaxPriceCents = 1'000'000'000;

// Whether `product` is a sound catalog entry, and why not. Requires sku 1..kMaxSku, a
// UTF-8 name, price 0..kMaxPriceCents, stock >= 0, threshold >= 0 and threshold <
// restock_quantity <= kMaxDeliveryUnits (so one delivery always lifts an empty shelf back to
// or above the threshold and re-arms the next restock).
Status validate_product(const Product& product);

// CSV with the header "sku,name,price_cents,stock,restock_threshold,restock_quantity".
// Names may not contain commas. Errors name the line and the field.
Result<std::vector<Product>> parse_catalog_csv(std::string_view text);

// CSV with the header "customer_id,name".
Result<std::vector<Customer>> parse_customers_csv(std::string_view text);

// The default store shipped with eventmart: 100 products with skus 1..100 (the ids the
// reference implementation's devices send) and its loyalty customers.
const StoreData& default_store();

}  // namespace eventmart
