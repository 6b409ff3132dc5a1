#include "report/sim_report.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "core/event_id.h"
#include "report/json_writer.h"

namespace eventmart::report {

using runs::lost_departures;
using runs::replay_command;
using runs::RunPlan;
using runs::SeedOutcome;
using runs::SeedSummary;
namespace {

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
  j.key("publish_fail").value_fixed(f.publish_failure_probability, 6);
  j.key("power_loss").value_fixed(f.power_loss_per_minute, 6);
  j.key("io_error").value_fixed(f.io_error_probability, 6);
  j.key("disk_full").value_fixed(f.disk_full_per_minute, 6);
  j.key("durability").value(r.options.durability == Durability::kFull ? "full" : "normal");
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
  j.key("publishes_refused").value(c.publishes_refused);
  j.key("power_losses").value(c.power_losses);
  j.key("io_errors").value(c.io_errors);
  j.key("disk_full_windows").value(c.disk_full_windows);
  j.key("disk_full_refusals").value(c.disk_full_refusals);
  j.end_object();
}

void print_invariants(const SeedOutcome& o) {
  std::printf("invariants\n");
  for (const auto& inv : o.invariants) {
    if (!inv.checked) {
      std::printf("  --    %s (not checked at QoS 0)\n", inv.name.c_str());
    } else if (inv.held()) {
      std::printf("  ok    %s", inv.name.c_str());
      if (inv.dead_lettered > 0) {
        std::printf(" (%llu dead-lettered with a reason: visible, not a violation)",
                    static_cast<unsigned long long>(inv.dead_lettered));
      }
      std::printf("\n");
    } else {
      std::printf("  FAIL  %s: %llu violation(s)\n", inv.name.c_str(),
                  static_cast<unsigned long long>(inv.violations));
      for (const auto& e : inv.examples) std::printf("        - %s\n", e.c_str());
    }
  }
}

void print_faults(const sim::SimResult& r, const sim::SimStats& s, const sim::FaultCounts& f) {
  std::printf(
      "  faults      %lld dropped, %lld duplicated, %lld delayed, %lld reordered, %lld "
      "partitions, %lld crashes (%lld before commit, %lld after), %lld broker restarts, %lld "
      "publishes refused, %lld power losses, %lld I/O errors, %lld disk-full windows (%lld "
      "writes refused)\n",
      static_cast<long long>(f.dropped), static_cast<long long>(f.duplicated),
      static_cast<long long>(f.delayed), static_cast<long long>(f.reordered),
      static_cast<long long>(f.partitions), static_cast<long long>(f.crashes),
      static_cast<long long>(f.crashes_before_commit),
      static_cast<long long>(f.crashes_after_commit), static_cast<long long>(f.broker_restarts),
      static_cast<long long>(f.publishes_refused), static_cast<long long>(f.power_losses),
      static_cast<long long>(f.io_errors), static_cast<long long>(f.disk_full_windows),
      static_cast<long long>(f.disk_full_refusals));
  std::printf("  recovery    %lld redelivered after loss, %lld services restarted\n",
              static_cast<long long>(s.redelivered_after_loss),
              static_cast<long long>(s.crash_recoveries));
  if (r.options.faults.any_storage()) {
    std::printf(
        "  storage     durability %s; %lld handler failures from storage faults (rolled back, "
        "retried), %lld failed starts, %lld dead letters\n",
        r.options.durability == Durability::kFull ? "full" : "normal",
        static_cast<long long>(s.storage_failures), static_cast<long long>(s.failed_starts),
        static_cast<long long>(s.dead_letters));
  }
}

// How often the search reached each rare path of the real code, and in how many seeds.
void print_marks(const SeedSummary& summary) {
  std::printf("coverage marks                         hits      seeds\n");
  for (const MarkInfo& m : all_marks()) {
    const auto i = static_cast<std::size_t>(m.mark);
    std::printf("  %-34s %10llu %10llu%s\n", std::string(m.name).c_str(),
                static_cast<unsigned long long>(summary.mark_hits[i]),
                static_cast<unsigned long long>(summary.mark_seeds[i]),
                summary.mark_seeds[i] == 0 ? "   never reached" : "");
  }
}

}  // namespace

void print_json(const RunPlan& plan, const SeedOutcome& o) {
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
  j.key("storage_failures").value(s.storage_failures);
  j.key("failed_starts").value(s.failed_starts);
  j.key("dead_letters").begin_array();
  for (const sim::DeadLetter& d : r.history.dead_letters) {
    j.begin_object();
    j.key("service").value(d.service);
    j.key("event_id").value(d.event_id);
    j.key("type").value(event_type_name(d.type));
    j.key("reason").value(d.reason);
    j.key("applied_later").value(d.applied_later);
    j.end_object();
  }
  j.end_array();
  j.key("quiescent").value(r.history.quiescent);
  write_faults(j, r);
  j.key("virtual_seconds").value_fixed(static_cast<double>(s.virtual_us) / 1e6, 6);
  j.key("wall_seconds").value_fixed(o.wall_seconds, 6);
  j.key("trace_hash").value(to_hex64(r.trace_hash));
  j.key("trace_entries").value(s.trace_entries);
  if (plan.check_determinism) j.key("deterministic").value(o.deterministic);
  j.key("warnings").value(static_cast<std::int64_t>(r.warnings.size()));
  j.key("invariants").begin_object();
  for (const auto& inv : o.invariants) {
    j.key(inv.name).begin_object();
    j.key("held").value(inv.held());
    j.key("violations").value(inv.violations);
    j.key("dead_lettered").value(inv.dead_lettered);
    if (!inv.checked) j.key("checked").value(false);
    j.key("examples").begin_array();
    for (const auto& e : inv.examples) j.value(e);
    j.end_array();
    j.end_object();
  }
  j.end_object();
  j.key("replay").value(replay_command(plan, o.seed));
  j.end_object();
  std::cout << j.str() << "\n";
}

