// Draining a dead replica's session: its share of the group's messages, taken through this
// bus's handlers under the sibling's client id.
#include "transports/mqtt/mqtt_bus_parts.h"

namespace eventmart::mqtt {

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

}  // namespace eventmart::mqtt
