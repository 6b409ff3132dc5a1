// What every service shares: its context (bus, clock, database, topics, logger), its journal
// (inbox + outbox) and outbox relay, and the one way it consumes an event: inbox, state
// change and outbox writes in a single SQLite transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/assert.h"
#include "core/bus.h"
#include "core/clock.h"
#include "core/codec.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/marks.h"
#include "core/topics.h"
#include "services/journal.h"
#include "services/outbox_relay.h"
#include "services/sqlite.h"

namespace eventmart {

inline constexpr std::string_view kGatewayGuardian = "gateway-guardian";
inline constexpr std::string_view kHelloHelper = "hello-helper";
inline constexpr std::string_view kGateExitGuardian = "gate-exit-guardian";
inline constexpr std::string_view kInventoryIntel = "inventory-intel";
inline constexpr std::string_view kFastlaneFinale = "fastlane-finale";

// Where consume_once() offers a fault injector the chance to crash the process.
enum class CrashSite : std::uint8_t {
  kBeforeCommit,  // state changed and outbox written, transaction not committed
  kAfterCommit,   // committed, delivery not yet acknowledged, outbox not yet pumped
};

// A test seam (the simulator's fault injector implements it): reached() may throw to stand
// for the process dying at that point. Production code passes none.
class CrashPoints {
 public:
  virtual ~CrashPoints() = default;
  virtual void reached(std::string_view service, CrashSite site) = 0;
};

// Everything a service touches in the outside world. All references must outlive the service.
struct ServiceContext {
  Bus& bus;            // the store bus
  Bus* logistics_bus;  // the external logistics bus (Inventory Intel only), else null
  Clock& clock;
  Database& db;  // the service's own database
  const Topics& topics;
  Logger& logger;
  Qos qos = Qos::kAtLeastOnce;          // for everything the service publishes
  CrashPoints* crash_points = nullptr;  // null: never crash on purpose
  // Names this process among replicas that share the database (see Journal); "" alone.
  std::string instance = {};
  // Inbox rows older than this are deleted as the service goes (0: kept forever). An event
  // delivered again after its id was pruned would be applied again, so an event that occurred
  // longer ago than 7/8 of this (max_event_age_us()) is not applied but dead-lettered: it
  // might have been applied before. The other 1/8 covers clocks that disagree. A broker holds
  // a message for an absent service at most its session expiry: the retention must exceed
  // 8/7 of that, or queued events would be refused (serve checks it).
  std::int64_t inbox_retention_us = 0;
  // What a message may hold (basket size, id lengths); anything beyond is dead-lettered.
  InputLimits limits = {};
  // How much the service does at a time (production keeps the defaults; the simulator draws
  // them per seed): its relay's batches, and the events consumed between inbox prunes.
  OutboxRelay::Batches relay_batches = {};
  std::uint64_t prune_every = 1000;
  // Builds the service's outbox relay; empty: the real OutboxRelay. A seam for the
  // harness's broken relays (sim/bugs), set by the registry from a ServiceVariant.
  std::function<std::unique_ptr<OutboxRelay>(const OutboxRelay::Parts&)> make_relay = {};
};

// `context` with other buses (a decorator in front of them); every other field as it is.
inline ServiceContext with_buses(const ServiceContext& context, Bus& bus, Bus* logistics_bus) {
  return ServiceContext{bus,
                        logistics_bus,
                        context.clock,
                        context.db,
                        context.topics,
                        context.logger,
                        context.qos,
                        context.crash_points,
                        context.instance,
                        context.inbox_retention_us,
                        context.limits,
                        context.relay_batches,
                        context.prune_every,
                        context.make_relay};
}

// The oldest an event may be (now minus its occurred_at) and still be applied, for an inbox
// that keeps ids for `retention_us` (0: forever, so any age).
// A delivery that occurred longer ago than this is late: the service was away for hours and is
// working off a backlog (Mark::kInboxLateDelivery).
inline constexpr std::int64_t kLateDeliveryUs = 3 * 3600LL * 1'000'000;

inline std::int64_t max_event_age_us(std::int64_t retention_us) {
  return retention_us > 0 ? retention_us - retention_us / 8 : INT64_MAX;
}

// How consume_once() ended.
enum class Consumed : std::uint8_t {
  kApplied,    // committed: the state changed and the outbox holds what it emitted
  kDuplicate,  // the id was consumed before with the same content: nothing to do
  kConflict,   // the id was consumed before with other content: refused, nothing changed
  kRefused,    // `apply` refused the event (it cannot be applied): nothing changed
};

struct Consumption {
  Consumed outcome = Consumed::kApplied;
  std::string reason;  // kConflict, kRefused: why
  bool applied() const { return outcome == Consumed::kApplied; }
};

struct ServiceStats {
  std::uint64_t consumed = 0;    // events applied (inbox + state change committed)
  std::uint64_t duplicates = 0;  // deliveries whose event id was already in the inbox
  std::uint64_t rejected = 0;    // malformed or wrong-type deliveries (logged, acknowledged)
};

class Service {
 public:
  Service(std::string_view name, const ServiceContext& context);
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  virtual ~Service();

