#include "sim/scenario.h"

#include <algorithm>

namespace eventmart::sim {
namespace {

std::string minutes(std::int64_t us) {
  const std::int64_t seconds = us / 1'000'000;
  return std::to_string(seconds / 60) + "m" + (seconds % 60 < 10 ? "0" : "") +
         std::to_string(seconds % 60) + "s";
}

std::string ordinal(std::uint64_t n) {
  const std::uint64_t one_based = n + 1;
  const std::uint64_t tens = one_based % 100;
  const char* suffix = (tens >= 11 && tens <= 13) ? "th"
                       : one_based % 10 == 1      ? "st"
                       : one_based % 10 == 2      ? "nd"
                       : one_based % 10 == 3      ? "rd"
                                                  : "th";
  return std::to_string(one_based) + suffix;
}

}  // namespace

std::string_view packet_leg_name(memory::PacketKind leg) {
  switch (leg) {
    case memory::PacketKind::kPublish:
      return "publish from";
    case memory::PacketKind::kPuback:
      return "puback to";
    case memory::PacketKind::kDeliver:
      return "delivery to";
    case memory::PacketKind::kDeliverAck:
      return "delivery ack from";
  }
  return "packet of";
}

std::int64_t Scenario::open_duration_us() const {
  std::int64_t last = 0;
  for (const ScenarioVisit& v : visits) last = std::max(last, v.arrives_at_us);
  for (const ScheduledCrash& c : crashes) last = std::max(last, c.at_us);
  return last + 60'000'000;  // one more minute, and at least one
}

void print(const Scenario& s, std::ostream& os) {
  os << "scenario (" << s.size() << " events, QoS " << (s.qos == Qos::kAtLeastOnce ? 1 : 0)
     << ")\n  store:";
  for (const Product& p : s.products) {
    os << " [sku " << p.sku << ": " << p.price_cents << "c, stock " << p.stock << ", restock "
       << p.restock_quantity << " below " << p.restock_threshold << "]";
  }
  os << "\n";
  for (const ScenarioVisit& v : s.visits) {
    os << "  visit: customer " << v.customer_id << " arrives +" << minutes(v.arrives_at_us)
       << ", shops " << minutes(v.shopping_us) << ", wants";
    if (v.wanted.empty()) os << " nothing";
    for (const LineItem& item : v.wanted) os << " sku " << item.sku << " x" << item.quantity;
    os << "\n";
  }
  for (const PacketFault& f : s.packet_faults) {
    os << "  fault: " << ordinal(f.nth) << " " << packet_leg_name(f.leg) << " " << f.client
       << (f.bus == BusId::kLogistics ? " (logistics bus) " : " ")
       << (f.kind == PacketFault::Kind::kDrop ? "dropped"
           : f.kind == PacketFault::Kind::kDuplicate
               ? "duplicated"
               : "delayed " + std::to_string(f.delay_us) + "us")
       << "\n";
  }
  for (const ScheduledCrash& c : s.crashes) {
    os << "  crash: " << c.service << " at +" << minutes(c.at_us) << ", "
       << (c.when == ScheduledCrash::When::kNow ? "between events"
           : c.when == ScheduledCrash::When::kBeforeCommit
               ? "in its next transaction, before the commit"
               : "in its next transaction, after the commit")
       << "\n";
  }
}

}  // namespace eventmart::sim
