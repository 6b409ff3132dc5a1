#include "sim/workload.h"

#include <algorithm>
#include <stdexcept>

namespace eventmart::sim {

Workload::Workload(const WorkloadOptions& options, Rng rng, std::vector<CustomerId> loyalty,
                   std::vector<Sku> skus)
    : options_(options),
      visits_rng_(rng.derive("visits")),
      basket_rng_(rng.derive("baskets")),
      loyalty_(std::move(loyalty)),
      skus_(std::move(skus)) {
  if (loyalty_.empty() || skus_.empty()) {
    throw std::invalid_argument("workload needs at least one customer and one product");
  }
  if (options_.closes_at_us <= options_.opens_at_us) {
    throw std::invalid_argument("workload: the store must be open for some time");
  }
}

std::vector<Visit> Workload::plan_visits() {
  std::vector<std::int64_t> arrivals(static_cast<std::size_t>(options_.customers));
  for (auto& at : arrivals)
    at = visits_rng_.uniform(options_.opens_at_us, options_.closes_at_us - 1);
  std::sort(arrivals.begin(), arrivals.end());

  std::vector<Visit> visits;
  visits.reserve(arrivals.size());
  CustomerId next_unknown = options_.first_unknown_card;
  for (std::size_t i = 0; i < arrivals.size(); ++i) {
    Visit v;
    v.number = static_cast<std::int64_t>(i) + 1;
    if (visits_rng_.chance(options_.unknown_card_probability)) {
      v.customer_id = next_unknown++;
    } else {
      v.customer_id = loyalty_[static_cast<std::size_t>(
          visits_rng_.uniform(0, static_cast<std::int64_t>(loyalty_.size()) - 1))];
    }
    v.card = std::to_string(v.customer_id);
    v.arrives_at_us = arrivals[i];
    v.departs_at_us =
        v.arrives_at_us + visits_rng_.uniform(options_.min_shopping_us, options_.max_shopping_us);
    visits.push_back(std::move(v));
  }
  return visits;
}

std::vector<Sku> Workload::pick_basket(Shelves& shelves) {
  std::vector<Sku> units;
  const std::int64_t lines = basket_rng_.uniform(0, options_.max_basket_lines);
  const auto n = static_cast<double>(skus_.size());
  for (std::int64_t line = 0; line < lines; ++line) {
    // Skewed towards the front of the catalog: u^2 puts half the picks in the first quarter.
    const double u = basket_rng_.unit();
    const auto position = std::min(static_cast<std::size_t>(u * u * n), skus_.size() - 1);
    const Sku sku = skus_[position];
    const std::int64_t wanted = basket_rng_.uniform(1, options_.max_units_per_line);
    std::int64_t& on_shelf = shelves[sku];
    const std::int64_t taken = std::min(wanted, on_shelf);
    on_shelf -= taken;
    units.insert(units.end(), static_cast<std::size_t>(taken), sku);
  }
  return units;
}

std::vector<Product> make_catalog(std::int64_t n, Rng rng) {
  if (n < 1) throw std::invalid_argument("a catalog needs at least one product");
  const std::vector<Product>& defaults = default_store().products;
  std::vector<Product> products(
      defaults.begin(),
      defaults.begin() + std::min<std::int64_t>(n, static_cast<std::int64_t>(defaults.size())));
  Sku next_sku = products.empty() ? 1 : products.back().sku + 1;
  while (static_cast<std::int64_t>(products.size()) < n) {
    Product p;
    p.sku = next_sku++;
    p.name = "Product " + std::to_string(p.sku);
    p.price_cents = rng.uniform(49, 1999);
    p.restock_threshold = rng.uniform(2, 6) * 5;
    p.stock = p.restock_threshold + rng.uniform(8, 32) * 5;
    p.restock_quantity = p.restock_threshold + rng.uniform(6, 20) * 10;
    products.push_back(std::move(p));
  }
  return products;
}

}  // namespace eventmart::sim
