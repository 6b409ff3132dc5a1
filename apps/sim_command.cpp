// `eventmart sim`: simulated store days on the in-memory bus, then the invariants.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "apps/cli.h"
#include "apps/commands.h"
#include "report/sim_report.h"
#include "runs/results.h"
#include "runs/seed_runner.h"
#include "sim/scenario_file.h"

namespace po = boost::program_options;

namespace eventmart::apps {

using report::print_exploration;
using report::print_json;
using report::print_localization;
using report::print_report;
using report::print_summary;
using report::sim_html_report;
using report::SummaryRange;
using report::TimelineRecorder;
using report::TraceFile;
using report::write_html_report;
using runs::kMaxSeedsPerRun;
using runs::replay_command;
using runs::run_seed;
using runs::run_seeds;
using runs::RunPlan;
using runs::SeedOutcome;
using runs::SeedSummary;
namespace {

constexpr const char* kExploreUsage =
    "Usage: eventmart explore [options]\n\n"
    "Runs root seeds like sim --seeds, and where a timeline does something rare for the first\n"
    "time (a coverage mark first hit, hit more often than ever, or two marks first hit\n"
    "together) forks the running world into children that reseed the day's random streams\n"
    "from there: a bug that needs two rare events in a row is found in about p1 + p2\n"
    "timelines instead of p1 x p2. Every failing timeline prints its recipe and the sim\n"
    "--recipe command that replays it exactly (docs/simulation.md, \"Exploring from\n"
    "snapshots\").\n\n"
    "Exit status: 0 every timeline held every invariant, 1 one failed, 2 bad usage, 3 a\n"
    "worker could not run.\n\n";

struct SimArgs {
  std::string seed = "1", customers = "2000", products = "100", hours = "12";
  std::string qos = "1", durability = "full", faults = "none", seeds, bug = "none", jobs, scenario,
              save_scenario, found, recipe, shard, jsonl;
  // eventmart explore only.
  std::string budget = "1000", children = "8", depth = "3", splits_per_mark = "8";
  // sim --localize only.
  std::string futures = "48", checkpoints = "8", resolution = "1";
  // Each fault knob's value, by its flag (sim::fault_knobs()).
  std::map<std::string, std::string, std::less<>> knobs = [] {
    std::map<std::string, std::string, std::less<>> m;
    for (const sim::FaultKnob& k : sim::fault_knobs()) m.emplace(k.flag, "0");
    return m;
  }();
  std::vector<std::string> code_knobs;  // --knob KEY=N (sim::knob_table())
};

// What the command was asked to do.
struct SimCommand {
  RunPlan plan;
  std::uint64_t first_seed = 1;
  std::uint64_t last_seed = 1;
  bool many = false;  // --seeds given
  bool json = false;
  unsigned jobs = 2;
  std::string trace_file;
  std::string html_file;
  std::string save_scenario;  // --save-scenario FILE
  std::string found;          // what the run found (kept in a saved scenario file)
  bool explore = false;       // eventmart explore
  runs::ExploreOptions exploration;
  runs::Shard shard;      // --shard K/N
  std::string jsonl;      // --jsonl FILE ('-': standard output, instead of the report)
  bool localize = false;  // --localize
  runs::LocalizeOptions localization;
};

void finish_command(const SimArgs& a, const po::variables_map& vm, SimCommand& c);
void check_memory(const SimCommand& c);

po::options_description describe_run(SimArgs& a) {
  po::options_description run_desc(
      "Usage: eventmart sim [options]\n\n"
      "Runs store days of the five services on the deterministic in-memory bus under a virtual\n"
      "clock, with faults injected while the store is open (chaos), none after closing (heal),\n"
      "then runs until quiescent and checks the business invariants. A run is a pure function\n"
      "of its options: the same seed gives the same trace hash on every machine.\n\n"
      "Exit status: 0 every invariant held, 1 an invariant was violated (the report names it\n"
      "and the command that replays the run), 2 bad usage, 3 an output could not be written.\n\n"
      "Run options");
  run_desc.add_options()("help", "print this help and exit")(
      "seed", po::value(&a.seed)->value_name("N"),
      "root seed of every random stream in the run, 0..2^64-1 (default 1); with --seeds N, "
      "the first seed")("customers", po::value(&a.customers)->value_name("N"),
                        "customer visits over the day, 0..10000000 (default 2000)")(
      "products", po::value(&a.products)->value_name("N"),
      "catalog size, 1..1000000 (default 100); the first 100 are the default store's "
      "products, more are generated from the seed")(
      "hours", po::value(&a.hours)->value_name("H"),
      "opening hours in which customers arrive and faults happen, 1/60..168 (default 12)")(
      "json", "print one JSON object on stdout instead of the readable report");
  return run_desc;
}

po::options_description describe_faults(SimArgs& a) {
  po::options_description fault_desc("Faults (while the store is open)");
  fault_desc.add_options()("qos", po::value(&a.qos)->value_name("0|1"),
                           "MQTT QoS of every publish (default 1). At 0 a lost message is gone: "
                           "departures never paid are counted as lost, not as violations");
  for (const sim::FaultKnob& knob : sim::fault_knobs()) {
    const std::string flag(knob.flag);
    fault_desc.add_options()(
        flag.c_str(),
        po::value(&a.knobs.find(knob.flag)->second)->value_name(std::string(knob.value_name)),
        std::string(knob.help).c_str());
  }
  fault_desc.add_options()(
      "durability", po::value(&a.durability)->value_name("normal|full"),
      "how the services' databases commit, as for serve (default full, as serve's): full "
      "syncs the WAL at every commit; normal only at checkpoints, so a power loss can drop "
      "acknowledged commits")("faults", po::value(&a.faults)->value_name("none|swarm"),
                              "swarm: each seed draws its own fault mix and QoS (overrides the "
                              "flags above), its kind of day and its knobs");
  std::string knob_help =
      "set one of the real code's tunables that production keeps fixed (the swarm draws them "
      "per seed); repeated for several:";
  for (const sim::KnobInfo& k : sim::knob_table()) {
    knob_help += "\n  " + std::string(k.key) + ": " + std::string(k.help) + ", " +
                 std::to_string(k.min) + ".." + std::to_string(k.max);
  }
  fault_desc.add_options()("knob", po::value(&a.code_knobs)->value_name("KEY=N")->composing(),
                           knob_help.c_str());
  return fault_desc;
}

po::options_description describe_harness(SimArgs& a) {
  po::options_description harness_desc("Harness");
  harness_desc.add_options()(
      "seeds", po::value(&a.seeds)->value_name("N|A..B"),
      "run N seeds starting at --seed, or seeds A to B; prints a summary with the command "
      "that replays each failing seed; exit 1 if any failed")(
      "jobs", po::value(&a.jobs)->value_name("N"),
      "worker threads for --seeds (default: the number of cores); each run stays "
      "single-threaded")(
      "trace", po::value<std::string>()->value_name("FILE"),
      "write every publish, delivery, acknowledgement, confirmation and fault of the run as "
      "JSON Lines with its virtual time (one seed only)")(
      "html", po::value<std::string>()->value_name("FILE"),
      "write the run as one self-contained HTML page: summary, a timeline of every message "
      "and outage (a failing run opens at its first violation), stock, latency and delivery "
      "charts (one seed only)")("check-determinism",
                                "run each seed twice; on a mismatch, print the first trace entry "
                                "where the two runs differ")(
      "bug", po::value(&a.bug)->value_name("NAME"),
      "run a deliberately broken service variant to watch the harness catch it; 'list' "
      "names them")(
      "scenario", po::value(&a.scenario)->value_name("FILE"),
      "replay a scenario file (docs/simulation.md): a seeded run with its options, or an "
      "explicit store, visits and fault schedule as the property tests print them; the file "
      "holds every run and fault option")(
      "recipe", po::value(&a.recipe)->value_name("R"),
      "replay a timeline of eventmart explore exactly: SEED/STEP:CHILD/... (its seed, and where "
      "its random streams were reseeded; CHILD+ a storm child); instead of --seed")(
      "shard", po::value(&a.shard)->value_name("K/N"),
      "run shard K of N (1 <= K <= N) of the seeds (explore: of the roots, and 1/N of the "
      "budget): seeds first+K-1, first+K-1+N, ...; N machines with K = 1..N run every seed "
      "once, and `eventmart merge` folds their --jsonl files into one summary")(
      "jsonl", po::value(&a.jsonl)->value_name("FILE"),
      "also write the results as JSON Lines (a header, one line per seed or failing "
      "timeline, a summary line; each flushed) for `eventmart merge`; '-' writes them on "
      "stdout instead of the report")(
      "save-scenario", po::value(&a.save_scenario)->value_name("FILE"),
      "write this run (one seed) as a scenario file that --scenario replays exactly")(
      "found", po::value(&a.found)->value_name("TEXT"),
      "with --save-scenario: what the run found, kept in the file (the regression corpus, "
      "tests/regressions/)");
  return harness_desc;
}

po::options_description describe_explore(SimArgs& a) {
  po::options_description explore_desc(
      "Exploration (eventmart explore: the options above say what each root seed runs; "
      "--seed is the first root, --seeds A..B bounds them, --jobs counts worker processes)");
  explore_desc.add_options()(
      "budget", po::value(&a.budget)->value_name("N|Ns"),
      "timelines to run, roots and children (default 1000; children take at most half), or "
      "CPU-seconds with an 's' (60s)")(
      "children", po::value(&a.children)->value_name("K"),
      "children of a splitpoint at depth 1, halved at each depth below, 1..64 (default 8)")(
      "depth", po::value(&a.depth)->value_name("D"),
      "splitpoints a timeline may descend through, 0..8 (default 3; 0 runs roots only, as the "
      "swarm)")("splits-per-mark", po::value(&a.splits_per_mark)->value_name("N"),
                "splitpoints one coverage mark may open in the whole exploration, 1..1000000 "
                "(default 8)");
  return explore_desc;
}

po::options_description describe_localize(SimArgs& a) {
  po::options_description desc(
      "Localization (sim --localize: where the failure of one run became inevitable)");
  desc.add_options()(
      "localize",
      "from checkpoints along this failing run (a --seed, --recipe or --scenario), run futures "
      "that reseed its randomness there and count how many fail again; bisect the last rise "
      "past one half to its steepest step; prints that interval, the trace inside it and a "
      "failing future's recipe (with --html, the curve under the timeline)")(
      "futures", po::value(&a.futures)->value_name("N"),
      "futures per checkpoint at most, a multiple of 8, 8..1000 (default 48); a checkpoint "
      "clearly below or above one half stops after fewer")(
      "checkpoints", po::value(&a.checkpoints)->value_name("K"),
      "checkpoints of the first pass, evenly over the opening hours, 2..100 (default 8)")(
      "resolution", po::value(&a.resolution)->value_name("S"),
      "bisect until the interval is at most S seconds of virtual time, 0.001..3600 (default 1)");
  return desc;
}

po::options_description describe(SimArgs& a, bool explore) {
  po::options_description desc;
  desc.add(describe_run(a)).add(describe_faults(a)).add(describe_harness(a));
  if (explore) desc.add(describe_explore(a));
  if (!explore) desc.add(describe_localize(a));
  return desc;
}

// sim --localize: one failing run, the futures from its checkpoints.
void set_localization(const SimArgs& a, const po::variables_map& vm, SimCommand& c) {
  for (const char* other : {"trace", "save-scenario", "check-determinism", "jsonl", "shard"}) {
    if (vm.count(other)) throw UsageError{std::string("--localize cannot go with --") + other};
  }
  if (c.many) throw UsageError{"--localize localizes one failing run: it cannot go with --seeds"};
  runs::LocalizeOptions& l = c.localization;
  l.plan = c.plan;
  l.seed = c.first_seed;
  l.jobs = c.jobs;
  l.futures = static_cast<unsigned>(parse_in_range("--futures", a.futures, 8, 1000));
  if (l.futures % runs::LocalizeOptions::kBatch != 0) {
    throw UsageError{"--futures must be a multiple of 8 (got " + a.futures + ")"};
  }
  l.checkpoints = static_cast<unsigned>(parse_in_range("--checkpoints", a.checkpoints, 2, 100));
  const double resolution = parse_double("--resolution", a.resolution);
  if (!(resolution >= 0.001) || resolution > 3600) {
    throw UsageError{"--resolution must be 0.001..3600 seconds (got " + a.resolution + ")"};
  }
  l.resolution_us = std::llround(resolution * 1e6);
  c.localize = true;
}

// The command-line flag that sets a simulator option.
std::string flag_of(sim::SimOption option) {
  for (const sim::FaultKnob& knob : sim::fault_knobs()) {
    if (knob.option == option) return "--" + std::string(knob.flag);
  }
  switch (option) {
    case sim::SimOption::kCustomers:
      return "--customers";
    case sim::SimOption::kProducts:
      return "--products";
    case sim::SimOption::kOpenDuration:
      return "--hours";
    case sim::SimOption::kLatency:
      return "the latency";
    case sim::SimOption::kChain:
      return "the chain name";
    case sim::SimOption::kStore:
      return "the store name";
    case sim::SimOption::kScenario:
      return "the scenario";
    case sim::SimOption::kWorkloadShape:
      return "the workload shape";
    case sim::SimOption::kKnobs:
      return "--knob";
    case sim::SimOption::kRecipe:
      return "--recipe";
    default:
      break;
  }
  return "an option";
}

// --seeds N (from --seed on) or --seeds A..B. A range too large to be meant is a usage error.
void parse_seeds(const std::string& text, SimCommand& c) {
  c.many = true;
  const auto dots = text.find("..");
  if (dots == std::string::npos) {
    const std::int64_t n = parse_int64("--seeds", text);
    if (n < 1 || static_cast<std::uint64_t>(n) > kMaxSeedsPerRun) {
      throw UsageError{"--seeds must be 1.." + std::to_string(kMaxSeedsPerRun) + " (got " + text +
                       ")"};
    }
    if (c.first_seed > UINT64_MAX - static_cast<std::uint64_t>(n - 1)) {
      throw UsageError{"--seeds: the range passes 2^64 - 1"};
    }
    c.last_seed = c.first_seed + static_cast<std::uint64_t>(n) - 1;
    return;
  }
  c.first_seed = parse_uint64("--seeds", text.substr(0, dots));
  c.last_seed = parse_uint64("--seeds", text.substr(dots + 2));
  if (c.last_seed < c.first_seed) throw UsageError{"--seeds A..B needs A <= B (got " + text + ")"};
  if (c.last_seed - c.first_seed >= kMaxSeedsPerRun) {
    throw UsageError{"--seeds " + text + " holds more than " + std::to_string(kMaxSeedsPerRun) +
                     " seeds (about 290 days at 40 seeds/s): a range that large cannot be meant"};
  }
}

void set_faults(const SimArgs& a, sim::FaultOptions& f) {
  f.qos = parse_qos("--qos", a.qos);
  for (const sim::FaultKnob& knob : sim::fault_knobs()) {
    knob.set(f, parse_double("--" + std::string(knob.flag), a.knobs.find(knob.flag)->second));
  }
}

// --knob KEY=N, each once; not with a swarm (it draws them from the seed).
void set_knobs(const SimArgs& a, bool swarm, sim::Knobs& knobs) {
  if (swarm && !a.code_knobs.empty()) {
    throw UsageError{"--knob cannot go with --faults swarm: each seed draws its own knobs"};
  }
  std::set<std::string> given;
  for (const std::string& text : a.code_knobs) {
    const auto eq = text.find('=');
    const std::string key = text.substr(0, eq);
    const sim::KnobInfo* knob = sim::find_knob(key);
    if (eq == std::string::npos || knob == nullptr) {
      std::string keys;
      for (const sim::KnobInfo& k : sim::knob_table()) keys += " " + std::string(k.key);
      throw UsageError{"--knob takes KEY=N with KEY one of:" + keys + " (got '" + excerpt(text) +
                       "')"};
    }
    if (!given.insert(key).second) throw UsageError{"--knob " + key + " given twice"};
    knobs.*knob->field = parse_int64("--knob " + key, text.substr(eq + 1));
  }
}

// The options a scenario file holds: none of them may be given beside --scenario.
std::vector<std::string> run_options() {
  std::vector<std::string> options = {"seed", "customers", "products", "hours", "qos"};
  for (const sim::FaultKnob& knob : sim::fault_knobs()) options.emplace_back(knob.flag);
  for (const char* o : {"durability", "faults", "bug", "seeds", "knob"}) options.emplace_back(o);
  return options;
}

std::string slurp_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError{"--scenario: cannot read '" + path + "'"};
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) throw UsageError{"--scenario: reading '" + path + "' failed"};
  return text.str();
}

