// `--html FILE`: one self-contained HTML file per run (inline CSS, JS and SVG; nothing
// fetched) with a summary, a timeline of every message and outage in virtual time, the
// violations linked to the events behind them, and charts of stock, payment latency and
// deliveries. The page is apps/report/report.html with the run's data inlined as JSON.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "properties/invariants.h"
#include "report/json_writer.h"
#include "sim/faults.h"
#include "sim/history.h"
#include "sim/trace.h"

namespace eventmart::report {

// A run's trace, kept compactly for the report: names in tables, six numbers an entry.
class TimelineRecorder {
 public:
  // Times are kept relative to `origin_us` (opening time).
  explicit TimelineRecorder(std::int64_t origin_us) : origin_us_(origin_us) {}

  void add(const sim::TraceEntry& e);
  // Adds an entry by name (for runs without a simulated trace, such as chaos).
  void add(std::int64_t at_us, sim::TraceKind kind, sim::BusId bus, std::string_view client,
           std::string_view topic, std::string_view event_id);

  std::size_t size() const { return rows_.size() / kColumns; }
  std::int64_t origin_us() const { return origin_us_; }
  // Writes "kinds", "clients", "topics", "ids" and "trace" (flat: t, kind, bus, client,
  // topic, id per entry) into the open object.
  void write(JsonWriter& j) const;
  // Deliveries per minute, and how many of them were a copy of one the client already had.
  std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> deliveries_per_minute() const;

 private:
  static constexpr std::size_t kColumns = 6;
  static std::int64_t intern(std::map<std::string, std::int64_t, std::less<>>& table,
                             std::vector<std::string>& names, std::string_view name);

  std::int64_t origin_us_;
  std::vector<std::int64_t> rows_;
  std::map<std::string, std::int64_t, std::less<>> client_ix_, topic_ix_, id_ix_;
  std::vector<std::string> clients_, topics_, ids_;
};

// What a report shows; the command fills it from its own run.
struct HtmlReport {
  std::string title;             // "eventmart sim: seed 7, 2000 customers"
  std::string kind;              // "sim" or "chaos"
  std::string replay;            // the command that replays the run
  std::int64_t origin_us = 0;    // opening time (virtual or wall), in microseconds
  std::int64_t duration_us = 0;  // from opening to the end of the run
  std::int64_t open_us = 0;      // how long the store was open (faults happen then)
  // Readable rows: (section, label, value). Sections: "run", "faults", "outcome".
  std::vector<std::tuple<std::string, std::string, std::string>> rows;
  std::vector<properties::InvariantResult> invariants;
  const sim::History* history = nullptr;
  std::vector<sim::Outage> outages;
  const TimelineRecorder* timeline = nullptr;
  // sim --localize: futures failing again per checkpoint, and the interval where it jumped.
  struct CurvePoint {
    std::int64_t at_us;  // absolute, as origin_us
    std::uint64_t futures;
    std::uint64_t failing;
  };
  std::vector<CurvePoint> curve;
  std::int64_t interval_from_us = -1, interval_to_us = -1;  // -1: none
  std::string localization;                                 // the verdict, one line
};

// Writes the page. Throws std::runtime_error when `path` cannot be written.
void write_html_report(const std::string& path, const HtmlReport& report);

// The page with the data inlined (what write_html_report writes).
std::string render_html_report(const HtmlReport& report);

}  // namespace eventmart::report
