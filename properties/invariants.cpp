#include "properties/invariants.h"

#include <map>
#include <set>

namespace eventmart::properties {
namespace {
constexpr std::size_t kMaxExamples = 5;
}

void InvariantResult::violate(std::string what) {
  ++violations;
  if (examples.size() < kMaxExamples) examples.push_back(std::move(what));
}

InvariantResult check_stock_never_negative(const sim::History& history) {
  InvariantResult result{"stock_never_negative", 0, {}};
  for (const sim::StockReading& r : history.stock_readings) {
    if (r.stock < 0 || r.shortfall < 0) {
      result.violate("sku " + std::to_string(r.sku) + " recorded stock " + std::to_string(r.stock) +
                     ", shortfall " + std::to_string(r.shortfall) +
                     " at t=" + std::to_string(r.at_us) + "us");
    }
  }
  for (const auto& [sku, final] : history.final_stock) {
    if (final.stock < 0 || final.shortfall < 0) {
      result.violate("sku " + std::to_string(sku) + " ends with stock " +
                     std::to_string(final.stock) + ", shortfall " +
                     std::to_string(final.shortfall));
    }
  }
  return result;
}

InvariantResult check_payment_equals_basket(const sim::History& history) {
  InvariantResult result{"payment_equals_basket", 0, {}};
  std::map<std::string, const sim::DepartureTruth*> truth_by_event;
  for (const auto& d : history.departures) {
    if (!d.event_id.empty()) truth_by_event[d.event_id] = &d;
  }

  std::set<std::string> checked;  // each distinct payment once
  for (const sim::ObservedPayment& p : history.payments) {
    if (!checked.insert(p.event_id).second) continue;
    auto truth = truth_by_event.find(p.departure_event_id);
    if (truth == truth_by_event.end()) {
      result.violate("payment " + p.event_id + " settles departure '" + p.departure_event_id +
                     "', which no customer made");
      continue;
    }
    std::int64_t expected = 0;
    for (const LineItem& item : truth->second->basket) {
      auto price = history.price_cents.find(item.sku);
      if (price != history.price_cents.end()) expected += price->second * item.quantity;
    }
    if (p.total_cents != expected) {
      result.violate("payment " + p.event_id + " for " + truth->second->scan_id + " is " +
                     std::to_string(p.total_cents) + " cents; the basket costs " +
                     std::to_string(expected) + " cents");
    }
  }
  return result;
}

InvariantResult check_restock_once_per_crossing(const sim::History& history) {
  InvariantResult result{"restock_once_per_crossing", 0, {}};
  std::map<Sku, std::int64_t> crossings;
  std::map<Sku, std::int64_t> last_level;  // absent until the first reading
  for (const sim::StockReading& r : history.stock_readings) {
    const std::int64_t level = r.stock - r.shortfall;
    auto threshold = history.restock_threshold.find(r.sku);
    if (threshold == history.restock_threshold.end()) continue;
    auto last = last_level.find(r.sku);
    if (last != last_level.end() && last->second >= threshold->second &&
        level < threshold->second) {
      ++crossings[r.sku];
    }
    last_level[r.sku] = level;
  }
  std::map<Sku, std::set<std::string>> restocks;
  for (const sim::ObservedRestock& r : history.restocks) restocks[r.sku].insert(r.event_id);

  std::set<Sku> skus;
  for (const auto& [sku, n] : crossings) skus.insert(sku);
  for (const auto& [sku, ids] : restocks) skus.insert(sku);
  for (Sku sku : skus) {
    const std::int64_t crossed = crossings.count(sku) ? crossings[sku] : 0;
    const auto raised = static_cast<std::int64_t>(restocks.count(sku) ? restocks[sku].size() : 0);
    if (history.at_most_once ? raised > crossed : raised != crossed) {
      result.violate("sku " + std::to_string(sku) + " crossed below its threshold " +
                     std::to_string(crossed) + " time(s) but " + std::to_string(raised) +
                     " restock(s) were raised");
    }
  }
  if (!history.at_most_once && history.quiescent) {
    // Liveness: every order logistics received was delivered by the end of the run.
    std::set<std::string> delivered(history.restock_deliveries.begin(),
                                    history.restock_deliveries.end());
    for (const auto& [sku, ids] : restocks) {
      for (const std::string& id : ids) {
        if (!delivered.count(id)) {
          result.violate("restock " + id + " for sku " + std::to_string(sku) +
                         " was never delivered");
        }
      }
    }
  }
  return result;
}

InvariantResult check_departure_paid_once(const sim::History& history) {
  InvariantResult result{"departure_paid_once", 0, {}};
  std::map<std::string, std::set<std::string>> payments_by_departure;
  for (const sim::ObservedPayment& p : history.payments) {
    payments_by_departure[p.departure_event_id].insert(p.event_id);
  }
  for (const sim::DepartureTruth& d : history.departures) {
    auto paid =
        d.event_id.empty() ? payments_by_departure.end() : payments_by_departure.find(d.event_id);
    const std::size_t times = paid == payments_by_departure.end() ? 0 : paid->second.size();
    if (times == 0 && history.at_most_once) {
      ++result.lost;  // QoS 0: at most once
    } else if (times == 0) {
      result.violate("departure " + d.scan_id + " (customer " + std::to_string(d.customer_id) +
                     ") was never paid");
    } else if (times > 1) {
      result.violate("departure " + d.scan_id + " (customer " + std::to_string(d.customer_id) +
                     ") was charged " + std::to_string(times) + " times");
    }
  }
  return result;
}

InvariantResult check_inventory_matches_shelves(const sim::History& history) {
  InvariantResult result{"inventory_matches_shelves", 0, {}};
  if (history.at_most_once) {
    result.checked = false;  // lost departures and deliveries are expected at QoS 0
    return result;
  }
  if (!history.quiescent) {
    result.violate("the run did not become quiescent within the settle limit");
  }
  for (const auto& [sku, on_shelf] : history.final_shelves) {
    auto record = history.final_stock.find(sku);
    if (record == history.final_stock.end()) {
      result.violate("sku " + std::to_string(sku) + " is on the shelves (" +
                     std::to_string(on_shelf) + " units) but not in the inventory database");
      continue;
    }
    if (record->second.stock != on_shelf || record->second.shortfall != 0) {
      result.violate("sku " + std::to_string(sku) + ": database has stock " +
                     std::to_string(record->second.stock) + " (shortfall " +
                     std::to_string(record->second.shortfall) + "), shelves hold " +
                     std::to_string(on_shelf));
    }
  }
  return result;
}

std::vector<InvariantResult> check_all(const sim::History& history) {
  return {check_stock_never_negative(history), check_payment_equals_basket(history),
          check_restock_once_per_crossing(history), check_departure_paid_once(history),
          check_inventory_matches_shelves(history)};
}

}  // namespace eventmart::properties
