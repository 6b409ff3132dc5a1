// What every command of the `eventmart` command line shares: usage errors and numbers with
// messages that say what was wrong, the options of a broker connection, the options that
// bound a message (InputLimits), and one way of reading options from the command line, the
// environment (EVENTMART_*) and a config file.
#pragma once

#include <signal.h>

#include <boost/program_options.hpp>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bus.h"
#include "core/limits.h"
#include "core/log.h"
#include "services/sqlite.h"
#include "transports/mqtt/mqtt_bus.h"

namespace eventmart::apps {

// Bad usage: the command prints the message and "Try 'eventmart CMD --help'" and exits 2.
struct UsageError : std::runtime_error {
  explicit UsageError(const std::string& what) : std::runtime_error(what), message(what) {}
  std::string message;
};

// Numeric option values; throw UsageError ("--customers: 'x' is not a whole number"). Boost's
// lexical_cast would quietly wrap "-1" into a huge unsigned number; these do not.
std::int64_t parse_int64(const std::string& option, const std::string& text);
std::uint64_t parse_uint64(const std::string& option, const std::string& text);
double parse_double(const std::string& option, const std::string& text);
// An integer option in [min, max], or a UsageError naming the range.
std::int64_t parse_in_range(const std::string& option, const std::string& text, std::int64_t min,
                            std::int64_t max);

Qos parse_qos(const std::string& option, const std::string& text);
// "normal" or "full" (--durability of serve and sim).
Durability parse_durability(const std::string& option, const std::string& text);
LogLevel parse_log_level(const std::string& text);

// The options of a connection to a broker (--broker, --chain, --store, --wire, auth, TLS,
// --max-in-flight, --mqtt-version and the MQTT 5 expiries).
// For a long-running command that ends on SIGINT or SIGTERM: blocks both (call it before any
// thread exists, so every thread inherits the mask and sigwait takes them), ignores SIGPIPE,
// and returns the set to sigwait on.
sigset_t block_stop_signals();

struct ConnectionArgs {
  // --broker, each a URI or a comma-separated list; none: tcp://127.0.0.1:1883.
  std::vector<std::string> brokers;
  std::string chain;
  std::string store;
  std::string wire = "capnp";
  std::string username;
  std::string password;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string max_in_flight = "256";
  std::string mqtt_version = "5";
  std::string session_expiry = std::to_string(mqtt::MqttOptions{}.session_expiry_s);
  std::string welcome_expiry = std::to_string(mqtt::MqttOptions{}.welcome_expiry_s);

  ConnectionArgs();
  boost::program_options::options_description describe();
  // The options given (`insecure`: --insecure was given). Throws UsageError.
  mqtt::MqttOptions to_options(bool insecure) const;
};

// The --max-* options that bound one message (core/limits.h), with their defaults.
struct LimitArgs {
  std::string payload_bytes;
  std::string basket_lines;
  std::string units_per_line;
  std::string basket_units;
  std::string id_length;

  LimitArgs();
  boost::program_options::options_description describe();
  InputLimits to_limits() const;  // throws UsageError
};

// Where each option set by parse_all() came from: "command line", "environment
// (EVENTMART_X)" or "file F". Options left at their default are not in it.
using OptionSources = std::map<std::string, std::string>;

// How parse_all() reads the sources of one command.
struct ParseRules {
  // Options given by position (scan's kind), or null.
  const boost::program_options::positional_options_description* positional = nullptr;
  // Options that make one choice together (serve's --service and --all): the highest source
  // that sets any of them makes it, and what a lower one says of them is not read.
  std::vector<std::vector<std::string>> one_choice;
  OptionSources* sources = nullptr;  // filled when not null
};

// A HOST:PORT to listen on (runtime/http_server.h), or a UsageError naming `option`.
void check_listen_address(const std::string& option, const std::string& host_port);
// "--http-max-connections": 1..65535, or a UsageError.
int parse_max_connections(const std::string& option, const std::string& text);

// Parses `args` against `desc`: the command line first, then EVENTMART_* variables (an
// option --data-dir is EVENTMART_DATA_DIR), then the file named by --config: the first to set
// an option wins, and wins whole (a repeatable option's values all come from one source).
// An empty variable sets nothing, and EVENTMART_HELP none is read. Words that are no option,
// a --config that is not a readable file, and unknown options are usage errors.
boost::program_options::variables_map parse_all(const std::vector<std::string>& args,
                                                boost::program_options::options_description& desc,
                                                const ParseRules& rules = {});

// One line per option of `desc` (help, config and print-config aside): "name = value  # where
// it came from" (or "# default"); a password shows as "(set)". For --print-config.
void print_config(std::ostream& out, const boost::program_options::options_description& desc,
                  const boost::program_options::variables_map& vm, const OptionSources& sources);

// Runs `fn`; a UsageError (or Boost's own option errors) is printed for `command` and becomes
// exit status 2. Otherwise returns what `fn` returned.
int with_usage_errors(const char* command, const std::function<int()>& fn);

}  // namespace eventmart::apps
