// The HTML report's data is inlined in a <script> element: whatever a run holds (an event id
// from the bus, a file name), it cannot end that element or switch the HTML parser's mode.
#include "report/html_report.h"

#include <gtest/gtest.h>

#include <string>

namespace eventmart::report {
namespace {

std::string data_of(const std::string& page) {
  const std::string open = "<script id=\"eventmart-data\" type=\"application/json\">";
  const auto from = page.find(open);
  if (from == std::string::npos) return {};
  const auto to = page.find("</script>", from);
  return page.substr(from + open.size(), to - from - open.size());
}

TEST(HtmlReport, RunDataCannotEndOrBreakItsScriptElement) {
  HtmlReport r;
  r.title = "t </script><script>alert(1)</script>";
  r.replay = "eventmart sim --scenario 'x<!--<script>.json'";
  r.rows.emplace_back("run", "a & b", "\xE2\x80\xA8 line separator > here");
  TimelineRecorder timeline(0);
  timeline.add(5, sim::TraceKind::kDelivered, sim::BusId::kStore, "hello-helper", "t/</script>",
               "id<!--<script>");
  r.timeline = &timeline;
  const std::string page = render_html_report(r);
  const std::string data = data_of(page);
  ASSERT_FALSE(data.empty());
  EXPECT_EQ(data.find('<'), std::string::npos) << "a raw '<' in the data";
  EXPECT_EQ(data.find('>'), std::string::npos);
  EXPECT_EQ(data.find('&'), std::string::npos);
  EXPECT_EQ(data.find("\xE2\x80\xA8"), std::string::npos);
  // ... and the text itself is all there, escaped.
  EXPECT_NE(data.find("id\\u003c!--\\u003cscript\\u003e"), std::string::npos) << data;
  EXPECT_NE(data.find("\\u2028 line separator \\u003e here"), std::string::npos);
}

TEST(HtmlReport, ThePageFetchesNothingAndHasItsDataMarkerFilled) {
  const std::string page = render_html_report(HtmlReport{});
  EXPECT_EQ(page.find("/*EVENTMART_DATA*/"), std::string::npos);
  EXPECT_EQ(page.find(" src="), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_EQ(page.find("http://"), page.find("http://www.w3.org/2000/svg"));  // the SVG namespace
}

}  // namespace
}  // namespace eventmart::report
