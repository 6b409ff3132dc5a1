// `eventmart load`: drives a live deployment with the simulator's workload (arrivals, then
// departures whose baskets are taken off the default store's shelves) and checks what comes
// back on the payment-due topic: every departure paid exactly once, with the total of its
// basket at the default catalog's prices, and how long it took.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/log.h"
#include "core/topics.h"
#include "transports/mqtt/mqtt_bus.h"

namespace eventmart::apps {

struct LoadOptions {
  mqtt::MqttOptions connection;  // client id: set here, or one is made up per run
  std::string chain = std::string(kDefaultChain);
  std::string store = std::string(kDefaultStore);
  std::int64_t customers = 100;
  double rate = 200;       // customers per second; 0: as fast as the in-flight window allows
  std::uint64_t seed = 1;  // the workload (who comes, what they carry out)
  double timeout_s = 30;   // how long to wait for missing payments after the last send
  double linger_s = 0.3;   // how long to keep listening for duplicates once all are paid
  double connect_timeout_s = 10;
  std::string run_id;  // prefix of the event ids; empty: made from the time
  bool send_arrivals = true;
};

struct LoadReport {
  bool connected = false;  // false: the broker was not reachable (nothing was sent)
  std::string error;       // why, when not connected
  std::int64_t arrivals_sent = 0;
  std::int64_t departures_sent = 0;
  std::int64_t payments_received = 0;   // departures with at least one payment
  std::int64_t payment_messages = 0;    // every payment-due message of this run, copies too
  std::int64_t missing_payments = 0;    // departures never paid
  std::int64_t duplicate_payments = 0;  // departures paid by more than one payment event
  std::int64_t wrong_totals = 0;        // payments whose total is not the basket's
  std::int64_t republished = 0;         // publishes sent again after the broker did not confirm
  double latency_p50_ms = 0;            // departure published -> payment-due received
  double latency_p99_ms = 0;
  double latency_max_ms = 0;
  double duration_s = 0;  // first send to last payment (or timeout)
  double departures_per_s = 0;
  std::map<std::int64_t, std::int64_t> units_sold;  // sku -> units, over every departure sent

  bool ok() const {
    return connected && missing_payments == 0 && duplicate_payments == 0 && wrong_totals == 0;
  }
  std::string to_json() const;
  std::string to_text() const;
};

LoadReport run_load(const LoadOptions& options, Logger& logger);

}  // namespace eventmart::apps
