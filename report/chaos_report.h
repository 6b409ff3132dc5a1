// A chaos run (chaos/chaos.h) as the HTML report's page (report/html_report.h).
#pragma once

#include <string>

#include "chaos/chaos.h"
#include "report/html_report.h"

namespace eventmart::report {

// What the observer and the scanners saw, on the lanes of the services that produced it, and
// the fault schedule as bands. Times are from the start of the workload (wall clock). The
// events go to `timeline`, which the page refers to: it must outlive the page.
HtmlReport chaos_html_report(const chaos::ChaosResult& r, const chaos::ChaosOptions& o,
                             const std::string& replay, TimelineRecorder& timeline);

// The run as one JSON object (the shape of docs/schema/eventmart-output.schema.json, kind
// "chaos").
std::string chaos_json(const chaos::ChaosResult& r);

}  // namespace eventmart::report
