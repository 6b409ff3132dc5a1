#include "report/html_report.h"

#include <algorithm>
#include <fstream>
#include <set>

namespace eventmart::report {

// The page (apps/report/report.html), embedded by CMake.
extern const char* const kReportTemplate;

namespace {

constexpr std::int64_t kMinuteUs = 60'000'000;
constexpr std::string_view kDataMarker = "/*EVENTMART_DATA*/";

// JSON inside a <script> element: no '<' may appear raw ("</script>" would end the element,
// "<!--<script" would switch the parser into a mode where the real end tag no longer ends
// it), and U+2028/2029 were line terminators in older JavaScript. JSON has '<', '>' and '&'
// only inside strings, where their \u escapes mean the same.
std::string script_safe(const std::string& json) {
  std::string out;
  out.reserve(json.size() + json.size() / 64);
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (json.compare(i, 3, "\xE2\x80\xA8") == 0) {
      out += "\\u2028";
      i += 2;
    } else if (json.compare(i, 3, "\xE2\x80\xA9") == 0) {
      out += "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

void write_invariants(JsonWriter& j, const HtmlReport& r) {
  j.key("invariants").begin_array();
  for (const properties::InvariantResult& inv : r.invariants) {
    j.begin_object();
    j.key("name").value(inv.name);
    j.key("held").value(inv.held());
    j.key("checked").value(inv.checked);
    j.key("violations").value(inv.violations);
    j.key("dead_lettered").value(inv.dead_lettered);
    j.key("lost").value(inv.lost);
    j.key("examples").begin_array();
    for (std::size_t i = 0; i < inv.examples.size(); ++i) {
      const properties::Evidence about =
          i < inv.evidence.size() ? inv.evidence[i] : properties::Evidence{};
      j.begin_object();
      j.key("what").value(inv.examples[i]);
      j.key("event_id").value(about.event_id);
      j.key("t").value(about.at_us < 0 ? std::int64_t{-1} : about.at_us - r.origin_us);
      j.key("sku").value(static_cast<std::int64_t>(about.sku));
      j.end_object();
    }
    j.end_array();
    j.end_object();
  }
  j.end_array();
}

void write_stock(JsonWriter& j, const HtmlReport& r) {
  const sim::History& h = *r.history;
  // Per product: its threshold and its level (stock - shortfall) after each commit.
  std::map<Sku, std::vector<std::int64_t>> levels;
  for (const sim::StockReading& s : h.stock_readings) {
    std::vector<std::int64_t>& v = levels[s.sku];
    v.push_back(s.at_us - r.origin_us);
    v.push_back(s.stock - s.shortfall);
  }
  j.key("stock").begin_array();
  for (const auto& [sku, points] : levels) {
    j.begin_object();
    j.key("sku").value(static_cast<std::int64_t>(sku));
    auto threshold = h.restock_threshold.find(sku);
    j.key("threshold")
        .value(threshold == h.restock_threshold.end() ? std::int64_t{-1} : threshold->second);
    j.key("points").begin_array();
    for (std::int64_t x : points) j.value(x);
    j.end_array();
    j.end_object();
  }
  j.end_array();
  // Restock orders as logistics saw them (first sight of each id), and deliveries.
  std::set<std::string> seen;
  j.key("restocks").begin_array();
  for (const sim::ObservedRestock& o : h.restocks) {
    if (!seen.insert(o.event_id).second) continue;
    j.begin_array().value(o.at_us - r.origin_us).value(static_cast<std::int64_t>(o.sku));
    j.value(o.event_id).end_array();
  }
  j.end_array();
  j.key("restock_deliveries").begin_array();
  for (const sim::RestockDelivery& d : h.restock_deliveries) {
    j.begin_array().value(d.at_us - r.origin_us).value(static_cast<std::int64_t>(d.sku));
    j.value(d.order_id).end_array();
  }
  j.end_array();
}

// Departure to its first PaymentDue, in microseconds; departures never paid counted apart.
void write_latency(JsonWriter& j, const HtmlReport& r) {
  const sim::History& h = *r.history;
  std::map<std::string, std::int64_t> first_paid;
  for (const sim::ObservedPayment& p : h.payments) {
    auto [it, fresh] = first_paid.emplace(p.departure_event_id, p.at_us);
    if (!fresh) it->second = std::min(it->second, p.at_us);
  }
  std::vector<std::int64_t> latency;
  std::int64_t unpaid = 0;
  for (const sim::DepartureTruth& d : h.departures) {
    auto it = d.event_id.empty() ? first_paid.end() : first_paid.find(d.event_id);
    if (it == first_paid.end()) {
      ++unpaid;
    } else {
      latency.push_back(std::max<std::int64_t>(0, it->second - d.at_us));
    }
  }
  std::sort(latency.begin(), latency.end());
  j.key("latency_us").begin_array();
  for (std::int64_t x : latency) j.value(x);
  j.end_array();
  j.key("unpaid").value(unpaid);
}

}  // namespace

std::int64_t TimelineRecorder::intern(std::map<std::string, std::int64_t, std::less<>>& table,
                                      std::vector<std::string>& names, std::string_view name) {
  auto it = table.find(name);
  if (it != table.end()) return it->second;
  const auto ix = static_cast<std::int64_t>(names.size());
  names.emplace_back(name);
  table.emplace(std::string(name), ix);
  return ix;
}

void TimelineRecorder::add(const sim::TraceEntry& e) {
  add(e.at_us, e.kind, e.bus, e.client, e.topic, e.event_id);
}

void TimelineRecorder::add(std::int64_t at_us, sim::TraceKind kind, sim::BusId bus,
                           std::string_view client, std::string_view topic,
                           std::string_view event_id) {
  rows_.push_back(at_us - origin_us_);
  rows_.push_back(static_cast<std::int64_t>(kind));
  rows_.push_back(static_cast<std::int64_t>(bus));
  rows_.push_back(intern(client_ix_, clients_, client));
  rows_.push_back(intern(topic_ix_, topics_, topic));
  rows_.push_back(intern(id_ix_, ids_, event_id));
}

void TimelineRecorder::write(JsonWriter& j) const {
  j.key("kinds").begin_array();
  j.value("");  // kinds start at 1
  for (int k = 1; k <= static_cast<int>(sim::kLastTraceKind); ++k) {
    j.value(sim::trace_kind_name(static_cast<sim::TraceKind>(k)));
  }
  j.end_array();
  j.key("buses").begin_array().value("store").value("logistics").end_array();
  j.key("clients").begin_array();
  for (const std::string& s : clients_) j.value(s);
  j.end_array();
  j.key("topics").begin_array();
  for (const std::string& s : topics_) j.value(s);
  j.end_array();
  j.key("ids").begin_array();
  for (const std::string& s : ids_) j.value(s);
  j.end_array();
  j.key("trace").begin_array();
  for (std::int64_t x : rows_) j.value(x);
  j.end_array();
}

std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>>
TimelineRecorder::deliveries_per_minute() const {
  std::vector<std::int64_t> deliveries, copies;
  std::set<std::pair<std::int64_t, std::int64_t>> had;  // (client, id) delivered before
  for (std::size_t i = 0; i + kColumns <= rows_.size(); i += kColumns) {
    if (rows_[i + 1] != static_cast<std::int64_t>(sim::TraceKind::kDelivered)) continue;
    const auto minute = static_cast<std::size_t>(std::max<std::int64_t>(0, rows_[i]) / kMinuteUs);
    if (deliveries.size() <= minute) {
      deliveries.resize(minute + 1, 0);
      copies.resize(minute + 1, 0);
    }
    ++deliveries[minute];
    if (!had.emplace(rows_[i + 3], rows_[i + 5]).second) ++copies[minute];
  }
  return {deliveries, copies};
}

std::string render_html_report(const HtmlReport& r) {
  JsonWriter j;
  j.begin_object();
  j.key("title").value(r.title);
  j.key("kind").value(r.kind);
  j.key("replay").value(r.replay);
  j.key("origin_us").value(r.origin_us);
  j.key("duration_us").value(r.duration_us);
  j.key("open_us").value(r.open_us);
  j.key("rows").begin_array();
  for (const auto& [section, label, value] : r.rows) {
    j.begin_array().value(section).value(label).value(value).end_array();
  }
  j.end_array();
  write_invariants(j, r);
  j.key("outages").begin_array();
  for (const sim::Outage& o : r.outages) {
    j.begin_array().value(sim::outage_kind_name(o.kind)).value(o.who);
    j.value(o.from_us - r.origin_us);
    j.value(o.until_us < 0 ? std::int64_t{-1} : o.until_us - r.origin_us);
    j.value(o.detail).end_array();
  }
  j.end_array();
  if (!r.curve.empty()) {
    j.key("curve").begin_array();
    for (const HtmlReport::CurvePoint& c : r.curve) {
      j.begin_array().value(c.at_us - r.origin_us).value(c.futures).value(c.failing).end_array();
    }
    j.end_array();
    j.key("localization").value(r.localization);
  }
  if (r.interval_from_us >= 0) {
    j.key("interval").begin_array();
    j.value(r.interval_from_us - r.origin_us).value(r.interval_to_us - r.origin_us);
    j.end_array();
  }
  if (r.history != nullptr) {
    write_stock(j, r);
    write_latency(j, r);
  }
  if (r.timeline != nullptr) {
    r.timeline->write(j);
    const auto [deliveries, copies] = r.timeline->deliveries_per_minute();
    j.key("deliveries_per_minute").begin_array();
    for (std::int64_t x : deliveries) j.value(x);
    j.end_array();
    j.key("duplicates_per_minute").begin_array();
    for (std::int64_t x : copies) j.value(x);
    j.end_array();
  }
  j.end_object();

  const std::string page = kReportTemplate;
  const std::size_t at = page.find(kDataMarker);
  if (at == std::string::npos) return page;  // the template lost its marker: a build error
  std::string out;
  const std::string data = script_safe(j.str());
  out.reserve(page.size() + data.size());
  out.append(page, 0, at);
  out += data;
  out.append(page, at + kDataMarker.size());
  return out;
}

void write_html_report(const std::string& path, const HtmlReport& report) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("--html: cannot write '" + path + "'");
  out << render_html_report(report);
  out.flush();
  if (!out) throw std::runtime_error("--html: writing '" + path + "' failed");
}

}  // namespace eventmart::report
