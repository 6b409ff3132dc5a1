#include "chaos/proxy.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "core/assert.h"

namespace eventmart::chaos {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {
constexpr std::size_t kReadSize = 16 * 1024;
// Past this much held in one direction (latency, throttling, a blackhole), the proxy stops
// reading until it drains: TCP's own flow control then holds the sender.
constexpr std::size_t kMaxQueuedBytes = 4 * 1024 * 1024;
constexpr auto kPoll = std::chrono::milliseconds(20);
}  // namespace

class Session;

struct FaultProxy::Shared {
  std::atomic<bool> blackhole{false};
  std::atomic<std::int64_t> latency_us{0};
  std::atomic<std::int64_t> jitter_us{0};
  std::atomic<std::int64_t> bandwidth{0};
  std::atomic<std::int64_t> connections{0};
  std::atomic<std::int64_t> resets{0};
  std::atomic<std::int64_t> bytes{0};
  std::mt19937_64 rng;                           // jitter draws (io thread only)
  std::vector<std::weak_ptr<Session>> sessions;  // io thread only
};

// One proxied connection: the client's socket, the broker's, a pump each way.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::io_context& io, std::shared_ptr<FaultProxy::Shared> shared, tcp::socket client)
      : shared_(std::move(shared)),
        client_(std::move(client)),
        upstream_(io),
        up_(io, client_, upstream_),
        down_(io, upstream_, client_) {}

  void start(int upstream_port) {
    auto self = shared_from_this();
    upstream_.async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                      static_cast<unsigned short>(upstream_port)),
        [self](const boost::system::error_code& ec) {
          if (ec) {
            self->close(true);  // the broker is down: the client's connection is reset
            return;
          }
          boost::system::error_code ignored;
          self->client_.set_option(tcp::no_delay(true), ignored);
          self->upstream_.set_option(tcp::no_delay(true), ignored);
          self->read(self->up_);
          self->read(self->down_);
        });
  }

  // `rst`: abortive close (SO_LINGER 0), so both peers see a reset, not an orderly end.
  void close(bool rst) {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    for (tcp::socket* s : {&client_, &upstream_}) {
      if (rst && s->is_open()) s->set_option(asio::socket_base::linger(true, 0), ignored);
      s->close(ignored);
    }
    for (Direction* d : {&up_, &down_}) {
      d->read_timer.cancel();
      d->write_timer.cancel();
    }
  }

 private:
  struct Chunk {
    Clock::time_point release;
    std::string bytes;
  };
  struct Direction {
    Direction(asio::io_context& io, tcp::socket& f, tcp::socket& t)
        : from(f), to(t), read_timer(io), write_timer(io) {}
    tcp::socket& from;
    tcp::socket& to;
    asio::steady_timer read_timer;
    asio::steady_timer write_timer;
    std::array<char, kReadSize> buffer{};
    std::deque<Chunk> queue;
    std::size_t queued_bytes = 0;
    bool writing = false;
    bool ended = false;  // the source closed: close once the queue is out
    Clock::time_point last_release{};
    Clock::time_point next_send{};
  };

  void read(Direction& d) {
    if (closed_) return;
    auto self = shared_from_this();
    if (shared_->blackhole || d.queued_bytes > kMaxQueuedBytes) {
      d.read_timer.expires_after(kPoll);
      d.read_timer.async_wait([self, &d](const boost::system::error_code& ec) {
        if (!ec) self->read(d);
      });
      return;
    }
    d.from.async_read_some(asio::buffer(d.buffer),
                           [self, &d](const boost::system::error_code& ec, std::size_t n) {
                             if (ec == asio::error::eof) {
                               // An orderly end: what is held still goes out, then the
                               // connection closes.
                               d.ended = true;
                               self->write(d);
                               return;
                             }
                             if (ec) {
                               self->close(false);
                               return;
                             }
                             self->hold(d, std::string(d.buffer.data(), n));
                             self->read(d);
                             self->write(d);
                           });
  }

  void hold(Direction& d, std::string bytes) {
    const Clock::time_point now = Clock::now();
    std::int64_t delay = shared_->latency_us;
    if (const std::int64_t jitter = shared_->jitter_us; jitter > 0) {
      delay += std::uniform_int_distribution<std::int64_t>(-jitter, jitter)(shared_->rng);
    }
    Clock::time_point release = now + std::chrono::microseconds(std::max<std::int64_t>(0, delay));
    release = std::max(release, d.last_release);  // in order, whatever the jitter
    d.last_release = release;
    d.queued_bytes += bytes.size();
    d.queue.push_back(Chunk{release, std::move(bytes)});
  }

  void write(Direction& d) {
    if (closed_ || d.writing) return;
    if (d.queue.empty()) {
      if (d.ended) close(false);
      return;
    }
    auto self = shared_from_this();
    const Clock::time_point now = Clock::now();
    Clock::time_point due = d.queue.front().release;
    if (shared_->bandwidth > 0) due = std::max(due, d.next_send);  // healed: no more waiting
    if (shared_->blackhole) due = std::max(due, now + kPoll);
    d.writing = true;
    if (due > now) {
      d.write_timer.expires_at(due);
      d.write_timer.async_wait([self, &d](const boost::system::error_code& ec) {
        d.writing = false;
        if (!ec) self->write(d);
      });
      return;
    }
    asio::async_write(
        d.to, asio::buffer(d.queue.front().bytes),
        [self, &d](const boost::system::error_code& ec, std::size_t n) {
          d.writing = false;
          if (ec) {
            self->close(false);
            return;
          }
          d.queued_bytes -= n;
          d.queue.pop_front();
          self->shared_->bytes += static_cast<std::int64_t>(n);
          if (const std::int64_t bw = self->shared_->bandwidth; bw > 0) {
            d.next_send = Clock::now() +
                          std::chrono::microseconds(static_cast<std::int64_t>(n) * 1'000'000 / bw);
          }
          self->write(d);
        });
  }

  std::shared_ptr<FaultProxy::Shared> shared_;
  tcp::socket client_;
  tcp::socket upstream_;
  Direction up_;    // client -> broker
  Direction down_;  // broker -> client
  bool closed_ = false;
};

