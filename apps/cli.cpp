#include "apps/cli.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/topics.h"
#include "runtime/http_server.h"

namespace po = boost::program_options;

namespace eventmart::apps {

std::int64_t parse_int64(const std::string& option, const std::string& text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError{option + ": '" + excerpt(text, 40) + "' is not a whole number"};
  }
  return value;
}

std::uint64_t parse_uint64(const std::string& option, const std::string& text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError{option + ": '" + excerpt(text, 40) + "' is not a whole number from 0 to " +
                     std::to_string(UINT64_MAX)};
  }
  return value;
}

double parse_double(const std::string& option, const std::string& text) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value)) {
    throw UsageError{option + ": '" + excerpt(text, 40) + "' is not a number"};
  }
  return value;
}

std::int64_t parse_in_range(const std::string& option, const std::string& text, std::int64_t min,
                            std::int64_t max) {
  const std::int64_t value = parse_int64(option, text);
  if (value < min || value > max) {
    throw UsageError{option + " must be " + std::to_string(min) + ".." + std::to_string(max) +
                     " (got " + text + ")"};
  }
  return value;
}

Qos parse_qos(const std::string& option, const std::string& text) {
  if (text == "0") return Qos::kAtMostOnce;
  if (text == "1") return Qos::kAtLeastOnce;
  throw UsageError{option + " must be 0 or 1 (got '" + excerpt(text, 40) + "')"};
}

Durability parse_durability(const std::string& option, const std::string& text) {
  if (text == "normal") return Durability::kNormal;
  if (text == "full") return Durability::kFull;
  throw UsageError{option + " must be 'normal' or 'full' (got '" + excerpt(text, 40) + "')"};
}

LogLevel parse_log_level(const std::string& text) {
  if (text == "info") return LogLevel::kInfo;
  if (text == "warning") return LogLevel::kWarning;
  if (text == "error") return LogLevel::kError;
  throw UsageError{"--log-level must be info, warning or error (got '" + excerpt(text, 40) + "')"};
}

ConnectionArgs::ConnectionArgs() : chain(kDefaultChain), store(kDefaultStore) {}

po::options_description ConnectionArgs::describe() {
  po::options_description d("Broker");
  d.add_options()("broker", po::value(&brokers)->value_name("URI"),
                  "the MQTT broker: tcp://HOST:PORT, or ssl://HOST:PORT for TLS "
                  "(default tcp://127.0.0.1:1883); repeated, or a comma-separated list, for the "
                  "nodes of a cluster: a failed connection goes on to the next")(
      "chain", po::value(&chain)->value_name("NAME"),
      "the chain's topic level (default spectrum-grocers)")(
      "store", po::value(&store)->value_name("NAME"),
      "the store's topic level (default fresh-frontier)")(
      "wire", po::value(&wire)->value_name("capnp|json"),
      "message format: capnp (default) or json, compatible with the reference implementation")(
      "username", po::value(&username)->value_name("USER"), "broker user name")(
      "password", po::value(&password)->value_name("PASSWORD"),
      "broker password (better: EVENTMART_PASSWORD or a config file)")(
      "ca-file", po::value(&ca_file)->value_name("FILE"),
      "TLS: the CA certificate the broker's certificate must chain to")(
      "cert-file", po::value(&cert_file)->value_name("FILE"),
      "TLS: this client's certificate, for brokers that require one")(
      "key-file", po::value(&key_file)->value_name("FILE"), "TLS: the client's private key")(
      "insecure", "TLS: do not verify the broker's certificate (testing only)")(
      "max-in-flight", po::value(&max_in_flight)->value_name("N"),
      "publishes awaiting the broker's acknowledgement at once, per client (default 256)")(
      "mqtt-version", po::value(&mqtt_version)->value_name("5|3.1.1"),
      "MQTT protocol version (default 5: refused publishes are reported and sent again); 3.1.1 "
      "for brokers that speak only that")(
      "session-expiry", po::value(&session_expiry)->value_name("SECONDS"),
      ("MQTT 5: how long the broker keeps a client's session and queued messages after it "
       "disconnects, 1..4294967294 (default " +
       session_expiry + ")")
          .c_str())(
      "welcome-expiry", po::value(&welcome_expiry)->value_name("SECONDS"),
      ("MQTT 5: how long the broker keeps a welcome for the entrance display, 1..86400 "
       "(default " +
       welcome_expiry + ")")
          .c_str());
  return d;
}

