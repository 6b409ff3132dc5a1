#include "properties/invariants.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace eventmart::properties {
namespace {
constexpr std::size_t kMaxExamples = 5;

// What the entrance display must say, stated here from the specification and not taken from
// Hello Helper (an oracle built from the code under test cannot find its mistakes).
std::string first_visit_text(const std::string& name) {
  return "Welcome, " + name + "!";
}
std::string later_visit_text(const std::string& name) {
  return "Welcome back, " + name + "!";
}

}  // namespace

void InvariantResult::violate(std::string what, Evidence about) {
  ++violations;
  if (examples.size() < kMaxExamples) {
    examples.push_back(std::move(what));
    evidence.push_back(std::move(about));
  }
}

InvariantResult check_stock_never_negative(const sim::History& history) {
  InvariantResult result{"stock_never_negative", 0, {}, {}};
  for (const sim::StockReading& r : history.stock_readings) {
    if (r.stock < 0 || r.shortfall < 0) {
      result.violate("sku " + std::to_string(r.sku) + " recorded stock " + std::to_string(r.stock) +
                         ", shortfall " + std::to_string(r.shortfall) +
                         " at t=" + std::to_string(r.at_us) + "us",
                     Evidence{"", r.at_us, r.sku});
    }
  }
  for (const auto& [sku, final] : history.final_stock) {
    if (final.stock < 0 || final.shortfall < 0) {
      result.violate("sku " + std::to_string(sku) + " ends with stock " +
                         std::to_string(final.stock) + ", shortfall " +
                         std::to_string(final.shortfall),
                     Evidence{"", -1, sku});
    }
  }
  return result;
}

InvariantResult check_payment_equals_basket(const sim::History& history) {
  InvariantResult result{"payment_equals_basket", 0, {}, {}};
  std::map<std::string, const sim::DepartureTruth*> truth_by_event;
  for (const auto& d : history.departures) {
    if (!d.event_id.empty()) truth_by_event[d.event_id] = &d;
  }

  // Every copy is checked (a redelivery carries the same amount, or the relay sent another
  // event under the same id), each id reported once.
  std::set<std::string> reported;
  for (const sim::ObservedPayment& p : history.payments) {
    if (reported.count(p.event_id)) continue;
    auto truth = truth_by_event.find(p.departure_event_id);
    if (truth == truth_by_event.end()) {
      reported.insert(p.event_id);
      result.violate("payment " + p.event_id + " settles departure '" + p.departure_event_id +
                         "', which no customer made",
                     Evidence{p.event_id, p.at_us, 0});
      continue;
    }
    std::int64_t expected = 0;
    for (const LineItem& item : truth->second->basket) {
      auto price = history.price_cents.find(item.sku);
      if (price != history.price_cents.end()) expected += price->second * item.quantity;
    }
    if (p.total_cents != expected) {
      reported.insert(p.event_id);
      result.violate("payment " + p.event_id + " for " + truth->second->scan_id + " is " +
                         std::to_string(p.total_cents) + " cents; the basket costs " +
                         std::to_string(expected) + " cents",
                     Evidence{p.event_id, p.at_us, 0});
    }
  }
  return result;
}

namespace {

// Downward crossings of each product's threshold by the recorded level, in commit order, and
// the time of the last one.
struct Crossings {
  std::map<Sku, std::int64_t> count;
  std::map<Sku, std::int64_t> last_at_us;
  std::map<Sku, std::set<std::int64_t>> levels;  // the levels each crossing went down to
};

Crossings crossings_of(const sim::History& history) {
  Crossings c;
  std::map<Sku, std::int64_t> last_level;  // absent until the first reading
  for (const sim::StockReading& r :
       history.levels_by_commit ? *history.levels_by_commit : history.stock_readings) {
    const std::int64_t level = r.stock - r.shortfall;
    auto threshold = history.restock_threshold.find(r.sku);
    if (threshold == history.restock_threshold.end()) continue;
    auto last = last_level.find(r.sku);
    if (last != last_level.end() && last->second >= threshold->second &&
        level < threshold->second) {
      ++c.count[r.sku];
      c.last_at_us[r.sku] = r.at_us;
      c.levels[r.sku].insert(level);
    }
    last_level[r.sku] = level;
  }
  return c;
}

}  // namespace

