#include "apps/load.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <set>
#include <thread>

#include "core/codec.h"
#include "core/rng.h"
#include "report/json_writer.h"
#include "services/catalog.h"
#include "services/scan_logic.h"
#include "sim/workload.h"

namespace eventmart::apps {

using report::JsonWriter;
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
  j.key("kind").value("load");
  j.key("passed").value(ok());
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
  j.key("duration_seconds").value_fixed(duration_s, 3);
  j.key("departures_per_second").value_fixed(departures_per_s, 1);
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

namespace {

struct PlannedVisit {
  CustomerId customer;
  std::vector<LineItem> items;
  std::int64_t total_cents;
};

// The workload, decided before anything is sent: the simulator's visits and baskets over the
// default store's shelves, each basket priced from the default catalog.
std::vector<PlannedVisit> plan_visits(const LoadOptions& options, LoadReport& report) {
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
  std::vector<PlannedVisit> visits;
  for (const sim::Visit& v : workload.plan_visits()) {
    const std::vector<Sku> units = workload.pick_basket(shelves);
    auto departed = departure_from_lines(v.customer_id, lines_of_units(units));
    std::int64_t total = 0;
    for (const LineItem& item : departed.value().items) {
      total += prices[item.sku] * item.quantity;
      report.units_sold[item.sku] += item.quantity;
    }
    visits.push_back(PlannedVisit{v.customer_id, departed.value().items, total});
  }
  return visits;
}

// One load run: a client of its own that sends the visits and watches the payments come back.
class LoadRun {
 public:
  LoadRun(const LoadOptions& options, Logger& logger)
      : options_(options),
        topics_(options.chain, options.store),
        run_id_(options.run_id.empty() ? "load-" + std::to_string(mqtt::wall_clock_us())
                                       : options.run_id),
        clock_(timers_, strand_),
        connection_(client_options()),
        bus_(connection_, topics_, clock_, strand_, logger, "load") {}

  LoadReport run() {
    const std::vector<PlannedVisit> visits = plan_visits(options_, report_);
    bus_.subscribe(topics_.payment_due, [this](const Delivery& d) { on_payment(d); });
    bus_.start();
    if (!wait_until_ready()) return report_;
    report_.connected = true;
    send_all(visits);
    {
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, std::chrono::duration<double>(options_.timeout_s),
                        [&] { return paid_ == report_.departures_sent; });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(options_.linger_s));
    bus_.stop();
    timers_.stop();  // no callback (a republish) runs from here on
    summarise();
    return report_;
  }

 private:
  mqtt::MqttOptions client_options() const {
    mqtt::MqttOptions connection = options_.connection;
    if (connection.client_id.empty()) {
      connection.client_id = "eventmart-" + run_id_ + "-" + std::to_string(::getpid());
    }
    // A persistent session: payments the broker queues while this client is cut off (a broker
    // restart) arrive when it is back. The client id is new per run, so under MQTT 5 its
    // session expires after an hour instead of the services' week.
    connection.clean_session = false;
    connection.session_expiry_s = std::min<std::uint32_t>(connection.session_expiry_s, 3600);
    return connection;
  }

  void on_payment(const Delivery& d) {
    auto due = decode_payment_due(d.envelope.payload);
    std::lock_guard lock(mutex_);
    auto it = expected_.find(d.envelope.caused_by);
    if (it == expected_.end()) return;  // not this run's
    ++report_.payment_messages;
    Expected& e = it->second;
    const bool first = e.payment_ids.empty();
    e.payment_ids.insert(d.envelope.event_id);
    if (!due || due.value().total_cents != e.total_cents) e.wrong_total = true;
    if (first) {
      ++paid_;
      last_payment_ = SteadyClock::now();
      e.latency_ms = std::chrono::duration<double, std::milli>(last_payment_ - e.sent_at).count();
      changed_.notify_all();
    }
  }

