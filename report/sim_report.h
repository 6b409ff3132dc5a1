// How `eventmart sim` tells what happened: the readable report and the JSON object of one run,
// the summary of many seeds (readable or JSON), and the trace as JSON Lines.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include "report/html_report.h"
#include "runs/explorer.h"
#include "runs/seed_runner.h"

namespace eventmart::report {

void print_report(const runs::RunPlan& plan, const runs::SeedOutcome& outcome);
void print_json(const runs::RunPlan& plan, const runs::SeedOutcome& outcome);

// The HTML report of one run (apps/html_report.h); `timeline` holds its trace.
HtmlReport sim_html_report(const runs::RunPlan& plan, const runs::SeedOutcome& outcome,
                           const TimelineRecorder& timeline);

struct SummaryRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  unsigned jobs = 1;
  double wall_seconds = 0;
};
void print_summary(const runs::RunPlan& plan, const runs::SeedSummary& summary,
                   const SummaryRange& range, bool json);

// What an exploration (`eventmart explore`) came to, readable or as one JSON object.
void print_exploration(const runs::ExploreOptions& options, const runs::ExploreSummary& summary,
                       bool json);

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
