// The simulated store day: which customers come when, how long they shop, and what they
// carry out. Customers can only take what is physically on the shelves (the ground truth).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/rng.h"
#include "services/catalog.h"

namespace eventmart::sim {

inline constexpr std::int64_t kSecondUs = 1'000'000;
inline constexpr std::int64_t kMinuteUs = 60 * kSecondUs;
inline constexpr std::int64_t kHourUs = 60 * kMinuteUs;

// Units physically on the shelves, per sku.
using Shelves = std::map<Sku, std::int64_t>;

struct WorkloadOptions {
  std::int64_t customers = 0;     // visits over the day
  std::int64_t opens_at_us = 0;   // first arrival no earlier than this
  std::int64_t closes_at_us = 0;  // last arrival before this
  std::int64_t min_shopping_us = 3 * kMinuteUs;
  std::int64_t max_shopping_us = 40 * kMinuteUs;
  int max_basket_lines = 6;                // distinct products per basket, 0..max
  int max_units_per_line = 3;              // units wanted per product, 1..max
  double unknown_card_probability = 0.05;  // cards not in the loyalty database
  CustomerId first_unknown_card = 900'000;
};

struct Visit {
  std::int64_t number = 0;  // 1-based, in arrival order
  std::string card;         // what the loyalty card reads
  CustomerId customer_id = 0;
  std::int64_t arrives_at_us = 0;
  std::int64_t departs_at_us = 0;
};

class Workload {
 public:
  // `loyalty` and `skus` must not be empty.
  Workload(const WorkloadOptions& options, Rng rng, std::vector<CustomerId> loyalty,
           std::vector<Sku> skus);

  // Every visit of the day, sorted by arrival time.
  std::vector<Visit> plan_visits();

  // The bag a customer carries out, taken off `shelves`: one sku per unit, never more units
  // than a shelf holds (an empty shelf means the customer goes without). Popular products
  // (low positions in the catalog) are picked more often.
  std::vector<Sku> pick_basket(Shelves& shelves);

 private:
  WorkloadOptions options_;
  Rng visits_rng_;
  Rng basket_rng_;
  std::vector<CustomerId> loyalty_;
  std::vector<Sku> skus_;
};

// The catalog for a run: the default store's products for the first min(n, 100) skus, then
// products generated from `rng` (skus 101..n). REQUIRES: n >= 1.
std::vector<Product> make_catalog(std::int64_t n, Rng rng);

}  // namespace eventmart::sim
