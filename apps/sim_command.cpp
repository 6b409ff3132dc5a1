#include "apps/sim_command.h"

#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "apps/json_writer.h"
#include "apps/options.h"
#include "apps/seed_runner.h"
#include "core/event_id.h"

namespace po = boost::program_options;

namespace eventmart::apps {
namespace {

struct SimCommand {
  RunPlan plan;
  std::uint64_t first_seed = 1;
  std::uint64_t last_seed = 1;
  bool many = false;  // --seeds given
  bool json = false;
  unsigned jobs = 2;
  std::string trace_file;
};

std::string cents_to_text(std::int64_t cents) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s%lld.%02lld", cents < 0 ? "-" : "",
                static_cast<long long>(std::llabs(cents) / 100),
                static_cast<long long>(std::llabs(cents) % 100));
  return buf;
}

std::string duration_text(std::int64_t us) {
  const std::int64_t minutes = us / sim::kMinuteUs;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(minutes / 60),
                static_cast<long long>(minutes % 60));
  return buf;
}

std::uint64_t lost_departures(const SeedOutcome& o) {
  for (const auto& inv : o.invariants) {
    if (inv.name == "departure_paid_once") return inv.lost;
  }
  return 0;
}

void write_faults(JsonWriter& j, const sim::SimResult& r) {
  const sim::FaultOptions& f = r.options.faults;
  j.key("fault_options").begin_object();
  j.key("qos").value(f.qos == Qos::kAtLeastOnce ? 1 : 0);
  j.key("drop").value_fixed(f.drop_probability, 6);
  j.key("dup").value_fixed(f.duplicate_probability, 6);
  j.key("reorder").value_fixed(f.reorder_probability, 6);
  j.key("delay_ms").value_fixed(static_cast<double>(f.delay_mean_us) / 1000, 3);
  j.key("partition").value_fixed(f.partition_per_minute, 6);
  j.key("crash").value_fixed(f.crash_per_minute, 6);
  j.key("broker_restart").value_fixed(f.broker_restart_per_minute, 6);
  j.end_object();
  const sim::FaultCounts& c = r.stats.faults;
  j.key("faults").begin_object();
  j.key("dropped").value(c.dropped);
  j.key("duplicated").value(c.duplicated);
  j.key("delayed").value(c.delayed);
  j.key("reordered").value(c.reordered);
  j.key("partitions").value(c.partitions);
  j.key("crashes").value(c.crashes);
  j.key("crashes_before_commit").value(c.crashes_before_commit);
  j.key("crashes_after_commit").value(c.crashes_after_commit);
  j.key("broker_restarts").value(c.broker_restarts);
  j.end_object();
}