mqtt::MqttOptions ConnectionArgs::to_options(bool insecure) const {
  mqtt::MqttOptions o;
  std::string list;
  for (const std::string& given : brokers.empty() ? std::vector<std::string>{o.broker} : brokers) {
    for (const std::string& uri : mqtt::broker_uris(given)) {
      if (uri.rfind("tcp://", 0) != 0 && uri.rfind("ssl://", 0) != 0 &&
          uri.rfind("mqtt://", 0) != 0 && uri.rfind("mqtts://", 0) != 0) {
        throw UsageError{"--broker must start with tcp:// or ssl:// (got '" + excerpt(uri, 80) +
                         "')"};
      }
      list += (list.empty() ? "" : ",") + uri;
    }
  }
  o.broker = list;
  auto format = parse_wire_format(wire);
  if (!format) throw UsageError{"--wire must be 'capnp' or 'json' (got '" + excerpt(wire) + "')"};
  o.wire = *format;
  o.username = username;
  o.password = password;
  if (!password.empty() && username.empty()) throw UsageError{"--password needs --username"};
  o.ca_file = ca_file;
  o.cert_file = cert_file;
  o.key_file = key_file;
  o.verify_server = !insecure;
  for (const std::string* f : {&ca_file, &cert_file, &key_file}) {
    if (!f->empty() && (!std::filesystem::is_regular_file(*f) || !std::ifstream(*f))) {
      throw UsageError{"cannot read '" + *f + "' (not a readable file)"};
    }
  }
  o.max_in_flight = static_cast<int>(parse_in_range("--max-in-flight", max_in_flight, 1, 65535));
  if (mqtt_version == "5") {
    o.version = mqtt::MqttVersion::k5;
  } else if (mqtt_version == "3.1.1") {
    o.version = mqtt::MqttVersion::k311;
  } else {
    throw UsageError{"--mqtt-version must be 5 or 3.1.1 (got '" + excerpt(mqtt_version, 40) + "')"};
  }
  o.session_expiry_s = static_cast<std::uint32_t>(
      parse_in_range("--session-expiry", session_expiry, 1, 4'294'967'294));
  o.welcome_expiry_s =
      static_cast<std::uint32_t>(parse_in_range("--welcome-expiry", welcome_expiry, 1, 86'400));
  for (const auto& [option, level] : {std::pair{"--chain", &chain}, std::pair{"--store", &store}}) {
    if (!is_valid_topic_level(*level))
      throw UsageError{std::string(option) + " must be one topic level"};
    // "$SYS", "$share": a topic starting with '$' is the broker's, and "+/#" filters skip it.
    if (level->front() == '$') {
      throw UsageError{std::string(option) + " must not start with '$' (got '" +
                       excerpt(*level, 40) + "'): such topics belong to the broker"};
    }
  }
  return o;
}

LimitArgs::LimitArgs()
    : payload_bytes(std::to_string(default_limits().max_payload_bytes)),
      basket_lines(std::to_string(default_limits().max_basket_lines)),
      units_per_line(std::to_string(default_limits().max_units_per_line)),
      basket_units(std::to_string(default_limits().max_basket_units)),
      id_length(std::to_string(default_limits().max_id_bytes)) {}

po::options_description LimitArgs::describe() {
  po::options_description d("Limits (a message beyond them is dead-lettered with its reason)");
  d.add_options()("max-payload-bytes", po::value(&payload_bytes)->value_name("N"),
                  ("bytes of one message, 64..16777216 (default " + payload_bytes + ")").c_str())(
      "max-basket-lines", po::value(&basket_lines)->value_name("N"),
      ("different products in one basket, 1..100000 (default " + basket_lines + ")").c_str())(
      "max-units-per-line", po::value(&units_per_line)->value_name("N"),
      ("units of one product in one basket, 1..1000000 (default " + units_per_line + ")").c_str())(
      "max-basket-units", po::value(&basket_units)->value_name("N"),
      ("units in one basket, 1..1000000 (default " + basket_units + ")").c_str())(
      "max-id-length", po::value(&id_length)->value_name("N"),
      ("bytes of an event or scan id, 16..1024 (default " + id_length + ")").c_str());
  return d;
}

InputLimits LimitArgs::to_limits() const {
  InputLimits l;
  l.max_payload_bytes =
      static_cast<std::size_t>(parse_in_range("--max-payload-bytes", payload_bytes, 64, 16 << 20));
  l.max_basket_lines = parse_in_range("--max-basket-lines", basket_lines, 1, 100'000);
  l.max_units_per_line = parse_in_range("--max-units-per-line", units_per_line, 1, 1'000'000);
  l.max_basket_units = parse_in_range("--max-basket-units", basket_units, 1, 1'000'000);
  l.max_id_bytes = static_cast<std::size_t>(parse_in_range("--max-id-length", id_length, 16, 1024));
  if (Status valid = l.validate(); !valid) throw UsageError{valid.error()};
  return l;
}

namespace {

// EVENTMART_DATA_DIR -> "data-dir" when that is an option of `desc` (or "config"), else "".
std::string option_of_variable(const po::options_description& desc, std::string_view name) {
  static constexpr std::string_view kPrefix = "EVENTMART_";
  if (name.substr(0, kPrefix.size()) != kPrefix) return "";
  std::string option;
  for (char c : name.substr(kPrefix.size())) {
    option += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (option == "config") return option;
  if (option == "help") return "";  // a variable never asks for help instead of running
  return desc.find_nothrow(option, false) != nullptr ? option : "";
}

// The EVENTMART_* variables that name options of `desc`, with a value: as parsed options.
po::parsed_options environment_options(const po::options_description& desc,
                                       OptionSources* sources) {
  po::parsed_options parsed(&desc);
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const auto equals = text.find('=');
    if (equals == std::string_view::npos || equals + 1 == text.size()) continue;  // empty
    const std::string option = option_of_variable(desc, text.substr(0, equals));
    if (option.empty()) continue;
    const std::string value(text.substr(equals + 1));
    const po::option_description* d = desc.find_nothrow(option, false);
    if (d != nullptr && d->semantic()->max_tokens() == 0) {
      // A switch (--all, --no-stdin): EVENTMART_NO_STDIN=1 sets it, =0 does not.
      if (value == "0" || value == "false" || value == "no") continue;
      if (value != "1" && value != "true" && value != "yes") {
        throw UsageError{std::string(text.substr(0, equals)) + " must be 1 or 0 (got '" +
                         excerpt(value, 40) + "')"};
      }
      parsed.options.push_back(po::option(option, {}));
    } else {
      parsed.options.push_back(po::option(option, {value}));
    }
    if (sources != nullptr) {
      (*sources)[option] = "environment (" + std::string(text.substr(0, equals)) + ")";
    }
  }
  return parsed;
}

// Drops from `parsed` what a higher source decided already: a choice of `rules.one_choice` it
// made. (An option it set is skipped by po::store itself.)
void drop_decided(po::parsed_options& parsed, const po::variables_map& vm,
                  const ParseRules& rules) {
  const auto decided = [&](const std::string& option) {
    for (const auto& group : rules.one_choice) {
      if (std::find(group.begin(), group.end(), option) == group.end()) continue;
      for (const std::string& member : group) {
        if (vm.count(member) != 0 && !vm[member].defaulted()) return true;
      }
    }
    return false;
  };
  std::erase_if(parsed.options, [&](const po::option& o) { return decided(o.string_key); });
}

// Notes `source` for each option of `parsed` that no higher source set.
void note_sources(const po::parsed_options& parsed, const po::variables_map& vm,
                  const std::string& source, OptionSources* sources) {
  if (sources == nullptr) return;
  for (const po::option& o : parsed.options) {
    if (vm.count(o.string_key) == 0 || vm[o.string_key].defaulted()) {
      sources->emplace(o.string_key, source);
    }
  }
}

}  // namespace

po::variables_map parse_all(const std::vector<std::string>& args, po::options_description& desc,
                            const ParseRules& rules) {
  po::variables_map vm;
  const int style = po::command_line_style::unix_style ^ po::command_line_style::allow_short;
  auto parser = po::command_line_parser(args).options(desc).style(style);
  po::positional_options_description none;
  parser.positional(rules.positional != nullptr ? *rules.positional : none);
  const po::parsed_options command_line = parser.run();  // a word beyond the positional ones
  note_sources(command_line, vm, "command line", rules.sources);
  po::store(command_line, vm);

  OptionSources from_environment;
  po::parsed_options environment = environment_options(desc, &from_environment);
  drop_decided(environment, vm, rules);
  if (rules.sources != nullptr) {
    for (const po::option& o : environment.options) {
      if (vm.count(o.string_key) == 0)
        rules.sources->emplace(o.string_key, from_environment[o.string_key]);
    }
  }
  po::store(environment, vm);

  if (vm.count("config")) {
    const std::string file = vm["config"].as<std::string>();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) {
      throw UsageError{"--config: '" + file + "' is not a file"};
    }
    std::ifstream in(file);
    if (!in) throw UsageError{"--config: cannot read '" + file + "'"};
    po::parsed_options config = po::parse_config_file(in, desc);
    drop_decided(config, vm, rules);
    note_sources(config, vm, "file " + file, rules.sources);
    po::store(config, vm);
  }
  po::notify(vm);
  return vm;
}

void check_listen_address(const std::string& option, const std::string& host_port) {
  try {
    runtime::listen_endpoint(option, host_port);
  } catch (const std::invalid_argument& e) {
    throw UsageError{e.what()};
  }
}

int parse_max_connections(const std::string& option, const std::string& text) {
  return static_cast<int>(parse_in_range(option, text, 1, 65535));
}

void print_config(std::ostream& out, const po::options_description& desc,
                  const po::variables_map& vm, const OptionSources& sources) {
  for (const auto& option : desc.options()) {
    const std::string& name = option->long_name();
    if (name == "help" || name == "config" || name == "print-config") continue;
    std::string value;
    if (vm.count(name) == 0) {
      out << name
          << (option->semantic()->max_tokens() == 0 ? "  # default, a switch\n" : "  # default\n");
      continue;
    }
    const boost::any& any = vm[name].value();
    if (option->semantic()->max_tokens() == 0) {
      value = "yes";  // a switch
    } else if (const auto* text = boost::any_cast<std::string>(&any)) {
      value = *text;
    } else if (const auto* list = boost::any_cast<std::vector<std::string>>(&any)) {
      for (const std::string& item : *list) value += (value.empty() ? "" : ", ") + item;
    }
    if (name.find("password") != std::string::npos) value = "(set)";
    const auto source = sources.find(name);
    out << name << " = " << value << "  # "
        << (source == sources.end() ? std::string("default") : source->second) << "\n";
  }
}

int with_usage_errors(const char* command, const std::function<int()>& fn) {
  std::string message;
  try {
    return fn();
  } catch (const po::too_many_positional_options_error&) {
    message = "a word that is no option was given (every option starts with --)";
  } catch (const po::error& e) {
    message = e.what();
  } catch (const UsageError& e) {
    message = e.message;
  }
  std::cerr << "eventmart " << command << ": " << message << "\nTry 'eventmart " << command
            << " --help'.\n";
  return 2;
}

sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return signals;
}

}  // namespace eventmart::apps
