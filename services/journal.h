// The inbox and outbox every service keeps in its own database, so that consuming an event is
// one transaction: (1) record the event id in the inbox, a duplicate commits nothing; (2)
// apply the state change; (3) write the events to emit into the outbox. The OutboxRelay then
// publishes outbox rows and deletes each one when the transport confirms it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/envelope.h"
#include "services/sqlite.h"

namespace eventmart {

// Which bus an outbox row goes to. Inventory Intel talks to the external logistics bus too.
enum class Channel : std::uint8_t { kStore = 0, kLogistics = 1 };

// What the inbox says of an event id offered to it.
enum class Admission : std::uint8_t {
  kNew,        // first time: recorded
  kDuplicate,  // consumed before with the same content: a redelivery
  kConflict,   // consumed before with other content: the id was reused (refuse it)
};

struct OutboxRow {
  std::int64_t seq = 0;
  Channel channel = Channel::kStore;
  std::string topic;
  Envelope envelope;
};

class Journal {
 public:
  // Creates the inbox and outbox tables in `db` if missing. `db` must outlive the journal.
  // `owner` names the process that writes and relays these outbox rows: replicas of a service
  // may share one database (one inbox, so an event is consumed once across all of them), and
  // each relays only its own rows.
  explicit Journal(Database& db, std::string owner = "");

  // Records `event_id` as consumed, with a hash of its content (0: not known). An id consumed
  // before is a duplicate when both hashes agree (or either is unknown), else a conflict.
  // REQUIRES: inside a Transaction (checked).
  Admission record_inbox(const std::string& event_id, std::int64_t received_at_us,
                         std::uint64_t content_hash = 0);

  // True when `event_id` was consumed before.
  bool in_inbox(const std::string& event_id);

  // Queues an event for publishing. REQUIRES: inside the Transaction of the state change
  // (checked: inside a transaction).
  // Returns the row's seq.
  std::int64_t add_outbox(Channel channel, const std::string& topic, const Envelope& envelope);

  // Outbox rows with seq > after_seq, oldest first, at most `limit`.
  std::vector<OutboxRow> pending_outbox(std::int64_t after_seq, int limit);

  // Removes every row with seq <= `through_seq` (all confirmed by the transport).
  void mark_sent_through(std::int64_t through_seq);

  // Deletes the inbox rows received before `received_before_us`; returns how many. Outside a
  // transaction (it is one). The first call creates an index on the receive time.
  std::int64_t prune_inbox(std::int64_t received_before_us);

  // Counts add_outbox() calls, so a relay can tell cheaply whether anything new was written.
  std::uint64_t outbox_writes() const { return outbox_writes_; }

  std::int64_t outbox_size();
  std::int64_t inbox_size();

  Database& db() { return db_; }

 private:
  Database& db_;
  std::string owner_;
  std::uint64_t outbox_writes_ = 0;
  // The highest seq add_outbox() assigned or pending_outbox() returned: the next row's seq is
  // above it, so above every row the relay was handed even when those are deleted by now. (A
  // transaction that rolled back after add_outbox() leaves a gap, which the relay reads past.)
  std::int64_t last_seq_ = 0;
  Statement insert_inbox_;
  Statement find_inbox_;
  Statement inbox_hash_;
  Statement insert_outbox_;
  Statement select_outbox_;
  Statement delete_outbox_;
  Statement count_outbox_;
  Statement count_inbox_;
  Statement prune_inbox_;  // prepared on first use
};

}  // namespace eventmart
