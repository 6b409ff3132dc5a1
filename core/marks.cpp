#include "core/marks.h"

namespace eventmart {
namespace detail {
MarkCounts*& current_marks() {
  thread_local MarkCounts* counts = nullptr;
  return counts;
}
}  // namespace detail

const std::array<MarkInfo, kMarkCount>& all_marks() {
  static const std::array<MarkInfo, kMarkCount> marks = {{
      {Mark::kInboxDuplicate, "inbox.duplicate", "a delivery recognised as consumed before"},
      {Mark::kInboxConflict, "inbox.conflict",
       "an event id consumed before with other content, refused"},
      {Mark::kDeadLetter, "service.dead_letter", "a message a service could not consume"},
      {Mark::kRelayPublishFailed, "relay.publish_failed",
       "a publish reported failed; its outbox row stays owed"},
      {Mark::kRelayResentFromBefore, "relay.resent_from_before",
       "a restarted service resent outbox rows left from before"},
      {Mark::kBasketRepeatedSku, "basket.repeated_sku",
       "a bag scan with lines of one sku apart, merged"},
      {Mark::kGuardianRefusedReading, "guardian.refused_reading", "a guardian refused a reading"},
      {Mark::kUnknownCard, "hello.unknown_card", "an unknown card got the generic welcome"},
      {Mark::kUnknownSku, "inventory.unknown_sku", "a departure listed a sku not in the catalog"},
      {Mark::kUnpricedSku, "fastlane.unpriced_sku", "a departure listed a sku without a price"},
      {Mark::kShortfall, "inventory.shortfall", "a sale beyond the units on record"},
      {Mark::kRestockRaised, "inventory.restock_raised", "a product crossed below its threshold"},
      {Mark::kRestockRearmed, "inventory.restock_rearmed",
       "a delivery lifted a product back to its threshold"},
      {Mark::kTwoRestocksInOneBasket, "inventory.two_restocks_one_basket",
       "one departure crossed two products' thresholds"},
      {Mark::kThresholdCrossedAgain, "inventory.threshold_crossed_again",
       "a product crossed below its threshold again the same day (after a delivery lifted it)"},
      {Mark::kTransportPublishFailed, "transport.publish_failed",
       "the transport failed a publish (connection lost, or a fault)"},
      {Mark::kTransportRedelivery, "transport.redelivered_after_loss",
       "a delivery arrived only by retransmission"},
      {Mark::kTransportQueuedForAbsent, "transport.queued_for_absent",
       "a QoS 1 message queued for a client that was away"},
      {Mark::kTransportRedeliveredAfterReconnect, "transport.redelivered_after_reconnect",
       "a delivery a client had but never acknowledged went to its next connection (a restart)"},
      {Mark::kTransportResentAfterPartition, "transport.resent_after_partition",
       "a partition healed with deliveries queued for the client, and they went again"},
      {Mark::kTransportHandlerRetried, "transport.handler_retried",
       "a delivery dispatched again after its handler threw (its transaction rolled back)"},
      {Mark::kTransportGaveUp, "transport.dead_letter_after_retries",
       "a delivery dead-lettered after its handler failed every attempt"},
      {Mark::kCrashBeforeCommitRecovered, "crash.before_commit_recovered",
       "a service crashed inside a transaction and came back"},
      {Mark::kCrashAfterCommitRecovered, "crash.after_commit_recovered",
       "a service crashed after a commit, before its acknowledgement, and came back"},
      {Mark::kPowerLossLostWrites, "storage.power_loss_lost_writes",
       "a power loss dropped writes a database had not synced"},
      {Mark::kStorageIoError, "storage.io_error",
       "an SQLite call failed with an I/O error; its transaction rolled back"},
      {Mark::kStorageFull, "storage.disk_full",
       "an SQLite call found the disk full; its transaction rolled back"},
      {Mark::kWorkloadOpeningBurst, "workload.opening_burst", "a burst of arrivals at opening"},
      {Mark::kWorkloadClosingBurst, "workload.closing_burst", "a burst of arrivals at closing"},
      {Mark::kWorkloadTightStock, "workload.tight_stock",
       "shelves stocked close to their thresholds"},
  }};
  return marks;
}

MarkScope::MarkScope(MarkCounts& counts) : previous_(detail::current_marks()) {
  detail::current_marks() = &counts;
}

MarkScope::~MarkScope() {
  detail::current_marks() = previous_;
}

}  // namespace eventmart
