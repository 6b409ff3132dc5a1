// Publishes a service's outbox. Rows go out in seq order; a row is deleted only after the
// transport confirmed it, so a crash or an outage before the confirmation means the row is
// published again later with the same event id, and consumers deduplicate it.
//
// Confirmed rows are deleted in batches: the contiguous confirmed prefix, in one statement,
// every kDeleteBatch confirmations or as soon as nothing is in flight. A crash can therefore
// re-send up to a batch of rows that were already confirmed: duplicates, which consumers drop.
//
// A storage error while reading the outbox or deleting confirmed rows (an I/O error, a full
// disk) is not the caller's: the relay tries again retry_interval_us later. The rows stay owed
// (or confirmed but not yet deleted, which at worst sends them again after a restart).
#pragma once

#include <cstdint>
#include <memory>
#include <set>

#include "core/bus.h"
#include "core/clock.h"
#include "services/journal.h"

namespace eventmart {

// How much an outbox relay does at a time. Production keeps the defaults; the simulator draws
// small and large ones per seed, so a backlog of more than one batch is met.
struct RelayBatches {
  int read = 256;    // outbox rows read at a time
  int delete_ = 32;  // confirmed rows deleted together
};

class OutboxRelay {
 public:
  // The parts a relay works with (see the constructor).
  using Batches = RelayBatches;
  struct Parts {
    Journal& journal;
    Clock& clock;
    Bus& store_bus;
    Bus* logistics_bus;
    Qos qos;
    Batches batches = {};
  };

  // `logistics_bus` may be null for services that never write to Channel::kLogistics.
  // All references must outlive the relay. A publish the bus reports as failed is handed to
  // it again `retry_interval_us` later (and at the next pump, whichever comes first).
  // Throws std::invalid_argument unless the retry interval and the batches are >= 1.
  OutboxRelay(Journal& journal, Clock& clock, Bus& store_bus, Bus* logistics_bus,
              Qos qos = Qos::kAtLeastOnce, std::int64_t retry_interval_us = 1'000'000,
              Batches batches = {});
  explicit OutboxRelay(const Parts& parts)
      : OutboxRelay(parts.journal, parts.clock, parts.store_bus, parts.logistics_bus, parts.qos,
                    1'000'000, parts.batches) {}
  virtual ~OutboxRelay();
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  // Hands every row not yet handed to the bus to it. Call after each committed transaction
  // that wrote to the outbox, and after a restart (rows left from before are resent).
  // Never throws a storage error (see above).
  void pump();

  // Like pump(), for rows the caller has just committed (in seq order): they are published
  // from memory when they are exactly the next rows due, otherwise read from the outbox.
  void hand_over(std::vector<OutboxRow> rows);

  std::uint64_t published() const { return published_; }
  std::uint64_t confirmed() const { return confirmed_; }
  std::uint64_t failed() const { return failed_; }

 protected:
  // A publish the bus did not accept. The row stays owed: it keeps the confirmed prefix
  // below it and is handed to the bus again (with every row after it) at the next pump.
  // Virtual only so that a harness variant can get this wrong (sim/bugs).
  virtual void on_failed(std::int64_t seq);
  // The row is no longer in flight: the confirmed prefix moves up to the oldest row still
  // in flight, and is deleted a batch at a time or when nothing is in flight.
  void settle_row(std::int64_t seq);

 private:
  void on_outcome(std::int64_t seq, PublishOutcome outcome);
  void publish_row(OutboxRow& row);
  void delete_confirmed_prefix();
  // Runs pump() and the deletion of confirmed rows again after retry_interval_us.
  void try_again_later();
  void read_outbox();

  Journal& journal_;
  Clock& clock_;
  Bus& store_bus_;
  Bus* logistics_bus_;
  Qos qos_;
  std::int64_t retry_interval_us_;
  Batches batches_;
  TimerId retry_timer_ = 0;           // 0: no retry scheduled
  std::int64_t last_handed_seq_ = 0;  // rows up to here are with the bus (or confirmed)
  // journal_.outbox_writes() when the outbox was last read to its end; UINT64_MAX = read it.
  std::uint64_t writes_seen_ = UINT64_MAX;
  std::set<std::int64_t> in_flight_;    // handed to the bus (or failed), not yet confirmed
  std::int64_t confirmed_through_ = 0;  // every row <= this is confirmed (or gone)
  std::int64_t deleted_through_ = 0;    // rows <= this are deleted
  std::uint64_t published_ = 0;
  std::uint64_t confirmed_ = 0;
  std::uint64_t failed_ = 0;
  // Callbacks hold a weak reference: a relay destroyed (a crashed service) ignores late outcomes.
  std::shared_ptr<OutboxRelay*> self_;
};

}  // namespace eventmart