  // False (with the reason in the report) when the broker cannot be used.
  bool wait_until_ready() {
    const auto deadline =
        SteadyClock::now() + std::chrono::duration<double>(options_.connect_timeout_s);
    while (!bus_.ready()) {
      // A refused password or a failed handshake does not get better by waiting.
      const mqtt::ConnectProblem problem = bus_.connect_problem();
      const bool hopeless = problem == mqtt::ConnectProblem::kBadCredentials ||
                            problem == mqtt::ConnectProblem::kHandshakeFailed;
      if (hopeless || SteadyClock::now() > deadline) {
        const std::string why = bus_.connect_error();
        report_.error = hopeless
                            ? why
                            : "no subscription at " + connection_.broker + " within " +
                                  std::to_string(static_cast<int>(options_.connect_timeout_s)) +
                                  " s" + (why.empty() ? "" : ": " + why);
        bus_.stop();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  // Like a device (or an outbox): a publish the broker did not confirm (the connection ended
  // with it in flight) is sent again, with the same event id, until it is confirmed.
  void publish_until_confirmed(const std::string& topic, Envelope envelope) {
    Envelope copy = envelope;
    bus_.publish(topic, std::move(envelope), Qos::kAtLeastOnce,
                 [this, topic, copy = std::move(copy)](PublishOutcome outcome) mutable {
                   if (outcome != PublishOutcome::kFailed) return;
                   ++report_.republished;
                   publish_until_confirmed(topic, std::move(copy));
                 });
  }

  void send_all(const std::vector<PlannedVisit>& visits) {
    started_ = SteadyClock::now();
    for (std::size_t i = 0; i < visits.size(); ++i) {
      if (options_.rate > 0) {
        std::this_thread::sleep_until(
            started_ + std::chrono::duration_cast<SteadyClock::duration>(
                           std::chrono::duration<double>(static_cast<double>(i) / options_.rate)));
      }
      const PlannedVisit& v = visits[i];
      const std::string base = run_id_ + "-" + std::to_string(i + 1);
      const std::int64_t now = clock_.now_us();
      if (options_.send_arrivals) {
        publish_until_confirmed(
            topics_.customer_arrival,
            make_envelope(EventType::kCustomerArrival, base + "-arrival", "eventmart-load", now, "",
                          CustomerArrival{v.customer}));
        ++report_.arrivals_sent;
      }
      const std::string departure_id = base + "-departure";
      {
        std::lock_guard lock(mutex_);
        Expected& e = expected_[departure_id];
        e.total_cents = v.total_cents;
        e.sent_at = SteadyClock::now();
      }
      publish_until_confirmed(
          topics_.customer_departure,
          make_envelope(EventType::kCustomerDeparted, departure_id, "eventmart-load", now, "",
                        CustomerDeparted{v.customer, v.items}));
      ++report_.departures_sent;
    }
  }

  void summarise() {
    std::lock_guard lock(mutex_);
    std::vector<double> latencies;
    for (const auto& [id, e] : expected_) {
      if (e.payment_ids.empty()) {
        ++report_.missing_payments;
        continue;
      }
      ++report_.payments_received;
      if (e.payment_ids.size() > 1) ++report_.duplicate_payments;
      if (e.wrong_total) ++report_.wrong_totals;
      latencies.push_back(e.latency_ms);
    }
    std::sort(latencies.begin(), latencies.end());
    report_.latency_p50_ms = percentile(latencies, 0.50);
    report_.latency_p99_ms = percentile(latencies, 0.99);
    report_.latency_max_ms = latencies.empty() ? 0 : latencies.back();
    const auto ended = report_.missing_payments == 0 ? last_payment_ : SteadyClock::now();
    report_.duration_s = std::chrono::duration<double>(ended - started_).count();
    report_.departures_per_s =
        report_.duration_s > 0 ? static_cast<double>(report_.departures_sent) / report_.duration_s
                               : 0;
  }

  const LoadOptions& options_;
  const Topics topics_;
  const std::string run_id_;
  LoadReport report_;
  mqtt::TimerThread timers_;
  mqtt::Strand strand_;
  mqtt::LiveClock clock_;
  mqtt::MqttOptions connection_;
  mqtt::MqttBus bus_;
  std::mutex mutex_;  // guards expected_ and the counters (handlers run under strand_)
  std::condition_variable changed_;
  std::map<std::string, Expected> expected_;
  std::int64_t paid_ = 0;
  SteadyClock::time_point started_{};
  SteadyClock::time_point last_payment_{};
};

}  // namespace

LoadReport run_load(const LoadOptions& options, Logger& logger) {
  return LoadRun(options, logger).run();
}

}  // namespace eventmart::apps
