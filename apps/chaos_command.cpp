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
#include "report/chaos_report.h"
#include "report/html_report.h"
#include "runtime/live_store.h"

namespace po = boost::program_options;

namespace eventmart::apps {

using report::HtmlReport;
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

std::string self_path() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("eventmart") : p.string();
}

}  // namespace

namespace {

// What the command line asks for, checked: the options of every run, how many runs.
struct ChaosCommand {
  chaos::ChaosOptions options;
  std::uint64_t runs = 1;
  bool json = false;
  LogLevel level = LogLevel::kWarning;
};

// Throws UsageError.
double checked(const std::string& option, const std::string& text, double min, double max,
               const std::string& range) {
  const double value = parse_double(option, text);
  if (!(value >= min && value <= max)) throw UsageError{option + " must be " + range};
  return value;
}

// The binary each run starts as `serve` (the test build for --bug). Throws UsageError.
std::string serve_binary(const ChaosArgs& a) {
  std::string binary = a.binary;
  if (binary.empty()) {
    const std::filesystem::path self = self_path();
    binary = self.string();
    if (!a.bug.empty() && self.filename() != "eventmart-testbuild") {
      binary = (self.parent_path() / "eventmart-testbuild").string();
    }
  }
  if (::access(binary.c_str(), X_OK) != 0) {
    throw UsageError{"cannot run '" + binary + "'" +
                     (a.bug.empty() ? "" : " (--bug needs the test build: make build)")};
  }
  return binary;
}

// Throws UsageError.
ChaosCommand to_command(const ChaosArgs& a, const po::variables_map& vm) {
  ChaosCommand c;
  chaos::ChaosOptions& o = c.options;
  o.seed = parse_uint64("--seed", a.seed);
  c.runs = static_cast<std::uint64_t>(parse_in_range("--runs", a.runs, 1, 100'000));
  if (!a.html.empty() && c.runs > 1) {
    throw UsageError{
        "--html writes one run: with --runs each run's report.html is in its "
        "folder under --out"};
  }
  if (!a.html.empty() && !std::ofstream(a.html, std::ios::app)) {
    throw UsageError{"--html: cannot write '" + a.html + "'"};
  }
  o.duration_s = checked("--duration", a.duration, 2, 86'400, "2..86400 seconds");
  o.rate = parse_double("--rate", a.rate);
  if (!(o.rate > 0 && o.rate <= 5000)) throw UsageError{"--rate must be 0..5000"};
  o.mean_gap_s = checked("--mean-gap", a.mean_gap, 0.1, 3600, "0.1..3600 seconds");
  o.settle_s = checked("--settle", a.settle, 1, 3600, "1..3600 seconds");
  try {
    o.faults = chaos::parse_fault_kinds(a.faults);
  } catch (const std::invalid_argument& e) {
    throw UsageError{std::string("--faults: ") + e.what()};
  }
  o.bug = a.bug;
  o.binary = serve_binary(a);
  c.json = vm.count("json") > 0;
  c.level = parse_log_level(a.log_level);
  return c;
}

void print_help(const po::options_description& desc) {
  std::cout << "Usage: eventmart chaos [options]\n\n"
               "Starts mosquitto, one `eventmart serve` per service behind a fault-injecting\n"
               "TCP proxy, sends scanner readings while faults drawn from the seed hit the\n"
               "stack, heals, waits for quiescence and checks the invariants of `sim`.\n"
               "Exit status: 0 every run held, 1 a violation, 2 bad usage, 3 a run could\n"
               "not be carried out (or its report not written), 130 interrupted (Ctrl-C) before "
               "a\nverdict.\n\n"
            << desc << "\n";
}

// One seed's run, its files in its folder under --out, its verdict printed. False when a report
// that was asked for could not be written.
bool run_seed(const ChaosArgs& a, const ChaosCommand& c, std::uint64_t seed, std::uint64_t index,
              Logger& logger, Tally& tally) {
  chaos::ChaosOptions o = c.options;
  o.seed = seed;
  o.out_dir = (std::filesystem::path(a.out) / ("seed-" + std::to_string(seed))).string();
  std::cerr << "chaos: run " << index << "/" << c.runs << ", seed " << seed << ", files in "
            << o.out_dir << "\n";
  const chaos::ChaosResult r = chaos::run_chaos(o, logger, interrupted);
  std::ofstream(std::filesystem::path(o.out_dir) / "report.txt") << r.to_text();
  std::ofstream(std::filesystem::path(o.out_dir) / "report.json") << report::chaos_json(r) << "\n";
  TimelineRecorder timeline(0);
  const HtmlReport page = report::chaos_html_report(r, o, replay_command(a, seed), timeline);
  bool written = true;
  for (const std::string& path :
       {(std::filesystem::path(o.out_dir) / "report.html").string(), a.html}) {
    if (path.empty()) continue;
    try {
      write_html_report(path, page);
    } catch (const std::runtime_error& e) {
      std::cerr << "eventmart chaos: " << e.what() << "\n";
      written = false;
    }
  }
  if (c.json) {
    std::cout << report::chaos_json(r) << "\n";
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
  return written;
}

}  // namespace

int run_chaos_command(const std::vector<std::string>& args) {
  ChaosArgs a;
  po::options_description desc = describe(a);
  ChaosCommand c;
  const int usage = with_usage_errors("chaos", [&] {
    po::variables_map vm = parse_all(args, desc);
    if (vm.count("help")) {
      print_help(desc);
      return 0;
    }
    c = to_command(a, vm);
    return -1;
  });
  if (usage != -1) return usage;

  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  StderrLogger logger(c.level);
  Tally tally;
  bool html_failed = false;
  const std::uint64_t first = c.options.seed;
  for (std::uint64_t seed = first; seed < first + c.runs && !interrupted; ++seed) {
    html_failed = !run_seed(a, c, seed, seed - first + 1, logger, tally) || html_failed;
  }
  if (!c.json) tally.print(interrupted);
  if (!tally.failing.empty()) return 1;
  if (html_failed) return 3;  // a report that was asked for could not be written
  if (interrupted) return 130;
  if (tally.broken > 0) return 3;
  return 0;
}

}  // namespace eventmart::apps