  // Subscribes to the service's topics and publishes whatever its outbox still holds (rows
  // left by a previous run that stopped before the broker confirmed them).
  virtual void start() = 0;

  const std::string& name() const { return name_; }
  const ServiceStats& stats() const { return stats_; }
  Journal& journal() { return journal_; }

  // A message this service cannot consume (undecodable, wrong type, missing fields, a device
  // reading that makes no sense): logged with topic and reason, counted, and written to the
  // outbox as a dead letter for {chain}/{store}/dead-letter/{service} (core/wire.h says its
  // form) in its own transaction, so it survives a crash like any event. The same bytes on the
  // same topic are dead-lettered once. Returns after the commit: the caller may acknowledge.
  void dead_letter(const std::string& topic, std::string_view bytes, std::string_view reason);
  // dead_letter() without counting: for a reading the guardian refused (and counted) already.
  void file_dead_letter(const std::string& topic, std::string_view bytes, std::string_view reason);
  // How the inbox id of a dead letter begins (the rest: a hash of service, topic and bytes).
  static constexpr std::string_view kDeadLetterIdPrefix = "dead-letter-";

 protected:
  // Consumes `event_id` exactly once: in one transaction, records it in the inbox with a hash
  // of its content and runs `apply` (which changes state and calls emit()). `apply` returns
  // void, or a std::string that is empty to go on and otherwise says why the event cannot be
  // applied: then the transaction rolls back and nothing, not even the inbox row, is kept.
  // A duplicate commits nothing. After the commit the outbox relay publishes what `apply`
  // emitted.
  template <typename Apply>
  Consumption consume_once(const std::string& event_id, std::uint64_t content_hash, Apply&& apply) {
    written_.clear();  // rows of a transaction that rolled back are gone
    {
      Transaction txn(ctx_.db);
      const Writing writing(writing_);
      switch (admit(event_id, content_hash)) {
        case Admission::kNew:
          break;
        case Admission::kDuplicate:
          ++stats_.duplicates;
          mark(Mark::kInboxDuplicate);
          return {Consumed::kDuplicate, {}};
        case Admission::kConflict:
          mark(Mark::kInboxConflict);
          return {Consumed::kConflict, "event id '" + event_id +
                                           "' was consumed before with other content (an id "
                                           "reused for another event)"};
      }
      if constexpr (std::is_void_v<std::invoke_result_t<Apply>>) {
        apply();
      } else {
        std::string refusal = apply();
        if (!refusal.empty()) {
          written_.clear();
          return {Consumed::kRefused, std::move(refusal)};  // rolls back
        }
      }
      crash_point(CrashSite::kBeforeCommit);
      txn.commit();
    }
    ++stats_.consumed;
    if (ctx_.inbox_retention_us > 0 && ++consumed_since_prune_ >= ctx_.prune_every) prune_inbox();
    crash_point(CrashSite::kAfterCommit);
    after_commit();
    relay_.hand_over(std::move(written_));
    written_.clear();
    return {Consumed::kApplied, {}};
  }

