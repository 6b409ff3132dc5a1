#include "transports/mqtt/mqtt_bus.h"

#include <dirent.h>
#include <mqtt/async_client.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "core/topic_filter.h"

namespace eventmart::mqtt {
namespace {

constexpr std::int64_t kShortLivedUs = 10'000'000;  // a connection lost sooner was not healthy
constexpr int kTakeoverSuspicion = 3;               // short-lived connections in a row
constexpr int kProbeTimeoutS = 3;
// How often the reconnect supervisor looks (MqttBus::watch_connection).
constexpr std::int64_t kWatchUs = 5'000'000;
// Refused publishes of one topic (and reason) are logged at most once this often.
constexpr std::int64_t kRefusalLogUs = 10'000'000;
// The generation of a drain's connection: never that of the bus's own.
constexpr std::uint64_t kDrainGeneration = UINT64_MAX;

// "$share/{group}/{filter}" -> "{filter}"; any other filter as is.
std::string match_filter_of(const std::string& filter) {
  static constexpr std::string_view kShare = "$share/";
  if (filter.rfind(kShare, 0) != 0) return filter;
  const std::size_t slash = filter.find('/', kShare.size());
  if (slash == std::string::npos || slash == kShare.size()) {
    throw std::invalid_argument("shared subscription '" + filter +
                                "' must be $share/{group}/{filter}");
  }
  return filter.substr(slash + 1);
}

// Paho C 1.3 leaves Nagle's algorithm on and offers no socket option. A small PUBLISH written
// right after a PUBACK then waits for the broker's delayed ACK (40 ms on Linux) - that is the
// latency of every hop of the pipeline. On each connect, TCP_NODELAY is set on the process's
// TCP sockets (setting it twice, or on another client's socket, is harmless).
void disable_nagle_on_tcp_sockets() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (const dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == ::dirfd(dir)) continue;
    struct stat st {};
    if (::fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        type != SOCK_STREAM) {
      continue;
    }
    sockaddr_storage addr{};
    socklen_t addr_len = sizeof addr;
    if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0 ||
        (addr.ss_family != AF_INET && addr.ss_family != AF_INET6)) {
      continue;
    }
    const int on = 1;
    ::setsockopt(static_cast<int>(fd), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  ::closedir(dir);
}

struct Endpoint {
  bool tls = false;
  std::string host;
  std::string port;
};

// tcp://host:port, mqtt://, ssl://, mqtts:// (ports default to 1883 and 8883).
Endpoint endpoint_of(const std::string& uri) {
  Endpoint e;
  std::size_t scheme_end = uri.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "tcp" : uri.substr(0, scheme_end);
  e.tls = scheme == "ssl" || scheme == "mqtts";
  std::string rest = scheme_end == std::string::npos ? uri : uri.substr(scheme_end + 3);
  if (const std::size_t slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  const std::size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']') < colon + 1) {
    e.host = rest.substr(0, colon);
    e.port = rest.substr(colon + 1);
  } else if (colon != std::string::npos && rest.find('[') == std::string::npos) {
    e.host = rest.substr(0, colon);
    e.port = rest.substr(colon + 1);
  } else {
    e.host = rest;
    e.port = e.tls ? "8883" : "1883";
  }
  if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']') {
    e.host = e.host.substr(1, e.host.size() - 2);
  }
  return e;
}

int paho_version(MqttVersion version) {
  return version == MqttVersion::k5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
}

// The name of an MQTT 5 reason code of 0x80 or more (MQTT 5 section 2.4), with the code.
std::string reason_text(int code) {
  static const std::map<int, std::string_view> kNames = {
      {0x00, "normal disconnection"},
      {0x80, "unspecified error"},
      {0x81, "malformed packet"},
      {0x82, "protocol error"},
      {0x83, "implementation specific error"},
      {0x84, "unsupported protocol version"},
      {0x85, "client identifier not valid"},
      {0x86, "bad user name or password"},
      {0x87, "not authorized"},
      {0x88, "server unavailable"},
      {0x89, "server busy"},
      {0x8A, "banned"},
      {0x8B, "server shutting down"},
      {0x8C, "bad authentication method"},
      {0x8D, "keep alive timeout"},
      {0x8E, "session taken over"},
      {0x8F, "topic filter invalid"},
      {0x90, "topic name invalid"},
      {0x91, "packet identifier in use"},
      {0x93, "receive maximum exceeded"},
      {0x95, "packet too large"},
      {0x96, "message rate too high"},
      {0x97, "quota exceeded"},
      {0x98, "administrative action"},
      {0x99, "payload format invalid"},
      {0x9A, "retain not supported"},
      {0x9B, "QoS not supported"},
      {0x9C, "use another server"},
      {0x9D, "server moved"},
      {0x9E, "shared subscriptions not supported"},
      {0x9F, "connection rate exceeded"},
      {0xA0, "maximum connect time"},
      {0xA1, "subscription identifiers not supported"},
      {0xA2, "wildcard subscriptions not supported"},
  };
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(code) & 0xFFu);
  const auto it = kNames.find(code);
  return it == kNames.end() ? std::string("reason code ") + hex
                            : std::string(it->second) + " (" + hex + ")";
}

// A token's MQTT 5 reason code when it is a refusal (0x80 and above), else 0.
int refusal_of(const ::mqtt::token& tok) {
  const int code = static_cast<int>(tok.get_reason_code());
  return code >= 0x80 && code != ::mqtt::MQTTPP_V3_CODE ? code : 0;
}

// What a CONNACK refusal means, and what to do about it (MQTT 3.1.1 section 3.2.2.3; MQTT 5
// reason codes are 0x80 and above).
std::string connack_text(int code) {
  const std::string check =
      " (check --username and --password, or EVENTMART_PASSWORD, against the broker's password "
      "file";
  switch (code) {
    case 1:
      return "the broker does not accept MQTT 3.1.1";
    case 2:
      return "the broker refused the client id";
    case 3:
      return "the broker says the MQTT service is unavailable";
    case 4:
    case 0x86:
      return "the broker refused the user name or password" + check + ")";
    case 5:
      return "the broker refused this client: not authorised" + check + " and ACL)";
    case 0x87:
      return "the broker refused this client: not authorized" + check + " and ACL)";
    case 0x84:
      return "the broker does not speak MQTT 5: use --mqtt-version 3.1.1";
    default:
      return code >= 0x80
                 ? "the broker refused the connection: " + reason_text(code)
                 : "the broker refused the connection (CONNACK code " + std::to_string(code) + ")";
  }
}

// What every connection of a bus (and a drain's) sends in its CONNECT, TLS apart. `clean`: no
// session kept (MQTT 5: clean start, and a session that ends with the connection).
::mqtt::connect_options_builder connect_builder(const MqttOptions& o, bool clean) {
  auto builder = ::mqtt::connect_options_builder();
  builder.mqtt_version(paho_version(o.version))
      .keep_alive_interval(std::chrono::seconds(o.keep_alive_s))
      .connect_timeout(std::chrono::seconds(o.connect_timeout_s))
      .max_inflight(o.max_in_flight);
  if (o.version == MqttVersion::k5) {
    builder.clean_start(clean);
    builder.properties(::mqtt::properties{
        ::mqtt::property(::mqtt::property::SESSION_EXPIRY_INTERVAL,
                         static_cast<std::int32_t>(clean ? 0 : o.session_expiry_s))});
  } else {
    builder.clean_session(clean);
  }
  if (!o.username.empty()) {
    builder.user_name(o.username);
    builder.password(o.password);
  }
  return builder;
}

