// The broken variants themselves. See bugs.h for what each one shows.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/assert.h"
#include "core/event_id.h"
#include "services/fastlane_finale.h"
#include "services/inventory_intel.h"
#include "sim/faults.h"
#include "sim/workload.h"

namespace eventmart::sim {

// no-dedup: every event id is admitted, duplicates included.
template <typename Base>
class NoDedup : public Base {
 public:
  using Base::Base;

 protected:
  Admission admit(const std::string& event_id, std::uint64_t content_hash) override {
    Base::admit(event_id, content_hash);  // still recorded, never consulted
    return Admission::kNew;
  }
};

// no-outbox: emitted events are held in memory and published straight after the commit.
template <typename Base>
class NoOutbox : public Base {
 public:
  using Base::Base;

 protected:
  void write_outbox(Channel channel, const std::string& topic, Envelope envelope) override {
    held_.push_back(Held{channel, topic, std::move(envelope)});
  }
  void after_commit() override {
    for (Held& h : held_) {
      Bus& bus = h.channel == Channel::kLogistics ? *this->ctx_.logistics_bus : this->ctx_.bus;
      bus.publish(h.topic, std::move(h.envelope), this->ctx_.qos, {});
    }
    held_.clear();
  }

 private:
  struct Held {
    Channel channel;
    std::string topic;
    Envelope envelope;
  };
  std::vector<Held> held_;
};

// restock-every-event: restocks whenever the level is below the threshold after a sale.
class RestockEveryEventInventory : public InventoryIntel {
 public:
  using InventoryIntel::InventoryIntel;

 protected:
  std::optional<StockDecision> decide_sale(const StockRecord& before,
                                           std::int64_t quantity) const override {
    std::optional<StockDecision> decision = apply_sale(before, quantity);
    if (decision && !decision->restock &&
        decision->after.level() < decision->after.restock_threshold) {
      decision->restock = RestockOrder{decision->after.restock_quantity, decision->after.level()};
    }
    return decision;
  }
};

// shared-restock-id: a restock order's id names the departure but not the product.
class SharedRestockIdInventory : public InventoryIntel {
 public:
  using InventoryIntel::InventoryIntel;

 protected:
  std::string restock_event_id(const std::string& departure_id, Sku) const override {
    return derive_event_id(departure_id, name_, "restock");
  }
};

// relay-skips-failed: a failed publish is settled like a confirmed one (and deleted with the
// next batch) instead of staying owed.
class RelaySkippingFailed : public OutboxRelay {
 public:
  using OutboxRelay::OutboxRelay;

 protected:
  void on_failed(std::int64_t seq) override { settle_row(seq); }
};

// float-money: prices as double currency units, the total truncated to cents.
class FloatMoneyFastlane : public FastlaneFinale {
 public:
  using FastlaneFinale::FastlaneFinale;

 protected:
  Result<PricedBasket> price(const std::vector<LineItem>& items) override {
    double total = 0;
    PricedBasket basket;
    for (const LineItem& item : items) {
      auto cents = store().price_cents(item.sku);
      if (!cents) {
        basket.unpriced_skus.push_back(item.sku);
        continue;
      }
      total += static_cast<double>(*cents) / 100.0 * static_cast<double>(item.quantity);
    }
    basket.total_cents = static_cast<std::int64_t>(total * 100.0);  // truncates
    return Result<PricedBasket>::ok(std::move(basket));
  }
};

// ack-before-commit: the bus a consumer sees acknowledges each delivery before the handler
// has committed; a crash inside the handler is swallowed, so the transport acks anyway.
class AckBeforeCommitBus final : public BusWrapper {
 public:
  using BusWrapper::BusWrapper;
  SubscriptionId subscribe(const std::string& filter, MessageHandler handler) override {
    return BusWrapper::subscribe(filter, [handler = std::move(handler)](const Delivery& delivery) {
      try {
        handler(delivery);
      } catch (const SimulatedCrash&) {
        // Already acknowledged: the event is gone for good.
      }
    });
  }
};

// ack-before-commit on a real broker (`serve --bug` in the test build): there is no simulated
// crash to swallow, so the handler is put off to a timer (the service's clock, under its
// strand) and the delivery returns at once: the transport acknowledges it before anything is
// committed, and a process killed in between loses the event.
class DeferringBus final : public BusWrapper {
 public:
  DeferringBus(Bus& target, Clock& clock) : BusWrapper(target), clock_(clock) {}
  ~DeferringBus() override { *alive_ = false; }  // a handler put off past this never runs
  SubscriptionId subscribe(const std::string& filter, MessageHandler handler) override {
    return BusWrapper::subscribe(filter, [this, handler](const Delivery& delivery) {
      // A Delivery refers to the transport's buffers: keep copies of what it refers to.
      clock_.call_after(
          kDeferUs, [alive = alive_, handler, topic = delivery.topic, envelope = delivery.envelope,
                     redelivered = delivery.redelivered, raw = std::string(delivery.raw)] {
            if (!*alive) return;
            try {
              handler(Delivery{topic, envelope, redelivered, raw});
            } catch (const AssertionFailed&) {
              throw;  // a failed check ends the run, whatever the bug
            } catch (...) {
              // Already acknowledged: the event is gone for good.
            }
          });
    });
  }

