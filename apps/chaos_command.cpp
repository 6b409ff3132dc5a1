// `eventmart chaos`: seeded faults against `serve` processes on a real broker (chaos/chaos.h),
// one run per seed, each checked by the simulator's invariants.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "apps/cli.h"
#include "apps/commands.h"
#include "chaos/chaos.h"
#include "report/html_report.h"
#include "runtime/live_store.h"

namespace po = boost::program_options;

namespace eventmart::apps {

using report::HtmlReport;
using report::JsonWriter;
using report::TimelineRecorder;
using report::write_html_report;
using runtime::StderrLogger;
namespace {

std::atomic<bool> interrupted{false};

extern "C" void on_interrupt(int) {
  interrupted = true;
}

struct ChaosArgs {
  std::string seed = "1";
  std::string runs = "1";
  std::string duration = "60";
  std::string rate = "100";
  std::string faults = "all";
  std::string mean_gap = "2.5";
  std::string settle = "60";
  std::string out = "chaos-out";
  std::string bug;
  std::string binary;
  std::string log_level = "warning";
  std::string html;
};

po::options_description describe(ChaosArgs& a) {
  po::options_description desc("Chaos");
  desc.add_options()("help", "show this help")(
      "seed", po::value(&a.seed)->value_name("N"),
      "the first run's seed: its fault schedule and workload (default 1)")(
      "runs", po::value(&a.runs)->value_name("N"), "runs in a row, seeds N, N+1, ... (default 1)")(
      "duration", po::value(&a.duration)->value_name("S"),
      "seconds of workload and faults per run (default 60)")(
      "rate", po::value(&a.rate)->value_name("R"), "departures per second (default 100)")(
      "faults", po::value(&a.faults)->value_name("LIST"),
      "fault kinds, comma-separated: reset, blackhole, latency, throttle, kill, pause, "
      "broker-kill, all, none (default all)")("mean-gap", po::value(&a.mean_gap)->value_name("S"),
                                              "mean seconds between fault starts (default 2.5)")(
      "settle", po::value(&a.settle)->value_name("S"),
      "how long quiescence may take after healing (default 60)")(
      "out", po::value(&a.out)->value_name("DIR"),
      "where each run's schedule, history, logs and report go, in DIR/seed-N (default "
      "chaos-out)")("json", "print one JSON object per run on stdout instead of the report")(
      "bug", po::value(&a.bug)->value_name("NAME"),
      "run a broken variant of the services (the test build's `serve --bug`, "
      "eventmart-testbuild next to this binary)")(
      "serve-binary", po::value(&a.binary)->value_name("PATH"),
      "the eventmart binary that runs `serve` (default: this one, or the test build for --bug)")(
      "log-level", po::value(&a.log_level)->value_name("info|warning|error"),
      "least severe lines of chaos's own log shown on stderr (default warning)")(
      "html", po::value(&a.html)->value_name("FILE"),
      "also write the run's HTML report to FILE (one run; every run writes report.html "
      "in its folder under --out)");
  return desc;
}

std::string replay_command(const ChaosArgs& a, std::uint64_t seed) {
  return "eventmart chaos --seed " + std::to_string(seed) + " --duration " + a.duration +
         " --rate " + a.rate + " --faults " + a.faults + " --mean-gap " + a.mean_gap +
         " --settle " + a.settle + (a.bug.empty() ? "" : " --bug " + a.bug);
}

// What the runs came to, for the summary line.
struct Tally {
  std::uint64_t done = 0;
  std::uint64_t broken = 0;  // not carried out (no verdict)
  std::vector<std::uint64_t> failing;
  std::map<std::string, std::int64_t> faults;
  std::int64_t departures = 0;
  std::int64_t payments = 0;

  void add(std::uint64_t seed, const chaos::ChaosResult& r) {
    ++done;
    if (!r.error.empty()) {
      ++broken;
    } else if (!r.passed()) {
      failing.push_back(seed);
    }
    for (const auto& [kind, n] : r.faults_injected) faults[kind] += n;
    departures += r.departures_sent;
    payments += r.payments_seen;
  }

