#include "apps/sim_command.h"

#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "apps/json_writer.h"
#include "apps/options.h"
#include "core/event_id.h"
#include "properties/invariants.h"
#include "sim/world.h"

namespace po = boost::program_options;

namespace eventmart::apps {
namespace {

struct SimCommand {
  sim::SimOptions options;
  double hours = 12;
  bool json = false;
};

std::string replay_command(const SimCommand& c) {
  std::ostringstream out;
  out << "eventmart sim --seed " << c.options.seed << " --customers " << c.options.customers
      << " --products " << c.options.products << " --hours " << c.hours;
  return out.str();
}

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

void print_json(const SimCommand& c, const sim::SimResult& r,
                const std::vector<properties::InvariantResult>& invariants, double wall_seconds) {
  const sim::SimStats& s = r.stats;
  JsonWriter j;
  j.begin_object();
  j.key("seed").value(c.options.seed);
  j.key("customers").value(s.customers);
  j.key("products").value(c.options.products);
  j.key("hours").value_fixed(c.hours, 3);
  j.key("arrivals").value(s.arrivals);
  j.key("departures").value(s.departures);
  j.key("payments").value(s.payments);
  j.key("revenue_cents").value(s.revenue_cents);
  j.key("units_sold").value(s.units_sold);
  j.key("welcomes_shown").value(s.welcomes_shown);
  j.key("unknown_cards").value(s.unknown_cards);
  j.key("restocks_requested").value(s.restocks_requested);
  j.key("restocks_delivered").value(s.restocks_delivered);
  j.key("deliveries").value(s.deliveries);
  j.key("publishes").value(s.publishes);
  j.key("duplicates_detected").value(s.duplicates_detected);
  j.key("rejected_events").value(s.rejected_events);
  j.key("handler_failures").value(s.handler_failures);
  j.key("quiescent").value(r.history.quiescent);
  j.key("virtual_seconds").value_fixed(static_cast<double>(s.virtual_us) / 1e6, 6);
  j.key("wall_seconds").value_fixed(wall_seconds, 6);
  j.key("trace_hash").value(to_hex64(r.trace_hash));
  j.key("trace_entries").value(s.trace_entries);
  j.key("warnings").value(static_cast<std::int64_t>(r.warnings.size()));
  j.key("invariants").begin_object();
  for (const auto& inv : invariants) {
    j.key(inv.name).begin_object();
    j.key("held").value(inv.held());
    j.key("violations").value(inv.violations);
    j.key("examples").begin_array();
    for (const auto& e : inv.examples) j.value(e);
    j.end_array();
    j.end_object();
  }
  j.end_object();
  j.key("replay").value(replay_command(c));
  j.end_object();
  std::cout << j.str() << "\n";
}

void print_report(const SimCommand& c, const sim::SimResult& r,
                  const std::vector<properties::InvariantResult>& invariants, double wall_seconds) {
  const sim::SimStats& s = r.stats;
  const double compression =
      wall_seconds > 0 ? static_cast<double>(s.virtual_us) / 1e6 / wall_seconds : 0;
  std::printf("eventmart sim: seed %llu, %lld customers, %lld products, open %.2f h\n",
              static_cast<unsigned long long>(c.options.seed), static_cast<long long>(s.customers),
              static_cast<long long>(c.options.products), c.hours);
  std::printf("  store day   %s of virtual time in %.3f s of wall time (%.0fx)\n",
              duration_text(s.virtual_us).c_str(), wall_seconds, compression);
  std::printf("  customers   %lld arrived (%lld unknown cards), %lld departed with %lld units\n",
              static_cast<long long>(s.arrivals), static_cast<long long>(s.unknown_cards),
              static_cast<long long>(s.departures), static_cast<long long>(s.units_sold));
  std::printf("  payments    %lld due, revenue %s\n", static_cast<long long>(s.payments),
              cents_to_text(s.revenue_cents).c_str());
  std::printf("  restocks    %lld requested, %lld delivered\n",
              static_cast<long long>(s.restocks_requested),
              static_cast<long long>(s.restocks_delivered));
  std::printf("  bus         %lld publishes, %lld deliveries, %lld duplicates detected\n",
              static_cast<long long>(s.publishes), static_cast<long long>(s.deliveries),
              static_cast<long long>(s.duplicates_detected));
  std::printf("  trace       %s (%lld entries)\n", to_hex64(r.trace_hash).c_str(),
              static_cast<long long>(s.trace_entries));
  if (!r.warnings.empty()) {
    std::printf("  warnings    %zu (first: %s)\n", r.warnings.size(), r.warnings.front().c_str());
  }
  std::printf("invariants\n");
  for (const auto& inv : invariants) {
    if (inv.held()) {
      std::printf("  ok    %s\n", inv.name.c_str());
      continue;
    }
    std::printf("  FAIL  %s: %llu violation(s)\n", inv.name.c_str(),
                static_cast<unsigned long long>(inv.violations));
    for (const auto& e : inv.examples) std::printf("        - %s\n", e.c_str());
  }
}

}  // namespace

int run_sim_command(const std::vector<std::string>& args) {
  po::options_description desc(
      "Usage: eventmart sim [options]\n\n"
      "Runs one store day of the five services on the deterministic in-memory bus under a\n"
      "virtual clock, then checks the business invariants. The run is a pure function of its\n"
      "options: the same seed gives the same trace hash on every machine.\n\n"
      "Exit status: 0 every invariant held, 1 an invariant was violated (the report names it\n"
      "and the command that replays the run), 2 bad usage.\n\nOptions");
  std::string seed = "1", customers = "2000", products = "100", hours = "12";
  desc.add_options()("help", "print this help and exit")(
      "seed", po::value(&seed)->value_name("N"),
      "root seed of every random stream in the run, 0..2^64-1 (default 1)")(
      "customers", po::value(&customers)->value_name("N"),
      "customer visits over the day, 0..10000000 (default 2000)")(
      "products", po::value(&products)->value_name("N"),
      "catalog size, 1..1000000 (default 100); the first 100 are the default store's "
      "products, more are generated from the seed")(
      "hours", po::value(&hours)->value_name("H"),
      "opening hours in which customers arrive, 1/60..168, fractions allowed (default 12)")(
      "json", "print one JSON object on stdout instead of the readable report");

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
    c.json = vm.count("json") > 0;
    c.options.seed = parse_uint64("--seed", seed);
    c.options.customers = parse_int64("--customers", customers);
    c.options.products = parse_int64("--products", products);
    c.hours = parse_double("--hours", hours);
    if (!(c.hours > 0) || c.hours > 168) {
      throw UsageError{"--hours must be more than 0 and at most 168 (got " + hours + ")"};
    }
    c.options.open_duration_us = std::llround(c.hours * static_cast<double>(sim::kHourUs));
    if (std::string error = sim::validate(c.options); !error.empty()) throw UsageError{error};
  } catch (const po::error& e) {
    std::cerr << "eventmart sim: " << e.what() << "\nTry 'eventmart sim --help'.\n";
    return 2;
  } catch (const UsageError& e) {
    std::cerr << "eventmart sim: " << e.message << "\nTry 'eventmart sim --help'.\n";
    return 2;
  }

  const auto started = std::chrono::steady_clock::now();
  const sim::SimResult result = sim::run_simulation(c.options);
  const double wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto invariants = properties::check_all(result.history);

  if (c.json) {
    print_json(c, result, invariants, wall_seconds);
  } else {
    print_report(c, result, invariants, wall_seconds);
  }
  bool held = true;
  for (const auto& inv : invariants) {
    if (inv.held()) continue;
    held = false;
    std::cerr << "eventmart sim: invariant " << inv.name << " violated (seed " << c.options.seed
              << "); replay with: " << replay_command(c) << "\n";
  }
  if (result.stats.handler_failures > 0) {
    held = false;
    std::cerr << "eventmart sim: " << result.stats.handler_failures << " handler failure(s) (seed "
              << c.options.seed << "); replay with: " << replay_command(c) << "\n";
  }
  return held ? 0 : 1;
}

}  // namespace eventmart::apps
