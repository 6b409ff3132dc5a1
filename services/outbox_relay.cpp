#include "services/outbox_relay.h"

#include <algorithm>
#include <stdexcept>

#include "core/marks.h"

namespace eventmart {
namespace {
constexpr int kBatch = 256;       // rows read from the outbox at a time
constexpr int kDeleteBatch = 32;  // confirmed rows deleted together
}  // namespace

OutboxRelay::OutboxRelay(Journal& journal, Clock& clock, Bus& store_bus, Bus* logistics_bus,
                         Qos qos, std::int64_t retry_interval_us)
    : journal_(journal),
      clock_(clock),
      store_bus_(store_bus),
      logistics_bus_(logistics_bus),
      qos_(qos),
      retry_interval_us_(retry_interval_us),
      self_(std::make_shared<OutboxRelay*>(this)) {}

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
  while (true) {
    std::vector<OutboxRow> rows = journal_.pending_outbox(last_handed_seq_, kBatch);
    // Rows nobody in this life wrote: left by an earlier one that stopped before the broker
    // confirmed them.
    if (!rows.empty() && journal_.outbox_writes() == 0) mark(Mark::kRelayResentFromBefore);
    for (OutboxRow& row : rows) publish_row(row);
    if (rows.size() < static_cast<std::size_t>(kBatch)) return;
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
  confirmed_through_ = in_flight_.empty() ? last_handed_seq_ : *in_flight_.begin() - 1;
  if (in_flight_.empty() || confirmed_through_ - deleted_through_ >= kDeleteBatch) {
    delete_confirmed_prefix();
  }
}

void OutboxRelay::on_failed(std::int64_t seq) {
  // Still in flight (owed), which keeps the confirmed prefix below it; handed again, with
  // everything after it, on the next pump.
  last_handed_seq_ = std::min(last_handed_seq_, seq - 1);
  writes_seen_ = UINT64_MAX;
  try_again_later();
}

}  // namespace eventmart
