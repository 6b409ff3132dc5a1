// The two guardians turn device readings into events. A reading carries the device's own
// scan id, so a reading the device sends twice yields the same event id (the guardians
// journal scan ids like any inbox) and nothing downstream happens twice. The same scan id
// with other content (another card or bag) is refused as a conflict.
#pragma once

#include <string>
#include <vector>

#include "core/codec.h"
#include "services/service.h"

namespace eventmart {

struct ScanOutcome {
  enum class Kind { kAccepted, kDuplicate, kRejected };
  Kind kind = Kind::kRejected;
  std::string event_id;  // the event emitted (kAccepted) or emitted before (kDuplicate)
  std::string error;     // why the reading was rejected
};

// A scan id is the reading's identity (the inbox key): a valid id (core/limits.h), unique
// per reading and the same when the device sends the reading again. A reading without one
// is refused: nothing could tell its redelivery from a second customer.
struct CardScan {
  std::string scan_id;  // unique per reading, from the device ("entrance-1/42")
  std::string card;     // what the card reader read
};

// What the two guardians share: the checks of a reading before it becomes an event.
class Guardian : public Service {
 public:
  using Service::Service;
  void start() override { relay_.pump(); }

 protected:
  // The reading's customer, or why it cannot be taken (no scan id, an unreadable card, a scan id
  // that is not one).
  Result<CustomerId> check_reading(const std::string& scan_id, const std::string& card);
  // Counts, logs and answers a refused reading.
  ScanOutcome refuse(std::string why);
};

// Gateway Guardian: a loyalty-card scan at the entrance -> CustomerArrival.
class GatewayGuardian final : public Guardian {
 public:
  explicit GatewayGuardian(const ServiceContext& context);
  ScanOutcome scan(const CardScan& reading);
};

struct BagScan {
  std::string scan_id;          // unique per reading, from the gate ("exit-1/42")
  std::string card;             // the customer's loyalty card
  std::vector<LineItem> lines;  // (sku, units) as the gate read them; a sku may repeat
};

// Gate-exit Guardian: the checkout gate's scan of the bag -> CustomerDeparted.
class GateExitGuardian final : public Guardian {
 public:
  explicit GateExitGuardian(const ServiceContext& context);
  ScanOutcome scan(const BagScan& reading);
};

}  // namespace eventmart