// Probes host:port over TCP to say why a connection attempt failed, then calls `done` (on the
// timer thread) with the problem and a sentence a person can act on.
class EndpointProbe : public std::enable_shared_from_this<EndpointProbe> {
 public:
  using Done = std::function<void(ConnectProblem, std::string)>;
  EndpointProbe(boost::asio::io_context& io, Endpoint endpoint, std::string tls_error, Done done)
      : resolver_(io),
        socket_(io),
        deadline_(io),
        endpoint_(std::move(endpoint)),
        tls_error_(std::move(tls_error)),
        done_(std::move(done)) {}

  void start() {
    auto self = shared_from_this();
    deadline_.expires_after(std::chrono::seconds(kProbeTimeoutS));
    deadline_.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->finished_) return;
      self->finish(ConnectProblem::kUnreachable, "no answer from " + self->where() + " within " +
                                                     std::to_string(kProbeTimeoutS) +
                                                     " s (a wrong address, or a firewall?)");
      boost::system::error_code ignored;
      self->socket_.close(ignored);
      self->resolver_.cancel();
    });
    resolver_.async_resolve(
        endpoint_.host, endpoint_.port,
        [self](const boost::system::error_code& ec,
               boost::asio::ip::tcp::resolver::results_type results) {
          if (self->finished_) return;
          if (ec) {
            return self->finish(
                ConnectProblem::kUnreachable,
                "cannot resolve host '" + self->endpoint_.host + "': " + ec.message());
          }
          boost::asio::async_connect(
              self->socket_, results,
              [self](const boost::system::error_code& error,
                     const boost::asio::ip::tcp::endpoint&) { self->connected(error); });
        });
  }

 private:
  std::string where() const { return endpoint_.host + ":" + endpoint_.port; }

  void connected(const boost::system::error_code& ec) {
    if (finished_) return;
    if (ec == boost::asio::error::connection_refused) {
      return finish(
          ConnectProblem::kUnreachable,
          "nothing listens on " + where() + " (connection refused): is the broker running?");
    }
    if (ec)
      return finish(ConnectProblem::kUnreachable, "cannot reach " + where() + ": " + ec.message());
    if (endpoint_.tls) {
      return finish(ConnectProblem::kHandshakeFailed,
                    "the TLS handshake with " + where() + " failed" +
                        (tls_error_.empty() ? "" : " (" + tls_error_ + ")") +
                        ": the broker's certificate must chain to --ca-file and name the host, "
                        "and the port must speak TLS");
    }
    finish(ConnectProblem::kHandshakeFailed,
           where() +
               " accepts TCP connections but did not complete an MQTT handshake: if it is a "
               "TLS port, use ssl://; if the broker speaks only MQTT 3.1.1, use "
               "--mqtt-version 3.1.1");
  }

  void finish(ConnectProblem problem, std::string text) {
    finished_ = true;
    deadline_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
    done_(problem, std::move(text));
  }

  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer deadline_;
  Endpoint endpoint_;
  std::string tls_error_;
  Done done_;
  bool finished_ = false;
};

}  // namespace

// How Paho's threads reach the bus: a task posted to the timer thread runs under the strand,
// and only while the bus is alive. Safe to keep and use after the bus is gone.
struct MqttBus::Link {
  std::function<void(std::function<void()>)> post;  // LiveClock::poster()
  std::shared_ptr<bool> alive;                      // read under the strand
  MqttBus* bus;

  template <typename Fn>
  void to_bus(Fn fn) {
    post([alive = alive, bus = bus, fn = std::move(fn)] {
      if (*alive) fn(*bus);
    });
  }
};

// One Paho client, for one connection: created for a connection attempt, destroyed when the
// connection ends. Its listeners carry the generation, so late callbacks of a retired client
// are recognised and ignored.
class MqttBus::Connection {
 public:
  Connection(std::shared_ptr<Link> link, std::uint64_t generation)
      : generation(generation),
        publish(link),
        connect(link, generation),
        subscribe(link, generation) {}

  struct Publish final : ::mqtt::iaction_listener {
    explicit Publish(std::shared_ptr<Link> l) : link(std::move(l)) {}
    void on_success(const ::mqtt::token& tok) override { done(tok, PublishOutcome::kConfirmed); }
    // A refusal (an MQTT 5 PUBACK reason code of 0x80 or more) arrives here too.
    void on_failure(const ::mqtt::token& tok) override { done(tok, PublishOutcome::kFailed); }
    void done(const ::mqtt::token& tok, PublishOutcome outcome) {
      const auto id = reinterpret_cast<std::uintptr_t>(tok.get_user_context());
      const int reason = outcome == PublishOutcome::kFailed ? refusal_of(tok) : 0;
      link->to_bus(
          [id, outcome, reason](MqttBus& bus) { bus.on_publish_done(id, outcome, reason); });
    }
    std::shared_ptr<Link> link;
  };

  struct Connect final : ::mqtt::iaction_listener {
    Connect(std::shared_ptr<Link> l, std::uint64_t g) : link(std::move(l)), generation(g) {}
    void on_success(const ::mqtt::token&) override {}  // the connected handler does the work
    void on_failure(const ::mqtt::token& tok) override {
      // MQTT 5: a refusing CONNACK's reason code (0x80 and above); 3.1.1: its return code.
      const int refusal = refusal_of(tok);
      const int rc = refusal != 0 ? refusal : tok.get_return_code();
      link->to_bus([g = generation, rc](MqttBus& bus) { bus.on_connect_failed(g, rc); });
    }
    std::shared_ptr<Link> link;
    std::uint64_t generation;
  };

  // One filter per SUBSCRIBE, so the SUBACK holds one reason code.
  struct Subscribe final : ::mqtt::iaction_listener {
    Subscribe(std::shared_ptr<Link> l, std::uint64_t g) : link(std::move(l)), generation(g) {}
    void on_success(const ::mqtt::token& tok) override {
      // MQTT 5: the reason code is the granted QoS. 3.1.1: the response holds it.
      int granted = static_cast<int>(tok.get_reason_code());
      if (tok.get_reason_code() == ::mqtt::ReasonCode::SUCCESS) {
        try {
          const auto codes = tok.get_subscribe_response().get_reason_codes();
          if (!codes.empty()) granted = static_cast<int>(codes.front());
        } catch (const ::mqtt::exception&) {
        }
      }
      link->to_bus([g = generation, filter = filter_of(tok), granted](MqttBus& bus) {
        bus.on_subscribed(g, filter, granted);
      });
    }
    void on_failure(const ::mqtt::token& tok) override {
      // A refusal: an MQTT 5 reason code of 0x80 or more, or 3.1.1's one failure code 0x80.
      // Anything else is Paho giving up on the request (the connection closed): the next
      // connection subscribes again.
      const int refusal = refusal_of(tok);
      const int reason = refusal != 0 ? refusal : tok.get_return_code() == 0x80 ? 0x80 : 0;
      if (reason == 0) return;
      link->to_bus([g = generation, filter = filter_of(tok), reason](MqttBus& bus) {
        bus.on_subscribe_refused(g, filter, reason);
      });
    }
    static std::string filter_of(const ::mqtt::token& tok) {
      const auto topics = tok.get_topics();
      return topics && topics->size() > 0 ? (*topics)[0] : std::string();
    }
    std::shared_ptr<Link> link;
    std::uint64_t generation;
  };