void from_scenario_file(const std::string& path, const po::variables_map& vm, SimCommand& c) {
  for (const std::string& option : run_options()) {
    if (vm.count(option)) {
      throw UsageError{"--" + option +
                       " cannot go with --scenario: the file holds "
                       "the run's options (edit it, or save another with --save-scenario)"};
    }
  }
  const auto file = sim::parse_scenario_file(slurp_file(path));
  if (!file) throw UsageError{"--scenario " + path + ": " + file.error()};
  for (const std::string& name : file.value().violates) {
    if (!properties::is_invariant_name(name))
      throw UsageError{"--scenario " + path + ": violates: no invariant named '" + name + "'"};
  }
  c.plan.base = file.value().options;
  c.plan.swarm = file.value().swarm;
  c.plan.scenario_file = path;
  c.first_seed = c.last_seed = c.plan.base.seed;
  if (!file.value().found.empty()) c.found = file.value().found;
}

SimCommand to_command(const SimArgs& a, const po::variables_map& vm) {
  SimCommand c;
  c.json = vm.count("json") > 0;
  if (!a.found.empty() && a.save_scenario.empty()) {
    throw UsageError{"--found goes with --save-scenario (it is kept in the file)"};
  }
  c.save_scenario = a.save_scenario;
  c.found = a.found;
  if (!a.recipe.empty() && (vm.count("seed") || vm.count("seeds"))) {
    throw UsageError{"--recipe holds the seed: it cannot go with --seed or --seeds"};
  }
  if (!a.recipe.empty() && !a.scenario.empty()) {
    throw UsageError{"--recipe cannot go with --scenario (a scenario file holds its recipe)"};
  }
  if (!a.scenario.empty()) {
    from_scenario_file(a.scenario, vm, c);
    if (!a.found.empty()) c.found = a.found;
    finish_command(a, vm, c);
    return c;
  }
  sim::SimOptions& o = c.plan.base;
  c.first_seed = c.last_seed = o.seed = parse_uint64("--seed", a.seed);
  if (!a.recipe.empty()) {
    auto recipe = sim::parse_recipe(a.recipe);
    if (!recipe) throw UsageError{"--recipe: " + recipe.error()};
    c.first_seed = c.last_seed = o.seed = recipe.value().seed;
    o.splits = recipe.value().splits;
  }
  o.customers = parse_int64("--customers", a.customers);
  o.products = parse_int64("--products", a.products);
  const double h = parse_double("--hours", a.hours);
  if (!(h > 0) || h > 168) {
    throw UsageError{"--hours must be more than 0 and at most 168 (got " + a.hours + ")"};
  }
  o.open_duration_us = std::llround(h * static_cast<double>(sim::kHourUs));
  set_faults(a, o.faults);
  o.durability = parse_durability("--durability", a.durability);
  if (a.faults == "swarm") {
    c.plan.swarm = true;
  } else if (a.faults != "none") {
    throw UsageError{"--faults must be 'none' or 'swarm' (got '" + excerpt(a.faults) + "')"};
  }
  set_knobs(a, c.plan.swarm, o.knobs);
  auto bug = sim::parse_bug(a.bug);
  if (!bug) throw UsageError{"--bug: no bug named '" + excerpt(a.bug) + "' (try --bug list)"};
  o.bug = *bug;
  if (!a.seeds.empty()) parse_seeds(a.seeds, c);
  finish_command(a, vm, c);
  return c;
}

