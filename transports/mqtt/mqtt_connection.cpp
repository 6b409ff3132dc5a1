// The MQTT transport's connection: a fresh Paho client per connection, failover along a broker
// list, the reconnect backoff and its supervisor, a lost connection and a clean stop.
#include <algorithm>
#include <stdexcept>

#include "transports/mqtt/mqtt_bus_parts.h"

namespace eventmart::mqtt {

int paho_version(MqttVersion version) {
  return version == MqttVersion::k5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
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

void MqttBus::on_disconnected_by_broker(std::uint64_t generation, int reason) {
  if (reason == 0x8E && generation == generation_ && !stopping_) {
    logger_.log(LogLevel::kError, source_,
                "another client connected with the client id '" + options_.client_id +
                    "' and took this session over (a second process running this service and "
                    "instance?)");
  }
  on_connection_lost(generation, "the broker ended the connection: " + reason_text(reason));
}

void MqttBus::stop(std::chrono::milliseconds timeout) {
  // Under the strand it would wait for Paho while Paho's thread waits for the strand.
  EVENTMART_REQUIRE(!strand_.held_here(), options_.client_id);
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

}  // namespace eventmart::mqtt
