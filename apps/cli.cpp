#include "apps/cli.h"

#include <pthread.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/topics.h"

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

mqtt::MqttOptions ConnectionArgs::to_options(const po::variables_map& vm) const {
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
  o.verify_server = vm.count("insecure") == 0;
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
  if (!is_valid_topic_level(chain)) throw UsageError{"--chain must be one topic level"};
  if (!is_valid_topic_level(store)) throw UsageError{"--store must be one topic level"};
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
  if (std::string why = l.validate(); !why.empty()) throw UsageError{why};
  return l;
}

namespace {

// EVENTMART_DATA_DIR -> "data-dir" when that is an option of `desc`, else ignored.
std::function<std::string(std::string)> env_mapper(const po::options_description& desc) {
  return [&desc](std::string name) -> std::string {
    static constexpr std::string_view kPrefix = "EVENTMART_";
    if (name.rfind(kPrefix, 0) != 0) return "";
    std::string option;
    for (char c : name.substr(kPrefix.size())) {
      option += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (option == "config") return option;
    return desc.find_nothrow(option, false) != nullptr ? option : "";
  };
}

}  // namespace

po::variables_map parse_all(const std::vector<std::string>& args, po::options_description& desc,
                            const po::positional_options_description* positional) {
  po::variables_map vm;
  const int style = po::command_line_style::unix_style ^ po::command_line_style::allow_short;
  auto parser = po::command_line_parser(args).options(desc).style(style);
  po::positional_options_description none;
  parser.positional(positional != nullptr ? *positional : none);
  po::store(parser.run(), vm);  // a word beyond the positional ones is an error
  po::store(po::parse_environment(desc, env_mapper(desc)), vm);
  if (vm.count("config")) {
    const std::string file = vm["config"].as<std::string>();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) {
      throw UsageError{"--config: '" + file + "' is not a file"};
    }
    std::ifstream in(file);
    if (!in) throw UsageError{"--config: cannot read '" + file + "'"};
    po::store(po::parse_config_file(in, desc), vm);
  }
  po::notify(vm);
  return vm;
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