// The harness options, shared by a run from flags and one from a scenario file.
// --shard K/N: 1 <= K <= N <= kMaxShards.
constexpr std::int64_t kMaxShards = 1'000'000;
runs::Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) {
    throw UsageError{"--shard must be K/N, shard K of N machines (got '" + excerpt(text) + "')"};
  }
  const std::int64_t n = parse_in_range("--shard (N)", text.substr(slash + 1), 1, kMaxShards);
  const std::int64_t k = parse_in_range("--shard (K)", text.substr(0, slash), 1, n);
  return runs::Shard{static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(n)};
}

void finish_command(const SimArgs& a, const po::variables_map& vm, SimCommand& c) {
  sim::SimOptions& o = c.plan.base;
  if (!a.shard.empty()) c.shard = parse_shard(a.shard);
  c.jsonl = a.jsonl;
  c.plan.check_determinism = vm.count("check-determinism") > 0;
  if (!c.save_scenario.empty() && c.many) {
    throw UsageError{"--save-scenario writes one run: it cannot go with --seeds"};
  }
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  c.jobs = a.jobs.empty() ? cores : static_cast<unsigned>(parse_in_range("--jobs", a.jobs, 1, 256));
  if (vm.count("trace")) {
    c.trace_file = vm["trace"].as<std::string>();
    if (c.many) throw UsageError{"--trace writes one run: it cannot go with --seeds"};
  }
  if (vm.count("html")) {
    c.html_file = vm["html"].as<std::string>();
    if (c.many) throw UsageError{"--html writes one run: it cannot go with --seeds"};
  }
  if (const sim::OptionCheck error = sim::validate(o)) {
    throw UsageError{
        (c.plan.scenario_file.empty() ? "" : "--scenario " + c.plan.scenario_file + ": ") +
        std::string(flag_of(error->option)) + " " + error->problem};
  }
  check_memory(c);
}

