// Topic naming. Store topics live under "{chain}/{store}/..." (compatible with the reference
// implementation); the logistics department's bus is external and namespaced
// "logistics/{chain}/{store}/...".
#pragma once

#include <string>
#include <string_view>

namespace eventmart {

inline constexpr std::string_view kDefaultChain = "spectrum-grocers";
inline constexpr std::string_view kDefaultStore = "fresh-frontier";

struct Topics {
  // Throws std::invalid_argument unless chain and store are non-empty single topic levels
  // (no '/', '+', '#', NUL).
  Topics(std::string_view chain, std::string_view store);
  Topics() : Topics(kDefaultChain, kDefaultStore) {}

  std::string chain;
  std::string store;
  std::string customer_arrival;    // {chain}/{store}/customer-arrival
  std::string customer_departure;  // {chain}/{store}/customer-departure
  std::string payment_due;         // {chain}/{store}/payment-due
  std::string display_entrance;    // {chain}/{store}/display/entrance
  std::string entrance_scanner;    // {chain}/{store}/devices/entrance-scanner (raw readings)
  std::string exit_gate;           // {chain}/{store}/devices/exit-gate (raw readings)
  std::string restock_needed;      // logistics/{chain}/{store}/restock-needed
  std::string stock_replenished;   // logistics/{chain}/{store}/stock-replenished

  // {chain}/{store}/dead-letter/{service}
  std::string dead_letter(std::string_view service) const;
  // {chain}/{store}/status/{service}[/{instance}]: "online" / "offline", retained
  std::string status(std::string_view service, std::string_view instance = {}) const;
};

// True when `level` can stand as one topic level: non-empty, no '/', '+', '#' or NUL.
bool is_valid_topic_level(std::string_view level);

}  // namespace eventmart