 private:
  static constexpr std::int64_t kDeferUs = 200'000;
  Clock& clock_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Holds the bus a service sees, as a base class before the service: built first, destroyed
// after it (the service still talks to its bus as it goes).
struct HoldsDeferringBus {
  HoldsDeferringBus(Bus& target, Clock& clock) : deferring(target, clock) {}
  DeferringBus deferring;
};

template <typename Base>
class DeferredHandlers : private HoldsDeferringBus, public Base {
 public:
  explicit DeferredHandlers(const ServiceContext& context)
      : HoldsDeferringBus(context.bus, context.clock),
        Base(with_buses(context, deferring, context.logistics_bus)) {}
};

// The deep variants (bugs.h: each needs two rare events in sequence). What a service keeps
// in memory about a catch-up (lost with the process, as it would be): until when it believes
// it is working off a backlog.
struct CatchUp {
  std::int64_t until_us = 0;
  bool catching_up(std::int64_t now_us) const { return now_us < until_us; }
};

// What a service changes while it believes it is catching up (the deep variants' mistakes).
enum class CatchUpShortcut : std::uint8_t {
  kNone,      // only keeps the state (the service reads it)
  kAckEarly,  // acknowledges each delivery before its transaction commits
  kSyncOff,   // runs its database with synchronous=OFF
};

// Sees each delivery before the service: one that occurred longer ago than `older_than_us`
// starts (or extends) a catch-up of `window_us`, during which `shortcut` is taken. With
// kAckEarly a crash inside the handler is swallowed: the delivery was acknowledged already.
class CatchUpBus final : public BusWrapper {
 public:
  struct Params {
    std::int64_t older_than_us;
    std::int64_t window_us;
    CatchUpShortcut shortcut;
  };
  CatchUpBus(Bus& target, Clock& clock, Database& db, CatchUp& state, Params params)
      : BusWrapper(target), clock_(clock), db_(db), state_(state), params_(params) {}
  std::function<void()> before_each;  // called as each delivery arrives, before the service
  SubscriptionId subscribe(const std::string& filter, MessageHandler handler) override {
    return BusWrapper::subscribe(filter, [this, handler = std::move(handler)](const Delivery& d) {
      const std::int64_t now = clock_.now_us();
      if (now - d.envelope.occurred_at_us > params_.older_than_us) {
        state_.until_us = now + params_.window_us;
      }
      if (before_each) before_each();
      const bool catching_up = state_.catching_up(now);
      if (params_.shortcut == CatchUpShortcut::kSyncOff && catching_up != sync_off_) {
        try {
          db_.exec(catching_up ? "PRAGMA synchronous=OFF;" : "PRAGMA synchronous=FULL;");
          sync_off_ = catching_up;
        } catch (const SqliteError&) {
          // A storage fault: the next delivery tries again.
        }
      }
      const bool early = params_.shortcut == CatchUpShortcut::kAckEarly && catching_up;
      try {
        handler(d);
      } catch (const SimulatedCrash&) {
        if (!early) throw;
        // Already acknowledged: the event is gone for good.
      }
    });
  }

