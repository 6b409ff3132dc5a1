#include "transports/memory/memory_broker.h"

#include <algorithm>
#include <exception>
#include <stdexcept>

#include "core/assert.h"
#include "core/codec.h"
#include "core/marks.h"
#include "core/topic_filter.h"

namespace eventmart::memory {

MemoryBroker::MemoryBroker(Clock& clock, MemoryBrokerOptions options, TransportObserver* observer,
                           NetworkModel* network)
    : clock_(clock), options_(options), observer_(observer), network_(network) {
  if (options_.latency_us < 0) throw std::invalid_argument("latency_us must be >= 0");
  if (options_.retry_interval_us <= 0) throw std::invalid_argument("retry_interval_us must be > 0");
  if (options_.handler_retry.max_attempts < 1 || options_.handler_retry.min_delay_us < 0) {
    throw std::invalid_argument("handler_retry: max_attempts must be >= 1, delays >= 0");
  }
  if (options_.session_expiry_us < 0 || options_.sweeps_per_interval < 1 ||
      options_.sweeps_per_interval > options_.retry_interval_us) {
    throw std::invalid_argument(
        "session_expiry_us must be >= 0, sweeps_per_interval 1..retry_interval_us");
  }
}

void MemoryBroker::require_own_thread() const {
  // Nothing here locks: every call comes from the thread that runs the Clock.
  EVENTMART_REQUIRE(std::this_thread::get_id() == thread_, thread_);
}

MemoryBroker::~MemoryBroker() {
  if (sweep_timer_ != 0) clock_.cancel(sweep_timer_);
  for (const auto& session : sessions_) {
    if (session->retry_timer != 0) clock_.cancel(session->retry_timer);
    if (session->expiry_timer != 0) clock_.cancel(session->expiry_timer);
  }
}

void MemoryBroker::MessageRef::recycle(Message* message) noexcept {
  try {
    message->spares->emplace_back(message);
  } catch (...) {
    delete message;  // no room to keep it
  }
}

std::unique_ptr<MemoryClient> MemoryBroker::connect(const std::string& client_id) {
  require_own_thread();
  auto [it, created] =
      session_by_client_.emplace(client_id, static_cast<std::uint32_t>(sessions_.size()));
  if (created) {
    sessions_.push_back(std::make_unique<Session>());
    sessions_.back()->client_id = client_id;
  }
  Session& session = *sessions_[it->second];
  if (session.client != nullptr) {
    throw std::logic_error("client id '" + client_id + "' is already connected");
  }
  session.connection = next_connection_++;
  if (session.expiry_timer != 0) clock_.cancel(session.expiry_timer);
  session.expiry_timer = 0;
  if (session.expired) {  // a clean session: the client subscribes again
    session.expired = false;
    for (std::string& f : session.filters) {
      if (std::find(session.lost_filters.begin(), session.lost_filters.end(), f) ==
          session.lost_filters.end()) {
        session.lost_filters.push_back(std::move(f));
      }
    }
    session.filters.clear();
    ++filters_generation_;
  }
  std::unique_ptr<MemoryClient> client(
      new MemoryClient(*this, it->second, session.connection, client_id));
  session.client = client.get();
  // A resumed session: everything still unacknowledged goes to the new connection now.
  std::vector<std::uint64_t> queued;
  const std::uint32_t index = it->second;
  deliveries_.for_each([&](std::uint64_t id, const PendingDelivery& pending) {
    if (pending.session != index) return;
    queued.push_back(id);
    if (pending.arrived) mark(Mark::kTransportRedeliveredAfterReconnect);
  });
  for (std::uint64_t id : queued) send_delivery(id, true);
  if (!queued.empty()) schedule_sweep();  // an absent client's queue is not swept
  return client;
}

void MemoryBroker::expire(std::uint32_t index) {
  Session& session = *sessions_[index];
  session.expiry_timer = 0;
  EVENTMART_ASSERT(session.client == nullptr && !session.expired, session.client_id);
  session.expired = true;
  mark(Mark::kTransportSessionExpired);
  std::vector<std::uint64_t> dropped;
  deliveries_.for_each([&](std::uint64_t id, const PendingDelivery& pending) {
    if (pending.session == index) dropped.push_back(id);
  });
  for (std::uint64_t id : dropped) {
    const MessageRef message = deliveries_.find(id)->message;
    deliveries_.erase(id);
    if (observer_)
      observer_->on_lost_to_expiry(session.client_id, message->topic(), message->envelope);
  }
}

void MemoryBroker::disconnect(std::uint32_t session_index, std::uint64_t connection) {
  Session& session = *sessions_[session_index];
  if (session.connection == connection) {
    session.client = nullptr;
    // A delivery in hand dies unacknowledged with the connection (the session keeps it), and
    // so does everything that waited behind it.
    if (session.retry_timer != 0) clock_.cancel(session.retry_timer);
    session.retry_timer = 0;
    session.in_hand.reset();
    session.failed_attempts = 0;
    session.held.clear();
    if (options_.session_expiry_us > 0) {
      session.expiry_timer = clock_.call_after(options_.session_expiry_us,
                                               [this, session_index] { expire(session_index); });
    }
  }
  // The client's own in-flight publishes die with it; the session's queue stays.
  outgoing_.erase_if([&](const Outgoing& out) {
    return out.session == session_index && out.connection == connection;
  });
}

void MemoryBroker::publish(std::uint32_t session, std::uint64_t connection,
                           const std::string& topic, Envelope&& envelope, Qos qos,
                           PublishCallback&& on_done) {
  require_own_thread();
  auto* const routed = route_of(topic);
  if (routed == nullptr && !is_valid_topic_name(topic)) {
    if (on_done) clock_.call_after(0, [cb = std::move(on_done)] { cb(PublishOutcome::kFailed); });
    return;
  }
  std::unique_ptr<Message> made;
  if (spare_messages_.empty()) {
    made = std::make_unique<Message>();
    made->spares = &spare_messages_;
  } else {
    made = std::move(spare_messages_.back());
    spare_messages_.pop_back();
  }
  made->routed = routed;
  if (routed == nullptr) made->own_topic = topic;
  made->envelope = std::move(envelope);
  made->qos = qos;
  MessageRef message(made.release());
  ++stats_.published;
  if (observer_) {
    observer_->on_published(sessions_[session]->client_id, topic, message->envelope);
  }
  if (qos == Qos::kAtMostOnce) {
    send(PacketKind::kPublish, message, session, connection, 0, false);
    if (on_done)
      clock_.call_after(0, [cb = std::move(on_done)] { cb(PublishOutcome::kConfirmed); });
    return;
  }
  const std::uint64_t id =
      outgoing_.insert(Outgoing{message, session, connection, std::move(on_done), clock_.now_us()});
  if (network_ != nullptr &&
      network_->refuse_publish(Packet{PacketKind::kPublish, sessions_[session]->client_id,
                                      message->topic(), message->envelope, qos, false})) {
    return fail_outgoing(id);
  }
  send(PacketKind::kPublish, std::move(message), session, connection, id, false);
  schedule_sweep();
}

void MemoryBroker::send(PacketKind kind, const MessageRef& message, std::uint32_t session,
                        std::uint64_t connection, std::uint64_t id, bool redelivered) {
  PacketFate fate;
  if (network_ != nullptr) {
    const Session& s = *sessions_[session];
    if (!network_->reachable(s.client_id)) {
      fate.lost = true;
      note_cut_off(kind, message->qos, id, true);
    } else {
      note_cut_off(kind, message->qos, id, false);
      fate = network_->fate(Packet{kind, s.client_id, message->topic(), message->envelope,
                                   message->qos, redelivered});
    }
  }
  if (fate.lost) {
    ++stats_.packets_lost;
    if (message->qos == Qos::kAtMostOnce &&
        (kind == PacketKind::kPublish || kind == PacketKind::kDeliver)) {
      ++stats_.qos0_dropped;
    }
    return;
  }
  const int copies =
      fate.duplicated && (kind == PacketKind::kPublish || kind == PacketKind::kDeliver) ? 2 : 1;
  for (int copy = 0; copy < copies; ++copy) {
    std::uint32_t slot;
    if (free_slots_.empty()) {
      slot = static_cast<std::uint32_t>(wire_.size());
      wire_.emplace_back();
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    InFlight& packet = wire_[slot];  // empty: arrive() moved its last packet out
    packet.kind = kind;
    packet.message = message;
    packet.session = session;
    packet.connection = connection;
    packet.id = id;
    packet.redelivered = redelivered || copy > 0;
    // A duplicate trails the original by one more latency.
    const std::int64_t delay = options_.latency_us * (1 + copy) + fate.extra_delay_us;
    clock_.call_after(
        delay,
        [](void* broker, std::uint64_t at) {
          static_cast<MemoryBroker*>(broker)->arrive(static_cast<std::uint32_t>(at));
        },
        this, slot);
  }
}

void MemoryBroker::note_cut_off(PacketKind kind, Qos qos, std::uint64_t id, bool lost) {
  if (kind != PacketKind::kDeliver || qos != Qos::kAtLeastOnce) return;
  PendingDelivery* pending = deliveries_.find(id);
  if (pending == nullptr) return;
  if (lost) {
    pending->cut_off = true;
  } else if (pending->cut_off) {
    pending->cut_off = false;
    mark(Mark::kTransportResentAfterPartition);
  }
}

void MemoryBroker::arrive(std::uint32_t slot) {
  require_own_thread();
  InFlight packet = std::move(wire_[slot]);  // leaves the slot without its message
  free_slots_.push_back(slot);
  // A packet addressed to or from a client that is cut off by now is lost on the way.
  if (network_ != nullptr && !network_->reachable(sessions_[packet.session]->client_id)) {
    ++stats_.packets_lost;
    note_cut_off(packet.kind, packet.message->qos, packet.id, true);
    return;
  }
  // A client busy with a delivery whose handler failed takes nothing else until it is handled.
  Session& session = *sessions_[packet.session];
  if (session.in_hand && packet.connection == session.connection &&
      (packet.kind == PacketKind::kDeliver || packet.kind == PacketKind::kPuback)) {
    session.held.push_back(std::move(packet));
    return;
  }
  take(packet);
}

void MemoryBroker::take(const InFlight& packet) {
  switch (packet.kind) {
    case PacketKind::kPublish:
      return on_publish_arrived(packet);
    case PacketKind::kPuback:
      return on_puback_arrived(packet);
    case PacketKind::kDeliver:
      return on_deliver_arrived(packet);
    case PacketKind::kDeliverAck:
      return on_deliver_ack_arrived(packet);
  }
}

void MemoryBroker::on_publish_arrived(const InFlight& packet) {
  // QoS 1 is at-least-once: a retransmitted PUBLISH is routed again (MQTT brokers do), and
  // subscribers deduplicate by event id.
  route(packet.message);
  if (packet.message->qos == Qos::kAtLeastOnce) {
    send(PacketKind::kPuback, packet.message, packet.session, packet.connection, packet.id, false);
  }
}

void MemoryBroker::on_puback_arrived(const InFlight& packet) {
  Outgoing* out = outgoing_.find(packet.id);
  if (out == nullptr) return;  // already confirmed, or the client is gone
  PublishCallback on_done = std::move(out->on_done);
  outgoing_.erase(packet.id);
  ++stats_.confirmed;
  if (observer_) {
    observer_->on_confirmed(sessions_[packet.session]->client_id, packet.message->topic(),
                            packet.message->envelope);
  }
  if (on_done) on_done(PublishOutcome::kConfirmed);
}

MemoryBroker::RouteEntry* MemoryBroker::route_of(const std::string& topic) {
  if (auto it = routes_.find(topic); it != routes_.end()) return &*it;
  if (routes_.size() >= options_.route_cache_topics || !is_valid_topic_name(topic)) return nullptr;
  return &*routes_.try_emplace(topic).first;
}

namespace {
bool matches_any(const std::vector<std::string>& filters, const std::string& topic) {
  return std::any_of(filters.begin(), filters.end(), [&](const std::string& filter) {
    return topic_matches_validated(filter, topic);
  });
}
}  // namespace

std::vector<std::uint32_t> MemoryBroker::sessions_wanting(const std::string& topic) const {
  std::vector<std::uint32_t> wanting;
  for (std::uint32_t s = 0; s < sessions_.size(); ++s) {
    // Its subscriptions, and those its expired session had that it has not made again (what
    // comes for them is lost to the expiry: route()).
    if (matches_any(sessions_[s]->filters, topic) ||
        matches_any(sessions_[s]->lost_filters, topic)) {
      wanting.push_back(s);
    }
  }
  return wanting;
}

void MemoryBroker::route(const MessageRef& message) {
  std::vector<std::uint32_t> unrouted;  // a topic past the route cache: matched now
  const std::vector<std::uint32_t>* targets = &unrouted;
  if (message->routed != nullptr) {
    Route& route = message->routed->second;
    if (route.generation != filters_generation_) {
      route.sessions = sessions_wanting(message->topic());
      route.generation = filters_generation_;
    }
    targets = &route.sessions;  // sending subscribes nothing: it stays as it is
  } else {
    unrouted = sessions_wanting(message->topic());
    mark(Mark::kTransportRouteUncached);
  }
  for (const std::uint32_t s : *targets) {
    const Session& session = *sessions_[s];
    // Its subscriptions died with its session (and, connected again, it has not made this one
    // again yet).
    if (session.expired ||
        (!session.lost_filters.empty() && !matches_any(session.filters, message->topic()))) {
      if (message->qos == Qos::kAtMostOnce) {
        ++stats_.qos0_dropped;
      } else if (observer_) {
        observer_->on_lost_to_expiry(session.client_id, message->topic(), message->envelope);
      }
      continue;
    }
    if (message->qos == Qos::kAtMostOnce) {
      if (session.client == nullptr) {
        ++stats_.qos0_dropped;  // QoS 0 is not queued for an absent client
        continue;
      }
      send(PacketKind::kDeliver, message, s, session.connection, 0, false);
      continue;
    }
    const std::uint64_t id = deliveries_.insert(PendingDelivery{message, s, clock_.now_us()});
    if (session.client != nullptr) {
      send(PacketKind::kDeliver, message, s, session.connection, id, false);
    } else {
      mark(Mark::kTransportQueuedForAbsent);
    }
    schedule_sweep();
  }
}

void MemoryBroker::send_delivery(std::uint64_t delivery_id, bool redelivered) {
  PendingDelivery* found = deliveries_.find(delivery_id);
  if (found == nullptr) return;
  PendingDelivery& pending = *found;
  pending.last_sent_us = clock_.now_us();
  const Session& session = *sessions_[pending.session];
  if (session.client == nullptr) return;  // queued until the client connects again
  if (redelivered) ++stats_.retransmissions;
  send(PacketKind::kDeliver, pending.message, pending.session, session.connection, delivery_id,
       redelivered);
}

void MemoryBroker::on_deliver_arrived(const InFlight& packet) {
  Session& session = *sessions_[packet.session];
  if (session.client == nullptr || session.connection != packet.connection) {
    // Sent to a connection that is gone: the session keeps the message (QoS 1) for the next.
    ++stats_.packets_lost;
    if (packet.message->qos == Qos::kAtMostOnce) ++stats_.qos0_dropped;
    return;
  }
  if (packet.message->qos == Qos::kAtLeastOnce) {
    PendingDelivery* pending = deliveries_.find(packet.id);
    if (pending != nullptr && !pending->arrived) {
      pending->arrived = true;
      if (packet.redelivered) {
        ++stats_.redelivered_after_loss;
        mark(Mark::kTransportRedelivery);
      }
    }
  }
  const Message& message = *packet.message;
  ++stats_.delivered;
  if (packet.redelivered) ++stats_.redelivered;
  if (observer_) {
    observer_->on_delivered(session.client_id, message.topic(), message.envelope,
                            packet.redelivered);
  }
  handle_delivery(packet, 0);
}

void MemoryBroker::handle_delivery(const InFlight& packet, int failed_before) {
  // Handlers never destroy their client (a crash tears it down from a timer), and sessions are
  // never removed, so `session` stays valid.
  Session& session = *sessions_[packet.session];
  // One delivery in hand at a time, dispatched to the connection it came for.
  EVENTMART_REQUIRE(
      session.client != nullptr && packet.connection == session.connection && !session.in_hand,
      session.client_id, packet.connection, session.connection);
  const Message& message = *packet.message;
  std::string error;
  bool transient = false;
  if (failed_before == 0) session.lasting_failures = 0;
  if (!session.client->dispatch(message.topic(), message.routed, message.envelope,
                                packet.redelivered || failed_before > 0, error, transient)) {
    const int failed = failed_before + 1;
    // Only failures that may last count towards giving up (a full disk is waited out).
    if (!transient) ++session.lasting_failures;
    const HandlerRetry& policy = options_.handler_retry;
    const bool dead_lettered = !transient && session.lasting_failures >= policy.max_attempts &&
                               session.client != nullptr &&
                               session.client->give_up(message.topic(), message.envelope,
                                                       HandlerRetry::give_up_reason(failed, error));
    if (!dead_lettered) {
      session.in_hand = packet;
      session.failed_attempts = failed;
      session.retry_timer = clock_.call_after(
          policy.delay_after(failed), [this, index = packet.session] { retry_delivery(index); });
      return;
    }
    ++stats_.gave_up;
    mark(Mark::kTransportGaveUp);
    if (observer_) {
      observer_->on_gave_up(session.client_id, message.topic(), message.envelope,
                            HandlerRetry::give_up_reason(failed, error));
    }
  }
  ++stats_.acknowledged;
  if (observer_) observer_->on_acknowledged(session.client_id, message.topic(), message.envelope);
  if (message.qos == Qos::kAtLeastOnce) {
    send(PacketKind::kDeliverAck, packet.message, packet.session, packet.connection, packet.id,
         false);
  }
}

void MemoryBroker::retry_delivery(std::uint32_t index) {
  Session& session = *sessions_[index];
  session.retry_timer = 0;
  if (!session.in_hand || session.client == nullptr) return;
  InFlight packet = std::move(*session.in_hand);
  session.in_hand.reset();
  ++stats_.handler_retries;
  mark(Mark::kTransportHandlerRetried);
  const Message& message = *packet.message;
  if (observer_) {
    observer_->on_delivered(session.client_id, message.topic(), message.envelope, true);
  }
  handle_delivery(packet, session.failed_attempts);
  release_held(index);
}

void MemoryBroker::release_held(std::uint32_t index) {
  Session& session = *sessions_[index];
  while (!session.in_hand && !session.held.empty() && session.client != nullptr) {
    InFlight packet = std::move(session.held.front());
    session.held.pop_front();
    take(packet);
  }
  // Packets wait in `held` only behind a delivery in hand, and only while connected.
  EVENTMART_ASSERT(session.held.empty() || (session.in_hand && session.client != nullptr),
                   session.client_id, session.held.size());
}

void MemoryBroker::on_deliver_ack_arrived(const InFlight& packet) {
  deliveries_.erase(packet.id);
}

void MemoryBroker::schedule_sweep() {
  if (sweep_timer_ != 0) return;
  // Called when something new is unacknowledged: nothing older is waiting (or a sweep would
  // be scheduled), so the new entry is the first one due.
  sweep_timer_ = clock_.call_after(options_.retry_interval_us, [this] {
    sweep_timer_ = 0;
    sweep();
  });
}

void MemoryBroker::fail_outgoing(std::uint64_t id) {
  Outgoing* out = outgoing_.find(id);
  if (out == nullptr) return;
  PublishCallback on_done = std::move(out->on_done);
  const MessageRef message = out->message;
  const std::uint32_t session = out->session;
  outgoing_.erase(id);
  ++stats_.publishes_failed;
  mark(Mark::kTransportPublishFailed);
  if (observer_)
    observer_->on_publish_failed(sessions_[session]->client_id, message->topic(),
                                 message->envelope);
  // Never re-entrantly from inside publish(): the Bus contract.
  if (on_done) clock_.call_after(0, [cb = std::move(on_done)] { cb(PublishOutcome::kFailed); });
}

void MemoryBroker::sweep() {
  const std::int64_t now = clock_.now_us();
  const std::int64_t due = now - options_.retry_interval_us;
  std::int64_t next_due = INT64_MAX;
  // A client that cannot reach the broker has lost its connection: what it has in flight
  // fails (collected first: the slab is not changed while it is iterated).
  std::vector<std::uint64_t> lost;
  if (network_ != nullptr) {
    outgoing_.for_each([&](std::uint64_t id, Outgoing& out) {
      if (out.last_sent_us <= due && !network_->reachable(sessions_[out.session]->client_id)) {
        lost.push_back(id);
      }
    });
    for (std::uint64_t id : lost) fail_outgoing(id);
  }
  // send() never inserts into or erases from the slabs, so iterating while sending is safe.
  outgoing_.for_each([&](std::uint64_t id, Outgoing& out) {
    if (out.last_sent_us <= due) {
      out.last_sent_us = now;
      // A client busy with a retry has not read its PUBACKs: not a loss, nothing to resend.
      if (!sessions_[out.session]->in_hand) {
        ++stats_.retransmissions;
        send(PacketKind::kPublish, out.message, out.session, out.connection, id, true);
      }
    }
    next_due = std::min(next_due, out.last_sent_us + options_.retry_interval_us);
  });
  deliveries_.for_each([&](std::uint64_t id, PendingDelivery& pending) {
    // Queued for a client that is away: sent when it connects, not swept (a queue kept for
    // days would be looked at every sweep).
    if (sessions_[pending.session]->client == nullptr) return;
    if (pending.last_sent_us <= due) {
      if (sessions_[pending.session]->in_hand) {
        pending.last_sent_us = now;  // a client busy with a retry reads nothing: wait
      } else {
        send_delivery(id, true);
      }
    }
    next_due = std::min(next_due, pending.last_sent_us + options_.retry_interval_us);
  });
  if (next_due != INT64_MAX) {
    // At most sweeps_per_interval sweeps per retry interval: each looks at everything in
    // flight, so sweeping at every distinct due time would cost the square of what waits
    // (a client that is away for long, with its queue). A retransmission is late by at most
    // one gap.
    next_due = std::max(next_due, now + options_.retry_interval_us / options_.sweeps_per_interval);
    sweep_timer_ = clock_.call_at(next_due, [this] {
      sweep_timer_ = 0;
      sweep();
    });
  }
}

MemoryClient::MemoryClient(MemoryBroker& broker, std::uint32_t session, std::uint64_t connection,
                           std::string client_id)
    : broker_(broker),
      session_(session),
      connection_(connection),
      client_id_(std::move(client_id)) {}

MemoryClient::~MemoryClient() {
  broker_.disconnect(session_, connection_);
}

void MemoryClient::publish(const std::string& topic, Envelope envelope, Qos qos,
                           PublishCallback on_done) {
  broker_.publish(session_, connection_, topic, std::move(envelope), qos, std::move(on_done));
}

SubscriptionId MemoryClient::subscribe(const std::string& filter, MessageHandler handler) {
  if (!is_valid_topic_filter(filter)) {
    throw std::invalid_argument("invalid MQTT topic filter '" + filter + "'");
  }
  const SubscriptionId id = next_subscription_++;
  // While handlers run, growing subscriptions_ could move the running handler: park it.
  auto& target = dispatch_depth_ > 0 ? added_during_dispatch_ : subscriptions_;
  target.push_back(Subscription{id, filter, std::move(handler), true});
  if (dispatch_depth_ == 0) matches_.clear();
  auto& filters = broker_.sessions_[session_]->filters;
  if (std::find(filters.begin(), filters.end(), filter) == filters.end()) {
    filters.push_back(filter);
    ++broker_.filters_generation_;
  }
  // Made again: what comes for it is this client's once more, not lost to the old expiry.
  auto& lost = broker_.sessions_[session_]->lost_filters;
  if (std::erase(lost, filter) > 0) ++broker_.filters_generation_;
  return id;
}

void MemoryClient::unsubscribe(SubscriptionId id) {
  std::string filter;
  for (auto& s : subscriptions_) {
    if (s.id == id && s.active) {
      s.active = false;
      filter = s.filter;
    }
  }
  for (const auto& s : added_during_dispatch_) {
    if (s.id == id) filter = s.filter;
  }
  std::erase_if(added_during_dispatch_, [id](const Subscription& s) { return s.id == id; });
  if (dispatch_depth_ == 0 &&
      std::erase_if(subscriptions_, [](const Subscription& s) { return !s.active; }) > 0) {
    matches_.clear();
  }
  // The session stops routing the filter once no handler of this client uses it.
  const auto uses = [&](const Subscription& s) { return s.active && s.filter == filter; };
  if (!filter.empty() && std::none_of(subscriptions_.begin(), subscriptions_.end(), uses) &&
      std::none_of(added_during_dispatch_.begin(), added_during_dispatch_.end(), uses)) {
    std::erase(broker_.sessions_[session_]->filters, filter);
    ++broker_.filters_generation_;
  }
}

bool MemoryClient::give_up(const std::string& topic, const Envelope& envelope,
                           const std::string& reason) {
  if (!on_malformed_) return false;
  try {
    on_malformed_(topic, encode_envelope(envelope), reason);
    return true;
  } catch (const std::exception& e) {
    ++broker_.stats_.handler_failures;
    if (broker_.observer_) {
      broker_.observer_->on_handler_failed(
          client_id_, topic, envelope, std::string("dead-lettering it failed too: ") + e.what());
    }
    return false;
  }
}

std::vector<std::uint32_t> MemoryClient::matching(const std::string& topic) const {
  std::vector<std::uint32_t> found;
  for (std::uint32_t i = 0; i < subscriptions_.size(); ++i) {
    if (topic_matches_validated(subscriptions_[i].filter, topic)) found.push_back(i);
  }
  return found;
}

const std::vector<std::uint32_t>& MemoryClient::cached_matching(const std::string& topic,
                                                                const void* route) {
  for (const Matches& m : matches_) {
    if (m.route == route) return m.subscriptions;
  }
  if (matches_.size() >= kMaxMatches) matches_.clear();
  matches_.push_back(Matches{route, matching(topic)});
  return matches_.back().subscriptions;
}

bool MemoryClient::dispatch(const std::string& topic, const void* route, const Envelope& envelope,
                            bool redelivered, std::string& error, bool& transient) {
  const Delivery delivery{topic, envelope, redelivered};
  bool all_returned = true;
  // Handlers may subscribe and unsubscribe: subscriptions_ keeps its entries and its order,
  // and the cache stays as it is, until the outermost dispatch returns, so the indices and
  // the reference hold until then.
  const bool cached = dispatch_depth_ == 0 && route != nullptr;
  std::vector<std::uint32_t> uncached;  // inside a handler, or a topic without a route
  if (!cached) uncached = matching(topic);
  const std::vector<std::uint32_t>& matches = cached ? cached_matching(topic, route) : uncached;
  ++dispatch_depth_;
  for (const std::uint32_t i : matches) {
    if (!subscriptions_[i].active) continue;
    try {
      subscriptions_[i].handler(delivery);
    } catch (const std::exception& e) {
      all_returned = false;
      error = e.what();
      transient = is_transient(e);
      ++broker_.stats_.handler_failures;
      if (broker_.observer_) {
        broker_.observer_->on_handler_failed(client_id_, topic, envelope, e.what());
      }
    }
  }
  if (--dispatch_depth_ == 0) {
    const bool changed =
        std::erase_if(subscriptions_, [](const Subscription& s) { return !s.active; }) > 0 ||
        !added_during_dispatch_.empty();
    for (auto& s : added_during_dispatch_) subscriptions_.push_back(std::move(s));
    added_during_dispatch_.clear();
    if (changed) matches_.clear();
  }
  return all_returned;
}

}  // namespace eventmart::memory