void print_json(const SimCommand& c, const SeedOutcome& o) {
  const sim::SimResult& r = o.result;
  const sim::SimStats& s = r.stats;
  JsonWriter j;
  j.begin_object();
  j.key("seed").value(o.seed);
  j.key("customers").value(s.customers);
  j.key("products").value(r.options.products);
  j.key("hours").value_fixed(static_cast<double>(r.options.open_duration_us) / sim::kHourUs, 3);
  j.key("bug").value(sim::bug_name(r.options.bug));
  j.key("arrivals").value(s.arrivals);
  j.key("departures").value(s.departures);
  j.key("payments").value(s.payments);
  j.key("lost_departures").value(lost_departures(o));
  j.key("revenue_cents").value(s.revenue_cents);
  j.key("units_sold").value(s.units_sold);
  j.key("welcomes_shown").value(s.welcomes_shown);
  j.key("unknown_cards").value(s.unknown_cards);
  j.key("restocks_requested").value(s.restocks_requested);
  j.key("restocks_delivered").value(s.restocks_delivered);
  j.key("deliveries").value(s.deliveries);
  j.key("publishes").value(s.publishes);
  j.key("duplicates_detected").value(s.duplicates_detected);
  j.key("redelivered_after_loss").value(s.redelivered_after_loss);
  j.key("crash_recoveries").value(s.crash_recoveries);
  j.key("rejected_events").value(s.rejected_events);
  j.key("handler_failures").value(s.handler_failures);
  j.key("quiescent").value(r.history.quiescent);
  write_faults(j, r);
  j.key("virtual_seconds").value_fixed(static_cast<double>(s.virtual_us) / 1e6, 6);
  j.key("wall_seconds").value_fixed(o.wall_seconds, 6);
  j.key("trace_hash").value(to_hex64(r.trace_hash));
  j.key("trace_entries").value(s.trace_entries);
  if (c.plan.check_determinism) j.key("deterministic").value(o.deterministic);
  j.key("warnings").value(static_cast<std::int64_t>(r.warnings.size()));
  j.key("invariants").begin_object();
  for (const auto& inv : o.invariants) {
    j.key(inv.name).begin_object();
    j.key("held").value(inv.held());
    j.key("violations").value(inv.violations);
    if (!inv.checked) j.key("checked").value(false);
    j.key("examples").begin_array();
    for (const auto& e : inv.examples) j.value(e);
    j.end_array();
    j.end_object();
  }
  j.end_object();
  j.key("replay").value(replay_command(c.plan, o.seed));
  j.end_object();
  std::cout << j.str() << "\n";
}

void print_report(const SimCommand& c, const SeedOutcome& o) {
  const sim::SimResult& r = o.result;
  const sim::SimStats& s = r.stats;
  const sim::FaultCounts& f = s.faults;
  const double compression =
      o.wall_seconds > 0 ? static_cast<double>(s.virtual_us) / 1e6 / o.wall_seconds : 0;
  std::printf(
      "eventmart sim: seed %llu, %lld customers, %lld products, open %.2f h%s%s\n",
      static_cast<unsigned long long>(o.seed), static_cast<long long>(s.customers),
      static_cast<long long>(r.options.products),
      static_cast<double>(r.options.open_duration_us) / sim::kHourUs,
      r.options.bug == sim::Bug::kNone ? "" : ", bug ",
      r.options.bug == sim::Bug::kNone ? "" : std::string(sim::bug_name(r.options.bug)).c_str());
  std::printf("  store day   %s of virtual time in %.3f s of wall time (%.0fx)\n",
              duration_text(s.virtual_us).c_str(), o.wall_seconds, compression);
  std::printf("  customers   %lld arrived (%lld unknown cards), %lld departed with %lld units\n",
              static_cast<long long>(s.arrivals), static_cast<long long>(s.unknown_cards),
              static_cast<long long>(s.departures), static_cast<long long>(s.units_sold));
  std::printf("  payments    %lld due, revenue %s", static_cast<long long>(s.payments),
              cents_to_text(s.revenue_cents).c_str());
  if (r.history.at_most_once) {
    std::printf(", %llu departures lost (QoS 0)",
                static_cast<unsigned long long>(lost_departures(o)));
  }
  std::printf("\n  restocks    %lld requested, %lld delivered\n",
              static_cast<long long>(s.restocks_requested),
              static_cast<long long>(s.restocks_delivered));
  std::printf("  bus         QoS %d, %lld publishes, %lld deliveries, %lld duplicates detected\n",
              r.options.faults.qos == Qos::kAtLeastOnce ? 1 : 0,
              static_cast<long long>(s.publishes), static_cast<long long>(s.deliveries),
              static_cast<long long>(s.duplicates_detected));
  if (r.options.faults.any()) {
    std::printf(
        "  faults      %lld dropped, %lld duplicated, %lld delayed, %lld reordered, %lld "
        "partitions, %lld crashes (%lld before commit, %lld after), %lld broker restarts\n",
        static_cast<long long>(f.dropped), static_cast<long long>(f.duplicated),
        static_cast<long long>(f.delayed), static_cast<long long>(f.reordered),
        static_cast<long long>(f.partitions), static_cast<long long>(f.crashes),
        static_cast<long long>(f.crashes_before_commit),
        static_cast<long long>(f.crashes_after_commit), static_cast<long long>(f.broker_restarts));
    std::printf("  recovery    %lld redelivered after loss, %lld services restarted\n",
                static_cast<long long>(s.redelivered_after_loss),
                static_cast<long long>(s.crash_recoveries));
  }
  std::printf("  trace       %s (%lld entries)%s\n", to_hex64(r.trace_hash).c_str(),
              static_cast<long long>(s.trace_entries),
              c.plan.check_determinism
                  ? (o.deterministic ? ", deterministic" : ", NOT deterministic")
                  : "");
  if (!o.deterministic) std::printf("    %s\n", o.determinism_report.c_str());
  if (!r.warnings.empty()) {
    std::printf("  warnings    %zu (first: %s)\n", r.warnings.size(), r.warnings.front().c_str());
  }
  std::printf("invariants\n");
  for (const auto& inv : o.invariants) {
    if (!inv.checked) {
      std::printf("  --    %s (not checked at QoS 0)\n", inv.name.c_str());
    } else if (inv.held()) {
      std::printf("  ok    %s\n", inv.name.c_str());
    } else {
      std::printf("  FAIL  %s: %llu violation(s)\n", inv.name.c_str(),
                  static_cast<unsigned long long>(inv.violations));
      for (const auto& e : inv.examples) std::printf("        - %s\n", e.c_str());
    }
  }
}

