#include "sim/workload.h"

#include <algorithm>
#include <stdexcept>

#include "core/marks.h"

namespace eventmart::sim {

Status WorkloadShape::validate() const {
  const auto probability = [](double p) { return p >= 0 && p <= 1; };
  if (!probability(tight_stock_probability) || !probability(opening_burst) ||
      !probability(closing_burst) || !probability(unknown_sku_probability) ||
      !probability(unpriced_probability) || !probability(misread_probability) ||
      !probability(reused_scan_id_probability) || !probability(junk_probability) ||
      !probability(unknown_card_probability)) {
    return Status::error("a workload probability is outside [0, 1]");
  }
  if (opening_burst + closing_burst > 1)
    return Status::error("the bursts hold more than every customer");
  if (misread_probability >= 1) return Status::error("a card misread every time is never read");
  if (max_basket_lines < 0 || max_basket_lines > 100)
    return Status::error("basket lines must be 0..100");
  if (max_units_per_line < 1 || max_units_per_line > 100)
    return Status::error("units per line must be 1..100");
  return Status::ok();
}

WorkloadShape draw_swarm_shape(Rng rng) {
  WorkloadShape s;
  const auto maybe = [&rng](double max) { return rng.chance(0.5) ? rng.unit() * max : 0.0; };
  s.tight_stock_probability = maybe(1.0);
  s.opening_burst = maybe(0.3);
  s.closing_burst = maybe(0.3);
  s.shuffled_bags = rng.chance(0.5);
  s.unknown_sku_probability = maybe(0.05);
  s.unpriced_probability = maybe(0.1);
  s.misread_probability = maybe(0.05);
  s.reused_scan_id_probability = maybe(0.02);
  s.junk_probability = maybe(0.02);
  s.unknown_card_probability = rng.unit() * 0.3;
  s.max_basket_lines = static_cast<int>(rng.uniform(1, 12));
  s.max_units_per_line = static_cast<int>(rng.uniform(1, 6));
  return s;
}

Workload::Workload(const WorkloadOptions& options, Rng rng, std::vector<CustomerId> loyalty,
                   std::vector<Sku> skus)
    : options_(options),
      visits_rng_(rng.derive("visits")),
      basket_rng_(rng.derive("baskets")),
      shape_rng_(rng.derive("shape")),
      loyalty_(std::move(loyalty)),
      skus_(std::move(skus)) {
  if (loyalty_.empty() || skus_.empty()) {
    throw std::invalid_argument("workload needs at least one customer and one product");
  }
  if (options_.closes_at_us <= options_.opens_at_us) {
    throw std::invalid_argument("workload: the store must be open for some time");
  }
}

std::int64_t Workload::arrival_time() {
  const WorkloadShape& shape = options_.shape;
  const std::int64_t open = options_.opens_at_us;
  const std::int64_t close = options_.closes_at_us;
  if (shape.opening_burst > 0 || shape.closing_burst > 0) {
    const std::int64_t burst = std::min<std::int64_t>(10 * kMinuteUs, (close - open) / 4 + 1);
    const double u = shape_rng_.unit();
    if (u < shape.opening_burst) return shape_rng_.uniform(open, open + burst - 1);
    if (u < shape.opening_burst + shape.closing_burst) {
      return shape_rng_.uniform(close - burst, close - 1);
    }
  }
  return visits_rng_.uniform(open, close - 1);
}

std::vector<Visit> Workload::plan_visits() {
  std::vector<std::int64_t> arrivals(static_cast<std::size_t>(options_.customers));
  for (auto& at : arrivals) at = arrival_time();
  std::sort(arrivals.begin(), arrivals.end());
  if (options_.shape.opening_burst > 0) mark(Mark::kWorkloadOpeningBurst);
  if (options_.shape.closing_burst > 0) mark(Mark::kWorkloadClosingBurst);

  std::vector<Visit> visits;
  visits.reserve(arrivals.size());
  CustomerId next_unknown = options_.first_unknown_card;
  const double misread = options_.shape.misread_probability;
  for (std::size_t i = 0; i < arrivals.size(); ++i) {
    Visit v;
    v.number = static_cast<std::int64_t>(i) + 1;
    if (visits_rng_.chance(options_.shape.unknown_card_probability)) {
      v.customer_id = next_unknown++;
    } else {
      v.customer_id = loyalty_[static_cast<std::size_t>(
          visits_rng_.uniform(0, static_cast<std::int64_t>(loyalty_.size()) - 1))];
    }
    v.card = std::to_string(v.customer_id);
    v.arrives_at_us = arrivals[i];
    v.departs_at_us =
        v.arrives_at_us + visits_rng_.uniform(options_.min_shopping_us, options_.max_shopping_us);
    if (misread > 0) {
      v.misread_at_entrance = shape_rng_.chance(misread);
      v.misread_at_exit = shape_rng_.chance(misread);
    }
    visits.push_back(std::move(v));
  }
  return visits;
}

std::vector<Sku> Workload::pick_basket(Shelves& shelves) {
  std::vector<Sku> units;
  const std::int64_t lines = basket_rng_.uniform(0, options_.shape.max_basket_lines);
  const auto n = static_cast<double>(skus_.size());
  for (std::int64_t line = 0; line < lines; ++line) {
    if (options_.shape.unknown_sku_probability > 0 &&
        shape_rng_.chance(options_.shape.unknown_sku_probability)) {
      // A product the store does not list: no shelf to take it from, no price.
      const Sku unlisted = options_.first_unlisted_sku + shape_rng_.uniform(0, 999);
      const std::int64_t quantity = shape_rng_.uniform(1, options_.shape.max_units_per_line);
      units.insert(units.end(), static_cast<std::size_t>(quantity), unlisted);
      continue;
    }
    // Skewed towards the front of the catalog: u^2 puts half the picks in the first quarter.
    const double u = basket_rng_.unit();
    const auto position = std::min(static_cast<std::size_t>(u * u * n), skus_.size() - 1);
    const Sku sku = skus_[position];
    const std::int64_t wanted = basket_rng_.uniform(1, options_.shape.max_units_per_line);
    std::int64_t& on_shelf = shelves[sku];
    const std::int64_t taken = std::min(wanted, on_shelf);
    on_shelf -= taken;
    units.insert(units.end(), static_cast<std::size_t>(taken), sku);
  }
  if (options_.shape.shuffled_bags && units.size() > 1) {
    for (std::size_t i = units.size() - 1; i > 0; --i) {  // Fisher-Yates, on our own Rng
      std::swap(
          units[i],
          units[static_cast<std::size_t>(shape_rng_.uniform(0, static_cast<std::int64_t>(i)))]);
    }
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

void shape_catalog(std::vector<Product>& catalog, const WorkloadShape& shape, Rng rng) {
  if (shape.tight_stock_probability <= 0) return;
  bool tight = false;
  for (Product& p : catalog) {
    if (!rng.chance(shape.tight_stock_probability)) continue;
    p.stock = p.restock_threshold + rng.uniform(0, 4);
    tight = true;
  }
  if (tight) mark(Mark::kWorkloadTightStock);
}

std::vector<Sku> unpriced_skus(const std::vector<Product>& catalog, const WorkloadShape& shape,
                               Rng rng) {
  std::vector<Sku> skus;
  if (shape.unpriced_probability <= 0) return skus;
  for (const Product& p : catalog) {
    if (rng.chance(shape.unpriced_probability)) skus.push_back(p.sku);
  }
  return skus;
}

}  // namespace eventmart::sim