// Bytes of memory this machine has available now (MemAvailable), or 0 when it cannot tell.
std::uint64_t memory_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

// A day keeps its history (every basket, payment and stock reading) to check it at the end:
// about kBytesPerCustomer a customer (measured: 1.7 KiB at 100,000 and 300,000). A day that
// cannot fit is refused before it starts rather than run into the out-of-memory killer hours
// later (10,000,000 customers needed about 20 GB).
constexpr std::uint64_t kBytesPerCustomer = 2048;
constexpr std::uint64_t kBytesPerRun = 64ull << 20;

void check_memory(const SimCommand& c) {
  const std::uint64_t available = memory_available();
  if (available == 0) return;
  const std::uint64_t seeds = c.many ? c.last_seed - c.first_seed + 1 : 1;
  const std::uint64_t at_once = std::min<std::uint64_t>(seeds, c.many ? c.jobs : 1);
  const std::uint64_t one =
      kBytesPerRun + kBytesPerCustomer * static_cast<std::uint64_t>(c.plan.base.customers);
  if (one > available / at_once) {
    const auto gib = [](std::uint64_t b) {
      char text[32];
      std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(b) / (1ull << 30));
      return std::string(text);
    };
    throw UsageError{"a day of " + std::to_string(c.plan.base.customers) +
                     " customers needs about " + gib(one) + " of memory" +
                     (at_once > 1 ? " per run, " + std::to_string(at_once) + " runs at once" : "") +
                     ", and " + gib(available) + " is available: fewer --customers" +
                     (at_once > 1 ? ", or fewer --jobs" : "")};
  }
}