InvariantResult check_restock_once_per_crossing(const sim::History& history) {
  InvariantResult result{"restock_once_per_crossing", 0, {}, {}};
  const Crossings crossings = crossings_of(history);
  std::map<Sku, std::set<std::string>> orders_of;      // sku -> its orders' ids
  std::map<std::string, std::set<Sku>> skus_of_order;  // order id -> the skus it was for
  for (const sim::ObservedRestock& r : history.restocks) {
    orders_of[r.sku].insert(r.event_id);
    skus_of_order[r.event_id].insert(r.sku);
  }
  // An order states the level the product fell to: below its threshold, and (where every
  // commit was read) a level the product's record went down to at a crossing.
  std::map<Sku, std::set<std::int64_t>> crossed_at = crossings.levels;
  std::set<std::string> level_checked;
  for (const sim::ObservedRestock& r : history.restocks) {
    if (!level_checked.insert(r.event_id).second) continue;
    auto threshold = history.restock_threshold.find(r.sku);
    const bool below =
        threshold == history.restock_threshold.end() || r.stock_level < threshold->second;
    const bool seen = history.levels_by_commit || crossed_at[r.sku].count(r.stock_level) > 0;
    if (!below || !seen) {
      result.violate(
          "restock order " + r.event_id + " for sku " + std::to_string(r.sku) +
              " says the level fell to " + std::to_string(r.stock_level) +
              (below ? ", a level the product never crossed at" : ", not below its threshold"),
          Evidence{r.event_id, r.at_us, r.sku});
    }
  }
  // Each product's order is its own: one id for two products means one of them is never
  // delivered (logistics takes the second as a duplicate of the first).
  for (const auto& [id, skus] : skus_of_order) {
    if (skus.size() > 1) {
      std::string list;
      for (Sku sku : skus) list += (list.empty() ? "" : ", ") + std::to_string(sku);
      result.violate("restock order " + id + " was raised for " + std::to_string(skus.size()) +
                         " products (skus " + list + "): each product's order must be its own",
                     Evidence{id, -1, *skus.begin()});
    }
  }
  std::set<Sku> skus;
  for (const auto& [sku, n] : crossings.count) skus.insert(sku);
  for (const auto& [sku, ids] : orders_of) skus.insert(sku);
  for (Sku sku : skus) {
    const std::int64_t crossed = crossings.count.count(sku) ? crossings.count.at(sku) : 0;
    const auto raised =
        static_cast<std::int64_t>(orders_of.count(sku) ? orders_of.at(sku).size() : 0);
    if (history.at_most_once ? raised > crossed : raised != crossed) {
      result.violate(
          "sku " + std::to_string(sku) + " crossed below its threshold " + std::to_string(crossed) +
              " time(s) but " + std::to_string(raised) + " restock(s) were raised",
          Evidence{"", crossings.last_at_us.count(sku) ? crossings.last_at_us.at(sku) : -1, sku});
    }
  }
  if (!history.at_most_once && history.quiescent) {
    // Liveness: every order was delivered by the end of the run, to the product it was for.
    std::map<std::string, std::set<Sku>> delivered_to;
    for (const sim::RestockDelivery& d : history.restock_deliveries) {
      delivered_to[d.order_id].insert(d.sku);
    }
    for (const auto& [sku, ids] : orders_of) {
      for (const std::string& id : ids) {
        auto it = delivered_to.find(id);
        if (it == delivered_to.end()) {
          result.violate(
              "restock " + id + " for sku " + std::to_string(sku) + " was never delivered",
              Evidence{id, -1, sku});
        } else if (!it->second.count(sku)) {
          result.violate("restock " + id + " for sku " + std::to_string(sku) +
                             " was delivered to another product's shelf",
                         Evidence{id, -1, sku});
        }
      }
    }
  }
  return result;
}

InvariantResult check_no_product_left_short(const sim::History& history) {
  InvariantResult result{"no_product_left_short", 0, {}, {}};
  if (history.at_most_once || !history.quiescent) {
    result.checked = false;  // a lost order is expected at QoS 0; nothing is final unquiet
    return result;
  }
  const Crossings crossings = crossings_of(history);
  std::map<std::string, std::set<Sku>> delivered_to;
  for (const sim::RestockDelivery& d : history.restock_deliveries) {
    delivered_to[d.order_id].insert(d.sku);
  }
  for (const auto& [sku, final] : history.final_stock) {
    auto threshold = history.restock_threshold.find(sku);
    if (threshold == history.restock_threshold.end()) continue;
    const std::int64_t level = final.stock - final.shortfall;
    if (level >= threshold->second || !crossings.last_at_us.count(sku)) continue;
    // Below its threshold at the end: an order raised at or after its last crossing must be
    // outstanding, or delivered to it.
    const std::int64_t since = crossings.last_at_us.at(sku);
    bool covered = false;
    for (const sim::ObservedRestock& r : history.restocks) {
      if (r.sku != sku || r.at_us < since) continue;
      auto it = delivered_to.find(r.event_id);
      if (it == delivered_to.end() || it->second.count(sku)) covered = true;
    }
    if (!covered) {
      result.violate("sku " + std::to_string(sku) + " ends below its threshold (level " +
                         std::to_string(level) + " < " + std::to_string(threshold->second) +
                         ") with no restock order outstanding or delivered for it",
                     Evidence{"", crossings.last_at_us.at(sku), sku});
    }
  }
  return result;
}

