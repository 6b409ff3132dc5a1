#include "services/guardians.h"

#include "core/event_id.h"
#include "services/scan_logic.h"

namespace eventmart {
namespace {

ScanOutcome rejected(std::string why) {
  ScanOutcome outcome;
  outcome.kind = ScanOutcome::Kind::kRejected;
  outcome.error = std::move(why);
  return outcome;
}

ScanOutcome outcome_of(const std::string& event_id, const Consumption& consumed) {
  switch (consumed.outcome) {
    case Consumed::kApplied:
      return ScanOutcome{ScanOutcome::Kind::kAccepted, event_id, {}};
    case Consumed::kDuplicate:
      return ScanOutcome{ScanOutcome::Kind::kDuplicate, event_id, {}};
    case Consumed::kConflict:
    case Consumed::kRefused:
      break;
  }
  return rejected(consumed.reason);
}

}  // namespace

Result<CustomerId> Guardian::check_reading(const std::string& scan_id, const std::string& card) {
  using R = Result<CustomerId>;
  if (scan_id.empty()) {
    return R::error(
        "a reading without a scan id: a redelivery could not be told from a new "
        "reading");
  }
  R customer = parse_card(card);
  if (!customer) return R::error("scan '" + excerpt(scan_id, 40) + "': " + customer.error());
  if (Status s = check_id(scan_id, ctx_.limits.max_id_bytes, "scan id"); !s) {
    return R::error(s.error());
  }
  return customer;
}

ScanOutcome Guardian::refuse(std::string why) {
  ++stats_.rejected;
  mark(Mark::kGuardianRefusedReading);
  warn(why);
  return rejected(std::move(why));
}

GatewayGuardian::GatewayGuardian(const ServiceContext& context)
    : Guardian(kGatewayGuardian, context) {}

ScanOutcome GatewayGuardian::scan(const CardScan& reading) {
  const Result<CustomerId> customer = check_reading(reading.scan_id, reading.card);
  if (!customer) return refuse(customer.error());
  const CustomerArrival arrival{customer.value()};
  const std::string event_id = derive_event_id(reading.scan_id, name_);
  const Consumption consumed = consume_once(reading.scan_id, content_hash(arrival), [&] {
    emit(Channel::kStore, ctx_.topics.customer_arrival, EventType::kCustomerArrival, event_id,
         reading.scan_id, arrival);
  });
  return outcome_of(event_id, consumed);
}

GateExitGuardian::GateExitGuardian(const ServiceContext& context)
    : Guardian(kGateExitGuardian, context) {}

ScanOutcome GateExitGuardian::scan(const BagScan& reading) {
  const Result<CustomerId> customer = check_reading(reading.scan_id, reading.card);
  if (!customer) return refuse(customer.error());
  auto departed = departure_from_lines(customer.value(), reading.lines, ctx_.limits);
  if (!departed) return refuse("scan '" + reading.scan_id + "': " + departed.error());
  const std::string event_id = derive_event_id(reading.scan_id, name_);
  const Consumption consumed = consume_once(reading.scan_id, content_hash(departed.value()), [&] {
    emit(Channel::kStore, ctx_.topics.customer_departure, EventType::kCustomerDeparted, event_id,
         reading.scan_id, departed.value());
  });
  return outcome_of(event_id, consumed);
}

}  // namespace eventmart
