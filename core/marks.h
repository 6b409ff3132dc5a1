// Coverage marks (TigerBeetle's testing/marks.zig, FoundationDB's "sometimes" assertions):
// named rare paths in the real code. The code says mark(Mark::kX) where the path is taken; a
// simulation run counts them, a swarm reports how often and in how many seeds each was hit,
// and a test fails when a registered mark is never reached: the search did not go there.
//
// A mark costs a thread-local load and, inside a counted run, an increment. Outside a run (in
// production) nothing is counted. Counting never changes what the code does.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace eventmart {

// Every mark, once: its enumerator, its stable name (reports, --json) and what it means. The
// enum and the table all_marks() are made from this one list, so a mark cannot be missing
// from either (the test that every mark is reached sees every one).
#define EVENTMART_MARKS(X)                                                                       \
  X(kInboxDuplicate, "inbox.duplicate", "a delivery recognised as consumed before")              \
  X(kInboxConflict, "inbox.conflict", "an event id consumed before with other content, refused") \
  X(kDeadLetter, "service.dead_letter", "a message a service could not consume")                 \
  X(kRelayPublishFailed, "relay.publish_failed",                                                 \
    "a publish reported failed; its outbox row stays owed")                                      \
  X(kRelayResentFromBefore, "relay.resent_from_before",                                          \
    "a restarted service resent outbox rows left from before")                                   \
  X(kRelayReadAnotherBatch, "relay.read_another_batch",                                          \
    "the relay read the outbox past its first batch (a backlog larger than a batch)")            \
  X(kInboxPruned, "inbox.pruned", "ids past the inbox retention were deleted")                   \
  X(kInboxLateDelivery, "inbox.late_delivery",                                                   \
    "a delivery that occurred over three hours before it arrived (a backlog after an absence)")  \
  X(kInboxTooOldToTell, "inbox.too_old_to_tell",                                                 \
    "an event older than the inbox remembers was refused (never applied a second time)")         \
  X(kBasketRepeatedSku, "basket.repeated_sku", "a bag scan with lines of one sku apart, merged") \
  X(kGuardianRefusedReading, "guardian.refused_reading", "a guardian refused a reading")         \
  X(kUnknownCard, "hello.unknown_card", "an unknown card got the generic welcome")               \
  X(kUnknownSku, "inventory.unknown_sku", "a departure listed a sku not in the catalog")         \
  X(kUnpricedSku, "fastlane.unpriced_sku", "a departure listed a sku without a price")           \
  X(kShortfall, "inventory.shortfall", "a sale beyond the units on record")                      \
  X(kRestockRaised, "inventory.restock_raised", "a product crossed below its threshold")         \
  X(kRestockRearmed, "inventory.restock_rearmed",                                                \
    "a delivery lifted a product back to its threshold")                                         \
  X(kTwoRestocksInOneBasket, "inventory.two_restocks_one_basket",                                \
    "one departure crossed two products' thresholds")                                            \
  X(kThresholdCrossedAgain, "inventory.threshold_crossed_again",                                 \
    "a product crossed below its threshold again the same day (after a delivery lifted it)")     \
  X(kTransportPublishFailed, "transport.publish_failed",                                         \
    "the transport failed a publish (connection lost, or a fault)")                              \
  X(kTransportRedelivery, "transport.redelivered_after_loss",                                    \
    "a delivery arrived only by retransmission")                                                 \
  X(kTransportQueuedForAbsent, "transport.queued_for_absent",                                    \
    "a QoS 1 message queued for a client that was away")                                         \
  X(kTransportSessionExpired, "transport.session_expired",                                       \
    "a client away longer than its session expiry lost its session and what was queued")         \
  X(kTransportRouteUncached, "transport.route_uncached",                                         \
    "a message on a topic beyond the broker's route cache, matched against every filter")        \
  X(kTransportRedeliveredAfterReconnect, "transport.redelivered_after_reconnect",                \
    "a delivery a client had but never acknowledged went to its next connection (a restart)")    \
  X(kTransportResentAfterPartition, "transport.resent_after_partition",                          \
    "a partition healed with deliveries queued for the client, and they went again")             \
  X(kTransportHandlerRetried, "transport.handler_retried",                                       \
    "a delivery dispatched again after its handler threw (its transaction rolled back)")         \
  X(kTransportGaveUp, "transport.dead_letter_after_retries",                                     \
    "a delivery dead-lettered after its handler failed every attempt")                           \
  X(kCrashBeforeCommitRecovered, "crash.before_commit_recovered",                                \
    "a service crashed inside a transaction and came back")                                      \
  X(kCrashAfterCommitRecovered, "crash.after_commit_recovered",                                  \
    "a service crashed after a commit, before its acknowledgement, and came back")               \
  X(kPowerLossLostWrites, "storage.power_loss_lost_writes",                                      \
    "a power loss dropped writes a database had not synced")                                     \
  X(kStorageIoError, "storage.io_error",                                                         \
    "an SQLite call failed with an I/O error; its transaction rolled back")                      \
  X(kStorageFull, "storage.disk_full",                                                           \
    "an SQLite call found the disk full; its transaction rolled back")                           \
  X(kWorkloadOpeningBurst, "workload.opening_burst", "a burst of arrivals at opening")           \
  X(kWorkloadClosingBurst, "workload.closing_burst", "a burst of arrivals at closing")           \
  X(kWorkloadTightStock, "workload.tight_stock", "shelves stocked close to their thresholds")    \
  X(kHelloCatchUp, "hello.catch_up",                                                             \
    "Hello Helper took a delivery over three hours late (inbox.late_delivery, in this service)") \
  X(kInventoryCatchUp, "inventory.catch_up",                                                     \
    "Inventory Intel took a delivery over three hours late (inbox.late_delivery, in it)")        \
  X(kFastlaneCatchUp, "fastlane.catch_up",                                                       \
    "Fastlane Finale took a delivery over three hours late (inbox.late_delivery, in it)")

enum class Mark : std::uint8_t {
#define EVENTMART_MARK_ENUMERATOR(id, name, what) id,
  EVENTMART_MARKS(EVENTMART_MARK_ENUMERATOR)
#undef EVENTMART_MARK_ENUMERATOR
      kCount,
};

inline constexpr std::size_t kMarkCount = static_cast<std::size_t>(Mark::kCount);

struct MarkInfo {
  Mark mark;
  std::string_view name;  // "inbox.duplicate": stable, used in reports and --json
  std::string_view what;  // one line
};

// Every mark, in enum order.
const std::array<MarkInfo, kMarkCount>& all_marks();

using MarkCounts = std::array<std::uint64_t, kMarkCount>;

// Counts the marks hit on this thread while it lives (one simulated run). Scopes nest: the
// innermost counts.
class MarkScope {
 public:
  explicit MarkScope(MarkCounts& counts);
  ~MarkScope();
  MarkScope(const MarkScope&) = delete;
  MarkScope& operator=(const MarkScope&) = delete;

 private:
  MarkCounts* previous_;
};

namespace detail {
// The counts of this thread's innermost scope, or null. A function rather than an extern
// thread_local variable: UBSan (GCC 12) reports the latter's TLS wrapper as a null load.
MarkCounts*& current_marks();
}  // namespace detail

// The code took the rare path `m`.
inline void mark(Mark m) {
  if (MarkCounts* counts = detail::current_marks()) ++(*counts)[static_cast<std::size_t>(m)];
}

}  // namespace eventmart
