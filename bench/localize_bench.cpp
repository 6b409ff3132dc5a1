// Localization on every bug variant (sim --localize, runs/localizer.h): for each, a failing day
// whose failure a fault of a known kind causes (the variant's own: the crash, the duplicate, the
// failed publish, the power loss), localized with the default options; prints the interval, its
// width, whether the cause is inside it (or drawn inside it and striking right after: a crash
// strikes inside the service's next transaction), and the CPU and wall seconds.
//
//   eventmart-localize-bench [--futures N] [--jobs J] [--only NAME]
//
// A deep variant's cause is either of its two events: the long outage (the service comes back
// to a backlog) or the second fault inside the catch-up window, whichever made the failure
// likely (after a long outage in a swarm day's fault mix, the second often is).
//
// The days: a plain day of 2,000 customers with a low rate of the variant's fault (low enough
// that most futures from opening do not fail), the first failing seed from 1; the deep variants
// on days of 1,000 customers with long outages (the first rare event) and their second fault.
// The variants whose mistake needs no fault (a wrong sum, a restock too many, a shared id) fail
// from the day's baskets: their expected answer is "likely from the start".
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "runs/localizer.h"
#include "runs/seed_runner.h"
#include "sim/bugs/bugs.h"

namespace {

using namespace eventmart;
using sim::TraceKind;

struct Case {
  sim::Bug bug;
  std::string day;  // as sim flags, for the table
  std::function<void(runs::RunPlan&)> set;
  // The faults that cause it, the one the variant mishandles first (for a deep variant its
  // second event, then the long outage); empty: no fault causes it (expected: from the start).
  std::vector<TraceKind> cause;
  std::uint64_t first_seed = 1;
};

std::vector<Case> cases() {
  const auto plain = [](auto fn) {
    return [fn](runs::RunPlan& p) {
      p.base.customers = 2000;
      fn(p.base.faults);
    };
  };
  const auto deep = [](auto fn) {
    return [fn](runs::RunPlan& p) {
      p.base.customers = 1000;
      p.base.faults.long_outage_per_hour = 0.1;
      fn(p.base.faults);
    };
  };
  using F = sim::FaultOptions;
  return {
      {sim::Bug::kNoDedup,
       "--dup 0.00005",
       plain([](F& f) { f.duplicate_probability = 5e-5; }),
       {TraceKind::kDuplicated}},
      {sim::Bug::kAckBeforeCommit,
       "--crash 0.002",
       plain([](F& f) { f.crash_per_minute = 0.002; }),
       {TraceKind::kCrash}},
      {sim::Bug::kRestockEveryEvent, "(no faults)", plain([](F&) {}), {}},
      {sim::Bug::kNoOutbox,
       "--crash 0.002",
       plain([](F& f) { f.crash_per_minute = 0.002; }),
       {TraceKind::kCrash}},
      {sim::Bug::kFloatMoney, "(no faults)", plain([](F&) {}), {}},
      {sim::Bug::kSharedRestockId, "(no faults)", plain([](F&) {}), {}},
      {sim::Bug::kRelaySkipsFailed,
       "--publish-fail 0.00005",
       plain([](F& f) { f.publish_failure_probability = 5e-5; }),
       {TraceKind::kPublishRefused, TraceKind::kPublishFailed}},
      {sim::Bug::kNoSync,
       "--power-loss 0.0005",
       plain([](F& f) { f.power_loss_per_minute = 5e-4; }),
       {TraceKind::kPowerLoss}},
      {sim::Bug::kCatchUpAcksEarly,
       "--customers 1000 --long-outage 0.1 --crash 0.02",
       deep([](F& f) { f.crash_per_minute = 0.02; }),
       {TraceKind::kCrash, TraceKind::kLongOutage}},
      {sim::Bug::kCatchUpDefersInbox,
       "--customers 1000 --long-outage 0.1 --crash 0.1",
       deep([](F& f) { f.crash_per_minute = 0.1; }),
       {TraceKind::kCrash, TraceKind::kLongOutage}},
      {sim::Bug::kCatchUpSkipsSync,
       "--customers 1000 --long-outage 0.1 --power-loss 0.02",
       deep([](F& f) { f.power_loss_per_minute = 0.02; }),
       {TraceKind::kPowerLoss, TraceKind::kLongOutage}},
      {sim::Bug::kCatchUpHoldsRestocks,
       "--customers 1000 --long-outage 0.1 --crash 0.02",
       deep([](F& f) { f.crash_per_minute = 0.02; }),
       {TraceKind::kCrash, TraceKind::kPowerLoss, TraceKind::kLongOutage}},
  };
}

}  // namespace

