// Why a simulation cannot run with the options it was given, in the simulator's own words:
// which option (by meaning, not by a command-line flag) and what is wrong with its value. The
// command line (apps/) turns an OptionError into a message naming its flag.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace eventmart::sim {

enum class SimOption : std::uint8_t {
  kCustomers,
  kProducts,
  kOpenDuration,
  kLatency,
  kChain,
  kStore,
  kScenario,
  kDropProbability,
  kDuplicateProbability,
  kReorderProbability,
  kDelayMean,
  kPartitionPerMinute,
  kCrashPerMinute,
  kBrokerRestartPerMinute,
  kPublishFailureProbability,
  kPowerLossPerMinute,
  kIoErrorProbability,
  kDiskFullPerMinute,
  kLongOutagePerHour,
  kWorkloadShape,
  kKnobs,
  kRecipe,
};

// "customers", "drop probability", ...: how the simulator names an option in its own errors.
std::string_view option_name(SimOption option);

struct OptionError {
  SimOption option;
  std::string problem;  // "must be >= 0 (got -5)": what is wrong, without the option's name

  // "customers must be >= 0 (got -5)".
  std::string describe() const { return std::string(option_name(option)) + " " + problem; }
};

// nullopt: the options are usable.
using OptionCheck = std::optional<OptionError>;

}  // namespace eventmart::sim
