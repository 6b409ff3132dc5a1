#include "report/chaos_report.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include "report/run_json.h"

namespace eventmart::report {
namespace {

// What the history saw, in time order, onto the timeline's lanes; the latest time seen.
std::int64_t add_history(const sim::History& h, TimelineRecorder& timeline) {
  using sim::BusId;
  using sim::TraceKind;
  std::int64_t end_us = 0;
  std::vector<std::tuple<std::int64_t, TraceKind, BusId, std::string, std::string, std::string>>
      rows;
  const auto add = [&](std::int64_t t, TraceKind kind, BusId bus, const char* client,
                       const char* topic, const std::string& id) {
    end_us = std::max(end_us, t);
    rows.emplace_back(t, kind, bus, client, topic, id);
  };
  for (const auto& a : h.arrivals) {
    add(a.at_us, TraceKind::kScan, BusId::kStore, "gateway-guardian", "", a.event_id);
  }
  for (const auto& d : h.departures) {
    add(d.at_us, TraceKind::kScan, BusId::kStore, "gate-exit-guardian", "", d.event_id);
  }
  for (const auto& w : h.welcomes) {
    add(w.at_us, TraceKind::kDelivered, BusId::kStore, "entrance-display", "display/entrance",
        w.arrival_event_id);
  }
  for (const auto& p : h.payments) {
    add(p.at_us, TraceKind::kDelivered, BusId::kStore, "payment terminal", "payment-due",
        p.event_id);
  }
  for (const auto& x : h.restocks) {
    add(x.at_us, TraceKind::kDelivered, BusId::kLogistics, "logistics", "restock-needed",
        x.event_id);
  }
  for (const auto& d : h.restock_deliveries) {
    add(d.at_us, TraceKind::kLogisticsDelivery, BusId::kLogistics, "logistics", "stock-replenished",
        d.order_id);
  }
  // The timeline wants time order; the history's lists each are, merged here.
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
  for (const auto& [t, kind, bus, client, topic, id] : rows) {
    timeline.add(t, kind, bus, client, topic, id);
  }
  return end_us;
}

// The fault schedule as bands; the latest time one ends.
std::int64_t add_outages(const std::vector<chaos::ScheduledFault>& schedule, HtmlReport& report) {
  std::int64_t end_us = 0;
  for (const chaos::ScheduledFault& f : schedule) {
    sim::Outage outage;
    outage.who = f.target.empty() ? "broker" : f.target;
    outage.from_us = static_cast<std::int64_t>(f.at_s * 1e6);
    outage.until_us = static_cast<std::int64_t>((f.at_s + std::max(f.duration_s, 0.05)) * 1e6);
    end_us = std::max(end_us, outage.until_us);
    outage.detail = f.describe();
    // The page colours bands by kind: a process gone, a link cut, a link degraded.
    switch (f.kind) {
      case chaos::FaultKind::kKill:
      case chaos::FaultKind::kPause:
        outage.kind = sim::Outage::Kind::kCrash;
        break;
      case chaos::FaultKind::kBrokerKill:
        outage.kind = sim::Outage::Kind::kBrokerDown;
        break;
      default:
        outage.kind = sim::Outage::Kind::kPartition;
        break;
    }
    report.outages.push_back(outage);
  }
  return end_us;
}

void add_rows(const chaos::ChaosResult& r, const chaos::ChaosOptions& o, HtmlReport& report) {
  const auto row = [&](const char* section, const char* label, const std::string& value) {
    report.rows.emplace_back(section, label, value);
  };
  row("run", "seed", std::to_string(o.seed));
  row("run", "duration",
      std::to_string(o.duration_s).substr(0, 5) + " s at " + std::to_string(o.rate).substr(0, 5) +
          " departures/s");
  row("run", "settle limit", std::to_string(o.settle_s).substr(0, 5) + " s");
  row("run", "bug", o.bug.empty() ? "none" : o.bug);
  for (const auto& [kind, n] : r.faults_injected) row("faults", kind.c_str(), std::to_string(n));
  if (r.faults_injected.empty()) row("faults", "none", "");
  row("outcome", "arrivals sent", std::to_string(r.arrivals_sent));
  row("outcome", "departures sent", std::to_string(r.departures_sent));
  row("outcome", "payment messages", std::to_string(r.payments_seen) + " (copies included)");
  row("outcome", "restock messages", std::to_string(r.restocks_seen));
  row("outcome", "readings resent", std::to_string(r.readings_resent));
  row("outcome", "settled in", std::to_string(r.settle_s).substr(0, 5) + " s");
  if (!r.error.empty()) row("outcome", "not run", r.error);
}

}  // namespace

HtmlReport chaos_html_report(const chaos::ChaosResult& r, const chaos::ChaosOptions& o,
                             const std::string& replay, TimelineRecorder& timeline) {
  HtmlReport report;
  report.title = "eventmart chaos: seed " + std::to_string(o.seed) + ", " +
                 std::to_string(r.departures_sent) + " departures" +
                 (o.bug.empty() ? "" : ", bug " + o.bug);
  report.kind = "chaos";
  report.replay = replay;
  report.origin_us = 0;
  report.open_us = static_cast<std::int64_t>(o.duration_s * 1e6);
  const std::int64_t seen_us = add_history(r.history, timeline);
  const std::int64_t faults_us = add_outages(r.schedule, report);
  report.duration_us = std::max(seen_us, faults_us) + 1'000'000;
  add_rows(r, o, report);
  report.invariants = r.invariants;
  report.history = &r.history;
  report.timeline = &timeline;
  return report;
}

std::string chaos_json(const chaos::ChaosResult& r) {
  JsonWriter j;
  j.begin_object();
  j.key("kind").value("chaos");
  j.key("passed").value(r.passed());
  if (!r.error.empty()) j.key("error").value(r.error);
  j.key("interrupted").value(r.interrupted);
  write_fault_counts(j, r.faults_injected);
  j.key("schedule").begin_array();
  for (const chaos::ScheduledFault& f : r.schedule) j.value(f.describe());
  j.end_array();
  j.key("arrivals_sent").value(r.arrivals_sent);
  j.key("departures_sent").value(r.departures_sent);
  j.key("readings_resent").value(r.readings_resent);
  j.key("payments_seen").value(r.payments_seen);
  j.key("restocks_seen").value(r.restocks_seen);
  j.key("deliveries_seen").value(r.deliveries_seen);
  write_dead_letters(j, r.history.dead_letters);
  j.key("proxy_connections").value(r.proxy_connections);
  j.key("quiescent").value(r.history.quiescent);
  j.key("settle_seconds").value_fixed(r.settle_s, 3);
  j.key("wall_seconds").value_fixed(r.wall_s, 3);
  write_invariants(j, r.invariants);
  j.end_object();
  return j.str();
}

}  // namespace eventmart::report
