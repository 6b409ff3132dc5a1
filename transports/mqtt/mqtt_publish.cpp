// The MQTT transport's publishes: the in-flight window and its backlog, the outcome of each
// publish, and confirmations held until the connection outlived them (a broker killed with -9
// forgets its last instant).
#include "core/topic_filter.h"
#include "transports/mqtt/mqtt_bus_parts.h"

namespace eventmart::mqtt {

void MqttBus::publish(const std::string& topic, Envelope envelope, Qos qos,
                      PublishCallback on_done) {
  std::lock_guard lock(strand_);
  Result<std::string> bytes = encode_wire(options_.wire, envelope);
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

}  // namespace eventmart::mqtt