namespace {

// Something that must happen exactly once for `what`: never is a loss where a loss is
// allowed (QoS 0, or a run that did not settle), otherwise a violation; more than once is
// always a violation ("... was never paid", "... was charged 2 times").
void expect_exactly_once(InvariantResult& result, std::int64_t times, bool loss_allowed,
                         const std::string& what, std::string_view never_verb,
                         std::string_view repeated_verb, const Evidence& about) {
  if (times == 0 && loss_allowed) {
    ++result.lost;
  } else if (times == 0) {
    result.violate(what + " was never " + std::string(never_verb), about);
  } else if (times > 1) {
    result.violate(
        what + " was " + std::string(repeated_verb) + " " + std::to_string(times) + " times",
        about);
  }
}

}  // namespace

namespace {

// Event ids `service` dead-lettered and never consumed after all.
std::set<std::string> given_up_by(const sim::History& history, std::string_view service) {
  std::set<std::string> ids;
  for (const sim::DeadLetter& d : history.dead_letters) {
    if (d.service == service && !d.applied_later) ids.insert(d.event_id);
  }
  return ids;
}

// Event ids the configuration let `service` lose (history.expected_losses), never consumed
// after all.
std::set<std::string> expected_losses_of(const sim::History& history, std::string_view service) {
  std::set<std::string> ids;
  for (const sim::DeadLetter& d : history.expected_losses) {
    if (d.service == service && !d.applied_later) ids.insert(d.event_id);
  }
  return ids;
}

}  // namespace

InvariantResult check_welcome_once_per_arrival(const sim::History& history) {
  InvariantResult result{"welcome_once_per_arrival", 0, {}, {}};
  const std::set<std::string> dead = given_up_by(history, "hello-helper");
  const std::set<std::string> expired = expected_losses_of(history, "hello-helper");
  std::map<std::string, const sim::ArrivalTruth*> arrival_of;
  for (const sim::ArrivalTruth& a : history.arrivals) {
    if (!a.event_id.empty()) arrival_of[a.event_id] = &a;
  }
  std::map<std::string, std::int64_t> shown;  // arrival event id -> welcomes
  std::map<CustomerId, int> first_visits;     // "Welcome, NAME!" shown per known customer
  for (const sim::ShownWelcome& w : history.welcomes) {
    auto a = arrival_of.find(w.arrival_event_id);
    if (a == arrival_of.end()) {
      result.violate("the display welcomed customer " + std::to_string(w.customer_id) +
                         " for arrival '" + w.arrival_event_id + "', which no customer made",
                     Evidence{w.arrival_event_id, w.at_us, 0});
      continue;
    }
    if (++shown[w.arrival_event_id] > 1) continue;  // counted below
    const sim::ArrivalTruth& arrival = *a->second;
    const bool first = !arrival.name.empty() && w.text == first_visit_text(arrival.name);
    const bool again = !arrival.name.empty() && w.text == later_visit_text(arrival.name);
    if (first) ++first_visits[arrival.customer_id];
    const bool right = arrival.name.empty() ? w.text == kGenericWelcomeText : first || again;
    if (!right) {
      result.violate("arrival " + arrival.scan_id + " of customer " +
                         std::to_string(arrival.customer_id) + " was welcomed with '" + w.text +
                         "'",
                     Evidence{arrival.event_id, w.at_us, 0});
    }
  }
  // Visits are counted once each: a known customer's first welcome says "Welcome", every later
  // one "Welcome back" (in the order Hello Helper took the arrivals, which the network may have
  // reordered: the text carries that order, the display's order may differ).
  std::map<CustomerId, std::int64_t> welcomed;  // welcomes shown per known customer
  for (const sim::ArrivalTruth& a : history.arrivals) {
    if (!a.name.empty() && shown.count(a.event_id)) ++welcomed[a.customer_id];
  }
  for (const auto& [customer, n] : welcomed) {
    const int firsts = first_visits.count(customer) ? first_visits.at(customer) : 0;
    const bool lossy = history.at_most_once || !history.quiescent;
    if (firsts > 1 || (!lossy && firsts != 1)) {
      result.violate("customer " + std::to_string(customer) + " was welcomed as a first visit " +
                     std::to_string(firsts) + " times in " + std::to_string(n) + " welcomes");
    }
  }
  for (const sim::ArrivalTruth& a : history.arrivals) {
    const std::int64_t times =
        a.event_id.empty() || !shown.count(a.event_id) ? 0 : shown.at(a.event_id);
    if (times == 0 && dead.count(a.event_id)) {
      ++result.dead_lettered;
      continue;
    }
    if (times == 0 && expired.count(a.event_id)) {
      ++result.lost;
      continue;
    }
    expect_exactly_once(result, times, history.at_most_once || !history.quiescent,
                        "arrival " + a.scan_id + " of customer " + std::to_string(a.customer_id),
                        "welcomed", "welcomed", Evidence{a.event_id, a.at_us, 0});
  }
  return result;
}