  void print(bool interrupted) const {
    std::cout << "\nchaos: " << done << " run(s), " << (done - failing.size() - broken)
              << " passed, " << failing.size() << " with violations"
              << (broken ? ", " + std::to_string(broken) + " not run" : "")
              << (interrupted ? " (interrupted)" : "") << "\n  faults:";
    for (const auto& [kind, n] : faults) std::cout << " " << kind << " " << n;
    std::cout << "\n  departures " << departures << ", payment messages " << payments << "\n";
    if (!failing.empty()) {
      std::cout << "  failing seeds:";
      for (std::uint64_t s : failing) std::cout << " " << s;
      std::cout << "\n";
    }
  }
};

// The run as an HTML page (apps/html_report.h): what the observer and the scanners saw, on the
// lanes of the services that produced it, and the fault schedule as bands. Times are from
// the start of the workload (wall clock).
HtmlReport chaos_html_report(const chaos::ChaosResult& r, const chaos::ChaosOptions& o,
                             const std::string& replay, TimelineRecorder& timeline) {
  const sim::History& h = r.history;
  std::int64_t end_us = 0;
  const auto at = [&](std::int64_t t) {
    end_us = std::max(end_us, t);
    return t;
  };
  using sim::BusId;
  using sim::TraceKind;
  // The timeline wants time order; the history's lists each are, merged here.
  std::vector<std::tuple<std::int64_t, TraceKind, BusId, std::string, std::string, std::string>>
      rows;
  for (const auto& a : h.arrivals) {
    rows.emplace_back(at(a.at_us), TraceKind::kScan, BusId::kStore, "gateway-guardian", "",
                      a.event_id);
  }
  for (const auto& d : h.departures) {
    rows.emplace_back(at(d.at_us), TraceKind::kScan, BusId::kStore, "gate-exit-guardian", "",
                      d.event_id);
  }
  for (const auto& w : h.welcomes) {
    rows.emplace_back(at(w.at_us), TraceKind::kDelivered, BusId::kStore, "entrance-display",
                      "display/entrance", w.arrival_event_id);
  }
  for (const auto& p : h.payments) {
    rows.emplace_back(at(p.at_us), TraceKind::kDelivered, BusId::kStore, "payment terminal",
                      "payment-due", p.event_id);
  }
  for (const auto& x : h.restocks) {
    rows.emplace_back(at(x.at_us), TraceKind::kDelivered, BusId::kLogistics, "logistics",
                      "restock-needed", x.event_id);
  }
  for (const auto& d : h.restock_deliveries) {
    rows.emplace_back(at(d.at_us), TraceKind::kLogisticsDelivery, BusId::kLogistics, "logistics",
                      "stock-replenished", d.order_id);
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
  for (const auto& [t, kind, bus, client, topic, id] : rows) {
    timeline.add(t, kind, bus, client, topic, id);
  }
  HtmlReport report;
  report.title = "eventmart chaos: seed " + std::to_string(o.seed) + ", " +
                 std::to_string(r.departures_sent) + " departures" +
                 (o.bug.empty() ? "" : ", bug " + o.bug);
  report.kind = "chaos";
  report.replay = replay;
  report.origin_us = 0;
  report.open_us = static_cast<std::int64_t>(o.duration_s * 1e6);
  for (const chaos::ScheduledFault& f : r.schedule) {
    const auto from = static_cast<std::int64_t>(f.at_s * 1e6);
    const auto until = static_cast<std::int64_t>((f.at_s + std::max(f.duration_s, 0.05)) * 1e6);
    sim::Outage outage;
    outage.who = f.target.empty() ? "broker" : f.target;
    outage.from_us = from;
    outage.until_us = at(until);
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
  report.duration_us = end_us + 1'000'000;
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
  report.invariants = r.invariants;
  report.history = &r.history;
  report.timeline = &timeline;
  return report;
}

std::string self_path() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("eventmart") : p.string();
}

}  // namespace

int run_chaos_command(const std::vector<std::string>& args) {
  ChaosArgs a;
  po::options_description desc = describe(a);
  chaos::ChaosOptions options;
  std::uint64_t runs = 1;
  bool json = false;
  LogLevel level = LogLevel::kWarning;
  const int usage = with_usage_errors("chaos", [&] {
    po::variables_map vm = parse_all(args, desc);
    if (vm.count("help")) {
      std::cout
          << "Usage: eventmart chaos [options]\n\n"
             "Starts mosquitto, one `eventmart serve` per service behind a fault-injecting\n"
             "TCP proxy, sends scanner readings while faults drawn from the seed hit the\n"
             "stack, heals, waits for quiescence and checks the invariants of `sim`.\n"
             "Exit status: 0 every run held, 1 a violation, 2 bad usage, 3 a run could\n"
             "not be carried out (or its report not written), 130 interrupted (Ctrl-C) before a\n"
             "verdict.\n\n"
          << desc << "\n";
      return 0;
    }
    options.seed = parse_uint64("--seed", a.seed);
    runs = static_cast<std::uint64_t>(parse_in_range("--runs", a.runs, 1, 100'000));
    if (!a.html.empty() && runs > 1) {
      throw UsageError{
          "--html writes one run: with --runs each run's report.html is in its "
          "folder under --out"};
    }
    if (!a.html.empty() && !std::ofstream(a.html, std::ios::app)) {
      throw UsageError{"--html: cannot write '" + a.html + "'"};
    }
    options.duration_s = parse_double("--duration", a.duration);
    if (!(options.duration_s >= 2 && options.duration_s <= 86'400)) {
      throw UsageError{"--duration must be 2..86400 seconds"};
    }
    options.rate = parse_double("--rate", a.rate);
    if (!(options.rate > 0 && options.rate <= 5000)) throw UsageError{"--rate must be 0..5000"};
    options.mean_gap_s = parse_double("--mean-gap", a.mean_gap);
    if (!(options.mean_gap_s >= 0.1 && options.mean_gap_s <= 3600)) {
      throw UsageError{"--mean-gap must be 0.1..3600 seconds"};
    }
    options.settle_s = parse_double("--settle", a.settle);
    if (!(options.settle_s >= 1 && options.settle_s <= 3600)) {
      throw UsageError{"--settle must be 1..3600 seconds"};
    }
    try {
      options.faults = chaos::parse_fault_kinds(a.faults);
    } catch (const std::invalid_argument& e) {
      throw UsageError{std::string("--faults: ") + e.what()};
    }
    options.bug = a.bug;
    options.binary = a.binary;
    if (options.binary.empty()) {
      const std::filesystem::path self = self_path();
      options.binary = self.string();
      if (!a.bug.empty() && self.filename() != "eventmart-testbuild") {
        options.binary = (self.parent_path() / "eventmart-testbuild").string();
      }
    }
    if (::access(options.binary.c_str(), X_OK) != 0) {
      throw UsageError{"cannot run '" + options.binary + "'" +
                       (a.bug.empty() ? "" : " (--bug needs the test build: make build)")};
    }
    json = vm.count("json") > 0;
    level = parse_log_level(a.log_level);
    return -1;
  });
  if (usage != -1) return usage;

  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  StderrLogger logger(level);
  Tally tally;
  bool html_failed = false;
  const std::uint64_t first = options.seed;
  for (std::uint64_t seed = first; seed < first + runs && !interrupted; ++seed) {
    chaos::ChaosOptions o = options;
    o.seed = seed;
    o.out_dir = (std::filesystem::path(a.out) / ("seed-" + std::to_string(seed))).string();
    std::cerr << "chaos: run " << (seed - first + 1) << "/" << runs << ", seed " << seed
              << ", files in " << o.out_dir << "\n";
    const chaos::ChaosResult r = chaos::run_chaos(o, logger, interrupted);
    std::ofstream(std::filesystem::path(o.out_dir) / "report.txt") << r.to_text();
    std::ofstream(std::filesystem::path(o.out_dir) / "report.json") << r.to_json() << "\n";
    TimelineRecorder timeline(0);
    const HtmlReport page = chaos_html_report(r, o, replay_command(a, seed), timeline);
    for (const std::string& path :
         {(std::filesystem::path(o.out_dir) / "report.html").string(), a.html}) {
      if (path.empty()) continue;
      try {
        write_html_report(path, page);
      } catch (const std::runtime_error& e) {
        std::cerr << "eventmart chaos: " << e.what() << "\n";
        html_failed = true;
      }
    }
    if (json) {
      std::cout << r.to_json() << "\n";
    } else {
      std::cout << "seed " << seed << ": "
                << (r.passed()        ? "PASSED"
                    : r.error.empty() ? "FAILED"
                                      : "NOT RUN")
                << "\n"
                << r.to_text();
      if (!r.passed()) std::cout << "  replay the schedule: " << replay_command(a, seed) << "\n";
      std::cout.flush();
    }
    tally.add(seed, r);
  }
  if (!json) tally.print(interrupted);
  const std::uint64_t failed = tally.failing.size(), broken = tally.broken;
  if (failed > 0) return 1;
  if (html_failed) return 3;  // a report that was asked for could not be written
  if (interrupted) return 130;
  if (broken > 0) return 3;
  return 0;
}

}  // namespace eventmart::apps