  const std::uint64_t generation;
  Publish publish;
  Connect connect;
  Subscribe subscribe;
  // Declared last: destroyed first, while the listeners it may still call are alive.
  std::unique_ptr<::mqtt::async_client> client;
};

// A sibling's session being drained (drain_session).
struct MqttBus::Drain {
  std::string client_id;
  std::string broker;
  std::chrono::milliseconds quiet;
  std::function<void(std::uint64_t)> done;
  std::shared_ptr<Connection> connection;
  std::atomic<std::uint64_t> drained{0};
  std::atomic<std::int64_t> last_message_us{0};
  bool finished = false;
};

MqttBus::MqttBus(MqttOptions options, const Topics& topics, LiveClock& clock, Strand& strand,
                 Logger& logger, std::string log_source)
    : options_(std::move(options)),
      topics_(topics),
      clock_(clock),
      strand_(strand),
      logger_(logger),
      source_(std::move(log_source)),
      link_(std::make_shared<Link>(Link{clock.poster(), alive_, this})) {
  if (options_.client_id.empty()) throw std::invalid_argument("MQTT client id is empty");
  if (options_.max_in_flight < 1) throw std::invalid_argument("max_in_flight must be >= 1");
  if (options_.handler_retry.max_attempts < 1 || options_.handler_retry.min_delay_us < 0) {
    throw std::invalid_argument("handler_retry: max_attempts must be >= 1, delays >= 0");
  }
  brokers_ = broker_uris(options_.broker);
  for (const std::string& uri : brokers_) {
    try {
      // Checks the URI and client id the way every connection's client will be made.
      ::mqtt::async_client probe(uri, options_.client_id,
                                 ::mqtt::create_options(paho_version(options_.version)), nullptr);
    } catch (const ::mqtt::exception& e) {
      throw std::invalid_argument("cannot use broker '" + uri + "': " + e.what());
    }
  }
}

MqttBus::~MqttBus() {
  stop(std::chrono::milliseconds(500));
  {
    std::lock_guard running(ops_->running);  // no queued Paho call is being made, or will be
    std::lock_guard lock(ops_->mutex);
    ops_->closed = true;
    ops_->queue.clear();
  }
  std::lock_guard lock(strand_);
  *alive_ = false;  // tasks posted by Paho's late callbacks find the bus gone
}

void MqttBus::post_alive(std::function<void()> fn) {
  link_->to_bus([fn = std::move(fn)](MqttBus&) { fn(); });
}

void MqttBus::start() {
  std::lock_guard lock(strand_);
  if (started_) return;
  started_ = true;
  stopping_ = false;
  connect_now();
  watch_timer_ = clock_.call_after(kWatchUs, [this] { watch_connection(); });
}

void MqttBus::connect_now() {
  const std::uint64_t generation = ++generation_;
  // The attempt reports back within the connect timeout; a failure is diagnosed within the
  // probe's. Past that (and a margin), the supervisor starts it again.
  attempt_due_at(clock_.now_us() +
                 std::int64_t{options_.connect_timeout_s + kProbeTimeoutS + 5} * 1'000'000);
  // Creating and connecting a Paho client takes Paho's lock: not under the strand.
  run_paho([this, generation, uri = broker()] { open_connection(generation, uri); });
}

void MqttBus::attempt_due_at(std::int64_t at_us) {
  attempt_due_us_ = at_us;
}

bool MqttBus::keeps_going(std::int64_t now_us) const {
  if (is_connected_ || stopping_) return true;
  const std::int64_t due = attempt_due_us_.load();
  // Overdue by more than two looks of the supervisor: nothing is trying any more.
  return due != 0 && now_us <= due + 2 * kWatchUs;
}

void MqttBus::watch_connection() {
  watch_timer_ = 0;
  if (stopping_) return;
  const std::int64_t now = clock_.now_us();
  if (!is_connected_ && reconnect_timer_ == 0 && now > attempt_due_us_.load()) {
    // Nothing reported back and nothing is scheduled: a failure on the way to a connection
    // left no reconnect behind. Never the normal course of things, so said loudly.
    ++stats_.connect_failures;
    logger_.log(LogLevel::kError, source_,
                "the connection attempt to " + broker() +
                    " never reported back and no reconnect was scheduled; trying again now");
    retire_connection();
    connect_now();
  }
  watch_timer_ = clock_.call_after(kWatchUs, [this] { watch_connection(); });
}

bool MqttBus::fail_over(const std::string& why) {
  if (stopping_ || broker_index_ + 1 >= brokers_.size()) return false;
  const std::string from = broker();
  ++broker_index_;
  logger_.log(LogLevel::kWarning, source_,
              "cannot use the broker at " + from + ": " + why + "; trying " + broker());
  connect_now();
  return true;
}

void MqttBus::open_connection(std::uint64_t generation, const std::string& uri) {
  auto connection = std::make_shared<Connection>(link_, generation);
  std::shared_ptr<Connection> stale;  // destroyed here, outside the strand, if not needed
  try {
    // Paho queues each publish as a command until its thread sends it: room for the whole
    // in-flight window (nothing is buffered while disconnected: that waits in backlog_).
    connection->client = std::make_unique<::mqtt::async_client>(
        uri, options_.client_id,
        ::mqtt::create_options(paho_version(options_.version), options_.max_in_flight + 64),
        nullptr);
  } catch (const std::exception& e) {  // a malformed URI, or no memory or descriptors left
    post_alive([this, generation, why = std::string(e.what())] {
      if (generation != generation_) return;
      report_failure(ConnectProblem::kRefused, why);
      schedule_reconnect(why, true);
    });
    return;
  }
  ::mqtt::async_client& client = *connection->client;
  client.set_connected_handler([link = link_, generation](const std::string&) {
    link->to_bus([generation](MqttBus& bus) { bus.on_connected(generation); });
  });
  client.set_connection_lost_handler([link = link_, generation](const std::string& cause) {
    link->to_bus([generation, cause](MqttBus& bus) { bus.on_connection_lost(generation, cause); });
  });
  // Runs on Paho's thread only while this client is connected; the current client is
  // destroyed by stop() before the bus goes.
  client.set_message_callback([this](::mqtt::const_message_ptr msg) {
    // Nothing may unwind into Paho's C code; on_message catches what it can recover from.
    in_paho_callback_ = true;
    struct Reset {
      ~Reset() { in_paho_callback_ = false; }
    } reset;
    on_message(msg->get_topic(), msg->get_payload_str(), msg->is_duplicate());
  });

  // MQTT 5: a broker that ends the connection with a DISCONNECT of its own (session taken over,
  // shutting down) gets no lost-connection callback from Paho, only this one.
  client.set_disconnected_handler(
      [link = link_, generation](const ::mqtt::properties&, ::mqtt::ReasonCode reason) {
        link->to_bus([generation, reason = static_cast<int>(reason)](MqttBus& bus) {
          bus.on_disconnected_by_broker(generation, reason);
        });
      });

  auto builder = connect_builder(options_, options_.clean_session);
  if (!options_.status_topic.empty()) {
    builder.will(::mqtt::message(options_.status_topic, "offline", 1, true));
  }
  if (endpoint_of(uri).tls || !options_.ca_file.empty()) {
    auto ssl = ::mqtt::ssl_options_builder()
                   .enable_server_cert_auth(options_.verify_server)
                   .error_handler([this](const std::string& message) {
                     std::lock_guard lock(tls_mutex_);
                     tls_error_ = message;
                   });
    if (!options_.ca_file.empty()) ssl.trust_store(options_.ca_file);
    if (!options_.cert_file.empty()) ssl.key_store(options_.cert_file);
    if (!options_.key_file.empty()) ssl.private_key(options_.key_file);
    builder.ssl(ssl.finalize());
  }
  {
    std::lock_guard lock(strand_);
    if (generation != generation_ || stopping_) {
      stale = std::move(connection);
    } else {
      connection_ = connection;
    }
  }
  if (stale) return;
  try {
    client.connect(builder.finalize(), nullptr, connection->connect);
  } catch (const ::mqtt::exception& e) {
    post_alive([this, generation, rc = e.get_return_code()] { on_connect_failed(generation, rc); });
  } catch (const std::exception& e) {
    post_alive([this, generation] { on_connect_failed(generation, MQTTASYNC_FAILURE); });
  }
}

