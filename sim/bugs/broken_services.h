// The broken variants themselves. See bugs.h for what each one shows.
#pragma once

#include <cmath>
#include <memory>
#include <vector>

#include "core/assert.h"
#include "core/event_id.h"
#include "services/fastlane_finale.h"
#include "services/inventory_intel.h"
#include "sim/faults.h"

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

}  // namespace eventmart::sim