// Writes the trace as JSON Lines.
class TraceFile {
 public:
  explicit TraceFile(const std::string& path) : out_(path) {
    if (!out_) throw UsageError{"--trace: cannot write '" + path + "'"};
  }
  void write(const sim::TraceEntry& e) {
    JsonWriter j;
    j.begin_object();
    j.key("i").value(e.index);
    j.key("t_us").value(e.at_us);
    j.key("kind").value(sim::trace_kind_name(e.kind));
    j.key("bus").value(sim::bus_name(e.bus));
    j.key("client").value(e.client);
    j.key("topic").value(e.topic);
    j.key("event_id").value(e.event_id);
    j.key("hash").value(to_hex64(e.hash_after));
    j.end_object();
    out_ << j.str() << '\n';
  }

 private:
  std::ofstream out_;
};

Qos parse_qos(const std::string& text) {
  if (text == "0") return Qos::kAtMostOnce;
  if (text == "1") return Qos::kAtLeastOnce;
  throw UsageError{"--qos must be 0 or 1 (got '" + text + "')"};
}

void parse_seeds(const std::string& text, SimCommand& c) {
  c.many = true;
  const auto dots = text.find("..");
  if (dots == std::string::npos) {
    const std::int64_t n = parse_int64("--seeds", text);
    if (n < 1) throw UsageError{"--seeds must be >= 1 (got " + text + ")"};
    c.last_seed = c.first_seed + static_cast<std::uint64_t>(n) - 1;
    if (c.last_seed < c.first_seed) throw UsageError{"--seeds: the range overflows"};
    return;
  }
  c.first_seed = parse_uint64("--seeds", text.substr(0, dots));
  c.last_seed = parse_uint64("--seeds", text.substr(dots + 2));
  if (c.last_seed < c.first_seed) throw UsageError{"--seeds A..B needs A <= B (got " + text + ")"};
}

int print_bug_list() {
  std::cout << "Bug variants (eventmart sim --bug NAME):\n";
  for (const sim::BugInfo& b : sim::all_bugs()) {
    std::cout << "  " << b.name << "\n      " << b.what
              << "\n      caught by: " << b.expected_caught << "\n";
  }
  return 0;
}

