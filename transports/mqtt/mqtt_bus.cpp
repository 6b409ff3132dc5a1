#include "transports/mqtt/mqtt_bus.h"

#include <dirent.h>
#include <mqtt/async_client.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "core/topic_filter.h"

namespace eventmart::mqtt {
namespace {

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
// TCP sockets (Paho's are the only ones; setting it twice is harmless).
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

std::string describe(const ::mqtt::token& tok) {
  std::string why = ::mqtt::exception::error_str(tok.get_return_code());
  if (tok.get_reason_code() != ::mqtt::ReasonCode::SUCCESS) {
    why += " (" + ::mqtt::exception::reason_code_str(tok.get_reason_code()) + ")";
  }
  return why;
}

}  // namespace

// Paho's listeners. They run on Paho's callback thread and enter the bus under its strand.
class MqttBus::Callbacks {
 public:
  explicit Callbacks(MqttBus& bus) : publish(bus), connect(bus), subscribe(bus) {}

  struct Publish final : ::mqtt::iaction_listener {
    explicit Publish(MqttBus& b) : bus(b) {}
    void on_success(const ::mqtt::token& tok) override {
      const auto id = reinterpret_cast<std::uintptr_t>(tok.get_user_context());
      MqttBus* b = &bus;
      b->post_alive([b, id] { b->on_publish_done(id, PublishOutcome::kConfirmed); });
    }
    void on_failure(const ::mqtt::token& tok) override {
      const auto id = reinterpret_cast<std::uintptr_t>(tok.get_user_context());
      MqttBus* b = &bus;
      b->post_alive([b, id] { b->on_publish_done(id, PublishOutcome::kFailed); });
    }
    MqttBus& bus;
  } publish;

  struct Connect final : ::mqtt::iaction_listener {
    explicit Connect(MqttBus& b) : bus(b) {}
    void on_success(const ::mqtt::token&) override {}  // the connected handler does the work
    void on_failure(const ::mqtt::token& tok) override {
      MqttBus* b = &bus;
      b->post_alive([b, why = describe(tok)] {
        ++b->stats_.connect_failures;
        b->schedule_reconnect(why);
      });
    }
    MqttBus& bus;
  } connect;

