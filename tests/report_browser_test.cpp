// The HTML report (`--html`) in a real browser: headless Chromium (Debian's `chromium`)
// opens the report of a failing bug-zoo day and of a passing day. A test fails on any console
// message (the page logs nothing when it works: an exception shows up here), and asserts on
// the page as laid out by the browser: the lanes, the number of violations, the first
// violation's event id on the first screen. The page reports its own layout when opened with
// #probe (the element boxes, read with getBoundingClientRect). Screenshots are written to
// report-screenshots/ in the build folder for people to look at.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "report/html_report.h"
#include "report/sim_report.h"
#include "runs/localizer.h"
#include "runs/seed_runner.h"
#include "tests/chromium.h"

namespace eventmart::report {
namespace {

using runs::run_seed;
using runs::RunPlan;
using runs::SeedOutcome;

namespace fs = std::filesystem;

const fs::path kOut = fs::path(EVENTMART_BINARY_DIR) / "report-screenshots";
constexpr int kWidth = 1400, kHeight = 1000;

using Browser = test::BrowserRun;

Browser open_in_chromium(const std::string& url, const fs::path& screenshot = {}) {
  return test::run_chromium(url, kOut, std::to_string(kWidth) + "," + std::to_string(kHeight),
                            screenshot);
}

std::string unescape_html(std::string s) {
  const std::pair<std::string, std::string> entities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}};
  for (const auto& [from, to] : entities) {
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + 1)) {
      s.replace(at, from.size(), to);
    }
  }
  return s;
}

// The page's #probe report: what the browser laid out.
using Json = nlohmann::json;

Json probe_of(const Browser& b) {
  const std::string open = "<pre id=\"probe\">";
  const auto from = b.dom.find(open);
  if (from == std::string::npos) return Json{};
  const auto to = b.dom.find("</pre>", from);
  if (to == std::string::npos) return Json{};
  Json parsed = Json::parse(
      unescape_html(b.dom.substr(from + open.size(), to - from - open.size())), nullptr, false);
  return parsed.is_discarded() ? Json{} : parsed;
}

// Runs one simulated day and writes its report; returns the path.
fs::path write_report(const RunPlan& plan, std::uint64_t seed, const std::string& name,
                      SeedOutcome& outcome) {
  TimelineRecorder timeline(sim::kStoreOpensAtUs);
  outcome = run_seed(plan, seed, [&](const sim::TraceEntry& e) { timeline.add(e); });
  fs::create_directories(kOut);
  const fs::path path = kOut / (name + ".html");
  write_html_report(path.string(), sim_html_report(plan, outcome, timeline));
  return path;
}

std::uint64_t violations_of(const SeedOutcome& o) {
  std::uint64_t n = 0;
  for (const auto& inv : o.invariants) n += inv.violations;
  return n;
}

const std::vector<std::string> kServiceLanes = {
    "entrance scanner",   "gateway-guardian", "hello-helper",    "gate scanner",
    "gate-exit-guardian", "inventory-intel",  "fastlane-finale", "store broker",
    "logistics broker",   "logistics"};

void expect_lanes(const Json& probe) {
  std::vector<std::string> lanes;
  for (const auto& l : probe.at("lanes")) lanes.push_back(l.get<std::string>());
  for (const std::string& want : kServiceLanes) {
    EXPECT_NE(std::find(lanes.begin(), lanes.end(), want), lanes.end()) << "no lane " << want;
  }
}