InvariantResult check_departure_paid_once(const sim::History& history) {
  InvariantResult result{"departure_paid_once", 0, {}, {}};
  const std::set<std::string> dead = given_up_by(history, "fastlane-finale");
  const std::set<std::string> expired = expected_losses_of(history, "fastlane-finale");
  std::map<std::string, std::set<std::string>> payments_by_departure;
  for (const sim::ObservedPayment& p : history.payments) {
    payments_by_departure[p.departure_event_id].insert(p.event_id);
  }
  for (const sim::DepartureTruth& d : history.departures) {
    auto paid =
        d.event_id.empty() ? payments_by_departure.end() : payments_by_departure.find(d.event_id);
    const std::size_t times = paid == payments_by_departure.end() ? 0 : paid->second.size();
    if (times == 0 && dead.count(d.event_id)) {
      ++result.dead_lettered;
      continue;
    }
    if (times == 0 && expired.count(d.event_id)) {
      ++result.lost;
      continue;
    }
    expect_exactly_once(
        result, static_cast<std::int64_t>(times), history.at_most_once,
        "departure " + d.scan_id + " (customer " + std::to_string(d.customer_id) + ")", "paid",
        "charged", Evidence{d.event_id, d.at_us, 0});
  }
  return result;
}

namespace {

// The first event that changed `sku`'s recorded level in two committed transactions (a
// delivery applied twice), and the time of the second; nullopt if none did. A reading that
// leaves the level as it was (a duplicate recognised) is no application.
std::optional<std::pair<std::string, std::int64_t>> applied_twice(const sim::History& history,
                                                                  Sku sku) {
  std::optional<std::int64_t> last;
  std::set<std::string> applied;
  for (const sim::StockReading& r : history.stock_readings) {
    if (r.sku != sku) continue;
    const std::int64_t level = r.stock - r.shortfall;
    const bool changed = last && level != *last;
    last = level;
    if (!changed || r.event_id.empty()) continue;
    if (!applied.insert(r.event_id).second) return std::pair(r.event_id, r.at_us);
  }
  return std::nullopt;
}

}  // namespace