int main(int argc, char** argv) {
  unsigned futures = 48, jobs = 2;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--futures" && i + 1 < argc) {
      futures = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (a == "--jobs" && i + 1 < argc) {
      jobs = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: eventmart-localize-bench [--futures N] [--jobs J] [--only NAME]\n");
      return 2;
    }
  }
  std::printf("localization (sim --localize: %u futures, 8 checkpoints, 1 s resolution, %u jobs)\n",
              futures, jobs);
  std::printf("%-24s %-6s %-20s %-23s %9s  %-30s %7s %6s\n", "variant", "seed", "verdict",
              "interval", "width s", "cause inside", "CPU s", "wall s");
  int with_cause = 0, held = 0;
  for (const Case& c : cases()) {
    const std::string name(sim::bug_name(c.bug));
    if (!only.empty() && only != name) continue;
    runs::LocalizeOptions l;
    l.plan.base.bug = c.bug;
    c.set(l.plan);
    l.futures = futures;
    l.jobs = jobs;
    std::uint64_t seed = 0;
    for (std::uint64_t s = c.first_seed; s < c.first_seed + 60 && seed == 0; ++s) {
      if (!runs::run_seed(l.plan, s).passed()) seed = s;
    }
    if (seed == 0) {
      std::printf("%-24s no failing seed in %llu..%llu (%s)\n", name.c_str(),
                  static_cast<unsigned long long>(c.first_seed),
                  static_cast<unsigned long long>(c.first_seed + 59), c.day.c_str());
      continue;
    }
    l.seed = seed;
    const runs::Localization r = runs::localize(l);
    using V = runs::Localization::Verdict;
    std::string verdict = r.verdict == V::kInterval       ? "interval"
                          : r.verdict == V::kFromTheStart ? "likely from the start"
                                                          : "not before closing";
    std::string interval = "-", width = "-", inside = "-";
    if (r.verdict == V::kInterval) {
      const runs::Checkpoint& a = r.curve[r.before];
      const runs::Checkpoint& b = r.curve[r.after];
      interval = runs::clock_text(a.at_us) + "-" + runs::clock_text(b.at_us);
      char w[32];
      std::snprintf(w, sizeof w, "%.1f", static_cast<double>(b.at_us - a.at_us) / 1e6);
      width = w;
    }
    if (!c.cause.empty()) {
      ++with_cause;
      bool yes = false;
      std::string how = "no";
      if (r.verdict == V::kInterval) {
        for (const TraceKind k : c.cause) {
          const bool in =
              std::any_of(r.inside.begin(), r.inside.end(),
                          [&](const runs::Localization::Entry& e) { return e.kind == k; });
          if (in) {
            how = "yes: " + std::string(sim::trace_kind_name(k)) + " inside";
          } else if (r.next_fault && r.next_fault->kind == k &&
                     r.next_fault_after_us <= 60'000'000) {
            char t[64];
            std::snprintf(t, sizeof t, "yes: %s drawn, struck %.1f s on",
                          std::string(sim::trace_kind_name(k)).c_str(),
                          static_cast<double>(r.next_fault_after_us) / 1e6);
            how = t;
          } else {
            continue;
          }
          yes = true;
          break;
        }
      }
      held += yes ? 1 : 0;
      inside = how;
    } else {
      inside = r.verdict == V::kFromTheStart ? "n/a (no fault): as expected" : "n/a (no fault)";
    }
    std::printf("%-24s %-6llu %-20s %-23s %9s  %-30s %7.1f %6.1f\n", name.c_str(),
                static_cast<unsigned long long>(seed), verdict.c_str(), interval.c_str(),
                width.c_str(), inside.c_str(), r.cpu_seconds, r.wall_seconds);
    std::printf("    day: %s\n", c.day.c_str());
    std::fflush(stdout);
  }
  std::printf("the interval holds the cause for %d of %d variants whose failure a fault causes\n",
              held, with_cause);
  return 0;
}
