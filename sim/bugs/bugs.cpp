#include "sim/bugs/bugs.h"

#include "sim/bugs/broken_services.h"

namespace eventmart::sim {

const std::vector<BugInfo>& all_bugs() {
  static const std::vector<BugInfo> bugs = {
      {Bug::kNoDedup, "no-dedup",
       "Inventory Intel skips its inbox, so a redelivered departure or replenishment is "
       "applied again",
       "inventory_matches_shelves (units counted out twice)"},
      {Bug::kAckBeforeCommit, "ack-before-commit",
       "Inventory Intel and Fastlane Finale acknowledge a delivery before their transaction "
       "commits, so a crash in between loses the event",
       "departure_paid_once (a departure never paid) or inventory_matches_shelves"},
      {Bug::kRestockEveryEvent, "restock-every-event",
       "Inventory Intel raises RestockNeeded on every sale below the threshold, not once per "
       "crossing",
       "restock_once_per_crossing"},
      {Bug::kNoOutbox, "no-outbox",
       "Inventory Intel and Fastlane Finale commit, then publish directly instead of through "
       "the outbox, so a crash between commit and publish loses the event",
       "departure_paid_once (a payment never sent) or restock_once_per_crossing"},
      {Bug::kFloatMoney, "float-money",
       "Fastlane Finale sums prices as double in currency units and truncates to cents",
       "payment_equals_basket"},
      {Bug::kSharedRestockId, "shared-restock-id",
       "Inventory Intel derives a restock order's event id from the departure alone, so two "
       "products crossing their threshold in one basket send orders with the same id and "
       "logistics treats the second as a duplicate",
       "restock_once_per_crossing (an order missing for one product) or no_product_left_short"},
      {Bug::kRelaySkipsFailed, "relay-skips-failed",
       "The outbox relay settles a row whose publish failed as if it had been confirmed, so "
       "the row is deleted with the next confirmed batch and never sent",
       "departure_paid_once (a payment never sent) or welcome_once_per_arrival"},
      {Bug::kNoSync, "no-sync",
       "Every service runs its database with synchronous=OFF: nothing is ever synced, so a "
       "power loss takes back commits whose messages the broker had already acknowledged "
       "(only storage faults can show it)",
       "inventory_matches_shelves (a sale or a delivery forgotten) or departure_paid_once"},
      {Bug::kCatchUpAcksEarly, "catch-up-acks-early",
       "Inventory Intel and Fastlane Finale take a delivery over three hours late as the sign of a "
       "backlog, and for five minutes after one acknowledge each delivery before its "
       "transaction commits, to keep the broker's window full; a crash inside a transaction "
       "then loses the event. Needs a machine back from hours down while the store is open, "
       "then a crash inside those five minutes",
       "departure_paid_once (a departure never paid) or inventory_matches_shelves", true},
      {Bug::kCatchUpDefersInbox, "catch-up-defers-inbox",
       "Inventory Intel takes a delivery over three hours late as the sign of a backlog, and for "
       "five minutes after one records each new event in its inbox in a transaction of its own "
       "after the commit that applied it, to keep the hot transaction short; a crash between "
       "the two commits leaves the event applied and unrecorded, and its redelivery is applied "
       "again. Needs a machine back from hours down, then a crash of Inventory Intel between "
       "those commits inside those five minutes",
       "inventory_matches_shelves (units counted out twice)", true},
      {Bug::kCatchUpSkipsSync, "catch-up-skips-sync",
       "Inventory Intel and Fastlane Finale take a delivery over three hours late as the sign of a "
       "backlog, and for two minutes after one run their database with synchronous=OFF to "
       "work it off faster; a power loss in those two minutes takes back commits whose "
       "deliveries were acknowledged. Needs a machine back from hours down, then a power loss "
       "inside those two minutes",
       "inventory_matches_shelves (a sale or a delivery forgotten), departure_paid_once, or "
       "handler_failures (a database the power loss left corrupt)",
       true},
      {Bug::kCatchUpHoldsRestocks, "catch-up-holds-restocks",
       "Inventory Intel takes a delivery over three hours late as the sign of a backlog, and while "
       "it works one off holds its restock orders in memory, to send them together when the "
       "catch-up ends a minute after the last late delivery; a crash before then loses them. "
       "Needs a machine back from hours down whose backlog crosses a threshold, then a crash "
       "before the catch-up is over",
       "restock_once_per_crossing (a crossing without its order)", true},
  };
  return bugs;
}

std::optional<Bug> parse_bug(std::string_view name) {
  if (name == "none") return Bug::kNone;
  for (const BugInfo& info : all_bugs()) {
    if (info.name == name) return info.bug;
  }
  return std::nullopt;
}

std::string_view bug_name(Bug bug) {
  for (const BugInfo& info : all_bugs()) {
    if (info.bug == bug) return info.name;
  }
  return "none";
}

namespace {

bool is_consumer(ServiceKind kind) {
  return kind == ServiceKind::kInventoryIntel || kind == ServiceKind::kFastlaneFinale;
}

class NoDedupVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "no-dedup"; }
  std::unique_ptr<Service> make(ServiceKind kind, const ServiceContext& context) const override {
    if (kind != ServiceKind::kInventoryIntel) return nullptr;
    return std::make_unique<NoDedup<InventoryIntel>>(context);
  }
};

class AckBeforeCommitVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "ack-before-commit"; }
  std::unique_ptr<Bus> wrap_bus(ServiceKind kind, Bus& bus) const override {
    if (!is_consumer(kind)) return nullptr;
    return std::make_unique<AckBeforeCommitBus>(bus);
  }
};

class RestockEveryEventVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "restock-every-event"; }
  std::unique_ptr<Service> make(ServiceKind kind, const ServiceContext& context) const override {
    if (kind != ServiceKind::kInventoryIntel) return nullptr;
    return std::make_unique<RestockEveryEventInventory>(context);
  }
};

class NoOutboxVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "no-outbox"; }
  std::unique_ptr<Service> make(ServiceKind kind, const ServiceContext& context) const override {
    if (kind == ServiceKind::kInventoryIntel) {
      return std::make_unique<NoOutbox<InventoryIntel>>(context);
    }
    if (kind == ServiceKind::kFastlaneFinale) {
      return std::make_unique<NoOutbox<FastlaneFinale>>(context);
    }
    return nullptr;
  }
};

class FloatMoneyVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "float-money"; }
  std::unique_ptr<Service> make(ServiceKind kind, const ServiceContext& context) const override {
    if (kind != ServiceKind::kFastlaneFinale) return nullptr;
    return std::make_unique<FloatMoneyFastlane>(context);
  }
};

class SharedRestockIdVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "shared-restock-id"; }
  std::unique_ptr<Service> make(ServiceKind kind, const ServiceContext& context) const override {
    if (kind != ServiceKind::kInventoryIntel) return nullptr;
    return std::make_unique<SharedRestockIdInventory>(context);
  }
};

class RelaySkipsFailedVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "relay-skips-failed"; }
  std::unique_ptr<OutboxRelay> make_relay(ServiceKind,
                                          const OutboxRelay::Parts& parts) const override {
    return std::make_unique<RelaySkippingFailed>(parts);
  }
};

class NoSyncVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "no-sync"; }
  void prepare_database(ServiceKind, Database& db) const override {
    db.exec("PRAGMA synchronous=OFF;");
  }
};

class CatchUpAcksEarlyVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "catch-up-acks-early"; }
  std::unique_ptr<Service> make(ServiceKind kind, const ServiceContext& context) const override {
    if (kind == ServiceKind::kInventoryIntel) {
      return std::make_unique<CatchUpAcksEarly<InventoryIntel>>(context);
    }
    if (kind == ServiceKind::kFastlaneFinale) {
      return std::make_unique<CatchUpAcksEarly<FastlaneFinale>>(context);
    }
    return nullptr;
  }
};

class CatchUpDefersInboxVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "catch-up-defers-inbox"; }
  std::unique_ptr<Service> make(ServiceKind kind, const ServiceContext& context) const override {
    if (kind != ServiceKind::kInventoryIntel) return nullptr;
    return std::make_unique<CatchUpDefersInboxInventory>(context);
  }
};

class CatchUpSkipsSyncVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "catch-up-skips-sync"; }
  std::unique_ptr<Service> make(ServiceKind kind, const ServiceContext& context) const override {
    if (kind == ServiceKind::kInventoryIntel) {
      return std::make_unique<CatchUpSkipsSync<InventoryIntel>>(context);
    }
    if (kind == ServiceKind::kFastlaneFinale) {
      return std::make_unique<CatchUpSkipsSync<FastlaneFinale>>(context);
    }
    return nullptr;
  }
};

class CatchUpHoldsRestocksVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "catch-up-holds-restocks"; }
  std::unique_ptr<Service> make(ServiceKind kind, const ServiceContext& context) const override {
    if (kind != ServiceKind::kInventoryIntel) return nullptr;
    return std::make_unique<CatchUpHoldsRestocksInventory>(context);
  }
};

class LiveAckBeforeCommitVariant final : public ServiceVariant {
 public:
  std::string_view name() const override { return "ack-before-commit"; }
  std::unique_ptr<Service> make(ServiceKind kind, const ServiceContext& context) const override {
    if (kind == ServiceKind::kInventoryIntel) {
      return std::make_unique<DeferredHandlers<InventoryIntel>>(context);
    }
    if (kind == ServiceKind::kFastlaneFinale) {
      return std::make_unique<DeferredHandlers<FastlaneFinale>>(context);
    }
    return nullptr;
  }
};

}  // namespace

const ServiceVariant* live_variant_of(Bug bug) {
  static const LiveAckBeforeCommitVariant live_ack_before_commit;
  if (bug == Bug::kAckBeforeCommit) return &live_ack_before_commit;
  return variant_of(bug);
}

const ServiceVariant* variant_of(Bug bug) {
  static const NoDedupVariant no_dedup;
  static const AckBeforeCommitVariant ack_before_commit;
  static const RestockEveryEventVariant restock_every_event;
  static const NoOutboxVariant no_outbox;
  static const FloatMoneyVariant float_money;
  static const SharedRestockIdVariant shared_restock_id;
  static const RelaySkipsFailedVariant relay_skips_failed;
  static const NoSyncVariant no_sync;
  static const CatchUpAcksEarlyVariant catch_up_acks_early;
  static const CatchUpDefersInboxVariant catch_up_defers_inbox;
  static const CatchUpSkipsSyncVariant catch_up_skips_sync;
  static const CatchUpHoldsRestocksVariant catch_up_holds_restocks;
  switch (bug) {
    case Bug::kNone:
      return nullptr;
    case Bug::kNoDedup:
      return &no_dedup;
    case Bug::kAckBeforeCommit:
      return &ack_before_commit;
    case Bug::kRestockEveryEvent:
      return &restock_every_event;
    case Bug::kNoOutbox:
      return &no_outbox;
    case Bug::kFloatMoney:
      return &float_money;
    case Bug::kSharedRestockId:
      return &shared_restock_id;
    case Bug::kRelaySkipsFailed:
      return &relay_skips_failed;
    case Bug::kNoSync:
      return &no_sync;
    case Bug::kCatchUpAcksEarly:
      return &catch_up_acks_early;
    case Bug::kCatchUpDefersInbox:
      return &catch_up_defers_inbox;
    case Bug::kCatchUpSkipsSync:
      return &catch_up_skips_sync;
    case Bug::kCatchUpHoldsRestocks:
      return &catch_up_holds_restocks;
  }
  return nullptr;
}

}  // namespace eventmart::sim