void MqttBus::on_connected(std::uint64_t generation) {
  std::lock_guard lock(strand_);
  if (generation != generation_ || stopping_) return;
  is_connected_ = true;
  attempt_due_at(0);
  connected_at_us_ = clock_.now_us();
  problem_ = ConnectProblem::kNone;
  problem_text_.clear();
  disable_nagle_on_tcp_sockets();
  ++stats_.connects;
  logger_.log(LogLevel::kInfo, source_,
              "connected to " + broker() + " as '" + options_.client_id + "' (MQTT " +
                  std::string(mqtt_version_name(options_.version)) + ")");
  // A broker that lost the session (no persistence, or a clean session) would deliver
  // nothing: subscribe on every connect.
  granted_.clear();
  refused_.clear();
  refused_now_ = 0;
  ready_ = false;
  for (const auto& [filter, users] : broker_filters_) subscribe_at_broker(filter);
  check_ready();
  flush_backlog();
}

void MqttBus::on_connect_failed(std::uint64_t generation, int return_code) {
  std::lock_guard lock(strand_);
  if (generation == kDrainGeneration) {
    if (drain_) {
      finish_drain(drain_, "it could not connect (" +
                               (return_code > 0 ? connack_text(return_code)
                                                : "code " + std::to_string(return_code)) +
                               ")");
    }
    return;
  }
  if (generation != generation_ || stopping_) return;
  ++stats_.connect_failures;
  retire_connection();
  // A broker that speaks only 3.1.1 answers an MQTT 5 CONNECT with 3.1.1's "unacceptable
  // protocol version" (1): MQTT 5's 0x84 for what to do about it.
  if (options_.version == MqttVersion::k5 && return_code == 1) return_code = 0x84;
  // Another broker of the list first, at once; the last one of a round is diagnosed.
  if (fail_over(return_code > 0 ? connack_text(return_code)
                                : "no connection (code " + std::to_string(return_code) + ")")) {
    return;
  }
  if (return_code > 0) {
    const bool credentials =
        return_code == 4 || return_code == 5 || return_code == 0x86 || return_code == 0x87;
    const ConnectProblem problem =
        credentials ? ConnectProblem::kBadCredentials : ConnectProblem::kRefused;
    report_failure(problem, connack_text(return_code));
    return schedule_reconnect(problem_text_, true);
  }
  // Paho says only "failure": find out what it was before telling anyone.
  try {
    diagnose(return_code);
  } catch (const std::exception& e) {
    // No probe (no thread or descriptor for it): retry undiagnosed rather than not at all.
    report_failure(ConnectProblem::kUnreachable, "no connection");
    schedule_reconnect(std::string("no connection (and no diagnosis: ") + e.what() + ")", true);
  }
}

void MqttBus::diagnose(int return_code) {
  // No descriptor for a socket: nothing about the broker to learn, and the probe needs one too.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
    const std::string why = std::string("this process is out of file descriptors (") +
                            std::strerror(errno) +
                            "): held by too many HTTP clients, or a leak? (see LimitNOFILE)";
    report_failure(ConnectProblem::kUnreachable, why);
    return schedule_reconnect(why, true);
  }
  if (fd >= 0) ::close(fd);
  std::string tls;
  {
    std::lock_guard lock(tls_mutex_);
    tls.swap(tls_error_);
  }
  const std::uint64_t generation = generation_;
  auto post = clock_.poster();
  auto probe = std::make_shared<EndpointProbe>(
      clock_.io(), endpoint_of(broker()), tls,
      [this, post, alive = alive_, generation](ConnectProblem problem, std::string text) {
        post([this, alive, generation, problem, text] {
          if (!*alive || generation != generation_ || stopping_ || is_connected_) return;
          report_failure(problem, text);
          schedule_reconnect(text, true);
        });
      });
  probe->start();
}

void MqttBus::report_failure(ConnectProblem problem, const std::string& why) {
  problem_ = problem;
  problem_text_ = why;
}

void MqttBus::schedule_reconnect(const std::string& why, bool log_as_error) {
  if (stopping_) return;
  reconnect_delay_s_ = reconnect_delay_s_ == 0
                           ? options_.reconnect_min_s
                           : std::min(reconnect_delay_s_ * 2, options_.reconnect_max_s);
  logger_.log(log_as_error ? LogLevel::kError : LogLevel::kWarning, source_,
              "cannot connect to the broker at " + broker() + ": " + why + "; retrying in " +
                  std::to_string(reconnect_delay_s_) + " s" +
                  (brokers_.size() > 1 ? " from " + brokers_.front() : std::string()));
  broker_index_ = 0;  // the next round starts at the first broker of the list
  attempt_due_at(clock_.now_us() + std::int64_t{reconnect_delay_s_} * 1'000'000);
  if (reconnect_timer_ != 0) clock_.cancel(reconnect_timer_);
  reconnect_timer_ = clock_.call_after(std::int64_t{reconnect_delay_s_} * 1'000'000, [this] {
    reconnect_timer_ = 0;
    if (!stopping_ && !is_connected_) connect_now();
  });
}