FaultProxy::FaultProxy(asio::io_context& io, std::function<int()> upstream_port,
                       std::uint64_t jitter_seed)
    : io_(io),
      acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
      upstream_port_(std::move(upstream_port)),
      shared_(std::make_shared<Shared>()) {
  shared_->rng.seed(jitter_seed);
  port_ = acceptor_.local_endpoint().port();
  accept();
}

FaultProxy::~FaultProxy() {
  close();
}

void FaultProxy::accept() {
  acceptor_.async_accept(
      [this, shared = shared_](const boost::system::error_code& ec, tcp::socket socket) {
        if (ec) return;  // closed
        ++shared->connections;
        auto session = std::make_shared<Session>(io_, shared, std::move(socket));
        auto& sessions = shared->sessions;
        sessions.erase(std::remove_if(sessions.begin(), sessions.end(),
                                      [](const std::weak_ptr<Session>& s) { return s.expired(); }),
                       sessions.end());
        sessions.push_back(session);
        session->start(upstream_port_());
        accept();
      });
}

void FaultProxy::set_blackhole(bool on) {
  shared_->blackhole = on;
}

void FaultProxy::set_latency(std::int64_t latency_us, std::int64_t jitter_us) {
  shared_->latency_us = latency_us;
  shared_->jitter_us = jitter_us;
}

void FaultProxy::set_bandwidth(std::int64_t bytes_per_s) {
  shared_->bandwidth = bytes_per_s;
}

void FaultProxy::heal() {
  set_blackhole(false);
  set_latency(0, 0);
  set_bandwidth(0);
}

void FaultProxy::reset_connections() {
  asio::post(io_, [shared = shared_] {
    for (auto& weak : shared->sessions) {
      if (auto s = weak.lock()) {
        s->close(true);
        ++shared->resets;
      }
    }
    shared->sessions.clear();
  });
}

void FaultProxy::close() {
  if (closed_) return;
  closed_ = true;
  auto shared = shared_;
  auto work = [this, shared] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& weak : shared->sessions) {
      if (auto s = weak.lock()) s->close(false);
    }
    shared->sessions.clear();
  };
  if (io_.stopped()) {
    work();  // the io thread is gone (the owner joined it): nothing else touches these
    return;
  }
  // Done on the io thread, which owns the sessions; the owner keeps it running until every
  // proxy is closed.
  auto done = std::make_shared<std::promise<void>>();
  asio::post(io_, [work, done] {
    work();
    done->set_value();
  });
  // A minute without the io thread taking it: nothing runs the io_context (a hang otherwise).
  const bool ran =
      done->get_future().wait_for(std::chrono::minutes(1)) == std::future_status::ready;
  EVENTMART_REQUIRE(ran, port());
}

FaultProxy::Stats FaultProxy::stats() const {
  return Stats{shared_->connections, shared_->resets, shared_->bytes};
}

}  // namespace eventmart::chaos