int run_many(const SimCommand& c) {
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const std::uint64_t total = c.last_seed - c.first_seed + 1;
  std::uint64_t done = 0, failing = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const std::vector<SeedOutcome> outcomes =
      run_seeds(c.plan, c.first_seed, c.last_seed, c.jobs, [&](const SeedOutcome& o) {
        ++done;
        if (!o.passed()) ++failing;
        if (tty) {
          std::fprintf(stderr, "\r  seeds %llu/%llu  %.1f seeds/s  %llu failing ",
                       static_cast<unsigned long long>(done),
                       static_cast<unsigned long long>(total),
                       static_cast<double>(done) / std::max(elapsed(), 1e-9),
                       static_cast<unsigned long long>(failing));
        }
      });
  if (tty) std::fprintf(stderr, "\n");
  const double wall = elapsed();

  std::vector<const SeedOutcome*> failed;
  std::map<std::string, std::uint64_t> failed_by;
  std::uint64_t lost = 0, qos0 = 0;
  for (const SeedOutcome& o : outcomes) {
    lost += lost_departures(o);
    if (o.result.history.at_most_once) ++qos0;
    if (o.passed()) continue;
    failed.push_back(&o);
    for (const std::string& name : o.failures()) ++failed_by[name];
  }
  if (c.json) {
    JsonWriter j;
    j.begin_object();
    j.key("seeds").value(total);
    j.key("first_seed").value(c.first_seed);
    j.key("last_seed").value(c.last_seed);
    j.key("jobs").value(static_cast<std::int64_t>(c.jobs));
    j.key("wall_seconds").value_fixed(wall, 3);
    j.key("seeds_per_second").value_fixed(static_cast<double>(total) / wall, 2);
    j.key("qos0_seeds").value(qos0);
    j.key("lost_departures").value(lost);
    j.key("failing").value(static_cast<std::uint64_t>(failed.size()));
    j.key("failed_by").begin_object();
    for (const auto& [name, n] : failed_by) j.key(name).value(n);
    j.end_object();
    j.key("failing_seeds").begin_array();
    for (const SeedOutcome* o : failed) {
      j.begin_object();
      j.key("seed").value(o->seed);
      j.key("failures").begin_array();
      for (const std::string& name : o->failures()) j.value(name);
      j.end_array();
      j.key("replay").value(replay_command(c.plan, o->seed));
      j.end_object();
    }
    j.end_array();
    j.end_object();
    std::cout << j.str() << "\n";
  } else {
    std::printf("eventmart sim: %llu seeds (%llu..%llu) in %.2f s on %u threads, %.1f seeds/s\n",
                static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(c.first_seed),
                static_cast<unsigned long long>(c.last_seed), wall, c.jobs,
                static_cast<double>(total) / wall);
    if (qos0 > 0) {
      std::printf(
          "  %llu seeds ran at QoS 0; %llu departures lost there (expected, not a violation)\n",
          static_cast<unsigned long long>(qos0), static_cast<unsigned long long>(lost));
    }
    std::printf("  %zu failing\n", failed.size());
    for (const auto& [name, n] : failed_by) {
      std::printf("    %-28s %llu seed(s)\n", name.c_str(), static_cast<unsigned long long>(n));
    }
    const std::size_t shown = std::min<std::size_t>(failed.size(), 20);
    for (std::size_t i = 0; i < shown; ++i) {
      std::string names;
      for (const std::string& n : failed[i]->failures()) names += (names.empty() ? "" : ", ") + n;
      std::printf("  seed %llu: %s\n    %s\n", static_cast<unsigned long long>(failed[i]->seed),
                  names.c_str(), replay_command(c.plan, failed[i]->seed).c_str());
      if (!failed[i]->deterministic) std::printf("    %s\n", failed[i]->determinism_report.c_str());
    }
    if (failed.size() > shown) std::printf("  ... and %zu more\n", failed.size() - shown);
  }
  return failed.empty() ? 0 : 1;
}

}  // namespace