 private:
  Clock& clock_;
  Database& db_;
  CatchUp& state_;
  Params params_;
  bool sync_off_ = false;
};

struct HoldsCatchUpBus {
  HoldsCatchUpBus(const ServiceContext& context, CatchUpBus::Params params)
      : catch_up_bus(context.bus, context.clock, context.db, catch_up, params) {}
  CatchUp catch_up;
  CatchUpBus catch_up_bus;
};

inline constexpr std::int64_t kAcksEarlyWindowUs = 5 * kMinuteUs;
inline constexpr std::int64_t kDefersInboxWindowUs = 5 * kMinuteUs;
inline constexpr std::int64_t kSyncOffWindowUs = 2 * kMinuteUs;
inline constexpr std::int64_t kHoldRestocksWindowUs = kMinuteUs;

// A service that takes `kShortcut` for `kWindowUs` after each delivery over three hours late.
template <typename Base, CatchUpShortcut kShortcut, std::int64_t kWindowUs>
class CatchUpWith : private HoldsCatchUpBus, public Base {
 public:
  explicit CatchUpWith(const ServiceContext& context)
      : HoldsCatchUpBus(context, {kLateDeliveryUs, kWindowUs, kShortcut}),
        Base(with_buses(context, catch_up_bus, context.logistics_bus)) {}
};

// catch-up-acks-early: a delivery over three hours late means a backlog; for five minutes after
// one, deliveries are acknowledged before their transaction commits, to keep the broker's
// window full while catching up. A crash inside a transaction then loses the event.
template <typename Base>
using CatchUpAcksEarly = CatchUpWith<Base, CatchUpShortcut::kAckEarly, kAcksEarlyWindowUs>;

// catch-up-defers-inbox: a delivery over three hours late means a backlog; for five minutes after
// one, Inventory Intel records a new event in its inbox in a transaction of its own after the
// commit that applied it ("keep the hot transaction short while catching up"). A crash between
// the two commits leaves the event applied and not recorded: its redelivery is applied again.
class CatchUpDefersInboxInventory : private HoldsCatchUpBus, public InventoryIntel {
 public:
  explicit CatchUpDefersInboxInventory(const ServiceContext& context)
      : HoldsCatchUpBus(context, {kLateDeliveryUs, kDefersInboxWindowUs, CatchUpShortcut::kNone}),
        InventoryIntel(with_buses(context, catch_up_bus, context.logistics_bus)) {}
  ~CatchUpDefersInboxInventory() override {
    if (timer_ != 0) ctx_.clock.cancel(timer_);
  }

 protected:
  Admission admit(const std::string& event_id, std::uint64_t content_hash) override {
    deferred_.reset();  // a rolled-back attempt's
    const auto waiting = std::find_if(unrecorded_.begin(), unrecorded_.end(),
                                      [&](const Deferred& d) { return d.event_id == event_id; });
    if (waiting != unrecorded_.end()) {
      const bool other =
          waiting->content_hash != 0 && content_hash != 0 && waiting->content_hash != content_hash;
      return other ? Admission::kConflict : Admission::kDuplicate;  // as the inbox would say
    }
    // A dead letter is filed with no after-commit step: recorded at once, as always.
    if (!catch_up.catching_up(ctx_.clock.now_us()) || event_id.starts_with(kDeadLetterIdPrefix) ||
        journal().in_inbox(event_id)) {
      return InventoryIntel::admit(event_id, content_hash);
    }
    deferred_ = Deferred{event_id, content_hash};
    return Admission::kNew;
  }
  void after_commit() override {
    InventoryIntel::after_commit();
    if (deferred_) unrecorded_.push_back(std::move(*deferred_));
    deferred_.reset();
    record_unrecorded();
  }