int print_bug_list() {
  std::cout << "Bug variants (eventmart sim --bug NAME):\n";
  for (const sim::BugInfo& b : sim::all_bugs()) {
    std::cout << "  " << b.name << (b.deep ? "  (deep: needs two rare events in sequence)" : "")
              << "\n      " << b.what << "\n      caught by: " << b.expected_caught << "\n";
  }
  return 0;
}

int run_many(const SimCommand& c) {
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const std::uint64_t total = runs::shard_size(c.first_seed, c.last_seed, c.shard);
  std::unique_ptr<runs::ResultsWriter> jsonl;
  try {
    if (!c.jsonl.empty()) jsonl = std::make_unique<runs::ResultsWriter>(c.jsonl);
  } catch (const std::runtime_error& e) {
    std::cerr << "eventmart sim: " << e.what() << "\n";
    return 3;
  }
  if (jsonl) jsonl->seeds_header(c.plan, c.first_seed, c.last_seed, c.shard, c.jobs);
  std::uint64_t done = 0, failing = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const SeedSummary summary = run_seeds(
      c.plan, c.first_seed, c.last_seed, c.jobs,
      [&](const SeedOutcome& o) {
        ++done;
        if (!o.passed()) ++failing;
        if (jsonl) jsonl->seed(runs::record_of(o));
        if (tty) {
          std::fprintf(stderr, "\r  seeds %llu/%llu  %.1f seeds/s  %llu failing ",
                       static_cast<unsigned long long>(done),
                       static_cast<unsigned long long>(total),
                       static_cast<double>(done) / std::max(elapsed(), 1e-9),
                       static_cast<unsigned long long>(failing));
        }
      },
      c.shard);
  if (tty) std::fprintf(stderr, "\n");
  const double wall = elapsed();
  if (jsonl) {
    jsonl->seeds_summary(summary, wall);
    if (const std::string failed = jsonl->finish(); !failed.empty()) {
      std::cerr << "eventmart sim: " << failed << "\n";
      return 3;
    }
  }
  if (c.jsonl != "-") {
    print_summary(c.plan, summary, SummaryRange{c.first_seed, c.last_seed, c.jobs, wall, c.shard},
                  c.json);
  }
  return summary.failing == 0 ? 0 : 1;
}

