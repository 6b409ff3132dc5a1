#include "apps/load.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <set>
#include <thread>

#include "apps/json_writer.h"
#include "core/codec.h"
#include "core/rng.h"
#include "services/catalog.h"
#include "services/scan_logic.h"
#include "sim/workload.h"

namespace eventmart::apps {
namespace {

using SteadyClock = std::chrono::steady_clock;

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

struct Expected {
  std::int64_t total_cents = 0;
  SteadyClock::time_point sent_at;
  std::set<std::string> payment_ids;
  bool wrong_total = false;
  double latency_ms = -1;
};

}  // namespace

std::string LoadReport::to_json() const {
  JsonWriter j;
  j.begin_object();
  j.key("connected").value(connected);
  if (!error.empty()) j.key("error").value(error);
  j.key("arrivals_sent").value(arrivals_sent);
  j.key("departures_sent").value(departures_sent);
  j.key("payments_received").value(payments_received);
  j.key("payment_messages").value(payment_messages);
  j.key("missing_payments").value(missing_payments);
  j.key("duplicate_payments").value(duplicate_payments);
  j.key("wrong_totals").value(wrong_totals);
  j.key("republished").value(republished);
  j.key("latency_ms").begin_object();
  j.key("p50").value_fixed(latency_p50_ms, 3);
  j.key("p99").value_fixed(latency_p99_ms, 3);
  j.key("max").value_fixed(latency_max_ms, 3);
  j.end_object();
  j.key("duration_s").value_fixed(duration_s, 3);
  j.key("departures_per_s").value_fixed(departures_per_s, 1);
  j.end_object();
  return j.str();
}

std::string LoadReport::to_text() const {
  if (!connected) return "load: not connected: " + error + "\n";
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "load: %lld arrivals and %lld departures sent in %.3f s (%.1f departures/s)\n"
                "  payments received  %lld (%lld messages)\n"
                "  missing payments   %lld\n"
                "  duplicate payments %lld\n"
                "  wrong totals       %lld\n"
                "  latency departure -> payment-due: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n"
                "%s\n",
                static_cast<long long>(arrivals_sent), static_cast<long long>(departures_sent),
                duration_s, departures_per_s, static_cast<long long>(payments_received),
                static_cast<long long>(payment_messages), static_cast<long long>(missing_payments),
                static_cast<long long>(duplicate_payments), static_cast<long long>(wrong_totals),
                latency_p50_ms, latency_p99_ms, latency_max_ms,
                ok() ? "every departure was paid exactly once, with the right total"
                     : "FAILED: not every departure was paid exactly once with the right total");
  return buf;
}

