// How `eventmart sim` tells what happened: the readable report and the JSON object of one run,
// the summary of many seeds (readable or JSON), and the trace as JSON Lines.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include "report/html_report.h"
#include "runs/explorer.h"
#include "runs/localizer.h"
#include "runs/seed_runner.h"

namespace eventmart::report {

void print_report(const runs::RunPlan& plan, const runs::SeedOutcome& outcome);
void print_json(const runs::RunPlan& plan, const runs::SeedOutcome& outcome);

// The HTML report of one run (apps/html_report.h); `timeline` holds its trace.
// With a localization (sim --localize), its curve under the timeline.
HtmlReport sim_html_report(const runs::RunPlan& plan, const runs::SeedOutcome& outcome,
                           const TimelineRecorder& timeline,
                           const runs::Localization* localization = nullptr);

struct SummaryRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  unsigned jobs = 1;
  double wall_seconds = 0;
  runs::Shard shard = {};           // the share of first..last that ran (all of it: 1/1)
  std::uint64_t merged_shards = 0;  // > 0: the summary of that many merged shard files
};
void print_summary(const runs::RunPlan& plan, const runs::SeedSummary& summary,
                   const SummaryRange& range, bool json);

// Where a run's failure became inevitable (`sim --localize`), readable or as one JSON object.
void print_localization(const runs::RunPlan& plan, std::uint64_t seed,
                        const runs::Localization& localization, bool json);

// What an exploration (`eventmart explore`) came to, readable or as one JSON object;
// `merged_shards` > 0: the summary of that many merged shard files (eventmart merge).
void print_exploration(const runs::ExploreOptions& options, const runs::ExploreSummary& summary,
                       bool json, std::uint64_t merged_shards = 0);

// Writes every trace entry of a run as one JSON object per line.
class TraceFile {
 public:
  // Throws std::runtime_error when `path` cannot be written.
  explicit TraceFile(const std::string& path);
  void write(const sim::TraceEntry& e);
  // Flushes; "" when every entry was written, else what went wrong.
  std::string finish();

 private:
  std::string path_;
  std::ofstream out_;
  std::string error_;  // why the first write failed
};

}  // namespace eventmart::report