void MqttBus::on_connection_lost(std::uint64_t generation, const std::string& cause) {
  std::lock_guard lock(strand_);
  // Once per connection: a broker's DISCONNECT (MQTT 5) may be followed by a lost connection.
  if (generation != generation_ || stopping_ || !is_connected_) return;
  is_connected_ = false;
  ready_ = false;
  ++stats_.connection_losses;
  // What the broker confirmed within confirm_after_ms may be gone with it: reported failed,
  // so the relay publishes it again from its outbox.
  for (Held& h : held_) {
    ++stats_.confirmations_withdrawn;
    fail_later(std::move(h.on_done));
  }
  held_.clear();
  if (release_timer_ != 0) clock_.cancel(release_timer_);
  release_timer_ = 0;
  retire_connection();
  const bool short_lived = clock_.now_us() - connected_at_us_ < kShortLivedUs;
  short_connections_ = short_lived ? short_connections_ + 1 : 0;
  if (!short_lived) reconnect_delay_s_ = 0;
  std::string why =
      "lost the connection to " + broker() + (cause.empty() ? std::string() : ": " + cause);
  if (short_connections_ >= kTakeoverSuspicion) {
    // mosquitto closes the older of two connections with the same client id, silently.
    logger_.log(LogLevel::kError, source_,
                "the broker closed the connection " + std::to_string(short_connections_) +
                    " times in a row within seconds of opening it: another client is probably "
                    "connected with the client id '" +
                    options_.client_id +
                    "' (a second process running this service and instance?); each takes the "
                    "session from the other");
  }
  if (short_connections_ == 0) {
    logger_.log(LogLevel::kWarning, source_, why + "; reconnecting");
    connect_now();
    return;
  }
  schedule_reconnect(why, false);
}

void MqttBus::retire_connection() {
  // Every publish in flight on it has failed: the caller (the outbox relay) sends it again on
  // the next connection, where it is a new publish. Nothing is left for Paho to resend.
  std::vector<PublishCallback> failed;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.generation == generation_) {
      ++stats_.failed;
      if (it->second.on_done) failed.push_back(std::move(it->second.on_done));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (PublishCallback& cb : failed) fail_later(std::move(cb));
  if (!connection_) return;
  // Destroyed on the timer thread, without the strand (Paho's destructor takes its lock).
  clock_.post_unlocked([connection = std::move(connection_)]() mutable { connection.reset(); });
}

void MqttBus::on_subscribed(std::uint64_t generation, const std::string& filter, int granted) {
  if (generation != generation_ || !is_connected_ || stopping_) return;
  if (granted >= 0x80) return on_subscribe_refused(generation, filter, granted);
  if (granted < static_cast<int>(Qos::kAtLeastOnce)) {
    // Every message on it would come at most once: a loss waiting to happen, not a grant.
    mark_refused(filter);
    logger_.log(LogLevel::kError, source_,
                "the broker granted the subscription to '" + filter +
                    "' at QoS 0 only (asked for 1): messages could be lost, so this client stays "
                    "unready; check the broker's max_qos or ACL");
    return resubscribe_later(filter);
  }
  ++stats_.subscriptions_acknowledged;
  refused_.erase(filter);
  refused_now_ = refused_.size();
  granted_.insert(filter);
  check_ready();
}

void MqttBus::check_ready() {
  if (ready_ || !is_connected_ || !refused_.empty()) return;
  for (const auto& [filter, users] : broker_filters_) {
    if (granted_.count(filter) == 0) return;
  }
  announce_ready();
}

void MqttBus::mark_refused(const std::string& filter) {
  ++stats_.subscriptions_refused;
  granted_.erase(filter);
  refused_.insert(filter);
  refused_now_ = refused_.size();
  ready_ = false;
}

void MqttBus::on_subscribe_refused(std::uint64_t generation, const std::string& filter,
                                   int reason) {
  if (generation != generation_ || !is_connected_ || stopping_) return;
  mark_refused(filter);
  logger_.log(LogLevel::kError, source_,
              "the broker refused the subscription to '" + filter + "': " +
                  (options_.version == MqttVersion::k5 ? reason_text(reason)
                                                       : std::string("failure (0x80)")) +
                  "; this client stays unready and asks again in " +
                  std::to_string(options_.resubscribe_after_ms) + " ms: check the ACL for user '" +
                  options_.username + "'");
  resubscribe_later(filter);
}

void MqttBus::resubscribe_later(const std::string& filter) {
  const std::uint64_t generation = generation_;
  clock_.call_after(options_.resubscribe_after_ms * 1000,
                    [this, alive = alive_, generation, filter] {
                      if (*alive && generation == generation_ && is_connected_ && !stopping_ &&
                          broker_filters_.count(filter) > 0) {
                        subscribe_at_broker(filter);
                      }
                    });
}

void MqttBus::on_disconnected_by_broker(std::uint64_t generation, int reason) {
  if (reason == 0x8E && generation == generation_ && !stopping_) {
    logger_.log(LogLevel::kError, source_,
                "another client connected with the client id '" + options_.client_id +
                    "' and took this session over (a second process running this service and "
                    "instance?)");
  }
  on_connection_lost(generation, "the broker ended the connection: " + reason_text(reason));
}

void MqttBus::announce_ready() {
  // "online" means subscribed: a message published from now on reaches this service.
  ready_ = true;
  if (!options_.status_topic.empty()) {
    publish_bytes(options_.status_topic, "online", Qos::kAtLeastOnce, Retain::kYes, nullptr);
  }
}

void MqttBus::stop(std::chrono::milliseconds timeout) {
  std::shared_ptr<Connection> connection;
  std::shared_ptr<Connection> drain;
  {
    std::lock_guard lock(strand_);
    if (stopping_) return;
    stopping_ = true;
    if (reconnect_timer_ != 0) clock_.cancel(reconnect_timer_);
    reconnect_timer_ = 0;
    if (watch_timer_ != 0) clock_.cancel(watch_timer_);
    watch_timer_ = 0;
    // Held confirmations are not reported: no callback runs after stop (the rows stay in the
    // outbox and go out again, as duplicates, after the next start).
    if (release_timer_ != 0) clock_.cancel(release_timer_);
    release_timer_ = 0;
    held_.clear();
    connection = std::move(connection_);  // destroyed here, below, not on the timer thread
    if (drain_) drain = std::move(drain_->connection);
    drain_.reset();
  }
  retry_wakeup_.notify_all();  // a handler retrying on Paho's thread gives up (on_abandon)
  // Not under the strand: Paho's receive thread may hold Paho's lock and wait for the strand.
  // "offline" is waited for on its own; then the disconnect waits for nothing: whatever else
  // is unconfirmed is still in the outbox and goes out on the next start.
  if (connection && connection->client) {
    ::mqtt::async_client& client = *connection->client;
    try {
      if (client.is_connected() && !options_.status_topic.empty()) {
        client.publish(::mqtt::make_message(options_.status_topic, "offline", 1, true))
            ->wait_for(timeout);
      }
    } catch (const ::mqtt::exception&) {
    }
    try {
      if (client.is_connected()) client.disconnect(0)->wait_for(timeout);
    } catch (const ::mqtt::exception&) {
      // Not connected, or the broker went away: nothing left to do.
    }
  }
  {
    std::lock_guard lock(strand_);
    is_connected_ = false;
    ready_ = false;
    retire_connection();  // fails what was in flight; the connection is already taken
  }
  connection.reset();  // the Paho client: no callback of it runs after this
  drain.reset();
}