LoadReport run_load(const LoadOptions& options, Logger& logger) {
  LoadReport report;
  const Topics topics(options.chain, options.store);
  const std::string run_id =
      options.run_id.empty() ? "load-" + std::to_string(mqtt::wall_clock_us()) : options.run_id;

  // The workload, decided before anything is sent.
  const StoreData& data = default_store();
  std::map<Sku, std::int64_t> prices;
  sim::Shelves shelves;
  std::vector<Sku> skus;
  for (const Product& p : data.products) {
    prices[p.sku] = p.price_cents;
    shelves[p.sku] = p.stock;
    skus.push_back(p.sku);
  }
  std::vector<CustomerId> loyalty;
  for (const Customer& c : data.customers) loyalty.push_back(c.customer_id);
  sim::WorkloadOptions wo;
  wo.customers = options.customers;
  wo.opens_at_us = 0;
  wo.closes_at_us = sim::kHourUs;
  sim::Workload workload(wo, Rng(options.seed).derive("load"), loyalty, skus);
  struct Visit {
    CustomerId customer;
    std::vector<LineItem> items;
    std::int64_t total_cents;
  };
  std::vector<Visit> visits;
  for (const sim::Visit& v : workload.plan_visits()) {
    const std::vector<Sku> units = workload.pick_basket(shelves);
    auto departed = departure_from_lines(v.customer_id, lines_of_units(units));
    std::int64_t total = 0;
    for (const LineItem& item : departed.value().items) {
      total += prices[item.sku] * item.quantity;
      report.units_sold[item.sku] += item.quantity;
    }
    visits.push_back(Visit{v.customer_id, departed.value().items, total});
  }

  mqtt::TimerThread timers;
  mqtt::Strand strand;
  mqtt::LiveClock clock(timers, strand);
  mqtt::MqttOptions connection = options.connection;
  if (connection.client_id.empty()) {
    connection.client_id = "eventmart-" + run_id + "-" + std::to_string(::getpid());
  }
  // A persistent session: payments the broker queues while this client is cut off (a broker
  // restart) arrive when it is back. The client id is new per run.
  connection.clean_session = false;
  mqtt::MqttBus bus(connection, topics, clock, strand, logger, "load");

  std::mutex mutex;  // guards `expected` and the counters below (handlers run under `strand`)
  std::condition_variable changed;
  std::map<std::string, Expected> expected;
  std::int64_t paid = 0;
  SteadyClock::time_point last_payment{};
  bus.subscribe(topics.payment_due, [&](const Delivery& d) {
    auto due = decode_payment_due(d.envelope.payload);
    std::lock_guard lock(mutex);
    auto it = expected.find(d.envelope.caused_by);
    if (it == expected.end()) return;  // not this run's
    ++report.payment_messages;
    Expected& e = it->second;
    const bool first = e.payment_ids.empty();
    e.payment_ids.insert(d.envelope.event_id);
    if (!due || due.value().total_cents != e.total_cents) e.wrong_total = true;
    if (first) {
      ++paid;
      last_payment = SteadyClock::now();
      e.latency_ms = std::chrono::duration<double, std::milli>(last_payment - e.sent_at).count();
      changed.notify_all();
    }
  });
  bus.start();
  const auto connect_deadline =
      SteadyClock::now() + std::chrono::duration<double>(options.connect_timeout_s);
  while (!bus.ready()) {
    // A refused password or a failed handshake does not get better by waiting.
    const mqtt::ConnectProblem problem = bus.connect_problem();
    const bool hopeless = problem == mqtt::ConnectProblem::kBadCredentials ||
                          problem == mqtt::ConnectProblem::kHandshakeFailed;
    if (hopeless || SteadyClock::now() > connect_deadline) {
      const std::string why = bus.connect_error();
      report.error = hopeless ? why
                              : "no subscription at " + connection.broker + " within " +
                                    std::to_string(static_cast<int>(options.connect_timeout_s)) +
                                    " s" + (why.empty() ? "" : ": " + why);
      bus.stop();
      return report;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  report.connected = true;

  // Like a device (or an outbox): a publish the broker did not confirm (the connection ended
  // with it in flight) is sent again, with the same event id, until it is confirmed.
  std::function<void(const std::string&, Envelope)> publish_until_confirmed =
      [&](const std::string& topic, Envelope envelope) {
        Envelope copy = envelope;
        bus.publish(topic, std::move(envelope), Qos::kAtLeastOnce,
                    [&, topic, copy = std::move(copy)](PublishOutcome outcome) mutable {
                      if (outcome == PublishOutcome::kFailed) {
                        ++report.republished;
                        publish_until_confirmed(topic, std::move(copy));
                      }
                    });
      };
  const auto started = SteadyClock::now();
  for (std::size_t i = 0; i < visits.size(); ++i) {
    if (options.rate > 0) {
      std::this_thread::sleep_until(
          started + std::chrono::duration_cast<SteadyClock::duration>(
                        std::chrono::duration<double>(static_cast<double>(i) / options.rate)));
    }
    const Visit& v = visits[i];
    const std::string base = run_id + "-" + std::to_string(i + 1);
    const std::int64_t now = clock.now_us();
    if (options.send_arrivals) {
      publish_until_confirmed(
          topics.customer_arrival,
          make_envelope(EventType::kCustomerArrival, base + "-arrival", "eventmart-load", now, "",
                        CustomerArrival{v.customer}));
      ++report.arrivals_sent;
    }
    const std::string departure_id = base + "-departure";
    {
      std::lock_guard lock(mutex);
      Expected& e = expected[departure_id];
      e.total_cents = v.total_cents;
      e.sent_at = SteadyClock::now();
    }
    publish_until_confirmed(
        topics.customer_departure,
        make_envelope(EventType::kCustomerDeparted, departure_id, "eventmart-load", now, "",
                      CustomerDeparted{v.customer, v.items}));
    ++report.departures_sent;
  }

  {
    std::unique_lock lock(mutex);
    changed.wait_for(lock, std::chrono::duration<double>(options.timeout_s),
                     [&] { return paid == report.departures_sent; });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(options.linger_s));
  bus.stop();
  timers.stop();  // no callback (a republish) runs from here on

  std::lock_guard lock(mutex);
  std::vector<double> latencies;
  for (const auto& [id, e] : expected) {
    if (e.payment_ids.empty()) {
      ++report.missing_payments;
      continue;
    }
    ++report.payments_received;
    if (e.payment_ids.size() > 1) ++report.duplicate_payments;
    if (e.wrong_total) ++report.wrong_totals;
    latencies.push_back(e.latency_ms);
  }
  std::sort(latencies.begin(), latencies.end());
  report.latency_p50_ms = percentile(latencies, 0.50);
  report.latency_p99_ms = percentile(latencies, 0.99);
  report.latency_max_ms = latencies.empty() ? 0 : latencies.back();
  const auto ended = report.missing_payments == 0 ? last_payment : SteadyClock::now();
  report.duration_s = std::chrono::duration<double>(ended - started).count();
  report.departures_per_s =
      report.duration_s > 0 ? static_cast<double>(report.departures_sent) / report.duration_s : 0;
  return report;
}

}  // namespace eventmart::apps