  struct Subscribe final : ::mqtt::iaction_listener {
    explicit Subscribe(MqttBus& b) : bus(b) {}
    void on_success(const ::mqtt::token&) override {
      MqttBus* b = &bus;
      b->post_alive([b] { b->on_subscribed(); });
    }
    void on_failure(const ::mqtt::token& tok) override {
      MqttBus* b = &bus;
      b->post_alive([b, why = describe(tok)] {
        b->logger_.log(
            LogLevel::kError, b->source_,
            "the broker refused a subscription: " + why + " (check the ACL for this user)");
      });
    }
    MqttBus& bus;
  } subscribe;
};

MqttBus::MqttBus(MqttOptions options, const Topics& topics, LiveClock& clock, Strand& strand,
                 Logger& logger, std::string log_source)
    : options_(std::move(options)),
      topics_(topics),
      clock_(clock),
      strand_(strand),
      logger_(logger),
      source_(std::move(log_source)),
      callbacks_(std::make_unique<Callbacks>(*this)) {
  if (options_.client_id.empty()) throw std::invalid_argument("MQTT client id is empty");
  if (options_.max_in_flight < 1) throw std::invalid_argument("max_in_flight must be >= 1");
  ::mqtt::create_options create(MQTTVERSION_3_1_1, options_.max_in_flight + 64);
  // Publishes made while the connection is down wait in Paho (bounded by the window above)
  // and go out on reconnect; the service's outbox keeps the durable copy.
  create.set_send_while_disconnected(true, true);
  try {
    client_ = std::make_unique<::mqtt::async_client>(options_.broker, options_.client_id, create,
                                                     nullptr);
  } catch (const ::mqtt::exception& e) {
    throw std::invalid_argument("cannot use broker '" + options_.broker + "': " + e.what());
  }
  client_->set_connected_handler(
      [this](const std::string&) { post_alive([this] { on_connected(); }); });
  client_->set_connection_lost_handler([this](const std::string& cause) {
    post_alive([this, cause] { on_connection_lost(cause); });
  });
  client_->set_message_callback([this](::mqtt::const_message_ptr msg) {
    // Everything is caught here: an exception must never unwind into Paho's C code.
    in_paho_callback_ = true;
    struct Reset {
      ~Reset() { in_paho_callback_ = false; }
    } reset;
    try {
      on_message(msg->get_topic(), msg->get_payload_str(), msg->is_duplicate());
    } catch (const std::exception& e) {
      std::lock_guard lock(strand_);
      logger_.log(LogLevel::kError, source_, std::string("delivery failed: ") + e.what());
    } catch (...) {
      std::lock_guard lock(strand_);
      logger_.log(LogLevel::kError, source_, "delivery failed with an unknown exception");
    }
  });
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
  clock_.post([alive = alive_, fn = std::move(fn)] {
    if (*alive) fn();
  });
}

void MqttBus::start() {
  std::lock_guard lock(strand_);
  stopping_ = false;
  connect_now();
}

void MqttBus::connect_now() {
  auto builder = ::mqtt::connect_options_builder()
                     .clean_session(options_.clean_session)
                     .keep_alive_interval(std::chrono::seconds(options_.keep_alive_s))
                     .connect_timeout(std::chrono::seconds(5))
                     .automatic_reconnect(std::chrono::seconds(options_.reconnect_min_s),
                                          std::chrono::seconds(options_.reconnect_max_s))
                     .max_inflight(options_.max_in_flight);
  if (!options_.username.empty()) {
    builder.user_name(options_.username);
    builder.password(options_.password);
  }
  if (!options_.status_topic.empty()) {
    builder.will(::mqtt::message(options_.status_topic, "offline", 1, true));
  }
  if (options_.broker.rfind("ssl://", 0) == 0 || !options_.ca_file.empty()) {
    auto ssl = ::mqtt::ssl_options_builder().enable_server_cert_auth(options_.verify_server);
    if (!options_.ca_file.empty()) ssl.trust_store(options_.ca_file);
    if (!options_.cert_file.empty()) ssl.key_store(options_.cert_file);
    if (!options_.key_file.empty()) ssl.private_key(options_.key_file);
    builder.ssl(ssl.finalize());
  }
  run_paho([this, opts = builder.finalize()] {
    try {
      client_->connect(opts, nullptr, callbacks_->connect);
    } catch (const ::mqtt::exception& e) {
      post_alive([this, why = std::string(e.what())] {
        ++stats_.connect_failures;
        schedule_reconnect(why);
      });
    }
  });
}

void MqttBus::schedule_reconnect(const std::string& why) {
  if (stopping_) return;
  reconnect_delay_s_ = reconnect_delay_s_ == 0
                           ? options_.reconnect_min_s
                           : std::min(reconnect_delay_s_ * 2, options_.reconnect_max_s);
  logger_.log(LogLevel::kError, source_,
              "cannot connect to the broker at " + options_.broker + ": " + why + "; retrying in " +
                  std::to_string(reconnect_delay_s_) + " s");
  if (reconnect_timer_ != 0) clock_.cancel(reconnect_timer_);
  reconnect_timer_ = clock_.call_after(std::int64_t{reconnect_delay_s_} * 1'000'000, [this] {
    reconnect_timer_ = 0;
    if (!stopping_ && !is_connected_) connect_now();
  });
}

void MqttBus::on_connected() {
  std::lock_guard lock(strand_);
  is_connected_ = true;
  reconnect_delay_s_ = 0;
  disable_nagle_on_tcp_sockets();
  ++stats_.connects;
  logger_.log(LogLevel::kInfo, source_,
              "connected to " + options_.broker + " as '" + options_.client_id + "'");
  // Automatic reconnect does not subscribe again, and a broker that lost its session (no
  // persistence, or a clean session) would deliver nothing: subscribe on every connect.
  acked_since_connect_ = 0;
  ready_ = false;
  for (const auto& [filter, users] : broker_filters_) subscribe_at_broker(filter);
  if (broker_filters_.empty()) announce_ready();
}

void MqttBus::on_subscribed() {
  ++stats_.subscriptions_acknowledged;
  ++acked_since_connect_;
  if (!ready_ && is_connected_ && acked_since_connect_ >= broker_filters_.size()) {
    announce_ready();
  }
}

void MqttBus::announce_ready() {
  // "online" means subscribed: a message published from now on reaches this service.
  ready_ = true;
  if (!options_.status_topic.empty()) {
    publish_bytes(options_.status_topic, "online", Qos::kAtLeastOnce, Retain::kYes, nullptr);
  }
}

bool MqttBus::ready() const {
  std::lock_guard lock(strand_);
  return ready_;
}

void MqttBus::on_connection_lost(const std::string& cause) {
  std::lock_guard lock(strand_);
  is_connected_ = false;
  ready_ = false;
  if (stopping_) return;
  logger_.log(LogLevel::kWarning, source_,
              "lost the connection to " + options_.broker +
                  (cause.empty() ? std::string() : ": " + cause) + "; reconnecting");
}

void MqttBus::stop(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(strand_);
    if (stopping_) return;
    stopping_ = true;
    if (reconnect_timer_ != 0) clock_.cancel(reconnect_timer_);
    reconnect_timer_ = 0;
  }
  // Not under the strand: Paho's receive thread may hold Paho's lock and wait for the strand.
  // "offline" is waited for on its own; then the disconnect waits for nothing: whatever else
  // is unconfirmed is still in the outbox and goes out on the next start. (Paho's disconnect
  // timeout would hold for its whole length even when nothing is in flight.)
  try {
    if (client_->is_connected() && !options_.status_topic.empty()) {
      client_->publish(::mqtt::make_message(options_.status_topic, "offline", 1, true))
          ->wait_for(timeout);
    }
  } catch (const ::mqtt::exception&) {
  }
  try {
    if (client_->is_connected()) client_->disconnect(0)->wait_for(timeout);
  } catch (const ::mqtt::exception&) {
    // Not connected, or the broker went away: nothing left to do.
  }
  std::lock_guard lock(strand_);
  is_connected_ = false;
}

