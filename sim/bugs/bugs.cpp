#include "sim/bugs/bugs.h"

namespace eventmart::sim {

const std::vector<BugInfo>& all_bugs() {
  static const std::vector<BugInfo> bugs = {
      {Bug::kNoDedup, "no-dedup",
       "Inventory Intel skips its inbox, so a redelivered departure or replenishment is "
       "applied again",
       "inventory_matches_shelves (units counted out twice)"},
      {Bug::kAckBeforeCommit, "ack-before-commit",
       "Inventory Intel and Fastlane Finale acknowledge a delivery before their transaction "
       "commits, so a crash in between loses the event",
       "departure_paid_once (a departure never paid) or inventory_matches_shelves"},
      {Bug::kRestockEveryEvent, "restock-every-event",
       "Inventory Intel raises RestockNeeded on every sale below the threshold, not once per "
       "crossing",
       "restock_once_per_crossing"},
      {Bug::kNoOutbox, "no-outbox",
       "Inventory Intel and Fastlane Finale commit, then publish directly instead of through "
       "the outbox, so a crash between commit and publish loses the event",
       "departure_paid_once (a payment never sent) or restock_once_per_crossing"},
      {Bug::kFloatMoney, "float-money",
       "Fastlane Finale sums prices as double in currency units and truncates to cents",
       "payment_equals_basket"},
  };
  return bugs;
}

std::optional<Bug> parse_bug(std::string_view name) {
  if (name == "none") return Bug::kNone;
  for (const BugInfo& info : all_bugs()) {
    if (info.name == name) return info.bug;
  }
  return std::nullopt;
}

std::string_view bug_name(Bug bug) {
  for (const BugInfo& info : all_bugs()) {
    if (info.bug == bug) return info.name;
  }
  return "none";
}

}  // namespace eventmart::sim