void print_report(const RunPlan& plan, const SeedOutcome& o) {
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
  if (r.options.faults.any()) print_faults(r, s, f);
  std::printf(
      "  trace       %s (%lld entries)%s\n", to_hex64(r.trace_hash).c_str(),
      static_cast<long long>(s.trace_entries),
      plan.check_determinism ? (o.deterministic ? ", deterministic" : ", NOT deterministic") : "");
  if (!o.deterministic) std::printf("    %s\n", o.determinism_report.c_str());
  if (!r.warnings.empty()) {
    std::printf("  warnings    %zu (first: %s)\n", r.warnings.size(), r.warnings.front().c_str());
  }
  print_invariants(o);
}

HtmlReport sim_html_report(const RunPlan& plan, const SeedOutcome& o,
                           const TimelineRecorder& timeline) {
  const sim::SimResult& r = o.result;
  const sim::SimStats& s = r.stats;
  const sim::FaultOptions& fo = r.options.faults;
  const sim::FaultCounts& f = s.faults;
  HtmlReport h;
  h.title =
      "eventmart sim: seed " + std::to_string(o.seed) + ", " + std::to_string(s.customers) +
      " customers" +
      (r.options.bug == sim::Bug::kNone ? ""
                                        : ", bug " + std::string(sim::bug_name(r.options.bug)));
  h.kind = "sim";
  h.replay = replay_command(plan, o.seed);
  h.origin_us = sim::kStoreOpensAtUs;
  h.duration_us = s.virtual_us;
  h.open_us = r.options.open_duration_us;
  const auto row = [&](const char* section, const char* label, const std::string& value) {
    h.rows.emplace_back(section, label, value);
  };
  const auto num = [](std::int64_t x) { return std::to_string(x); };
  row("run", "seed", std::to_string(o.seed));
  row("run", "customers", num(s.customers));
  row("run", "products",
      num(r.options.scenario ? static_cast<std::int64_t>(r.options.scenario->products.size())
                             : r.options.products));
  row("run", "open", duration_text(r.options.open_duration_us));
  row("run", "faults", plan.swarm ? "swarm (drawn from the seed)" : fo.any() ? "as given" : "none");
  row("run", "QoS", fo.qos == Qos::kAtLeastOnce ? "1" : "0");
  row("run", "durability", r.options.durability == Durability::kFull ? "full" : "normal");
  row("run", "bug", std::string(sim::bug_name(r.options.bug)));
  const std::pair<const char*, std::int64_t> counts[] = {
      {"dropped", f.dropped},
      {"duplicated", f.duplicated},
      {"delayed", f.delayed},
      {"reordered", f.reordered},
      {"partitions", f.partitions},
      {"crashes", f.crashes},
      {"... before commit", f.crashes_before_commit},
      {"... after commit", f.crashes_after_commit},
      {"broker restarts", f.broker_restarts},
      {"publishes refused", f.publishes_refused},
      {"power losses", f.power_losses},
      {"I/O errors", f.io_errors},
      {"disk-full windows", f.disk_full_windows},
      {"writes refused (full)", f.disk_full_refusals},
  };
  bool any = false;
  for (const auto& [label, n] : counts) {
    if (n == 0) continue;
    row("faults", label, num(n));
    any = true;
  }
  if (!any) row("faults", "none", "");
  row("outcome", "store day",
      duration_text(s.virtual_us) + " virtual in " + std::to_string(o.wall_seconds).substr(0, 5) +
          " s");
  row("outcome", "arrivals", num(s.arrivals) + " (" + num(s.unknown_cards) + " unknown cards)");
  row("outcome", "departures", num(s.departures) + " with " + num(s.units_sold) + " units");
  row("outcome", "payments", num(s.payments) + ", revenue " + cents_to_text(s.revenue_cents));
  row("outcome", "restocks",
      num(s.restocks_requested) + " ordered, " + num(s.restocks_delivered) + " delivered");
  row("outcome", "bus", num(s.publishes) + " publishes, " + num(s.deliveries) + " deliveries");
  row("outcome", "duplicates recognised", num(s.duplicates_detected));
  row("outcome", "redelivered after loss", num(s.redelivered_after_loss));
  row("outcome", "dead letters", num(s.dead_letters));
  row("outcome", "handler failures (bugs)", num(s.handler_failures));
  row("outcome", "quiescent", r.history.quiescent ? "yes" : "no");
  row("outcome", "trace", to_hex64(r.trace_hash) + " (" + num(s.trace_entries) + " entries)");
  h.invariants = o.invariants;
  h.history = &r.history;
  h.outages = r.outages;
  h.timeline = &timeline;
  return h;
}