// Writes the run (one seed) as a scenario file. With a bug variant, the invariants the run
// violated are kept as what a replay must violate. Throws UsageError when it cannot.
void save_scenario(const SimCommand& c, const SeedOutcome* outcome) {
  sim::ScenarioFile file;
  file.options = c.plan.base;
  file.options.seed = c.first_seed;
  file.swarm = c.plan.swarm;
  file.found = c.found;
  if (outcome != nullptr && c.plan.base.bug != sim::Bug::kNone) {
    for (const auto& inv : outcome->invariants) {
      if (!inv.held()) file.violates.push_back(inv.name);
    }
  }
  std::ofstream out(c.save_scenario, std::ios::binary | std::ios::trunc);
  out << sim::to_json(file);
  out.flush();
  if (!out) throw UsageError{"--save-scenario: cannot write '" + c.save_scenario + "'"};
}

int run_one(const SimCommand& c) {
  std::unique_ptr<TraceFile> trace;
  try {
    if (!c.trace_file.empty()) trace = std::make_unique<TraceFile>(c.trace_file);
    if (!c.html_file.empty() && !std::ofstream(c.html_file, std::ios::app)) {
      throw UsageError{"--html: cannot write '" + c.html_file + "'"};
    }
    if (!c.save_scenario.empty()) save_scenario(c, nullptr);  // written now, completed below
  } catch (const std::runtime_error& e) {  // a UsageError, or a file that cannot be written
    std::cerr << "eventmart sim: " << e.what() << "\n";
    return 2;
  }
  std::unique_ptr<TimelineRecorder> timeline;
  if (!c.html_file.empty()) timeline = std::make_unique<TimelineRecorder>(sim::kStoreOpensAtUs);
  std::function<void(const sim::TraceEntry&)> listener;
  if (trace || timeline) {
    listener = [&](const sim::TraceEntry& e) {
      if (trace) trace->write(e);
      if (timeline) timeline->add(e);
    };
  }
  SeedOutcome outcome;
  try {
    outcome = run_seed(c.plan, c.first_seed, listener);
  } catch (const std::invalid_argument& e) {  // a recipe made with other options
    std::cerr << "eventmart sim: --recipe: " << e.what() << "\n";
    return 2;
  }
  if (trace) {
    if (const std::string failed = trace->finish(); !failed.empty()) {
      std::cerr << "eventmart sim: " << failed << "\n";
      return 3;
    }
  }
  if (!c.save_scenario.empty()) {
    try {
      save_scenario(c, &outcome);
    } catch (const std::runtime_error& e) {
      std::cerr << "eventmart sim: " << e.what() << "\n";
      return 2;
    }
  }
  if (timeline) {
    try {
      write_html_report(c.html_file, sim_html_report(c.plan, outcome, *timeline));
    } catch (const std::runtime_error& e) {
      std::cerr << "eventmart sim: " << e.what() << "\n";
      return 2;
    }
  }
  if (c.json) {
    print_json(c.plan, outcome);
  } else {
    print_report(c.plan, outcome);
  }
  for (const std::string& name : outcome.failures()) {
    std::cerr << "eventmart sim: " << name << " violated (seed " << outcome.seed
              << "); replay with: " << replay_command(c.plan, outcome.seed) << "\n";
  }
  return outcome.passed() ? 0 : 1;
}

