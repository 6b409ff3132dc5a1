// A chaos run's workload: the scanners' readings, published until the broker confirms each, as a
// device would.
#include "chaos/run.h"

namespace eventmart::chaos::detail {

void Run::publish_reading(const std::string& topic, std::string text) {
  scanner_->publish_bytes(topic, text, Qos::kAtLeastOnce, mqtt::Retain::kNo,
                          [this, topic, text](PublishOutcome outcome) {
                            if (outcome != PublishOutcome::kFailed) return;
                            {
                              std::unique_lock lock(record_.mutex);
                              ++record_.resent;
                            }
                            publish_reading(topic, text);
                          });
}

void Run::send_arrival(std::int64_t visit, CustomerId customer) {
  const std::string scan_id =
      "entrance-1/r" + std::to_string(options_.seed) + "-" + std::to_string(visit);
  {
    std::unique_lock lock(record_.mutex);
    record_.history.arrivals.push_back(sim::ArrivalTruth{
        scan_id, customer, names_.count(customer) ? names_.at(customer) : std::string(), now_us(),
        derive_event_id(scan_id, kGateway)});
  }
  sent_ << R"({"t":)" << fixed(now_s(), 3) << R"(,"reading":"arrival","scan_id":")" << scan_id
        << R"(","customer":)" << customer << "}\n";
  ++result_.arrivals_sent;
  publish_reading(topics_.entrance_scanner,
                  "arrival " + std::to_string(customer) + " scan=" + scan_id);
}

void Run::send_departure(const PendingDeparture& p) {
  const std::string scan_id =
      "exit-1/r" + std::to_string(options_.seed) + "-" + std::to_string(p.visit);
  std::vector<LineItem> basket;
  {
    // What the customer takes off the shelves: 1 to 4 products, 1 to 3 units each, as far
    // as the shelves hold them.
    std::unique_lock lock(record_.mutex);
    std::vector<Sku> stocked;
    for (const auto& [sku, units] : record_.shelves) {
      if (units > 0) stocked.push_back(sku);
    }
    const std::int64_t wanted = rng_.uniform(1, 4);
    for (std::int64_t i = 0; i < wanted && !stocked.empty(); ++i) {
      const auto at =
          static_cast<std::size_t>(rng_.uniform(0, static_cast<std::int64_t>(stocked.size()) - 1));
      const Sku sku = stocked[at];
      stocked.erase(stocked.begin() + static_cast<std::ptrdiff_t>(at));
      const std::int64_t units = std::min(rng_.uniform(1, 3), record_.shelves[sku]);
      record_.shelves[sku] -= units;
      basket.push_back(LineItem{sku, units});
    }
    std::sort(basket.begin(), basket.end(),
              [](const LineItem& a, const LineItem& b) { return a.sku < b.sku; });
    record_.history.departures.push_back(sim::DepartureTruth{scan_id, p.customer, basket, now_us(),
                                                             derive_event_id(scan_id, kGateExit)});
  }
  std::string items;
  for (const LineItem& item : basket) {
    items +=
        (items.empty() ? "" : ",") + std::to_string(item.sku) + ":" + std::to_string(item.quantity);
  }
  sent_ << R"({"t":)" << fixed(now_s(), 3) << R"(,"reading":"departure","scan_id":")" << scan_id
        << R"(","customer":)" << p.customer << R"(,"items":")" << items << "\"}\n";
  ++result_.departures_sent;
  publish_reading(topics_.exit_gate,
                  "departure " + std::to_string(p.customer) + " " + items + " scan=" + scan_id);
}

void Run::drive() {
  // The run's clock (now_s) started with the run; the schedule counts from here.
  const double origin = now_s();
  log("workload: " + fixed(options_.rate, 0) + " departures/s for " +
      fixed(options_.duration_s, 0) + " s, " + std::to_string(result_.schedule.size()) +
      " faults scheduled");
  const auto visits = static_cast<std::int64_t>(options_.duration_s * options_.rate);
  const std::vector<Customer>& customers = default_store().customers;
  std::priority_queue<PendingDeparture, std::vector<PendingDeparture>, std::greater<>> departures;
  std::size_t next_fault = 0;
  struct Ending {
    double at_s;
    std::size_t fault;
  };
  std::vector<Ending> endings;
  std::int64_t visit = 0;
  while (!stop_) {
    const double t = now_s() - origin;
    while (next_fault < result_.schedule.size() && result_.schedule[next_fault].at_s <= t) {
      const ScheduledFault& f = result_.schedule[next_fault];
      begin_fault(f);
      if (f.duration_s > 0) endings.push_back(Ending{f.at_s + f.duration_s, next_fault});
      ++next_fault;
    }
    for (auto it = endings.begin(); it != endings.end();) {
      if (it->at_s <= t) {
        end_fault(result_.schedule[it->fault]);
        it = endings.erase(it);
      } else {
        ++it;
      }
    }
    while (visit < visits && static_cast<double>(visit) / options_.rate <= t) {
      ++visit;
      const Customer& c = customers[static_cast<std::size_t>(
          rng_.uniform(0, static_cast<std::int64_t>(customers.size()) - 1))];
      send_arrival(visit, c.customer_id);
      departures.push(PendingDeparture{t + static_cast<double>(rng_.uniform(200, 3000)) / 1000.0,
                                       visit, c.customer_id});
    }
    while (!departures.empty() && departures.top().at_s <= t) {
      send_departure(departures.top());
      departures.pop();
    }
    if (visit >= visits && departures.empty() && t >= options_.duration_s) break;
    check_processes();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (const Ending& e : endings) end_fault(result_.schedule[e.fault]);
}

}  // namespace eventmart::chaos::detail
