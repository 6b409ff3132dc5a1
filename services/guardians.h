// The two guardians turn device readings into events. A reading carries the device's own
// scan id, so a reading the device sends twice yields the same event id (the guardians
// journal scan ids like any inbox) and nothing downstream happens twice.
#pragma once

#include <string>
#include <vector>

#include "services/service.h"

namespace eventmart {

struct ScanOutcome {
  enum class Kind { kAccepted, kDuplicate, kRejected };
  Kind kind = Kind::kRejected;
  std::string event_id;  // the event emitted (kAccepted) or emitted before (kDuplicate)
  std::string error;     // why the reading was rejected
};

struct CardScan {
  std::string scan_id;  // unique per reading, from the device ("entrance-1/42")
  std::string card;     // what the card reader read
};

// Gateway Guardian: a loyalty-card scan at the entrance -> CustomerArrival.
class GatewayGuardian final : public Service {
 public:
  explicit GatewayGuardian(const ServiceContext& context);
  void start() override { relay_.pump(); }
  ScanOutcome scan(const CardScan& reading);
};

struct BagScan {
  std::string scan_id;     // unique per reading, from the gate ("exit-1/42")
  std::string card;        // the customer's loyalty card
  std::vector<Sku> units;  // one sku per unit in the bag
};

// Gate-exit Guardian: the checkout gate's scan of the bag -> CustomerDeparted.
class GateExitGuardian final : public Service {
 public:
  explicit GateExitGuardian(const ServiceContext& context);
  void start() override { relay_.pump(); }
  ScanOutcome scan(const BagScan& reading);
};

}  // namespace eventmart