std::string MqttBus::broker_filter(const std::string& filter) const {
  if (options_.share_group.empty() || filter.rfind("$share/", 0) == 0) return filter;
  return "$share/" + options_.share_group + "/" + filter;
}

void MqttBus::subscribe_at_broker(const std::string& filter) {
  std::shared_ptr<Connection> connection = connection_;
  if (!connection) return;
  run_paho([this, connection, filter] {
    try {
      connection->client->subscribe(filter, 1, nullptr, connection->subscribe);
    } catch (const ::mqtt::exception& e) {
      // Disconnected: the next connection subscribes again.
      post_alive([this, why = "subscribe to '" + filter + "' deferred to the next connection: " +
                              e.what()] { logger_.log(LogLevel::kWarning, source_, why); });
    }
  });
}

SubscriptionId MqttBus::subscribe(const std::string& filter, MessageHandler handler) {
  return add_subscription(filter, std::move(handler), nullptr, Sharing::kGroup);
}

SubscriptionId MqttBus::subscribe_bytes(const std::string& filter, BytesHandler handler,
                                        Sharing sharing) {
  return add_subscription(filter, nullptr, std::move(handler), sharing);
}

SubscriptionId MqttBus::add_subscription(const std::string& given_filter, MessageHandler on_message,
                                         BytesHandler on_bytes, Sharing sharing) {
  std::lock_guard lock(strand_);
  const std::string filter =
      sharing == Sharing::kGroup ? broker_filter(given_filter) : given_filter;
  const std::string match = match_filter_of(filter);
  if (!is_valid_topic_filter(match)) {
    throw std::invalid_argument("invalid topic filter '" + filter + "'");
  }
  const SubscriptionId id = next_subscription_++;
  subscriptions_.push_back(
      Subscription{id, sharing, filter, match, std::move(on_message), std::move(on_bytes)});
  if (broker_filters_[filter]++ == 0 && is_connected_) subscribe_at_broker(filter);
  return id;
}

void MqttBus::unsubscribe(SubscriptionId id) {
  std::lock_guard lock(strand_);
  auto it = std::find_if(subscriptions_.begin(), subscriptions_.end(),
                         [id](const Subscription& s) { return s.id == id; });
  if (it == subscriptions_.end()) return;
  const std::string filter = it->filter;
  subscriptions_.erase(it);
  if (--broker_filters_[filter] == 0) {
    broker_filters_.erase(filter);
    granted_.erase(filter);
    refused_.erase(filter);
    refused_now_ = refused_.size();
    check_ready();
    if (is_connected_ && connection_) {
      run_paho([connection = connection_, filter] {
        try {
          connection->client->unsubscribe(filter);
        } catch (const ::mqtt::exception&) {
          // Disconnected: the next connection does not subscribe it again.
        }
      });
    }
  }
}

void MqttBus::set_malformed_handler(MalformedHandler handler) {
  std::lock_guard lock(strand_);
  on_malformed_ = std::move(handler);
}

void MqttBus::on_message(const std::string& topic, const std::string& bytes, bool redelivered) {
  // Runs until the message is handled (or dead-lettered): only then may Paho acknowledge it.
  int lasting_failures = 0;  // failures that are not transient count towards giving up
  for (int attempt = 0;; ++attempt) {
    std::string error;
    bool transient = false;
    {
      std::lock_guard lock(strand_);
      if (attempt == 0) ++stats_.received;
      const auto started = std::chrono::steady_clock::now();
      // Times the attempt however it ends (under the strand: stats_ is guarded by it).
      struct Timer {
        MqttStats& stats;
        std::chrono::steady_clock::time_point started;
        ~Timer() {
          const double s =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
          std::size_t b = 0;
          while (b < kHandlerSecondsBuckets.size() && s > kHandlerSecondsBuckets[b]) ++b;
          ++stats.handler_seconds_counts[b];
          stats.handler_seconds_sum += s;
        }
      } timer{stats_, started};
      try {
        dispatch(topic, bytes, redelivered || attempt > 0);
        return;
      } catch (const std::exception& e) {
        error = e.what();
        transient = is_transient(e);
        if (!transient) ++lasting_failures;
      } catch (...) {
        error = "an unknown exception";
        ++lasting_failures;
      }
      // The handler's transaction rolled back. The message stays unacknowledged until it is
      // handled: a crash from here on means the broker delivers it again.
      ++stats_.handler_failures;
      const int attempts = attempt + 1;
      if (!transient && lasting_failures >= options_.handler_retry.max_attempts &&
          dead_letter_after_attempts(topic, bytes, attempts, error)) {
        return;
      }
    }
    const std::int64_t delay_ms = options_.handler_retry.delay_after(attempt + 1) / 1000;
    {
      std::lock_guard lock(strand_);
      logger_.log(LogLevel::kError, source_,
                  "handling a message on '" + topic + "' failed: " + error + "; trying again in " +
                      std::to_string(delay_ms) + " ms (it stays unacknowledged until handled)");
    }
    std::unique_lock wait(retry_mutex_);
    retry_wakeup_.wait_for(wait, std::chrono::milliseconds(delay_ms),
                           [this] { return stopping_.load(); });
    if (stopping_) abandon(topic);
  }
}

bool MqttBus::dead_letter_after_attempts(const std::string& topic, const std::string& bytes,
                                         int attempts, const std::string& last_error) {
  if (!on_malformed_) return false;
  try {
    // A message that keeps failing (a poison message, or a fault that outlasts the backoff)
    // is dead-lettered: durable and visible. Then, and only then, it is acknowledged.
    on_malformed_(topic, bytes, HandlerRetry::give_up_reason(attempts, last_error));
    ++stats_.gave_up;
    return true;
  } catch (const std::exception& e) {
    logger_.log(LogLevel::kError, source_,
                std::string("cannot dead-letter it either: ") + e.what() +
                    "; it stays unacknowledged and is tried again");
    return false;
  }
}

void MqttBus::abandon(const std::string& topic) {
  {
    std::lock_guard lock(strand_);
    logger_.log(LogLevel::kError, source_,
                "stopping with a message from '" + topic +
                    "' that could not be handled: it is not acknowledged, and the broker "
                    "delivers it again at the next start");
  }
  if (options_.on_abandon) options_.on_abandon();
  std::_Exit(75);  // EX_TEMPFAIL; returning would acknowledge the message
}

void MqttBus::dispatch(const std::string& topic, const std::string& bytes, bool redelivered) {
  // Copied first: a handler may subscribe or unsubscribe.
  std::vector<Subscription> matching;
  for (const Subscription& s : subscriptions_) {
    if (topic_matches(s.match_filter, topic)) matching.push_back(s);
  }
  bool decoded_once = false;
  std::optional<Decoded<Envelope>> envelope;
  for (const Subscription& s : matching) {
    if (s.on_bytes) {
      s.on_bytes(topic, bytes, redelivered);
      continue;
    }
    if (!decoded_once) {
      decoded_once = true;
      envelope.emplace(decode_wire(options_.wire, topics_, topic, bytes, options_.limits));
      if (!*envelope) {
        ++stats_.malformed;
        if (on_malformed_) {
          on_malformed_(topic, bytes, envelope->error());
        } else {
          logger_.log(LogLevel::kWarning, source_,
                      "malformed message on '" + topic + "': " + envelope->error());
        }
      }
    }
    if (!*envelope) continue;
    s.on_message(Delivery{topic, envelope->value(), redelivered, bytes});
  }
}

