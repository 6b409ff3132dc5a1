#include "report/sim_report.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "core/event_id.h"
#include "report/json_writer.h"
#include "report/run_json.h"

namespace eventmart::report {

using runs::lost_departures;
using runs::replay_command;
using runs::RunPlan;
using runs::SeedOutcome;
using runs::SeedSummary;
namespace {

std::string cents_to_text(std::int64_t cents) {
  return fmt::format("{}{}.{:02}", cents < 0 ? "-" : "", std::llabs(cents) / 100,
                     std::llabs(cents) % 100);
}

std::string duration_text(std::int64_t us) {
  const std::int64_t minutes = us / sim::kMinuteUs;
  return fmt::format("{}h{:02}m", minutes / 60, minutes % 60);
}

void write_faults(JsonWriter& j, const sim::SimResult& r) {
  const sim::FaultOptions& f = r.options.faults;
  j.key("fault_options").begin_object();
  j.key("qos").value(f.qos == Qos::kAtLeastOnce ? 1 : 0);
  for (const sim::FaultKnob& knob : sim::fault_knobs()) {
    j.key(knob.key).value_fixed(knob.get(f), knob.decimals);
  }
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
  j.key("long_outages").value(c.long_outages);
  j.end_object();
  j.key("knobs").begin_object();
  for (const sim::KnobInfo& k : sim::knob_table()) j.key(k.key).value(r.options.knobs.*k.field);
  j.end_object();
}

void print_invariants(const SeedOutcome& o) {
  fmt::print("invariants\n");
  for (const auto& inv : o.invariants) {
    if (!inv.checked) {
      fmt::print("  --    {} (not checked at QoS 0)\n", inv.name);
    } else if (inv.held()) {
      fmt::print("  ok    {}", inv.name);
      if (inv.dead_lettered > 0) {
        fmt::print(" ({} dead-lettered with a reason: visible, not a violation)",
                   inv.dead_lettered);
      }
      fmt::print("\n");
    } else {
      fmt::print("  FAIL  {}: {} violation(s)\n", inv.name, inv.violations);
      for (const auto& e : inv.examples) fmt::print("        - {}\n", e);
    }
  }
}

void print_faults(const sim::SimResult& r, const sim::SimStats& s, const sim::FaultCounts& f) {
  fmt::print(
      "  faults      {} dropped, {} duplicated, {} delayed, {} reordered, {} partitions, {} "
      "crashes ({} before commit, {} after), {} broker restarts, {} publishes refused, {} power "
      "losses, {} I/O errors, {} disk-full windows ({} writes refused), {} long outages\n",
      f.dropped, f.duplicated, f.delayed, f.reordered, f.partitions, f.crashes,
      f.crashes_before_commit, f.crashes_after_commit, f.broker_restarts, f.publishes_refused,
      f.power_losses, f.io_errors, f.disk_full_windows, f.disk_full_refusals, f.long_outages);
  if (!r.history.expected_losses.empty()) {
    fmt::print(
        "  expiry      {} messages lost with sessions that expired while their service was "
        "down (visible, not a violation)\n",
        r.history.expected_losses.size());
  }
  fmt::print("  recovery    {} redelivered after loss, {} services restarted\n",
             s.redelivered_after_loss, s.crash_recoveries);
  if (r.options.faults.any_storage()) {
    fmt::print(
        "  storage     durability {}; {} handler failures from storage faults (rolled back, "
        "retried), {} failed starts, {} dead letters\n",
        r.options.durability == Durability::kFull ? "full" : "normal", s.storage_failures,
        s.failed_starts, s.dead_letters);
  }
}

// How often the search reached each rare path of the real code, and in how many seeds.
void print_marks(const SeedSummary& summary) {
  fmt::print("coverage marks                         hits      seeds\n");
  for (const MarkInfo& m : all_marks()) {
    const auto i = static_cast<std::size_t>(m.mark);
    fmt::print("  {:<34} {:10} {:10}{}\n", m.name, summary.mark_hits[i], summary.mark_seeds[i],
               summary.mark_seeds[i] == 0 ? "   never reached" : "");
  }
}

}  // namespace

void print_json(const RunPlan& plan, const SeedOutcome& o) {
  const sim::SimResult& r = o.result;
  const sim::SimStats& s = r.stats;
  JsonWriter j;
  j.begin_object();
  j.key("kind").value("sim");
  j.key("passed").value(o.passed());
  j.key("seed").value(o.seed);
  if (!o.could_not_go_on.empty()) j.key("could_not_go_on").value(o.could_not_go_on);
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
  write_dead_letters(j, r.history.dead_letters);
  j.key("expected_losses").value(static_cast<std::int64_t>(r.history.expected_losses.size()));
  j.key("quiescent").value(r.history.quiescent);
  write_faults(j, r);
  j.key("virtual_seconds").value_fixed(static_cast<double>(s.virtual_us) / 1e6, 6);
  j.key("wall_seconds").value_fixed(o.wall_seconds, 6);
  j.key("trace_hash").value(to_hex64(r.trace_hash));
  j.key("trace_entries").value(s.trace_entries);
  if (plan.check_determinism) j.key("deterministic").value(o.deterministic);
  j.key("warnings").value(static_cast<std::int64_t>(r.warnings.size()));
  if (!r.assertion.empty()) j.key("assertion").value(r.assertion);
  write_invariants(j, o.invariants);
  j.key("replay").value(replay_command(plan, o.seed));
  j.end_object();
  std::cout << j.str() << "\n";
}

void print_report(const RunPlan& plan, const SeedOutcome& o) {
  if (!o.could_not_go_on.empty()) {
    // No day to report: the world stopped mid-run.
    fmt::print("eventmart sim: seed {}: the run could not go on: {}\n", o.seed, o.could_not_go_on);
    return;
  }
  const sim::SimResult& r = o.result;
  const sim::SimStats& s = r.stats;
  const sim::FaultCounts& f = s.faults;
  const double compression =
      o.wall_seconds > 0 ? static_cast<double>(s.virtual_us) / 1e6 / o.wall_seconds : 0;
  fmt::print(
      "eventmart sim: seed {}, {} customers, {} products, open {:.2f} h{}{}\n", o.seed, s.customers,
      r.options.products, static_cast<double>(r.options.open_duration_us) / sim::kHourUs,
      r.options.bug == sim::Bug::kNone ? "" : ", bug ",
      r.options.bug == sim::Bug::kNone ? std::string() : std::string(sim::bug_name(r.options.bug)));
  fmt::print("  store day   {} of virtual time in {:.3f} s of wall time ({:.0f}x)\n",
             duration_text(s.virtual_us), o.wall_seconds, compression);
  fmt::print("  customers   {} arrived ({} unknown cards), {} departed with {} units\n", s.arrivals,
             s.unknown_cards, s.departures, s.units_sold);
  fmt::print("  payments    {} due, revenue {}", s.payments, cents_to_text(s.revenue_cents));
  if (r.history.at_most_once) {
    fmt::print(", {} departures lost (QoS 0)", lost_departures(o));
  }
  fmt::print("\n  restocks    {} requested, {} delivered\n", s.restocks_requested,
             s.restocks_delivered);
  fmt::print("  bus         QoS {}, {} publishes, {} deliveries, {} duplicates detected\n",
             r.options.faults.qos == Qos::kAtLeastOnce ? 1 : 0, s.publishes, s.deliveries,
             s.duplicates_detected);
  if (r.options.faults.any()) print_faults(r, s, f);
  if (const std::string knobs = sim::describe_changed(r.options.knobs); !knobs.empty()) {
    fmt::print("  knobs       {}\n", knobs);
  }
  fmt::print(
      "  trace       {} ({} entries){}\n", to_hex64(r.trace_hash), s.trace_entries,
      plan.check_determinism ? (o.deterministic ? ", deterministic" : ", NOT deterministic") : "");
  if (!o.deterministic) fmt::print("    {}\n", o.determinism_report);
  if (!r.assertion.empty()) {
    fmt::print(
        "  ASSERTION   {}\n              the run stopped there (virtual {}); its invariants "
        "are not checked\n",
        r.assertion, duration_text(s.virtual_us));
  }
  if (!r.warnings.empty()) {
    fmt::print("  warnings    {} (first: {})\n", r.warnings.size(), r.warnings.front());
  }
  print_invariants(o);
}

HtmlReport sim_html_report(const RunPlan& plan, const SeedOutcome& o,
                           const TimelineRecorder& timeline,
                           const runs::Localization* localization) {
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
  if (localization != nullptr) {
    const runs::Localization& l = *localization;
    for (const runs::Checkpoint& c : l.curve) {
      h.curve.push_back(HtmlReport::CurvePoint{c.at_us, c.futures, c.failing});
    }
    if (l.verdict == runs::Localization::Verdict::kInterval) {
      const runs::Checkpoint& a = l.curve[l.before];
      const runs::Checkpoint& b = l.curve[l.after];
      h.interval_from_us = a.at_us;
      h.interval_to_us = b.at_us;
      h.localization =
          "became likely between " + runs::clock_text(a.at_us) + " and " +
          runs::clock_text(b.at_us) + " (" + std::to_string(a.failing) + " of " +
          std::to_string(a.futures) + " futures fail again before, " + std::to_string(b.failing) +
          " of " + std::to_string(b.futures) +
          " after); a failing future: " + replay_command(plan, o.seed, l.failing_future.splits);
    } else {
      h.localization = l.verdict == runs::Localization::Verdict::kFromTheStart
                           ? "already likely at the first checkpoint: the day's plan decides it"
                           : "still unlikely at the last checkpoint before closing";
    }
  }
  return h;
}

void print_summary(const RunPlan& plan, const SeedSummary& summary, const SummaryRange& range,
                   bool json) {
  if (json) {
    JsonWriter j;
    j.begin_object();
    j.key("kind").value("seeds");
    j.key("passed").value(summary.failing == 0);
    j.key("seeds").value(summary.seeds);
    j.key("first_seed").value(range.first);
    j.key("last_seed").value(range.last);
    j.key("jobs").value(static_cast<std::int64_t>(range.jobs));
    if (range.shard.count > 1) {
      j.key("shard").value(range.shard.index);
      j.key("shards").value(range.shard.count);
    }
    if (range.merged_shards > 0) j.key("merged_shards").value(range.merged_shards);
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
    for (const runs::SeedRecord& o : summary.failing_examples) {
      j.begin_object();
      j.key("seed").value(o.seed);
      j.key("failures").begin_array();
      for (const std::string& name : o.failures) j.value(name);
      j.end_array();
      if (!o.assertion.empty()) j.key("assertion").value(o.assertion);
      if (!o.could_not_go_on.empty()) j.key("could_not_go_on").value(o.could_not_go_on);
      j.key("replay").value(replay_command(plan, o.seed));
      j.end_object();
    }
    j.end_array();
    j.end_object();
    std::cout << j.str() << "\n";
    return;
  }
  const std::string share =
      range.shard.count > 1     ? fmt::format(", shard {}/{}", range.shard.index, range.shard.count)
      : range.merged_shards > 0 ? fmt::format(", merged from {} shards", range.merged_shards)
                                : std::string();
  fmt::print("eventmart sim: {} seeds ({}..{}{}) in {:.2f} s on {} threads, {:.1f} seeds/s\n",
             summary.seeds, range.first, range.last, share, range.wall_seconds, range.jobs,
             static_cast<double>(summary.seeds) / std::max(range.wall_seconds, 1e-9));
  if (summary.qos0_seeds > 0) {
    fmt::print("  {} seeds ran at QoS 0; {} departures lost there (expected, not a violation)\n",
               summary.qos0_seeds, summary.lost_departures);
  }
  if (summary.dead_letters > 0) {
    fmt::print(
        "  {} dead letters in {} seeds: events given up after every retry, each published with its "
        "reason (visible, not a violation)\n",
        summary.dead_letters, summary.dead_letter_seeds);
  }
  fmt::print("  {} failing\n", summary.failing);
  for (const auto& [name, n] : summary.failed_by) {
    fmt::print("    {:<28} {} seed(s)\n", name, n);
  }
  const std::size_t shown = std::min<std::size_t>(summary.failing_examples.size(), 20);
  for (std::size_t i = 0; i < shown; ++i) {
    const runs::SeedRecord& o = summary.failing_examples[i];
    std::string names;
    for (const std::string& n : o.failures) names += (names.empty() ? "" : ", ") + n;
    fmt::print("  seed {}: {}\n    {}\n", o.seed, names, replay_command(plan, o.seed));
    if (!o.could_not_go_on.empty())
      fmt::print("    the run could not go on: {}\n", o.could_not_go_on);
    if (!o.assertion.empty()) fmt::print("    {}\n", o.assertion);
    if (!o.determinism_report.empty()) fmt::print("    {}\n", o.determinism_report);
  }
  if (summary.failing > shown) {
    fmt::print("  ... and {} more\n", summary.failing - shown);
  }
  print_marks(summary);
}

void print_exploration(const runs::ExploreOptions& options, const runs::ExploreSummary& s,
                       bool json, std::uint64_t merged_shards) {
  const RunPlan& plan = options.plan;
  std::size_t reached = 0;
  for (const std::uint64_t n : s.mark_timelines) reached += n > 0;
  if (json) {
    JsonWriter j;
    j.begin_object();
    j.key("kind").value("explore");
    j.key("passed").value(s.failing == 0);
    j.key("roots").value(s.roots);
    j.key("first_root").value(options.first_root);
    if (options.shard.count > 1) {
      j.key("shard").value(options.shard.index);
      j.key("shards").value(options.shard.count);
    }
    if (merged_shards > 0) j.key("merged_shards").value(merged_shards);
    j.key("timelines").value(s.timelines);
    j.key("splitpoints").value(s.splitpoints);
    j.key("max_depth").value(static_cast<std::int64_t>(s.max_depth));
    j.key("jobs").value(static_cast<std::int64_t>(options.jobs));
    j.key("wall_seconds").value_fixed(s.wall_seconds, 3);
    j.key("cpu_seconds").value_fixed(s.cpu_seconds, 3);
    if (s.cpu_to_first_failure >= 0) {
      j.key("cpu_seconds_to_first_failure").value_fixed(s.cpu_to_first_failure, 3);
    }
    j.key("failing").value(s.failing);
    j.key("failed_by").begin_object();
    for (const auto& [name, n] : s.failed_by) j.key(name).value(n);
    j.end_object();
    j.key("marks_reached").value(static_cast<std::uint64_t>(reached));
    j.key("marks").begin_object();
    for (const MarkInfo& m : all_marks()) {
      j.key(m.name).value(s.mark_timelines[static_cast<std::size_t>(m.mark)]);
    }
    j.end_object();
    j.key("failing_timelines").begin_array();
    for (const runs::ExploredFailure& f : s.failures) {
      j.begin_object();
      j.key("recipe").value(sim::to_string(f.recipe));
      j.key("trace_hash").value(to_hex64(f.trace_hash));
      j.key("failures").begin_array();
      for (const std::string& name : f.failures) j.value(name);
      j.end_array();
      if (!f.assertion.empty()) j.key("assertion").value(f.assertion);
      j.key("replay").value(replay_command(plan, f.recipe.seed, f.recipe.splits));
      j.end_object();
    }
    j.end_array();
    j.end_object();
    std::cout << j.str() << "\n";
    return;
  }
  fmt::print(
      "eventmart explore: {} timelines ({} roots from seed {}, {} children at {} splitpoints, "
      "depth up to {}{}) in {:.2f} s, {:.2f} CPU-s on {} workers\n",
      s.timelines, s.roots, options.first_root, s.timelines - std::min(s.timelines, s.roots),
      s.splitpoints, s.max_depth,
      options.shard.count > 1
          ? fmt::format(", shard {}/{}", options.shard.index, options.shard.count)
      : merged_shards > 0 ? fmt::format(", merged from {} shards", merged_shards)
                          : std::string(),
      s.wall_seconds, s.cpu_seconds, options.jobs);
  fmt::print("  marks reached: {} of {}\n", reached, kMarkCount);
  fmt::print("  {} failing\n", s.failing);
  for (const auto& [name, n] : s.failed_by) fmt::print("    {:<28} {} timeline(s)\n", name, n);
  if (s.cpu_to_first_failure >= 0) {
    fmt::print("  first failure after {:.2f} CPU-s\n", s.cpu_to_first_failure);
  }
  const std::size_t shown = std::min<std::size_t>(s.failures.size(), 20);
  for (std::size_t i = 0; i < shown; ++i) {
    const runs::ExploredFailure& f = s.failures[i];
    std::string names;
    for (const std::string& n : f.failures) names += (names.empty() ? "" : ", ") + n;
    fmt::print("  timeline {}: {}\n    {}\n", sim::to_string(f.recipe), names,
               replay_command(plan, f.recipe.seed, f.recipe.splits));
    if (!f.assertion.empty()) fmt::print("    {}\n", f.assertion);
  }
  if (s.failing > shown) fmt::print("  ... and {} more\n", s.failing - shown);
  fmt::print("coverage marks                         timelines\n");
  for (const MarkInfo& m : all_marks()) {
    const std::uint64_t n = s.mark_timelines[static_cast<std::size_t>(m.mark)];
    fmt::print("  {:<34} {:10}{}\n", m.name, n, n == 0 ? "   never reached" : "");
  }
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

void print_localization(const RunPlan& plan, std::uint64_t seed, const runs::Localization& l,
                        bool json) {
  using runs::clock_text;
  using Verdict = runs::Localization::Verdict;
  const auto percent = [](const runs::Checkpoint& c) {
    return static_cast<int>(std::lround(100 * c.fraction()));
  };
  const std::string run = plan.base.splits.empty()
                              ? std::to_string(seed)
                              : sim::to_string(sim::Recipe{seed, plan.base.splits});
  const std::string verdict = l.verdict == Verdict::kInterval       ? "interval"
                              : l.verdict == Verdict::kFromTheStart ? "from_the_start"
                                                                    : "not_before_closing";
  if (json) {
    JsonWriter j;
    j.begin_object();
    j.key("kind").value("localize");
    j.key("run").value(run);
    j.key("failures").begin_array();
    for (const std::string& f : l.failures) j.value(f);
    j.end_array();
    j.key("verdict").value(verdict);
    if (l.verdict == Verdict::kInterval) {
      const runs::Checkpoint& a = l.curve[l.before];
      const runs::Checkpoint& b = l.curve[l.after];
      j.key("from_us").value(a.at_us);
      j.key("to_us").value(b.at_us);
      j.key("from").value(clock_text(a.at_us));
      j.key("to").value(clock_text(b.at_us));
      j.key("width_seconds").value_fixed(static_cast<double>(b.at_us - a.at_us) / 1e6, 3);
      j.key("fraction_before").value_fixed(a.fraction(), 3);
      j.key("fraction_after").value_fixed(b.fraction(), 3);
      j.key("futures_before").value(static_cast<std::uint64_t>(a.futures));
      j.key("futures_after").value(static_cast<std::uint64_t>(b.futures));
      j.key("failing_future").value(sim::to_string(l.failing_future));
      j.key("replay").value(replay_command(plan, seed, l.failing_future.splits));
      if (l.next_fault) {
        j.key("next_fault").value(l.next_fault->text);
        j.key("next_fault_after_seconds")
            .value_fixed(static_cast<double>(l.next_fault_after_us) / 1e6, 3);
      }
      j.key("inside_total").value(l.inside_total);
      j.key("inside").begin_array();
      for (const runs::Localization::Entry& e : l.inside) j.value(e.text);
      j.end_array();
    }
    j.key("curve").begin_array();
    for (const runs::Checkpoint& c : l.curve) {
      j.begin_object();
      j.key("at_us").value(c.at_us);
      j.key("step").value(c.step);
      j.key("futures").value(static_cast<std::uint64_t>(c.futures));
      j.key("failing").value(static_cast<std::uint64_t>(c.failing));
      j.end_object();
    }
    j.end_array();
    j.key("futures_run").value(l.futures_run);
    j.key("cpu_seconds").value_fixed(l.cpu_seconds, 3);
    j.key("wall_seconds").value_fixed(l.wall_seconds, 3);
    j.end_object();
    std::cout << j.str() << "\n";
    return;
  }
  std::string failed;
  for (const std::string& f : l.failures) failed += (failed.empty() ? "" : ", ") + f;
  fmt::print("eventmart sim --localize: {} failed {}\n", run, failed);
  switch (l.verdict) {
    case Verdict::kInterval: {
      const runs::Checkpoint& a = l.curve[l.before];
      const runs::Checkpoint& b = l.curve[l.after];
      fmt::print(
          "  the failure became likely between {} and {} (from {}% of {} futures to {}% of {})\n",
          clock_text(a.at_us), clock_text(b.at_us), percent(a), a.futures, percent(b), b.futures);
      fmt::print("  inside it ({} trace entries{}):\n", l.inside_total,
                 l.inside_total > l.inside.size() ? fmt::format(", the first {}", l.inside.size())
                                                  : std::string());
      for (const runs::Localization::Entry& e : l.inside) fmt::print("    {}\n", e.text);
      if (l.next_fault) {
        fmt::print(
            "  then, {:.1f} s after it, the first fault drawn at a tick that strikes later:\n    "
            "{}\n",
            static_cast<double>(l.next_fault_after_us) / 1e6, l.next_fault->text);
      }
      fmt::print("  a future that fails again, from right after it:\n    {}\n",
                 replay_command(plan, seed, l.failing_future.splits));
      break;
    }
    case Verdict::kFromTheStart:
      fmt::print(
          "  already likely at the first checkpoint ({}: {}% of {} futures) and at every one after "
          "it: "
          "the day's plan (its "
          "visits and options) decides it, not a fault along the way\n",
          clock_text(l.curve.front().at_us), percent(l.curve.front()), l.curve.front().futures);
      break;
    case Verdict::kNotBeforeClosing:
      fmt::print(
          "  still unlikely at the last checkpoint ({}: {}% of {} futures): this failure needs "
          "this exact run's randomness up to closing\n",
          clock_text(l.curve.back().at_us), percent(l.curve.back()), l.curve.back().futures);
      break;
  }
  fmt::print("  futures failing again, by checkpoint:\n");
  for (std::size_t i = 0; i < l.curve.size(); ++i) {
    const runs::Checkpoint& c = l.curve[i];
    const bool end = l.verdict == Verdict::kInterval && (i == l.before || i == l.after);
    fmt::print("    {:>14}  {:>3}% of {:>4}  {}{}\n", clock_text(c.at_us), percent(c), c.futures,
               std::string(static_cast<std::size_t>(percent(c) / 5), '#'), end ? "  <" : "");
  }
  fmt::print("  {} checkpoints, {} futures, {:.1f} CPU-s, {:.1f} s\n", l.curve.size(),
             l.futures_run, l.cpu_seconds, l.wall_seconds);
}

}  // namespace eventmart::report
