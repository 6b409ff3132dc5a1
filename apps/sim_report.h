// How `eventmart sim` tells what happened: the readable report and the JSON object of one run,
// the summary of many seeds (readable or JSON), and the trace as JSON Lines.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include "apps/html_report.h"
#include "apps/seed_runner.h"

namespace eventmart::apps {

void print_report(const RunPlan& plan, const SeedOutcome& outcome);
void print_json(const RunPlan& plan, const SeedOutcome& outcome);

// The HTML report of one run (apps/html_report.h); `timeline` holds its trace.
HtmlReport sim_html_report(const RunPlan& plan, const SeedOutcome& outcome,
                           const TimelineRecorder& timeline);

struct SummaryRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  unsigned jobs = 1;
  double wall_seconds = 0;
};
void print_summary(const RunPlan& plan, const SeedSummary& summary, const SummaryRange& range,
                   bool json);

// Writes every trace entry of a run as one JSON object per line.
class TraceFile {
 public:
  // Throws UsageError when `path` cannot be written.
  explicit TraceFile(const std::string& path);
  void write(const sim::TraceEntry& e);
  // Flushes; "" when every entry was written, else what went wrong.
  std::string finish();

 private:
  std::string path_;
  std::ofstream out_;
  std::string error_;  // why the first write failed
};

}  // namespace eventmart::apps