void MqttBus::publish(const std::string& topic, Envelope envelope, Qos qos,
                      PublishCallback on_done) {
  std::lock_guard lock(strand_);
  Decoded<std::string> bytes = encode_wire(options_.wire, envelope);
  if (!bytes) {
    logger_.log(
        LogLevel::kError, source_,
        "cannot encode event '" + envelope.event_id + "' for '" + topic + "': " + bytes.error());
    return fail_later(std::move(on_done));
  }
  const Retain retain = retained_on_wire(envelope.type) ? Retain::kYes : Retain::kNo;
  const std::uint32_t expiry = envelope.type == EventType::kWelcome ? options_.welcome_expiry_s : 0;
  enqueue(Outgoing{topic, std::move(bytes.value()), qos, retain, std::move(on_done),
                   std::move(envelope.event_id), expiry});
}

void MqttBus::publish_bytes(const std::string& topic, std::string bytes, Qos qos, Retain retain,
                            PublishCallback on_done) {
  enqueue(Outgoing{topic, std::move(bytes), qos, retain, std::move(on_done), {}, 0});
}

void MqttBus::enqueue(Outgoing out) {
  std::lock_guard lock(strand_);
  if (!is_valid_topic_name(out.topic)) {
    logger_.log(LogLevel::kError, source_, "cannot publish to invalid topic '" + out.topic + "'");
    return fail_later(std::move(out.on_done));
  }
  if (!is_connected_ || !connection_ || !backlog_.empty() ||
      pending_.size() >= static_cast<std::size_t>(options_.max_in_flight)) {
    backlog_.push_back(std::move(out));
    return;
  }
  send(std::move(out));
}

void MqttBus::flush_backlog() {
  while (!backlog_.empty() && is_connected_ && connection_ &&
         pending_.size() < static_cast<std::size_t>(options_.max_in_flight)) {
    Outgoing next = std::move(backlog_.front());
    backlog_.pop_front();
    send(std::move(next));
  }
}

void MqttBus::send(Outgoing out) {
  const std::uint64_t token_id = next_token_++;
  pending_.emplace(token_id, Pending{generation_, std::move(out.on_done), out.qos, out.topic});
  ++stats_.published;
  auto msg = ::mqtt::make_message(out.topic, out.bytes.data(), out.bytes.size(),
                                  static_cast<int>(out.qos), out.retain == Retain::kYes);
  if (options_.version == MqttVersion::k5 && (!out.event_id.empty() || out.expiry_s > 0)) {
    ::mqtt::properties props;
    if (!out.event_id.empty()) {
      props.add(::mqtt::property(::mqtt::property::USER_PROPERTY, "event-id", out.event_id));
    }
    if (out.expiry_s > 0) {
      props.add(::mqtt::property(::mqtt::property::MESSAGE_EXPIRY_INTERVAL,
                                 static_cast<std::int32_t>(out.expiry_s)));
    }
    msg->set_properties(std::move(props));
  }
  run_paho([this, connection = connection_, msg = std::move(msg), token_id] {
    try {
      connection->client->publish(
          msg, reinterpret_cast<void*>(static_cast<std::uintptr_t>(token_id)), connection->publish);
    } catch (const ::mqtt::exception& e) {
      post_alive([this, token_id,
                  why = "publish to '" + msg->get_topic() + "' not accepted: " + e.what()] {
        logger_.log(LogLevel::kWarning, source_, why);
        on_publish_done(token_id, PublishOutcome::kFailed);
      });
    }
  });
}

bool MqttBus::drain_session(const std::string& client_id, std::chrono::milliseconds quiet,
                            std::function<void(std::uint64_t)> done) {
  std::lock_guard lock(strand_);
  if (drain_ || !is_connected_ || stopping_ || client_id == options_.client_id) return false;
  auto drain = std::make_shared<Drain>();
  drain->client_id = client_id;
  drain->broker = broker();  // where this bus is connected: the sibling's session is there
  drain->quiet = quiet;
  drain->done = std::move(done);
  drain->last_message_us = clock_.now_us();
  drain_ = drain;
  run_paho([this, drain] { open_drain(drain); });
  return true;
}

void MqttBus::open_drain(std::shared_ptr<Drain> drain) {
  // A connection of its own, under the sibling's client id: no will, no status, and no
  // reconnect (if the sibling comes back, the broker hands the session to it: the drain ends).
  auto connection = std::make_shared<Connection>(link_, kDrainGeneration);
  try {
    connection->client = std::make_unique<::mqtt::async_client>(
        drain->broker, drain->client_id,
        ::mqtt::create_options(paho_version(options_.version), options_.max_in_flight + 64),
        nullptr);
  } catch (const ::mqtt::exception& e) {
    post_alive([this, drain, why = std::string(e.what())] { finish_drain(drain, why); });
    return;
  }
  ::mqtt::async_client& client = *connection->client;
  std::weak_ptr<Drain> weak = drain;
  client.set_connected_handler([link = link_, weak](const std::string&) {
    link->to_bus([weak](MqttBus& bus) {
      if (auto d = weak.lock()) bus.drain_connected(d);
    });
  });
  client.set_connection_lost_handler([link = link_, weak](const std::string& cause) {
    link->to_bus([weak, cause](MqttBus& bus) {
      if (auto d = weak.lock()) bus.finish_drain(d, "the connection ended: " + cause);
    });
  });
  client.set_message_callback([this, weak](::mqtt::const_message_ptr msg) {
    if (auto d = weak.lock()) {
      ++d->drained;
      d->last_message_us = wall_clock_us();
    }
    in_paho_callback_ = true;
    struct Reset {
      ~Reset() { in_paho_callback_ = false; }
    } reset;
    on_message(msg->get_topic(), msg->get_payload_str(), msg->is_duplicate());
  });
  client.set_disconnected_handler(
      [link = link_, weak](const ::mqtt::properties&, ::mqtt::ReasonCode reason) {
        link->to_bus([weak, reason = static_cast<int>(reason)](MqttBus& bus) {
          if (auto d = weak.lock()) {
            bus.finish_drain(d, "the broker ended the connection: " + reason_text(reason));
          }
        });
      });
  auto builder = connect_builder(options_, false);
  if (endpoint_of(drain->broker).tls || !options_.ca_file.empty()) {
    auto ssl = ::mqtt::ssl_options_builder().enable_server_cert_auth(options_.verify_server);
    if (!options_.ca_file.empty()) ssl.trust_store(options_.ca_file);
    if (!options_.cert_file.empty()) ssl.key_store(options_.cert_file);
    if (!options_.key_file.empty()) ssl.private_key(options_.key_file);
    builder.ssl(ssl.finalize());
  }
  {
    std::lock_guard lock(strand_);
    drain->connection = connection;
  }
  try {
    client.connect(builder.finalize(), nullptr, connection->connect);
  } catch (const ::mqtt::exception& e) {
    post_alive([this, drain, why = std::string(e.what())] { finish_drain(drain, why); });
  }
}

