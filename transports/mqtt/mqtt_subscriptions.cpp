// The MQTT transport's subscriptions: made again on every connection, their SUBACKs (a refusal,
// or a grant below QoS 1, keeps the bus unready and is asked for again), shared subscriptions.
#include <algorithm>
#include <stdexcept>

#include "core/topic_filter.h"
#include "transports/mqtt/mqtt_bus_parts.h"

namespace eventmart::mqtt {

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

void MqttBus::announce_ready() {
  // "online" means subscribed: a message published from now on reaches this service.
  ready_ = true;
  if (!options_.status_topic.empty()) {
    publish_bytes(options_.status_topic, "online", Qos::kAtLeastOnce, Retain::kYes, nullptr);
  }
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

}  // namespace eventmart::mqtt
