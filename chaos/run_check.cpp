// A chaos run's end: quiescence, then the invariants over the history, as the simulator's.
#include "chaos/run.h"

namespace eventmart::chaos::detail {

void Run::settle() {
  const auto deadline = healed_at_ + std::chrono::duration<double>(options_.settle_s);
  while (SteadyClock::now() < deadline && !stop_) {
    check_processes();
    {
      std::unique_lock lock(record_.mutex);
      const sim::History& h = record_.history;
      std::set<std::string> dead;
      for (const sim::DeadLetter& d : h.dead_letters) dead.insert(d.event_id);
      const bool paid =
          std::all_of(h.departures.begin(), h.departures.end(), [&](const sim::DepartureTruth& d) {
            return record_.payment_for.count(d.event_id) || dead.count(d.event_id);
          });
      const bool online = std::all_of(services_.begin(), services_.end(),
                                      [&](const Service& s) { return record_.online[s.name]; });
      const bool quiet = SteadyClock::now() - record_.last_message > std::chrono::seconds(3);
      if (!(paid && online && quiet)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
    }
    // A relay may be waiting to publish again (its backoff outlasts a quiet spell), and a
    // consumer may still be working through what the broker queued for it while it was
    // away (a sale publishes nothing): only empty outboxes and inboxes holding every
    // departure and arrival end the wait.
    if (outboxes_empty() && consumers_caught_up()) {
      settled_ = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  result_.settle_s = seconds_since(healed_at_);
}

bool Run::consumers_caught_up() {
  std::vector<std::string> departures, arrivals;
  {
    std::unique_lock lock(record_.mutex);
    for (const sim::DepartureTruth& d : record_.history.departures)
      departures.push_back(d.event_id);
    for (const sim::ArrivalTruth& a : record_.history.arrivals) arrivals.push_back(a.event_id);
  }
  const auto holds_all = [&](ServiceKind kind, const std::vector<std::string>& ids) {
    Database db((out_ / "data" / (std::string(service_name(kind)) + ".sqlite")).string(),
                Durability::kFull);
    std::set<std::string> inbox;
    Statement rows = db.prepare("SELECT event_id FROM inbox");
    while (rows.step()) inbox.insert(rows.column_text(0));
    return std::all_of(ids.begin(), ids.end(),
                       [&](const std::string& id) { return inbox.count(id) > 0; });
  };
  try {
    return holds_all(ServiceKind::kInventoryIntel, departures) &&
           holds_all(ServiceKind::kHelloHelper, arrivals);
  } catch (const std::exception&) {
    return false;  // busy: ask again
  }
}

bool Run::outboxes_empty() {
  try {
    for (const Service& s : services_) {
      Database db((out_ / "data" / (s.name + ".sqlite")).string(), Durability::kFull);
      Statement count = db.prepare("SELECT count(*) FROM outbox");
      if (count.step() && count.column_int64(0) > 0) return false;
    }
    return true;
  } catch (const std::exception&) {
    return false;  // busy: ask again
  }
}

void Run::check() {
  std::unique_lock lock(record_.mutex);
  sim::History& h = record_.history;
  h.final_shelves = record_.shelves;
  bool outboxes_empty = true;
  try {
    for (const Service& s : services_) {
      Database db((out_ / "data" / (s.name + ".sqlite")).string(), Durability::kFull);
      Journal journal(db);
      if (journal.outbox_size() > 0) {
        outboxes_empty = false;
        logger_.log(LogLevel::kWarning, "chaos",
                    s.name + " still owes " + std::to_string(journal.outbox_size()) + " publishes");
      }
      for (sim::DeadLetter& d : h.dead_letters) {
        if (d.service == s.name && !d.event_id.empty()) {
          d.applied_later = d.applied_later || journal.in_inbox(d.event_id);
        }
      }
      if (s.name == std::string(service_name(ServiceKind::kInventoryIntel))) {
        replay_consumption(lock, db, h);
        InventoryStore store(db);
        for (const auto& [sku, record] : store.all()) {
          h.final_stock[sku] = sim::FinalStock{record.stock, record.shortfall};
          h.stock_readings.push_back(
              sim::StockReading{sku, record.stock, record.shortfall, now_us(), {}});
        }
        std::set<std::string> booked;
        for (const sim::DepartureTruth& d : h.departures) {
          if (journal.in_inbox(d.event_id)) booked.insert(d.event_id);
        }
        h.inventory_booked = std::move(booked);
      }
    }
  } catch (const std::exception& e) {
    result_.error = std::string("cannot read the services' databases: ") + e.what();
    return;
  }
  h.quiescent = settled_ && outboxes_empty;
  result_.history = h;
  result_.invariants = properties::check_all(h);
  result_.payments_seen = record_.payments;
  result_.restocks_seen = record_.restocks;
  result_.deliveries_seen = record_.deliveries;
  result_.readings_resent = record_.resent;
}

void Run::replay_consumption(const Held& held, Database& db, sim::History& h) {
  require_held(held);
  std::map<std::string, const sim::DepartureTruth*> departures;
  for (const sim::DepartureTruth& d : h.departures) departures[d.event_id] = &d;
  std::map<Sku, std::int64_t> level;
  for (const Product& p : default_store().products) level[p.sku] = p.stock;
  std::vector<sim::StockReading> levels;
  for (const auto& [sku, l] : level) levels.push_back(sim::StockReading{sku, l, 0, 0, {}});
  const auto reading = [&](Sku sku, std::int64_t at_us, const std::string& event_id) {
    levels.push_back(sim::StockReading{sku, level[sku], 0, at_us, event_id});
  };
  Statement rows =
      db.prepare("SELECT event_id, received_at_us FROM inbox ORDER BY received_at_us, event_id");
  const std::int64_t start_us = mqtt::wall_clock_us() - now_us();
  while (rows.step()) {
    const std::string id = rows.column_text(0);
    const std::int64_t at_us = rows.column_int64(1) - start_us;
    if (auto d = departures.find(id); d != departures.end()) {
      for (const LineItem& item : d->second->basket) {
        level[item.sku] -= item.quantity;
        reading(item.sku, at_us, id);
      }
    } else if (auto r = record_.replenishments.find(id); r != record_.replenishments.end()) {
      level[r->second.sku] += r->second.quantity;
      reading(r->second.sku, at_us, id);
    }
  }
  h.levels_by_commit = std::move(levels);
}

}  // namespace eventmart::chaos::detail
