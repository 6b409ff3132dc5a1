#include "services/guardians.h"

#include "core/event_id.h"
#include "services/scan_logic.h"

namespace eventmart {
namespace {

ScanOutcome scanned(const std::string& event_id, bool consumed) {
  ScanOutcome outcome;
  outcome.kind = consumed ? ScanOutcome::Kind::kAccepted : ScanOutcome::Kind::kDuplicate;
  outcome.event_id = event_id;
  return outcome;
}

ScanOutcome rejected(std::string why) {
  ScanOutcome outcome;
  outcome.kind = ScanOutcome::Kind::kRejected;
  outcome.error = std::move(why);
  return outcome;
}

}  // namespace

GatewayGuardian::GatewayGuardian(const ServiceContext& context)
    : Service(kGatewayGuardian, context) {}

ScanOutcome GatewayGuardian::scan(const CardScan& reading) {
  if (reading.scan_id.empty()) return rejected("card scan without a scan id");
  auto customer = parse_card(reading.card);
  if (!customer) {
    ++stats_.rejected;
    warn("scan '" + reading.scan_id + "': " + customer.error());
    return rejected(customer.error());
  }
  const std::string event_id = derive_event_id(reading.scan_id, name_);
  const bool consumed = consume_once(reading.scan_id, [&] {
    emit(Channel::kStore, ctx_.topics.customer_arrival, EventType::kCustomerArrival, event_id,
         reading.scan_id, CustomerArrival{customer.value()});
  });
  return scanned(event_id, consumed);
}

GateExitGuardian::GateExitGuardian(const ServiceContext& context)
    : Service(kGateExitGuardian, context) {}

ScanOutcome GateExitGuardian::scan(const BagScan& reading) {
  if (reading.scan_id.empty()) return rejected("bag scan without a scan id");
  auto customer = parse_card(reading.card);
  if (!customer) {
    ++stats_.rejected;
    warn("scan '" + reading.scan_id + "': " + customer.error());
    return rejected(customer.error());
  }
  auto departed = departure_from_units(customer.value(), reading.units);
  if (!departed) {
    ++stats_.rejected;
    warn("scan '" + reading.scan_id + "': " + departed.error());
    return rejected(departed.error());
  }
  const std::string event_id = derive_event_id(reading.scan_id, name_);
  const bool consumed = consume_once(reading.scan_id, [&] {
    emit(Channel::kStore, ctx_.topics.customer_departure, EventType::kCustomerDeparted, event_id,
         reading.scan_id, departed.value());
  });
  return scanned(event_id, consumed);
}

}  // namespace eventmart