  // Records `event_id` in the inbox (see Journal::record_inbox). A seam: sim/bugs overrides it.
  virtual Admission admit(const std::string& event_id, std::uint64_t content_hash) {
    return journal_.record_inbox(event_id, ctx_.clock.now_us(), content_hash);
  }

  // Writes one event to the outbox (inside the transaction). A seam: sim/bugs overrides it.
  virtual void write_outbox(Channel channel, const std::string& topic, Envelope envelope) {
    // Only inside the transaction that consumes an event (consume_once, dead_letter): a row
    // written elsewhere would be committed by no one, or never handed to the relay.
    EVENTMART_REQUIRE(writing_, name_, envelope.event_id);
    const std::int64_t seq = journal_.add_outbox(channel, topic, envelope);
    written_.push_back(OutboxRow{seq, channel, topic, std::move(envelope)});
  }

  // Runs after each commit, before the outbox is pumped. A seam: sim/bugs overrides it.
  virtual void after_commit() {}

  void crash_point(CrashSite site) {
    if (ctx_.crash_points != nullptr) ctx_.crash_points->reached(name_, site);
  }

  // Writes an event to the outbox. REQUIRES: inside consume_once's `apply` (checked).
  template <typename Event>
  void emit(Channel channel, const std::string& topic, EventType type, std::string event_id,
            const std::string& caused_by, const Event& event) {
    write_outbox(
        channel, topic,
        make_envelope(type, std::move(event_id), name_, ctx_.clock.now_us(), caused_by, event));
  }

  // A delivery that cannot be consumed (undecodable, wrong type): dead-lettered (see
  // dead_letter()) and acknowledged so it does not block the stream.
  void reject(const Delivery& delivery, std::string_view why);

  // The event a delivery carries, when it is sound: the envelope's fields valid, its type
  // Event's, its payload decoded and checked against ctx_.limits. Otherwise the delivery is
  // rejected (dead-lettered) and nullopt returned.
  template <typename Event>
  std::optional<Event> receive(const Delivery& delivery);

  // Dead-letters a delivery whose consumption ended in a conflict or a refusal.
  void settle(const Delivery& delivery, const Consumption& consumption) {
    if (consumption.outcome == Consumed::kConflict || consumption.outcome == Consumed::kRefused) {
      reject(delivery, consumption.reason);
    }
  }

  // Info lines are built only when someone reads them: info([&] { return "..."; }).
  template <typename MakeMessage>
  void info(MakeMessage&& make) {
    if (ctx_.logger.wants(LogLevel::kInfo)) ctx_.logger.log(LogLevel::kInfo, name_, make());
  }
  void warn(std::string_view message) { ctx_.logger.log(LogLevel::kWarning, name_, message); }

  std::string name_;
  ServiceContext ctx_;
  Journal journal_;
  std::unique_ptr<OutboxRelay> relay_holder_;
  OutboxRelay& relay_;
  ServiceStats stats_;
  std::vector<OutboxRow> written_;  // outbox rows of the transaction in progress
  // True inside the transaction of consume_once or dead_letter: where the outbox is written.
  bool writing_ = false;
  struct Writing {
    explicit Writing(bool& flag) : flag_(flag) {
      EVENTMART_ASSERT(!flag_);  // one consuming transaction at a time
      flag_ = true;
    }
    ~Writing() { flag_ = false; }
    Writing(const Writing&) = delete;
    Writing& operator=(const Writing&) = delete;
    bool& flag_;
  };

 private:
  void prune_inbox();
  std::uint64_t consumed_since_prune_ = 0;
};

}  // namespace eventmart