void print_summary(const RunPlan& plan, const SeedSummary& summary, const SummaryRange& range,
                   bool json) {
  if (json) {
    JsonWriter j;
    j.begin_object();
    j.key("seeds").value(summary.seeds);
    j.key("first_seed").value(range.first);
    j.key("last_seed").value(range.last);
    j.key("jobs").value(static_cast<std::int64_t>(range.jobs));
    j.key("wall_seconds").value_fixed(range.wall_seconds, 3);
    j.key("seeds_per_second")
        .value_fixed(static_cast<double>(summary.seeds) / std::max(range.wall_seconds, 1e-9), 2);
    j.key("qos0_seeds").value(summary.qos0_seeds);
    j.key("lost_departures").value(summary.lost_departures);
    j.key("dead_letters").value(summary.dead_letters);
    j.key("dead_letter_seeds").value(summary.dead_letter_seeds);
    j.key("failing").value(summary.failing);
    j.key("failed_by").begin_object();
    for (const auto& [name, n] : summary.failed_by) j.key(name).value(n);
    j.end_object();
    j.key("marks").begin_object();
    for (const MarkInfo& m : all_marks()) {
      const auto i = static_cast<std::size_t>(m.mark);
      j.key(m.name).begin_object();
      j.key("hits").value(summary.mark_hits[i]);
      j.key("seeds").value(summary.mark_seeds[i]);
      j.end_object();
    }
    j.end_object();
    j.key("failing_seeds").begin_array();
    for (const SeedOutcome& o : summary.failing_examples) {
      j.begin_object();
      j.key("seed").value(o.seed);
      j.key("failures").begin_array();
      for (const std::string& name : o.failures()) j.value(name);
      j.end_array();
      j.key("replay").value(replay_command(plan, o.seed));
      j.end_object();
    }
    j.end_array();
    j.end_object();
    std::cout << j.str() << "\n";
    return;
  }
  std::printf("eventmart sim: %llu seeds (%llu..%llu) in %.2f s on %u threads, %.1f seeds/s\n",
              static_cast<unsigned long long>(summary.seeds),
              static_cast<unsigned long long>(range.first),
              static_cast<unsigned long long>(range.last), range.wall_seconds, range.jobs,
              static_cast<double>(summary.seeds) / std::max(range.wall_seconds, 1e-9));
  if (summary.qos0_seeds > 0) {
    std::printf(
        "  %llu seeds ran at QoS 0; %llu departures lost there (expected, not a violation)\n",
        static_cast<unsigned long long>(summary.qos0_seeds),
        static_cast<unsigned long long>(summary.lost_departures));
  }
  if (summary.dead_letters > 0) {
    std::printf(
        "  %llu dead letters in %llu seeds: events given up after every retry, each published "
        "with its reason (visible, not a violation)\n",
        static_cast<unsigned long long>(summary.dead_letters),
        static_cast<unsigned long long>(summary.dead_letter_seeds));
  }
  std::printf("  %llu failing\n", static_cast<unsigned long long>(summary.failing));
  for (const auto& [name, n] : summary.failed_by) {
    std::printf("    %-28s %llu seed(s)\n", name.c_str(), static_cast<unsigned long long>(n));
  }
  const std::size_t shown = std::min<std::size_t>(summary.failing_examples.size(), 20);
  for (std::size_t i = 0; i < shown; ++i) {
    const SeedOutcome& o = summary.failing_examples[i];
    std::string names;
    for (const std::string& n : o.failures()) names += (names.empty() ? "" : ", ") + n;
    std::printf("  seed %llu: %s\n    %s\n", static_cast<unsigned long long>(o.seed), names.c_str(),
                replay_command(plan, o.seed).c_str());
    if (!o.deterministic) std::printf("    %s\n", o.determinism_report.c_str());
  }
  if (summary.failing > shown) {
    std::printf("  ... and %llu more\n", static_cast<unsigned long long>(summary.failing - shown));
  }
  print_marks(summary);
}

TraceFile::TraceFile(const std::string& path) : path_(path), out_(path) {
  if (!out_) throw std::runtime_error("--trace: cannot write '" + path + "'");
}

std::string TraceFile::finish() {
  out_.flush();
  if (!out_ && error_.empty()) error_ = std::strerror(errno);
  if (error_.empty()) return "";
  return "--trace: writing '" + path_ + "' failed (" + error_ + "): the trace there is incomplete";
}

void TraceFile::write(const sim::TraceEntry& e) {
  if (!out_) return;  // failed already: finish() says so
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
  if (!out_) error_ = std::strerror(errno);  // the first failure's reason
}

}  // namespace eventmart::report
