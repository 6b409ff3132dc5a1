// `eventmart chaos`: the real stack under seeded faults. One run starts its own mosquitto
// (persistence on, a generated config on a free loopback port), one `eventmart serve` process
// per store service plus the logistics desk, each behind a fault-injecting TCP proxy of its
// own (chaos/proxy.h), and drives a workload of scanner readings at a rate for a duration.
// Faults follow a schedule drawn from the seed (reproducible; the interleaving of the real
// processes is not). Then it heals, waits for quiescence (bounded), stops everything and
// checks the history with the same invariant checkers as `eventmart sim` (properties/).
//
// Not deterministic, so it lives apart from sim/: it uses the wall clock, threads and real
// processes. Every process it starts is stopped when the run ends, also on failure; a
// process it started dies with it (PR_SET_PDEATHSIG) if it is killed itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/log.h"
#include "properties/invariants.h"
#include "sim/history.h"

namespace eventmart::chaos {

enum class FaultKind : std::uint8_t {
  kReset,      // the proxy resets every connection of a service (TCP RST both ways)
  kBlackhole,  // the proxy forwards nothing either way for a window
  kLatency,    // the proxy delays each chunk by latency +- jitter for a window
  kThrottle,   // the proxy forwards at most so many bytes/s each way for a window
  kKill,       // kill -9 of a service process, restarted after a while
  kPause,      // SIGSTOP of a service process, SIGCONT after a while
  kBrokerKill  // kill -9 of mosquitto, restarted on the same port with its persistence
};

std::string_view fault_kind_name(FaultKind kind);
// "reset,kill" -> {kReset, kKill}; "all" -> every kind. Throws std::invalid_argument naming
// the word it does not know.
std::set<FaultKind> parse_fault_kinds(const std::string& list);

struct ScheduledFault {
  double at_s = 0;  // after the workload starts
  FaultKind kind = FaultKind::kReset;
  std::string target;     // a service ("" for the broker)
  double duration_s = 0;  // how long it lasts (0: an instant, a reset)
  std::int64_t latency_ms = 0;
  std::int64_t jitter_ms = 0;
  std::int64_t bytes_per_s = 0;
  std::string describe() const;  // one line: "12.40 s  kill inventory-intel for 2.10 s"
};

struct ChaosOptions {
  std::uint64_t seed = 1;
  double duration_s = 60;  // the workload (and the faults)
  double rate = 100;       // departures per second (as many arrivals)
  std::set<FaultKind> faults = parse_fault_kinds("all");
  double mean_gap_s = 2.5;  // between fault starts, on average
  double settle_s = 60;     // how long quiescence may take after healing
  std::string out_dir;      // the run's files: schedule, history, logs, report
  std::string binary;       // what runs `serve` (this binary, or the test build for --bug)
  std::string bug;          // passed as `serve --bug` (the test build only)
};

// The schedule of one run: a pure function of the options (seed, duration, kinds). A service
// has at most one fault at a time; the broker is killed at most once per 20 s.
std::vector<ScheduledFault> plan_faults(const ChaosOptions& options);

struct ChaosResult {
  std::string error;  // set when the run could not be carried out (no verdict)
  std::vector<ScheduledFault> schedule;
  std::map<std::string, std::int64_t> faults_injected;  // by kind name
  sim::History history;
  std::vector<properties::InvariantResult> invariants;
  std::int64_t arrivals_sent = 0;
  std::int64_t departures_sent = 0;
  std::int64_t readings_resent = 0;  // scanner publishes sent again (not confirmed)
  std::int64_t payments_seen = 0;    // payment-due messages, copies included
  std::int64_t restocks_seen = 0;
  std::int64_t deliveries_seen = 0;
  std::int64_t proxy_connections = 0;
  double settle_s = 0;  // from healing to quiescence (or the limit)
  double wall_s = 0;
  bool interrupted = false;

  bool passed() const;
  std::string to_text() const;  // the report, readable
};

// One run. `stop` set (Ctrl-C) ends the workload early; everything is still stopped cleanly
// and checked.
ChaosResult run_chaos(const ChaosOptions& options, Logger& logger, const std::atomic<bool>& stop);

}  // namespace eventmart::chaos
