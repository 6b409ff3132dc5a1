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

enum class Mark : std::uint8_t {
  kInboxDuplicate,            // a delivery recognised as one consumed before
  kInboxConflict,             // an event id consumed before with other content, refused
  kDeadLetter,                // a service dead-lettered a message it could not consume
  kRelayPublishFailed,        // the outbox relay was told a publish failed; the row stays owed
  kRelayResentFromBefore,     // a relay started with rows left by an earlier life of the service
  kBasketRepeatedSku,         // a bag scan held lines of one sku apart, merged
  kGuardianRefusedReading,    // a guardian refused a reading (card, scan id, basket)
  kUnknownCard,               // Hello Helper welcomed an unknown card generically
  kUnknownSku,                // a departure listed a sku the inventory does not know
  kUnpricedSku,               // a departure listed a sku without a price
  kShortfall,                 // a sale beyond the units on record
  kRestockRaised,             // a product crossed below its threshold
  kRestockRearmed,            // a delivery lifted a product back to its threshold
  kTwoRestocksInOneBasket,    // one departure crossed two products' thresholds
  kThresholdCrossedAgain,     // a product crossed below its threshold again in a day
  kTransportPublishFailed,    // the memory transport failed a publish (connection lost, fault)
  kTransportRedelivery,       // a delivery arrived only by retransmission after a loss
  kTransportQueuedForAbsent,  // a QoS 1 message queued for a client that was away
  kTransportRedeliveredAfterReconnect,  // a delivery a client had, unacknowledged, sent to its
                                        // next connection (after a restart)
  kTransportResentAfterPartition,       // a partition healed with deliveries queued: resent
  kTransportHandlerRetried,             // a delivery dispatched again after its handler threw
  kTransportGaveUp,                     // a delivery dead-lettered after its handler kept failing
  kCrashBeforeCommitRecovered,          // a service crashed inside a transaction and came back
  kCrashAfterCommitRecovered,           // ... after a commit, before the acknowledgement
  kPowerLossLostWrites,                 // a power loss dropped writes a database had not synced
  kStorageIoError,                      // an SQLite call failed with an I/O error (rolled back)
  kStorageFull,                         // an SQLite call found the disk full (rolled back)
  kWorkloadOpeningBurst,                // the day began with a burst of arrivals
  kWorkloadClosingBurst,                // ... and ended with one
  kWorkloadTightStock,                  // shelves stocked close to their thresholds
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
