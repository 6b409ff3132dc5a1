// The simulated store day: which customers come when, how long they shop, and what they
// carry out. Customers can only take what is physically on the shelves (the ground truth).
#pragma once

#include <cstdint>
#include <map>
#include <set>
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

// The shape of a store day beyond its size: what a swarm seed varies so that a small day
// still reaches every path (a threshold crossed many times, a bag scanned in any order, an
// unknown product, a bad card). The defaults are the plain day `eventmart sim` runs.
struct WorkloadShape {
  // Shelves at opening: 0 as the catalog says; p > 0: each product stocked only 0..4 units
  // above its restock threshold with probability p (thresholds crossed within the hour).
  double tight_stock_probability = 0;
  // Share of the day's customers who arrive in the first / the last ten minutes.
  double opening_burst = 0;
  double closing_burst = 0;
  // The exit gate reads a bag's units in any order (repeated skus interleaved).
  bool shuffled_bags = false;
  // Per basket line: a product the store does not list (no shelf, no price, unknown sku).
  double unknown_sku_probability = 0;
  // Per product: its price is missing from Fastlane Finale's price list (listed as unpriced).
  double unpriced_probability = 0;
  // Per reading: the card reader misreads the card; the guardian refuses the reading and the
  // customer scans again (a visible refusal, then the real reading).
  double misread_probability = 0;
  // Per departure: a broken gate reuses an earlier reading's scan id for this bag; the
  // guardian refuses it as a conflict and the customer scans again (with a proper id).
  double reused_scan_id_probability = 0;
  // Per visit: a rogue client publishes a malformed event on a store topic; the services
  // dead-letter it and go on.
  double junk_probability = 0;
  double unknown_card_probability = 0.05;  // cards not in the loyalty database
  int max_basket_lines = 6;                // distinct products per basket, 0..max
  int max_units_per_line = 3;              // units wanted per product, 1..max

  // Whether the shape can be used, and why not.
  Status validate() const;
};

// Each seed of a swarm draws its own shape from `rng`.
WorkloadShape draw_swarm_shape(Rng rng);

struct WorkloadOptions {
  std::int64_t customers = 0;     // visits over the day
  std::int64_t opens_at_us = 0;   // first arrival no earlier than this
  std::int64_t closes_at_us = 0;  // last arrival before this
  std::int64_t min_shopping_us = 3 * kMinuteUs;
  std::int64_t max_shopping_us = 40 * kMinuteUs;
  WorkloadShape shape;
  CustomerId first_unknown_card = 900'000;
  Sku first_unlisted_sku = 2'000'000'000;  // skus the store does not list
};

struct Visit {
  std::int64_t number = 0;  // 1-based, in arrival order
  std::string card;         // what the loyalty card reads
  CustomerId customer_id = 0;
  std::int64_t arrives_at_us = 0;
  std::int64_t departs_at_us = 0;
  bool misread_at_entrance = false;  // the first reading at the entrance is garbage
  bool misread_at_exit = false;      // ... and at the exit gate
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
  // (low positions in the catalog) are picked more often. With the shape's unlisted products
  // a line may be a sku the store does not list (no shelf to take it from); with shuffled
  // bags the units come in any order.
  std::vector<Sku> pick_basket(Shelves& shelves);

  // The baskets and the shape's draws come from `rng` from now on (an explorer's split,
  // sim/recipe.h); the visits were planned at opening.
  void reseed(Rng rng) {
    basket_rng_ = rng.derive("baskets");
    shape_rng_ = rng.derive("shape");
  }

 private:
  std::int64_t arrival_time();

  WorkloadOptions options_;
  Rng visits_rng_;
  Rng basket_rng_;
  Rng shape_rng_;  // only what the shape adds draws from it: a plain day draws nothing here
  std::vector<CustomerId> loyalty_;
  std::vector<Sku> skus_;
};

// The catalog for a run: the default store's products for the first min(n, 100) skus, then
// products generated from `rng` (skus 101..n). Throws std::invalid_argument when n < 1.
std::vector<Product> make_catalog(std::int64_t n, Rng rng);

// The shape's changes to a catalog (tight stock), drawn from `rng`; and the skus whose
// price the price list lacks. Nothing is drawn for what the shape leaves as it is.
void shape_catalog(std::vector<Product>& catalog, const WorkloadShape& shape, Rng rng);
std::vector<Sku> unpriced_skus(const std::vector<Product>& catalog, const WorkloadShape& shape,
                               Rng rng);

}  // namespace eventmart::sim
