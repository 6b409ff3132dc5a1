// `eventmart chaos` (chaos/chaos.h): the fault kinds and their plan from a seed, the result's
// report, and a run (chaos/run.h).
#include "chaos/chaos.h"

#include <algorithm>
#include <sstream>

#include "chaos/run.h"

namespace eventmart::chaos {

using detail::fixed;
using detail::service_processes;

namespace {

// Every fault kind and its name, once: the names, the parsing and the error's list read it.
constexpr std::pair<FaultKind, std::string_view> kFaultKinds[] = {
    {FaultKind::kReset, "reset"},
    {FaultKind::kBlackhole, "blackhole"},
    {FaultKind::kLatency, "latency"},
    {FaultKind::kThrottle, "throttle"},
    {FaultKind::kKill, "kill"},
    {FaultKind::kPause, "pause"},
    {FaultKind::kBrokerKill, "broker-kill"},
};

}  // namespace

std::string_view fault_kind_name(FaultKind kind) {
  for (const auto& [k, name] : kFaultKinds) {
    if (k == kind) return name;
  }
  return "?";
}

std::set<FaultKind> parse_fault_kinds(const std::string& list) {
  std::set<FaultKind> kinds;
  std::stringstream in(list);
  std::string word;
  while (std::getline(in, word, ',')) {
    if (word.empty() || word == "none") continue;
    if (word == "all") {
      for (const auto& [k, name] : kFaultKinds) kinds.insert(k);
      continue;
    }
    const auto* it = std::find_if(std::begin(kFaultKinds), std::end(kFaultKinds),
                                  [&](const auto& k) { return k.second == word; });
    if (it == std::end(kFaultKinds)) {
      std::string known;
      for (const auto& [k, name] : kFaultKinds) known += std::string(name) + ", ";
      throw std::invalid_argument("no fault kind '" + word + "' (" + known + "all, none)");
    }
    kinds.insert(it->first);
  }
  return kinds;
}

std::string ScheduledFault::describe() const {
  std::string line = fixed(at_s, 2) + " s  " + std::string(fault_kind_name(kind));
  if (!target.empty()) line += " " + target;
  switch (kind) {
    case FaultKind::kLatency:
      line += " " + std::to_string(latency_ms) + " ms +- " + std::to_string(jitter_ms) + " ms";
      break;
    case FaultKind::kThrottle:
      line += " " + std::to_string(bytes_per_s) + " bytes/s";
      break;
    default:
      break;
  }
  if (duration_s > 0) line += " for " + fixed(duration_s, 2) + " s";
  return line;
}

std::vector<ScheduledFault> plan_faults(const ChaosOptions& options) {
  std::vector<ScheduledFault> plan;
  std::vector<FaultKind> kinds(options.faults.begin(), options.faults.end());
  if (kinds.empty()) return plan;
  Rng rng = Rng(options.seed).derive("chaos-faults");
  const std::vector<std::string> targets = service_processes();
  std::map<std::string, double> busy_until;  // a target has one fault at a time
  double broker_free_at = 0;
  const auto ms = [&](std::int64_t lo, std::int64_t hi) {
    return static_cast<double>(rng.uniform(lo, hi)) / 1000.0;
  };
  // The first faults come once the store runs; the last ones end before it heals.
  double at = 1.0 + ms(0, 1000);
  const double end = options.duration_s - 1.0;
  const auto gap_ms = static_cast<std::int64_t>(options.mean_gap_s * 2000);
  while (at < end) {
    ScheduledFault f;
    f.at_s = at;
    f.kind = kinds[static_cast<std::size_t>(
        rng.uniform(0, static_cast<std::int64_t>(kinds.size()) - 1))];
    switch (f.kind) {
      case FaultKind::kReset:
        f.duration_s = 0;
        break;
      case FaultKind::kBlackhole:
        f.duration_s = ms(500, 12'000);
        break;
      case FaultKind::kLatency:
        f.duration_s = ms(1000, 10'000);
        f.latency_ms = rng.uniform(10, 400);
        f.jitter_ms = rng.uniform(0, f.latency_ms / 2);
        break;
      case FaultKind::kThrottle:
        f.duration_s = ms(1000, 10'000);
        f.bytes_per_s = rng.uniform(2'000, 50'000);
        break;
      case FaultKind::kKill:
        f.duration_s = ms(200, 5000);  // down this long, then restarted
        break;
      case FaultKind::kPause:
        f.duration_s = ms(500, 10'000);
        break;
      case FaultKind::kBrokerKill:
        f.duration_s = ms(200, 4000);
        break;
    }
    f.duration_s = std::min(f.duration_s, std::max(0.0, end - at));
    bool placed = false;
    if (f.kind == FaultKind::kBrokerKill) {
      if (at >= broker_free_at) {
        broker_free_at = at + f.duration_s + 20.0;
        placed = true;
      }
    } else {
      const std::string& target = targets[static_cast<std::size_t>(
          rng.uniform(0, static_cast<std::int64_t>(targets.size()) - 1))];
      if (at >= busy_until[target]) {
        f.target = target;
        busy_until[target] = at + f.duration_s + 0.5;
        placed = true;
      }
    }
    if (placed) plan.push_back(f);
    at += ms(100, gap_ms);
  }
  return plan;
}

bool ChaosResult::passed() const {
  if (!error.empty()) return false;
  return std::all_of(invariants.begin(), invariants.end(),
                     [](const properties::InvariantResult& r) { return r.held(); });
}

std::string ChaosResult::to_text() const {
  std::ostringstream out;
  if (!error.empty()) {
    out << "  could not run: " << error << "\n";
    return out.str();
  }
  out << "  schedule (" << schedule.size() << " faults):\n";
  for (const ScheduledFault& f : schedule) out << "    " << f.describe() << "\n";
  out << "  faults injected:";
  if (faults_injected.empty()) out << " none";
  for (const auto& [kind, n] : faults_injected) out << " " << kind << " " << n;
  out << "\n  sent: " << arrivals_sent << " arrivals, " << departures_sent << " departures ("
      << readings_resent << " readings sent again)\n"
      << "  seen: " << payments_seen << " payment messages for " << history.departures.size()
      << " departures, " << restocks_seen << " restock orders, " << deliveries_seen
      << " deliveries, " << history.dead_letters.size() << " dead letters\n"
      << "  proxied connections: " << proxy_connections << "\n"
      << "  healed, then " << (history.quiescent ? "quiescent after " : "NOT quiescent within ")
      << fixed(settle_s, 1) << " s; the run took " << fixed(wall_s, 1) << " s"
      << (interrupted ? " (interrupted)" : "") << "\n";
  for (const properties::InvariantResult& r : invariants) {
    out << "  " << (r.held() ? "ok  " : "FAIL") << " " << r.name;
    if (!r.checked) out << " (not checked)";
    if (r.violations > 0) out << ": " << r.violations << " violation(s)";
    if (r.dead_lettered > 0) out << " (" << r.dead_lettered << " dead-lettered)";
    out << "\n";
    for (const std::string& e : r.examples) out << "         " << e << "\n";
  }
  return out.str();
}

ChaosResult run_chaos(const ChaosOptions& options, Logger& logger, const std::atomic<bool>& stop) {
  detail::Run run(options, logger, stop);
  return run.run();
}

}  // namespace eventmart::chaos