std::string MqttBus::broker_filter(const std::string& filter) const {
  if (options_.share_group.empty() || filter.rfind("$share/", 0) == 0) return filter;
  return "$share/" + options_.share_group + "/" + filter;
}

void MqttBus::subscribe_at_broker(const std::string& filter) {
  run_paho([this, filter] {
    try {
      client_->subscribe(filter, 1, nullptr, callbacks_->subscribe);
    } catch (const ::mqtt::exception& e) {
      // Disconnected: the connected handler subscribes again.
      post_alive([this, why = "subscribe to '" + filter + "' deferred to the next connection: " +
                              e.what()] { logger_.log(LogLevel::kWarning, source_, why); });
    }
  });
}

SubscriptionId MqttBus::subscribe(const std::string& filter, MessageHandler handler) {
  return add_subscription(filter, std::move(handler), nullptr);
}

SubscriptionId MqttBus::subscribe_bytes(const std::string& filter, BytesHandler handler) {
  return add_subscription(filter, nullptr, std::move(handler));
}

SubscriptionId MqttBus::add_subscription(const std::string& given_filter, MessageHandler on_message,
                                         BytesHandler on_bytes) {
  std::lock_guard lock(strand_);
  const std::string filter = broker_filter(given_filter);
  const std::string match = match_filter_of(filter);
  if (!is_valid_topic_filter(match)) {
    throw std::invalid_argument("invalid topic filter '" + filter + "'");
  }
  const SubscriptionId id = next_subscription_++;
  subscriptions_.push_back(
      Subscription{id, filter, match, std::move(on_message), std::move(on_bytes)});
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
    if (is_connected_) {
      run_paho([this, filter] {
        try {
          client_->unsubscribe(filter);
        } catch (const ::mqtt::exception&) {
          // Disconnected: the next connect does not subscribe it again.
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
  std::lock_guard lock(strand_);
  ++stats_.received;
  dispatch(topic, bytes, redelivered, 0);
}

void MqttBus::dispatch(const std::string& topic, const std::string& bytes, bool redelivered,
                       int attempt) {
  // Copied first: a handler may subscribe or unsubscribe.
  std::vector<Subscription> matching;
  for (const Subscription& s : subscriptions_) {
    if (topic_matches(s.match_filter, topic)) matching.push_back(s);
  }
  try {
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
  } catch (const std::exception& e) {
    // The transaction rolled back; the broker will not redeliver a message we acknowledge, so
    // the transport delivers it again itself after a backoff (handlers deduplicate).
    ++stats_.handler_failures;
    const int attempts = attempt + 1;
    if (attempts >= options_.max_handler_attempts && on_malformed_) {
      // A message that keeps failing (a poison message, or a fault that outlasts the
      // backoff) is dead-lettered: durable and visible, where the retry lives in memory.
      try {
        on_malformed_(topic, bytes,
                      "handling failed " + std::to_string(attempts) + " times; last: " + e.what());
        ++stats_.gave_up;
        return;
      } catch (const std::exception& dead) {
        logger_.log(LogLevel::kError, source_,
                    std::string("cannot dead-letter it either: ") + dead.what());
      }
    }
    const std::int64_t delay_ms = std::min<std::int64_t>(
        std::int64_t{options_.retry_backoff_ms} << std::min(attempt, 5), 30'000);
    logger_.log(LogLevel::kError, source_,
                "handling a message on '" + topic + "' failed: " + e.what() + "; retrying in " +
                    std::to_string(delay_ms) + " ms");
    clock_.call_after(delay_ms * 1000, [this, alive = alive_, topic, bytes, attempt] {
      if (*alive && !stopping_) dispatch(topic, bytes, true, attempt + 1);
    });
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
  publish_bytes(topic, std::move(bytes.value()), qos, Retain::kNo, std::move(on_done));
}

void MqttBus::publish_bytes(const std::string& topic, std::string bytes, Qos qos, Retain retain,
                            PublishCallback on_done) {
  std::lock_guard lock(strand_);
  if (!is_valid_topic_name(topic)) {
    logger_.log(LogLevel::kError, source_, "cannot publish to invalid topic '" + topic + "'");
    return fail_later(std::move(on_done));
  }
  Outgoing out{topic, std::move(bytes), qos, retain, std::move(on_done)};
  if (pending_.size() >= static_cast<std::size_t>(options_.max_in_flight)) {
    backlog_.push_back(std::move(out));
    return;
  }
  send(std::move(out));
}

void MqttBus::send(Outgoing out) {
  const std::uint64_t token_id = next_token_++;
  pending_.emplace(token_id, std::move(out.on_done));
  ++stats_.published;
  auto msg = ::mqtt::make_message(out.topic, out.bytes.data(), out.bytes.size(),
                                  static_cast<int>(out.qos), out.retain == Retain::kYes);
  run_paho([this, msg = std::move(msg), token_id] {
    try {
      client_->publish(msg, reinterpret_cast<void*>(static_cast<std::uintptr_t>(token_id)),
                       callbacks_->publish);
    } catch (const ::mqtt::exception& e) {
      post_alive([this, token_id,
                  why = "publish to '" + msg->get_topic() + "' not accepted: " + e.what()] {
        logger_.log(LogLevel::kWarning, source_, why);
        on_publish_done(token_id, PublishOutcome::kFailed);
      });
    }
  });
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
    for (auto& op : batch) op();
  });
}

void MqttBus::on_publish_done(std::uint64_t token_id, PublishOutcome outcome) {
  std::lock_guard lock(strand_);
  auto it = pending_.find(token_id);
  if (it == pending_.end()) return;
  PublishCallback cb = std::move(it->second);
  pending_.erase(it);
  if (outcome == PublishOutcome::kConfirmed) {
    ++stats_.confirmed;
  } else {
    ++stats_.failed;
  }
  while (!backlog_.empty() && pending_.size() < static_cast<std::size_t>(options_.max_in_flight)) {
    Outgoing next = std::move(backlog_.front());
    backlog_.pop_front();
    send(std::move(next));
  }
  if (!cb) return;
  if (outcome == PublishOutcome::kFailed) return fail_later(std::move(cb));
  cb(outcome);
}

void MqttBus::fail_later(PublishCallback on_done) {
  // Never re-entrantly from inside publish(): the Bus contract.
  if (on_done) clock_.call_after(0, [cb = std::move(on_done)] { cb(PublishOutcome::kFailed); });
}

bool MqttBus::connected() const {
  std::lock_guard lock(strand_);
  return is_connected_;
}

MqttStats MqttBus::stats() const {
  std::lock_guard lock(strand_);
  MqttStats s = stats_;
  s.in_flight = pending_.size();
  s.backlog = backlog_.size();
  return s;
}

}  // namespace eventmart::mqtt
