#include "transports/memory/memory_broker.h"

#include <algorithm>
#include <exception>
#include <stdexcept>

#include "core/topic_filter.h"

namespace eventmart::memory {

struct MemoryBroker::Message {
  std::string topic;
  Envelope envelope;
  Qos qos;
  std::uint32_t publisher;
};

MemoryBroker::MemoryBroker(Clock& clock, MemoryBrokerOptions options, TransportObserver* observer)
    : clock_(clock), options_(options), observer_(observer) {
  if (options_.latency_us < 0) throw std::invalid_argument("latency_us must be >= 0");
}

MemoryBroker::~MemoryBroker() = default;

std::unique_ptr<MemoryClient> MemoryBroker::connect(std::string client_id) {
  const auto index = static_cast<std::uint32_t>(clients_.size());
  std::unique_ptr<MemoryClient> client(new MemoryClient(*this, index, std::move(client_id)));
  clients_.push_back(client.get());
  return client;
}

std::uint32_t MemoryBroker::store_hop(Hop hop) {
  if (!free_hops_.empty()) {
    const std::uint32_t index = free_hops_.back();
    free_hops_.pop_back();
    hops_[index] = std::move(hop);
    return index;
  }
  hops_.push_back(std::move(hop));
  return static_cast<std::uint32_t>(hops_.size() - 1);
}

MemoryBroker::Hop MemoryBroker::take_hop(std::uint32_t index) {
  Hop hop = std::move(hops_[index]);
  hops_[index] = Hop{};
  free_hops_.push_back(index);
  return hop;
}

void MemoryBroker::fail_later(PublishCallback on_done) {
  if (!on_done) return;
  clock_.call_after(0, [cb = std::move(on_done)] { cb(PublishOutcome::kFailed); });
}

void MemoryBroker::publish(std::uint32_t client, const std::string& topic, Envelope envelope,
                           Qos qos, PublishCallback on_done) {
  if (!is_valid_topic_name(topic)) {
    fail_later(std::move(on_done));
    return;
  }
  auto message = std::make_shared<const Message>(Message{topic, std::move(envelope), qos, client});
  ++stats_.published;
  if (observer_) observer_->on_published(clients_[client]->client_id(), topic, message->envelope);
  const std::uint32_t hop = store_hop(Hop{std::move(message), client, std::move(on_done)});
  clock_.call_after(options_.latency_us, [this, hop] { arrive_at_broker(hop); });
}

void MemoryBroker::arrive_at_broker(std::uint32_t index) {
  Hop hop = take_hop(index);
  const Message& message = *hop.message;
  for (std::uint32_t c = 0; c < clients_.size(); ++c) {
    MemoryClient* client = clients_[c];
    if (client == nullptr || !client->wants(message.topic)) continue;
    const std::uint32_t delivery = store_hop(Hop{hop.message, c, {}});
    clock_.call_after(options_.latency_us, [this, delivery] { deliver(delivery); });
  }
  if (hop.on_done) {
    const std::uint32_t confirmation = store_hop(std::move(hop));
    clock_.call_after(options_.latency_us, [this, confirmation] { confirm(confirmation); });
  }
}

void MemoryBroker::deliver(std::uint32_t index) {
  Hop hop = take_hop(index);
  MemoryClient* client = clients_[hop.client];
  if (client == nullptr) {
    ++stats_.undeliverable;
    return;
  }
  const Message& message = *hop.message;
  ++stats_.delivered;
  if (observer_)
    observer_->on_delivered(client->client_id(), message.topic, message.envelope, false);
  if (client->dispatch(message.topic, message.envelope, false)) {
    ++stats_.acknowledged;
    if (observer_) {
      observer_->on_acknowledged(client->client_id(), message.topic, message.envelope);
    }
  }
}

void MemoryBroker::confirm(std::uint32_t index) {
  Hop hop = take_hop(index);
  ++stats_.confirmed;
  if (observer_) {
    const MemoryClient* client = clients_[hop.client];
    observer_->on_confirmed(client != nullptr ? std::string_view(client->client_id()) : "",
                            hop.message->topic, hop.message->envelope);
  }
  // A publisher that disconnected meanwhile has no one left to tell.
  if (clients_[hop.client] != nullptr) hop.on_done(PublishOutcome::kConfirmed);
}

MemoryClient::MemoryClient(MemoryBroker& broker, std::uint32_t index, std::string client_id)
    : broker_(broker), index_(index), client_id_(std::move(client_id)) {}

MemoryClient::~MemoryClient() {
  broker_.clients_[index_] = nullptr;
}

void MemoryClient::publish(const std::string& topic, Envelope envelope, Qos qos,
                           PublishCallback on_done) {
  broker_.publish(index_, topic, std::move(envelope), qos, std::move(on_done));
}

SubscriptionId MemoryClient::subscribe(const std::string& filter, MessageHandler handler) {
  if (!is_valid_topic_filter(filter)) {
    throw std::invalid_argument("invalid MQTT topic filter '" + filter + "'");
  }
  const SubscriptionId id = next_subscription_++;
  // While handlers run, growing subscriptions_ could move the running handler: park it.
  auto& target = dispatch_depth_ > 0 ? added_during_dispatch_ : subscriptions_;
  target.push_back(Subscription{id, filter, std::move(handler), true});
  return id;
}

void MemoryClient::unsubscribe(SubscriptionId id) {
  for (auto& s : subscriptions_) {
    if (s.id == id) s.active = false;
  }
  std::erase_if(added_during_dispatch_, [id](const Subscription& s) { return s.id == id; });
  if (dispatch_depth_ == 0) {
    std::erase_if(subscriptions_, [](const Subscription& s) { return !s.active; });
  }
}

bool MemoryClient::wants(const std::string& topic) const {
  return std::any_of(subscriptions_.begin(), subscriptions_.end(), [&](const Subscription& s) {
    return s.active && topic_matches_validated(s.filter, topic);
  });
}

bool MemoryClient::dispatch(const std::string& topic, const Envelope& envelope, bool redelivered) {
  const Delivery delivery{topic, envelope, redelivered};
  bool all_returned = true;
  ++dispatch_depth_;
  for (std::size_t i = 0; i < subscriptions_.size(); ++i) {
    if (!subscriptions_[i].active || !topic_matches_validated(subscriptions_[i].filter, topic)) {
      continue;
    }
    try {
      subscriptions_[i].handler(delivery);
    } catch (const std::exception& e) {
      all_returned = false;
      ++broker_.stats_.handler_failures;
      if (broker_.observer_) {
        broker_.observer_->on_handler_failed(client_id_, topic, envelope, e.what());
      }
    }
  }
  if (--dispatch_depth_ == 0) {
    std::erase_if(subscriptions_, [](const Subscription& s) { return !s.active; });
    for (auto& s : added_during_dispatch_) subscriptions_.push_back(std::move(s));
    added_during_dispatch_.clear();
  }
  return all_returned;
}

}  // namespace eventmart::memory
