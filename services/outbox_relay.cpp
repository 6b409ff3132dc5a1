#include "services/outbox_relay.h"

#include <algorithm>
#include <stdexcept>

#include "core/assert.h"
#include "core/marks.h"

namespace eventmart {
OutboxRelay::OutboxRelay(Journal& journal, Clock& clock, Bus& store_bus, Bus* logistics_bus,
                         Qos qos, std::int64_t retry_interval_us, Batches batches)
    : journal_(journal),
      clock_(clock),
      store_bus_(store_bus),
      logistics_bus_(logistics_bus),
      qos_(qos),
      retry_interval_us_(retry_interval_us),
      batches_(batches),
      self_(std::make_shared<OutboxRelay*>(this)) {
  // 0 would retry a failing disk in a loop that never lets the clock move.
  if (retry_interval_us_ <= 0) {
    throw std::invalid_argument("an outbox relay's retry interval must be > 0 (got " +
                                std::to_string(retry_interval_us_) + ")");
  }
  if (batches_.read < 1 || batches_.delete_ < 1) {
    throw std::invalid_argument("an outbox relay's batches must be >= 1 (read " +
                                std::to_string(batches_.read) + ", delete " +
                                std::to_string(batches_.delete_) + ")");
  }
}

OutboxRelay::~OutboxRelay() {
  if (retry_timer_ != 0) clock_.cancel(retry_timer_);
}

void OutboxRelay::pump() {
  if (writes_seen_ == journal_.outbox_writes()) return;  // nothing written, nothing failed
  try {
    read_outbox();
  } catch (const std::exception&) {
    writes_seen_ = UINT64_MAX;  // read it again
    try_again_later();
  }
}

void OutboxRelay::read_outbox() {
  writes_seen_ = journal_.outbox_writes();
  for (int batch = 0;; ++batch) {
    std::vector<OutboxRow> rows = journal_.pending_outbox(last_handed_seq_, batches_.read);
    EVENTMART_ASSERT(rows.size() <= static_cast<std::size_t>(batches_.read), rows.size());
    // Rows nobody in this life wrote: left by an earlier one that stopped before the broker
    // confirmed them.
    if (!rows.empty() && journal_.outbox_writes() == 0) mark(Mark::kRelayResentFromBefore);
    if (!rows.empty() && batch > 0) mark(Mark::kRelayReadAnotherBatch);
    for (OutboxRow& row : rows) publish_row(row);
    if (rows.size() < static_cast<std::size_t>(batches_.read)) return;
  }
}

void OutboxRelay::hand_over(std::vector<OutboxRow> rows) {
  // From memory only when nothing else is owed: every earlier write was handed over
  // (writes_seen_ is current but for these rows) and they continue the sequence exactly.
  const bool next_in_line = !rows.empty() && rows.front().seq == last_handed_seq_ + 1 &&
                            writes_seen_ + rows.size() == journal_.outbox_writes();
  if (!next_in_line) {
    pump();
    return;
  }
  writes_seen_ = journal_.outbox_writes();
  for (OutboxRow& row : rows) publish_row(row);
}

void OutboxRelay::publish_row(OutboxRow& row) {
  // Rows go to the bus in seq order, each after everything confirmed.
  EVENTMART_REQUIRE(row.seq > last_handed_seq_ && row.seq > confirmed_through_, row.seq,
                    last_handed_seq_, confirmed_through_);
  last_handed_seq_ = row.seq;
  Bus* bus = row.channel == Channel::kLogistics ? logistics_bus_ : &store_bus_;
  if (bus == nullptr) {
    throw std::logic_error("outbox row " + std::to_string(row.seq) +
                           " is for the logistics bus, but this service has none");
  }
  ++published_;
  in_flight_.insert(row.seq);
  std::weak_ptr<OutboxRelay*> weak = self_;
  bus->publish(row.topic, std::move(row.envelope), qos_,
               [weak, seq = row.seq](PublishOutcome outcome) {
                 if (auto self = weak.lock()) (*self)->on_outcome(seq, outcome);
               });
}

void OutboxRelay::delete_confirmed_prefix() {
  if (confirmed_through_ <= deleted_through_) return;
  try {
    journal_.mark_sent_through(confirmed_through_);
    deleted_through_ = confirmed_through_;
  } catch (const std::exception&) {
    try_again_later();  // the rows stay until then: at worst sent again after a restart
  }
}

void OutboxRelay::try_again_later() {
  if (retry_timer_ != 0) return;
  retry_timer_ = clock_.call_after(retry_interval_us_, [this] {
    retry_timer_ = 0;
    pump();
    delete_confirmed_prefix();
  });
}

void OutboxRelay::on_outcome(std::int64_t seq, PublishOutcome outcome) {
  if (!in_flight_.count(seq)) return;  // already confirmed (a stale outcome)
  if (outcome == PublishOutcome::kConfirmed) {
    ++confirmed_;
    settle_row(seq);
    return;
  }
  ++failed_;
  mark(Mark::kRelayPublishFailed);
  on_failed(seq);
}

void OutboxRelay::settle_row(std::int64_t seq) {
  in_flight_.erase(seq);
  // Everything below the oldest row still in flight is confirmed.
  const std::int64_t before = confirmed_through_;
  confirmed_through_ = in_flight_.empty() ? last_handed_seq_ : *in_flight_.begin() - 1;
  // A row handed twice (everything after a failed row goes again) can fail in one copy and be
  // confirmed in the other: the failure lowered last_handed_seq_ below it, but nothing up to
  // the confirmed prefix needs to go again.
  last_handed_seq_ = std::max(last_handed_seq_, confirmed_through_);
  // The confirmed prefix only grows, never past what was handed to the bus, and what was
  // deleted lies inside it.
  EVENTMART_ASSERT(before <= confirmed_through_ && confirmed_through_ <= last_handed_seq_ &&
                       deleted_through_ <= confirmed_through_,
                   before, confirmed_through_, last_handed_seq_, deleted_through_);
  if (in_flight_.empty() || confirmed_through_ - deleted_through_ >= batches_.delete_) {
    delete_confirmed_prefix();
  }
}

void OutboxRelay::on_failed(std::int64_t seq) {
  // Still in flight (owed), which keeps the confirmed prefix below it; handed again, with
  // everything after it, on the next pump.
  last_handed_seq_ = std::min(last_handed_seq_, seq - 1);
  EVENTMART_ASSERT(confirmed_through_ <= last_handed_seq_, confirmed_through_, last_handed_seq_,
                   seq);
  writes_seen_ = UINT64_MAX;
  try_again_later();
}

}  // namespace eventmart