TEST(ReportInBrowser, AFailingBugZooDayOpensAtItsFirstViolation) {
  RunPlan plan;
  plan.base.customers = 2000;
  plan.base.bug = sim::Bug::kNoDedup;
  plan.swarm = true;
  SeedOutcome outcome;
  const fs::path page = write_report(plan, 1, "failing-no-dedup", outcome);
  ASSERT_FALSE(outcome.passed()) << "seed 1 of the no-dedup swarm is expected to fail";
  const auto size = fs::file_size(page);
  std::printf("failing 2,000-customer report: %.2f MB\n", static_cast<double>(size) / 1e6);

  const Browser b = open_in_chromium("file://" + page.string() + "#probe");
  ASSERT_EQ(b.status, 0) << "chromium failed";
  EXPECT_TRUE(b.console.empty()) << "console: " << b.console.front();
  const Json probe = probe_of(b);
  ASSERT_TRUE(probe.is_object()) << "the page wrote no probe: its script did not finish";
  std::printf("rendered in %.0f ms (navigation start to the page's end of script)\n",
              probe.at("ready_ms").get<double>());
  expect_lanes(probe);
  EXPECT_EQ(probe.at("violations").get<std::uint64_t>(), violations_of(outcome));
  EXPECT_EQ(probe.at("invariant_rows").get<std::size_t>(), outcome.invariants.size());

  // The first violation's event: named in the page, and on the first screen.
  const properties::InvariantResult* first = nullptr;
  for (const auto& inv : outcome.invariants) {
    if (!inv.held()) {
      first = &inv;
      break;
    }
  }
  ASSERT_NE(first, nullptr);
  const std::string event_id = first->evidence.at(0).event_id;
  ASSERT_FALSE(event_id.empty()) << "the first violation names no event: " << first->examples[0];
  const Json& box = probe.at("first_violation_event");
  ASSERT_TRUE(box.is_object()) << "the page shows no first violation event";
  EXPECT_EQ(box.at("text").get<std::string>(), event_id);
  const auto [vw, vh] =
      std::pair(probe.at("viewport").at(0).get<double>(), probe.at("viewport").at(1).get<double>());
  EXPECT_GE(box.at("top").get<double>(), 0);
  EXPECT_LE(box.at("bottom").get<double>(), vh) << "below the first screen";
  EXPECT_GE(box.at("left").get<double>(), 0);
  EXPECT_LE(box.at("right").get<double>(), vw);
  // The timeline opened at the violation: its line drawn, its event's entries highlighted.
  EXPECT_GE(probe.at("first_violation_lines").get<int>(), 1);
  EXPECT_GT(probe.at("highlighted_entries").get<int>(), 0);
  EXPECT_GT(probe.at("stock_lines").get<int>(), 0);

  const fs::path png = kOut / "failing-no-dedup.png";
  fs::remove(png);
  const Browser shot = open_in_chromium("file://" + page.string(), png);
  EXPECT_TRUE(shot.console.empty()) << "console: " << shot.console.front();
  EXPECT_TRUE(fs::exists(png) && fs::file_size(png) > 10'000) << png;
}

// sim --localize --html: the curve under the timeline, one point per checkpoint, the interval
// shaded on both, the verdict above the curve; the page opens on the whole day.
TEST(ReportInBrowser, ALocalizedRunShowsItsCurveAndInterval) {
  runs::LocalizeOptions l;
  l.plan.base.customers = 300;
  l.plan.base.faults.crash_per_minute = 0.002;
  l.plan.base.bug = sim::Bug::kNoOutbox;
  l.seed = 1;  // fastlane-finale dies after a commit at 19:35:15 (tests/localizer_test.cpp)
  l.futures = 24;
  const runs::Localization localization = runs::localize(l);
  ASSERT_EQ(localization.verdict, runs::Localization::Verdict::kInterval);
  TimelineRecorder timeline(sim::kStoreOpensAtUs);
  const SeedOutcome outcome =
      run_seed(l.plan, l.seed, [&](const sim::TraceEntry& e) { timeline.add(e); });
  fs::create_directories(kOut);
  const fs::path page = kOut / "localized.html";
  write_html_report(page.string(), sim_html_report(l.plan, outcome, timeline, &localization));

  const Browser b = open_in_chromium("file://" + page.string() + "#probe");
  ASSERT_EQ(b.status, 0) << "chromium failed";
  EXPECT_TRUE(b.console.empty()) << "console: " << b.console.front();
  const Json probe = probe_of(b);
  ASSERT_TRUE(probe.is_object()) << "the page wrote no probe: its script did not finish";
  EXPECT_EQ(probe.at("curve_points").get<std::size_t>(), localization.curve.size());
  EXPECT_EQ(probe.at("curve_bands").get<int>(), 1);
  EXPECT_EQ(probe.at("timeline_bands").get<int>(), 1) << "the whole day is in view";
  EXPECT_NE(probe.at("curve_text").get<std::string>().find("became likely between 19:3"),
            std::string::npos)
      << probe.at("curve_text");
  ASSERT_TRUE(probe.at("curve_box").is_object());
  EXPECT_GT(probe.at("curve_box").at("right").get<double>() -
                probe.at("curve_box").at("left").get<double>(),
            400)
      << "the curve is drawn as wide as the timeline";

  const fs::path png = kOut / "localized.png";
  fs::remove(png);
  const Browser shot = open_in_chromium("file://" + page.string(), png);
  EXPECT_TRUE(fs::exists(png) && fs::file_size(png) > 10'000) << png;
}

TEST(ReportInBrowser, APassingDayShowsEveryLaneAndNoViolation) {
  RunPlan plan;
  plan.base.customers = 500;
  plan.base.faults.partition_per_minute = 0.01;  // some outages to draw
  plan.base.faults.crash_per_minute = 0.01;
  plan.base.faults.duplicate_probability = 0.05;
  SeedOutcome outcome;
  const fs::path page = write_report(plan, 3, "passing", outcome);
  ASSERT_TRUE(outcome.passed());
  const Browser b = open_in_chromium("file://" + page.string() + "#probe");
  ASSERT_EQ(b.status, 0) << "chromium failed";
  EXPECT_TRUE(b.console.empty()) << "console: " << b.console.front();
  const Json probe = probe_of(b);
  ASSERT_TRUE(probe.is_object()) << "the page wrote no probe: its script did not finish";
  expect_lanes(probe);
  EXPECT_EQ(probe.at("violations").get<int>(), 0);
  EXPECT_TRUE(probe.at("first_violation_event").is_null());
  EXPECT_EQ(probe.at("first_violation_lines").get<int>(), 0);
  EXPECT_NE(probe.at("verdict").at("text").get<std::string>().find("held"), std::string::npos);
  // The whole day: too many entries for arrows, drawn as density; the outages as bands.
  EXPECT_GT(probe.at("density_bars").get<int>(), 0);
  EXPECT_GT(probe.at("outage_bands").get<int>(), 0);
  EXPECT_EQ(probe.at("rate_lines").get<int>(), 2);
  EXPECT_GT(probe.at("latency_bars").get<int>(), 0);

  const fs::path png = kOut / "passing.png";
  fs::remove(png);
  const Browser shot = open_in_chromium("file://" + page.string(), png);
  EXPECT_TRUE(fs::exists(png) && fs::file_size(png) > 10'000) << png;
}

}  // namespace
}  // namespace eventmart::report
