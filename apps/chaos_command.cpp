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
#include "apps/live_store.h"
#include "chaos/chaos.h"

namespace po = boost::program_options;

namespace eventmart::apps {
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
      "least severe lines of chaos's own log shown on stderr (default warning)");
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
      std::cout << "Usage: eventmart chaos [options]\n\n"
                   "Starts mosquitto, one `eventmart serve` per service behind a fault-injecting\n"
                   "TCP proxy, sends scanner readings while faults drawn from the seed hit the\n"
                   "stack, heals, waits for quiescence and checks the invariants of `sim`.\n"
                   "Exit status: 0 every run held, 1 a violation, 2 bad usage, 3 a run could\n"
                   "not be carried out, 130 interrupted (Ctrl-C) before a verdict.\n\n"
                << desc << "\n";
      return 0;
    }
    options.seed = parse_uint64("--seed", a.seed);
    runs = static_cast<std::uint64_t>(parse_in_range("--runs", a.runs, 1, 100'000));
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
  if (interrupted) return 130;
  if (broken > 0) return 3;
  return 0;
}

}  // namespace eventmart::apps