int run_sim_command(const std::vector<std::string>& args) {
  po::options_description run_desc(
      "Usage: eventmart sim [options]\n\n"
      "Runs store days of the five services on the deterministic in-memory bus under a virtual\n"
      "clock, with faults injected while the store is open (chaos), none after closing (heal),\n"
      "then runs until quiescent and checks the business invariants. A run is a pure function\n"
      "of its options: the same seed gives the same trace hash on every machine.\n\n"
      "Exit status: 0 every invariant held, 1 an invariant was violated (the report names it\n"
      "and the command that replays the run), 2 bad usage.\n\nRun options");
  std::string seed = "1", customers = "2000", products = "100", hours = "12";
  std::string qos = "1", drop = "0", dup = "0", reorder = "0", delay_ms = "0", partition = "0",
              crash = "0", broker_restart = "0", faults = "none", seeds, bug = "none", jobs;
  run_desc.add_options()("help", "print this help and exit")(
      "seed", po::value(&seed)->value_name("N"),
      "root seed of every random stream in the run, 0..2^64-1 (default 1); with --seeds N, "
      "the first seed")("customers", po::value(&customers)->value_name("N"),
                        "customer visits over the day, 0..10000000 (default 2000)")(
      "products", po::value(&products)->value_name("N"),
      "catalog size, 1..1000000 (default 100); the first 100 are the default store's "
      "products, more are generated from the seed")(
      "hours", po::value(&hours)->value_name("H"),
      "opening hours in which customers arrive and faults happen, 1/60..168 (default 12)")(
      "json", "print one JSON object on stdout instead of the readable report");
  po::options_description fault_desc("Faults (while the store is open)");
  fault_desc.add_options()(
      "qos", po::value(&qos)->value_name("0|1"),
      "MQTT QoS of every publish (default 1). At 0 a lost message is gone: departures never "
      "paid are counted as lost, not as violations")(
      "drop", po::value(&drop)->value_name("P"),
      "probability that a packet (PUBLISH or PUBACK, either direction) is lost; at QoS 1 it "
      "is retransmitted after 5 s")(
      "dup", po::value(&dup)->value_name("P"),
      "probability that a PUBLISH arrives twice (the copy with the DUP flag)")(
      "reorder", po::value(&reorder)->value_name("P"),
      "probability that a packet is held back 1..50 ms, so later ones overtake it")(
      "delay-ms", po::value(&delay_ms)->value_name("MEAN"),
      "extra exponential delay per packet with this mean, in milliseconds (0..60000)")(
      "partition", po::value(&partition)->value_name("P"),
      "probability per service per virtual minute of being cut off from the broker for "
      "1 s..5 min")(
      "crash", po::value(&crash)->value_name("P"),
      "probability per service per virtual minute that its process dies (between events, "
      "or inside its next transaction before or after the commit); it restarts on its "
      "database after 1..60 s")(
      "broker-restart", po::value(&broker_restart)->value_name("P"),
      "probability per virtual minute that the store's broker restarts (down 1..30 s; "
      "sessions and queued QoS 1 messages persist)")(
      "faults", po::value(&faults)->value_name("none|swarm"),
      "swarm: each seed draws its own fault mix and QoS (overrides the flags above)");
  po::options_description harness_desc("Harness");
  harness_desc.add_options()(
      "seeds", po::value(&seeds)->value_name("N|A..B"),
      "run N seeds starting at --seed, or seeds A to B; prints a summary with the command "
      "that replays each failing seed; exit 1 if any failed")(
      "jobs", po::value(&jobs)->value_name("N"),
      "worker threads for --seeds (default: the number of cores); each run stays "
      "single-threaded")(
      "trace", po::value<std::string>()->value_name("FILE"),
      "write every publish, delivery, acknowledgement, confirmation and fault of the run as "
      "JSON Lines with its virtual time (one seed only)")(
      "check-determinism",
      "run each seed twice; on a mismatch, print the first trace entry "
      "where the two runs differ")(
      "bug", po::value(&bug)->value_name("NAME"),
      "run a deliberately broken service variant to watch the harness catch it; 'list' "
      "names them");
  po::options_description desc;
  desc.add(run_desc).add(fault_desc).add(harness_desc);

  SimCommand c;
  try {
    po::variables_map vm;
    // Long options only, so that a negative value ("--customers -5") reaches our check.
    const int style = po::command_line_style::unix_style ^ po::command_line_style::allow_short;
    po::store(po::command_line_parser(args).options(desc).style(style).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    if (bug == "list") return print_bug_list();
    c.json = vm.count("json") > 0;
    sim::SimOptions& o = c.plan.base;
    c.first_seed = c.last_seed = o.seed = parse_uint64("--seed", seed);
    o.customers = parse_int64("--customers", customers);
    o.products = parse_int64("--products", products);
    const double h = parse_double("--hours", hours);
    if (!(h > 0) || h > 168) {
      throw UsageError{"--hours must be more than 0 and at most 168 (got " + hours + ")"};
    }
    o.open_duration_us = std::llround(h * static_cast<double>(sim::kHourUs));
    o.faults.qos = parse_qos(qos);
    o.faults.drop_probability = parse_double("--drop", drop);
    o.faults.duplicate_probability = parse_double("--dup", dup);
    o.faults.reorder_probability = parse_double("--reorder", reorder);
    o.faults.delay_mean_us = std::llround(parse_double("--delay-ms", delay_ms) * 1000);
    o.faults.partition_per_minute = parse_double("--partition", partition);
    o.faults.crash_per_minute = parse_double("--crash", crash);
    o.faults.broker_restart_per_minute = parse_double("--broker-restart", broker_restart);
    if (faults == "swarm") {
      c.plan.swarm = true;
    } else if (faults != "none") {
      throw UsageError{"--faults must be 'none' or 'swarm' (got '" + faults + "')"};
    }
    auto parsed_bug = sim::parse_bug(bug);
    if (!parsed_bug) throw UsageError{"--bug: no bug named '" + bug + "' (try --bug list)"};
    o.bug = *parsed_bug;
    c.plan.check_determinism = vm.count("check-determinism") > 0;
    if (!seeds.empty()) parse_seeds(seeds, c);
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    c.jobs = jobs.empty() ? cores : static_cast<unsigned>(parse_int64("--jobs", jobs));
    if (c.jobs < 1 || c.jobs > 256) throw UsageError{"--jobs must be between 1 and 256"};
    if (vm.count("trace")) {
      c.trace_file = vm["trace"].as<std::string>();
      if (c.many) throw UsageError{"--trace writes one run: it cannot go with --seeds"};
    }
    if (std::string error = sim::validate(o); !error.empty()) throw UsageError{error};
  } catch (const po::error& e) {
    std::cerr << "eventmart sim: " << e.what() << "\nTry 'eventmart sim --help'.\n";
    return 2;
  } catch (const UsageError& e) {
    std::cerr << "eventmart sim: " << e.message << "\nTry 'eventmart sim --help'.\n";
    return 2;
  }

  if (c.many) return run_many(c);

  std::unique_ptr<TraceFile> trace;
  try {
    if (!c.trace_file.empty()) trace = std::make_unique<TraceFile>(c.trace_file);
  } catch (const UsageError& e) {
    std::cerr << "eventmart sim: " << e.message << "\n";
    return 2;
  }
  const SeedOutcome outcome =
      run_seed(c.plan, c.first_seed,
               trace ? std::function<void(const sim::TraceEntry&)>(
                           [&](const sim::TraceEntry& e) { trace->write(e); })
                     : nullptr);
  if (c.json) {
    print_json(c, outcome);
  } else {
    print_report(c, outcome);
  }
  for (const std::string& name : outcome.failures()) {
    std::cerr << "eventmart sim: " << name << " violated (seed " << outcome.seed
              << "); replay with: " << replay_command(c.plan, outcome.seed) << "\n";
  }
  return outcome.passed() ? 0 : 1;
}

}  // namespace eventmart::apps