// eventmart explore: what sim would run per seed, as the roots of an exploration.
void set_exploration(const SimArgs& a, const po::variables_map& vm, SimCommand& c) {
  for (const char* single :
       {"trace", "html", "save-scenario", "check-determinism", "recipe", "scenario"}) {
    if (vm.count(single)) {
      throw UsageError{std::string("--") + single +
                       " goes with eventmart sim (to replay one timeline: sim --recipe)"};
    }
  }
  runs::ExploreOptions& e = c.exploration;
  e.plan = c.plan;
  e.first_root = c.first_seed;
  e.last_root = c.many ? c.last_seed : UINT64_MAX;
  e.jobs = c.jobs;
  e.shard = c.shard;
  if (c.shard.index - 1 > e.last_root - e.first_root) {
    throw UsageError{"--shard " + a.shard + ": the roots from " + std::to_string(e.first_root) +
                     " hold none for shard " + std::to_string(c.shard.index)};
  }
  if (!a.budget.empty() && a.budget.back() == 's') {
    const double seconds = parse_double("--budget", a.budget.substr(0, a.budget.size() - 1));
    if (!(seconds > 0) || seconds > 1e7) {
      throw UsageError{"--budget in CPU-seconds must be more than 0 and at most 1e7 (got " +
                       a.budget + ")"};
    }
    e.budget_cpu_seconds = seconds;
    e.budget_timelines = 0;
  } else {
    e.budget_timelines =
        static_cast<std::uint64_t>(parse_in_range("--budget", a.budget, 1, 1'000'000'000));
  }
  if (e.budget_timelines > 0 && e.budget_timelines < c.shard.count) {
    throw UsageError{"--budget " + a.budget + " leaves no timeline for some of " +
                     std::to_string(c.shard.count) + " shards (it is the whole search's)"};
  }
  e.children = static_cast<unsigned>(parse_in_range("--children", a.children, 1, 64));
  e.max_depth = static_cast<unsigned>(parse_in_range("--depth", a.depth, 0, 8));
  e.splits_per_mark =
      static_cast<unsigned>(parse_in_range("--splits-per-mark", a.splits_per_mark, 1, 1'000'000));
  c.explore = true;
}

int run_explore(const SimCommand& c) {
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  runs::ExploreSummary summary;
  std::unique_ptr<runs::ResultsWriter> jsonl;
  try {
    if (!c.jsonl.empty()) jsonl = std::make_unique<runs::ResultsWriter>(c.jsonl);
  } catch (const std::runtime_error& e) {
    std::cerr << "eventmart explore: " << e.what() << "\n";
    return 3;
  }
  // The header first: a shard that dies leaves a file merge refuses as truncated.
  if (jsonl) jsonl->explore_header(c.exploration);
  try {
    summary = runs::explore(c.exploration, [&](const runs::ExploreProgress& p) {
      if (!tty) return;
      std::fprintf(stderr,
                   "\r  timelines %llu  roots %llu  depth %u  marks %llu/%zu  failing %llu  "
                   "%.1f timelines/s ",
                   static_cast<unsigned long long>(p.timelines),
                   static_cast<unsigned long long>(p.roots), p.max_depth,
                   static_cast<unsigned long long>(p.marks_reached), kMarkCount,
                   static_cast<unsigned long long>(p.failing),
                   static_cast<double>(p.timelines) / std::max(p.wall_seconds, 1e-9));
    });
  } catch (const std::invalid_argument& e) {
    std::cerr << "eventmart explore: " << e.what() << "\n";
    if (jsonl && c.jsonl != "-") std::remove(c.jsonl.c_str());  // not a shard that ran
    return 2;
  } catch (const std::runtime_error& e) {
    std::cerr << "eventmart explore: " << e.what() << "\n";
    return 3;
  }
  if (tty) std::fprintf(stderr, "\n");
  if (jsonl) {
    jsonl->explore_result(summary);
    if (const std::string failed = jsonl->finish(); !failed.empty()) {
      std::cerr << "eventmart explore: " << failed << "\n";
      return 3;
    }
  }
  if (c.jsonl != "-") print_exploration(c.exploration, summary, c.json);
  return summary.failing == 0 ? 0 : 1;
}

int run_localize(const SimCommand& c) {
  if (!c.html_file.empty() && !std::ofstream(c.html_file, std::ios::app)) {
    std::cerr << "eventmart sim: --html: cannot write '" << c.html_file << "'\n";
    return 2;
  }
  runs::Localization localization;
  try {
    localization = runs::localize(c.localization);
  } catch (const std::invalid_argument& e) {  // a run that holds, a recipe of other options
    std::cerr << "eventmart sim: --localize: " << e.what() << "\n";
    return 2;
  } catch (const std::runtime_error& e) {
    std::cerr << "eventmart sim: --localize: " << e.what() << "\n";
    return 3;
  }
  if (!c.html_file.empty()) {
    try {
      TimelineRecorder timeline(sim::kStoreOpensAtUs);
      const SeedOutcome outcome =
          run_seed(c.plan, c.first_seed, [&](const sim::TraceEntry& e) { timeline.add(e); });
      write_html_report(c.html_file, sim_html_report(c.plan, outcome, timeline, &localization));
    } catch (const std::runtime_error& e) {
      std::cerr << "eventmart sim: " << e.what() << "\n";
      return 2;
    }
  }
  print_localization(c.plan, c.first_seed, localization, c.json);
  return 1;  // the run failed (a run that holds is refused above)
}

int run_simulator(const std::vector<std::string>& args, bool explore) {
  SimArgs a;
  po::options_description desc = describe(a, explore);
  SimCommand c;
  const char* name = explore ? "explore" : "sim";
  const int usage = with_usage_errors(name, [&] {
    // Long options only, so that a negative value ("--customers -5") reaches our check.
    po::variables_map vm;
    const int style = po::command_line_style::unix_style ^ po::command_line_style::allow_short;
    po::positional_options_description none;
    po::store(po::command_line_parser(args).options(desc).style(style).positional(none).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
      if (explore) std::cout << kExploreUsage;
      std::cout << desc << "\n";
      return 0;
    }
    if (a.bug == "list") return print_bug_list();
    c = to_command(a, vm);
    if (explore) {
      set_exploration(a, vm, c);
    } else if (vm.count("localize")) {
      set_localization(a, vm, c);
    } else {
      for (const char* only : {"futures", "checkpoints", "resolution"}) {
        if (vm.count(only)) throw UsageError{std::string("--") + only + " goes with --localize"};
      }
      if (!a.shard.empty() && !c.many) {
        throw UsageError{"--shard shares a range of seeds among machines: it goes with --seeds"};
      }
      if (!a.jsonl.empty() && !c.many) {
        throw UsageError{"--jsonl writes the results of many seeds: it goes with --seeds"};
      }
      if (c.many && c.shard.index - 1 > c.last_seed - c.first_seed) {
        throw UsageError{"--shard " + a.shard + ": seeds " + std::to_string(c.first_seed) + ".." +
                         std::to_string(c.last_seed) + " hold no seed for shard " +
                         std::to_string(c.shard.index)};
      }
    }
    return -1;
  });
  if (usage != -1) return usage;
  if (c.explore) return run_explore(c);
  if (c.localize) return run_localize(c);
  return c.many ? run_many(c) : run_one(c);
}

}  // namespace

int run_sim_command(const std::vector<std::string>& args) {
  return run_simulator(args, false);
}

int run_explore_command(const std::vector<std::string>& args) {
  return run_simulator(args, true);
}
}  // namespace eventmart::apps