 private:
  struct Deferred {
    std::string event_id;
    std::uint64_t content_hash;
  };
  // Records what was applied and not yet recorded, in a transaction of its own; after a storage
  // fault, again a second later (admit() finds them meanwhile: only a crash or a power loss
  // before then loses a row).
  void record_unrecorded() {
    if (unrecorded_.empty()) return;
    try {
      Transaction txn(ctx_.db);
      for (const Deferred& d : unrecorded_) {
        journal().record_inbox(d.event_id, ctx_.clock.now_us(), d.content_hash);
      }
      txn.commit();
      unrecorded_.clear();
    } catch (const SqliteError&) {
      if (timer_ != 0) return;
      timer_ = ctx_.clock.call_after(kSecondUs, [this] {
        timer_ = 0;
        record_unrecorded();
      });
    }
  }
  std::optional<Deferred> deferred_;  // applied by the transaction in hand, recorded after it
  std::vector<Deferred> unrecorded_;  // applied and committed, not yet in the inbox
  TimerId timer_ = 0;
};

// catch-up-skips-sync: a delivery over three hours late means a backlog; for two minutes
// after one, the service runs its database with synchronous=OFF to work it off faster. A power
// loss in those minutes takes back commits whose deliveries were acknowledged.
template <typename Base>
using CatchUpSkipsSync = CatchUpWith<Base, CatchUpShortcut::kSyncOff, kSyncOffWindowUs>;

// catch-up-holds-restocks: a delivery over three hours late means a backlog; while one is worked
// off (a minute after the last late delivery), Inventory Intel holds its restock orders back
// in memory instead of writing them to the outbox, and sends them together when the catch-up
// ends ("a backlog's sales would order for levels long passed one by one"). A crash before then
// loses them.
class CatchUpHoldsRestocksInventory : private HoldsCatchUpBus, public InventoryIntel {
 public:
  explicit CatchUpHoldsRestocksInventory(const ServiceContext& context)
      : HoldsCatchUpBus(context, {kLateDeliveryUs, kHoldRestocksWindowUs, CatchUpShortcut::kNone}),
        InventoryIntel(with_buses(context, catch_up_bus, context.logistics_bus)) {
    catch_up_bus.before_each = [this] { pending_.clear(); };  // a rolled-back attempt's
  }
  ~CatchUpHoldsRestocksInventory() override {
    if (timer_ != 0) ctx_.clock.cancel(timer_);
  }

 protected:
  void write_outbox(Channel channel, const std::string& topic, Envelope envelope) override {
    if (channel != Channel::kLogistics || !catch_up.catching_up(ctx_.clock.now_us())) {
      InventoryIntel::write_outbox(channel, topic, std::move(envelope));
      return;
    }
    pending_.push_back(Held{topic, std::move(envelope)});
  }
  void after_commit() override {
    InventoryIntel::after_commit();
    for (Held& h : pending_) held_.push_back(std::move(h));
    pending_.clear();
    if (held_.empty() || timer_ != 0) return;
    timer_ = ctx_.clock.call_after(kHoldRestocksWindowUs, [this] { send_held(); });
  }

 private:
  struct Held {
    std::string topic;
    Envelope envelope;
  };
  // Writes what was held to the outbox, in a transaction of its own (recorded in the inbox
  // under an id of its own, as every transaction is); from there the relay sends it.
  void send_held() {
    timer_ = 0;
    const std::int64_t now = ctx_.clock.now_us();
    if (catch_up.catching_up(now)) {  // still catching up: later
      timer_ = ctx_.clock.call_after(catch_up.until_us - now, [this] { send_held(); });
      return;
    }
    try {
      const Consumption done =
          consume_once("catch-up-restocks-" + std::to_string(++flushes_), 0, [this] {
            for (const Held& h : held_)
              InventoryIntel::write_outbox(Channel::kLogistics, h.topic, h.envelope);
          });
      if (done.applied()) held_.clear();
    } catch (const SimulatedCrash&) {
      // Dying: what was held dies with the process.
    } catch (const SqliteError&) {
      timer_ = ctx_.clock.call_after(kSecondUs, [this] { send_held(); });  // a storage fault
    }
  }
  std::vector<Held> pending_;  // written by the transaction in hand
  std::vector<Held> held_;     // committed, not yet sent
  TimerId timer_ = 0;
  std::uint64_t flushes_ = 0;
};

}  // namespace eventmart::sim