InvariantResult check_inventory_matches_shelves(const sim::History& history) {
  InvariantResult result{"inventory_matches_shelves", 0, {}, {}};
  if (history.at_most_once) {
    result.checked = false;  // lost departures and deliveries are expected at QoS 0
    return result;
  }
  if (!history.quiescent) {
    result.violate("the run did not become quiescent within the settle limit");
  }
  // What Inventory Intel dead-lettered never reached its records: a sale still on the books,
  // a delivery not yet counted. The shelves differ from the database by exactly that.
  std::map<Sku, std::int64_t> not_applied;  // units the database holds beyond the shelves
  std::set<std::string> counted;            // an event delivered twice may be given up twice
  const auto never_applied = [&](const sim::DeadLetter& d, std::uint64_t& tally) {
    if (d.service != "inventory-intel" || d.applied_later) return;
    if (!counted.insert(d.event_id).second) return;
    const bool sale = d.type == EventType::kCustomerDeparted;
    if (!sale && d.type != EventType::kStockReplenished) return;
    ++tally;
    for (const LineItem& item : d.items)
      not_applied[item.sku] += sale ? item.quantity : -item.quantity;
  };
  for (const sim::DeadLetter& d : history.dead_letters) never_applied(d, result.dead_lettered);
  // Lost with an expired session: the same gap, visible (counted as lost).
  for (const sim::DeadLetter& d : history.expected_losses) never_applied(d, result.lost);
  // Which departures are missing from the books: acknowledged, then never applied or taken
  // back (a power loss under durability normal), by name.
  if (history.inventory_booked && history.quiescent) {
    const std::set<std::string> dead = given_up_by(history, "inventory-intel");
    const std::set<std::string> expired = expected_losses_of(history, "inventory-intel");
    for (const sim::DepartureTruth& d : history.departures) {
      if (d.event_id.empty() || history.inventory_booked->count(d.event_id) ||
          dead.count(d.event_id) || expired.count(d.event_id)) {
        continue;
      }
      result.violate("departure " + d.scan_id + " (customer " + std::to_string(d.customer_id) +
                         ", event " + d.event_id +
                         "): its sale is not in Inventory Intel's records",
                     Evidence{d.event_id, d.at_us, 0});
    }
  }
  for (const auto& [sku, shelf_units] : history.final_shelves) {
    const std::int64_t on_shelf = shelf_units + (not_applied.count(sku) ? not_applied.at(sku) : 0);
    auto record = history.final_stock.find(sku);
    if (record == history.final_stock.end()) {
      result.violate("sku " + std::to_string(sku) + " is on the shelves (" +
                         std::to_string(on_shelf) + " units) but not in the inventory database",
                     Evidence{"", -1, sku});
      continue;
    }
    // With a delivery not counted, a later sale may have run the records short: the level
    // (stock - shortfall) is what must agree then.
    const bool exact = !not_applied.count(sku);
    const std::int64_t level = record->second.stock - record->second.shortfall;
    if (exact ? record->second.stock != on_shelf || record->second.shortfall != 0
              : level != on_shelf) {
      std::string what = "sku " + std::to_string(sku) + ": database has stock " +
                         std::to_string(record->second.stock) + " (shortfall " +
                         std::to_string(record->second.shortfall) + "), shelves hold " +
                         std::to_string(on_shelf);
      Evidence about{"", -1, sku};
      if (const auto twice = applied_twice(history, sku)) {
        what += "; event " + twice->first + " changed it twice";
        about = Evidence{twice->first, twice->second, sku};
      }
      result.violate(std::move(what), about);
    }
  }
  return result;
}

InvariantResult check_event_id_one_cause(const sim::History& history) {
  InvariantResult result{"event_id_one_cause", 0, {}, {}};
  // An id the guardians answered a reading with names that reading's event, no other.
  const auto answered_once = [&](const auto& truths, std::string_view what) {
    std::map<std::string, std::pair<std::string, std::int64_t>> first;  // id -> scan, time
    for (const auto& t : truths) {
      if (t.event_id.empty()) continue;
      auto [it, fresh] = first.emplace(t.event_id, std::pair(t.scan_id, t.at_us));
      if (!fresh) {
        result.violate(std::string(what) + " event " + t.event_id + " answers both " +
                           it->second.first + " and " + t.scan_id,
                       Evidence{t.event_id, t.at_us, 0});
      }
    }
  };
  answered_once(history.departures, "departure");
  answered_once(history.arrivals, "arrival");
  // A payment id settles one departure, for one amount: every copy of it says the same.
  std::map<std::string, const sim::ObservedPayment*> payment;
  for (const sim::ObservedPayment& p : history.payments) {
    auto [it, fresh] = payment.emplace(p.event_id, &p);
    const sim::ObservedPayment& first = *it->second;
    if (fresh) continue;
    if (first.departure_event_id != p.departure_event_id) {
      result.violate("payment " + p.event_id + " settles both departure " +
                         first.departure_event_id + " and " + p.departure_event_id,
                     Evidence{p.event_id, p.at_us, 0});
    } else if (first.total_cents != p.total_cents || first.customer_id != p.customer_id) {
      result.violate("payment " + p.event_id + " came as " + std::to_string(first.total_cents) +
                         " cents and again as " + std::to_string(p.total_cents) + " cents",
                     Evidence{p.event_id, p.at_us, 0});
    }
  }
  return result;
}

std::vector<InvariantResult> check_all(const sim::History& history) {
  return {check_stock_never_negative(history),      check_payment_equals_basket(history),
          check_restock_once_per_crossing(history), check_no_product_left_short(history),
          check_departure_paid_once(history),       check_inventory_matches_shelves(history),
          check_welcome_once_per_arrival(history),  check_event_id_one_cause(history)};
}

bool is_invariant_name(std::string_view name) {
  // The checkers name themselves: asked of an empty history, each says its name.
  static const std::vector<InvariantResult> all = check_all(sim::History{});
  return std::any_of(all.begin(), all.end(),
                     [&](const InvariantResult& r) { return r.name == name; });
}

}  // namespace eventmart::properties