void MqttBus::drain_connected(std::shared_ptr<Drain> drain) {
  if (drain->finished || !drain->connection) return;
  // What the broker queued arrives by itself; no new share is routed once the session no
  // longer holds the group's subscriptions.
  std::vector<std::string> shared;
  for (const auto& [filter, users] : broker_filters_) {
    if (filter.rfind("$share/", 0) == 0) shared.push_back(filter);
  }
  run_paho([connection = drain->connection, shared] {
    for (const std::string& filter : shared) {
      try {
        connection->client->unsubscribe(filter);
      } catch (const ::mqtt::exception&) {
      }
    }
  });
  drain->last_message_us = wall_clock_us();
  drain_tick(drain);
}

void MqttBus::drain_tick(std::shared_ptr<Drain> drain) {
  if (drain->finished) return;
  const std::int64_t quiet_us = drain->quiet.count() * 1000;
  if (wall_clock_us() - drain->last_message_us.load() >= quiet_us) {
    return finish_drain(drain, "");
  }
  clock_.call_after(quiet_us / 4 + 1, [this, drain] { drain_tick(drain); });
}

void MqttBus::finish_drain(std::shared_ptr<Drain> drain, const std::string& why) {
  if (drain->finished) return;
  drain->finished = true;
  if (drain_ == drain) drain_.reset();
  logger_.log(why.empty() ? LogLevel::kInfo : LogLevel::kWarning, source_,
              "drained " + std::to_string(drain->drained.load()) + " message(s) queued for '" +
                  drain->client_id + "'" + (why.empty() ? "" : " before " + why));
  if (auto connection = std::move(drain->connection)) {
    clock_.post_unlocked([connection]() mutable {
      try {
        if (connection->client->is_connected())
          connection->client->disconnect(0)->wait_for(std::chrono::milliseconds(1000));
      } catch (const ::mqtt::exception&) {
      }
      connection.reset();
    });
  }
  if (drain->done) drain->done(drain->drained.load());
}

// Paho's receive thread holds Paho's (recursive) client lock while it runs a message callback,
// and the callback takes the strand: Paho's lock, then the strand. A thread that holds the
// strand must therefore never wait for Paho's lock. Inside a message callback this thread
// already holds it, so the call is made at once; anywhere else it is queued and made by the
// timer thread without the strand.
thread_local bool MqttBus::in_paho_callback_ = false;

void MqttBus::run_paho(std::function<void()> op) {
  if (in_paho_callback_) return op();
  std::lock_guard lock(ops_->mutex);
  ops_->queue.push_back(std::move(op));
  if (ops_->flush_posted) return;
  ops_->flush_posted = true;
  clock_.post_unlocked([ops = ops_] {
    std::lock_guard running(ops->running);  // the bus's destructor waits for this
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard lock(ops->mutex);
      batch.swap(ops->queue);
      ops->flush_posted = false;
      if (ops->closed) return;
    }
    for (auto& op : batch) {
      // One call that throws must not take the calls queued after it along.
      try {
        op();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "eventmart: a call into the MQTT client failed: %s\n", e.what());
      }
    }
  });
}

void MqttBus::on_publish_done(std::uint64_t token_id, PublishOutcome outcome, int reason) {
  std::lock_guard lock(strand_);
  auto it = pending_.find(token_id);
  if (it == pending_.end()) return;  // failed already, when its connection ended
  PublishCallback cb = std::move(it->second.on_done);
  const bool held = it->second.qos != Qos::kAtMostOnce && options_.confirm_after_ms > 0;
  const std::string topic = std::move(it->second.topic);
  pending_.erase(it);
  if (outcome == PublishOutcome::kConfirmed) {
    ++stats_.confirmed;
  } else {
    ++stats_.failed;
  }
  if (reason != 0) {
    // The broker has not taken it: reported failed, so the outbox keeps it and sends it again.
    // The relay retries every second: logged once per topic and reason every kRefusalLogUs.
    ++stats_.refused;
    Refusals& r = refusals_[{topic, reason}];
    const std::int64_t now = clock_.now_us();
    if (r.logged_at_us == 0 || now - r.logged_at_us >= kRefusalLogUs) {
      logger_.log(LogLevel::kError, source_,
                  "the broker refused the publish to '" + topic + "': " + reason_text(reason) +
                      (reason == 0x87 ? " (check the ACL for user '" + options_.username + "')"
                                      : std::string()) +
                      "; it stays owed and is sent again" +
                      (r.unlogged > 0 ? " (" + std::to_string(r.unlogged) +
                                            " more refusals of it since the last report)"
                                      : std::string()));
      r.logged_at_us = now;
      r.unlogged = 0;
    } else {
      ++r.unlogged;
    }
  }
  flush_backlog();
  if (!cb) return;
  if (outcome == PublishOutcome::kFailed) return fail_later(std::move(cb));
  if (held) {
    held_.push_back(Held{clock_.now_us(), std::move(cb)});
    if (release_timer_ == 0) {
      release_timer_ =
          clock_.call_after(options_.confirm_after_ms * 1000, [this] { release_confirmations(); });
    }
    return;
  }
  cb(outcome);
}

void MqttBus::release_confirmations() {
  std::lock_guard lock(strand_);
  release_timer_ = 0;
  if (stopping_) return;
  const std::int64_t now = clock_.now_us();
  const std::int64_t hold = options_.confirm_after_ms * 1000;
  std::vector<PublishCallback> due;
  while (!held_.empty() && held_.front().confirmed_at_us + hold <= now) {
    due.push_back(std::move(held_.front().on_done));
    held_.pop_front();
  }
  if (!held_.empty()) {
    release_timer_ = clock_.call_after(held_.front().confirmed_at_us + hold - now,
                                       [this] { release_confirmations(); });
  }
  for (PublishCallback& cb : due) cb(PublishOutcome::kConfirmed);
}

void MqttBus::fail_later(PublishCallback on_done) {
  // Never re-entrantly from inside publish(): the Bus contract.
  if (on_done) clock_.call_after(0, [cb = std::move(on_done)] { cb(PublishOutcome::kFailed); });
}

std::vector<std::string> broker_uris(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string uri = list.substr(start, end - start);
    const auto first = uri.find_first_not_of(' ');
    const auto last = uri.find_last_not_of(' ');
    out.push_back(first == std::string::npos ? "" : uri.substr(first, last - first + 1));
    start = end + 1;
  }
  return out;
}

std::string_view mqtt_version_name(MqttVersion version) {
  return version == MqttVersion::k5 ? "5" : "3.1.1";
}

std::string MqttBus::broker_in_use() const {
  std::lock_guard lock(strand_);
  return broker();
}

MqttStats MqttBus::stats() const {
  std::lock_guard lock(strand_);
  MqttStats s = stats_;
  s.subscriptions_refused_now = refused_now_;
  s.in_flight = pending_.size();
  s.backlog = backlog_.size();
  return s;
}

ConnectProblem MqttBus::connect_problem() const {
  std::lock_guard lock(strand_);
  return problem_;
}

std::string MqttBus::connect_error() const {
  std::lock_guard lock(strand_);
  return problem_text_;
}

}  // namespace eventmart::mqtt
