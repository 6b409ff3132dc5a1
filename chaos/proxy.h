// A fault-injecting TCP proxy (Boost.Asio) between one MQTT client and the broker, for
// `eventmart chaos`: it listens on a loopback port of its own and forwards every connection
// to the broker's port, byte for byte, unless a fault is on:
//  - reset: every open connection is closed with a TCP RST on both sides, at once;
//  - blackhole: nothing is forwarded in either direction (and nothing is lost: TCP holds the
//    bytes, as a network that drops every packet and then heals would, until a keep-alive
//    gives up on the connection); new connections are accepted and hang the same way;
//  - latency and jitter: each chunk is forwarded after latency +- jitter, in order;
//  - bandwidth: each direction forwards at most so many bytes per second.
// Only 127.0.0.1. Every call is thread-safe: the proxy runs on the io_context's thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <memory>

namespace eventmart::chaos {

class FaultProxy {
 public:
  struct Stats {
    std::int64_t connections = 0;  // accepted so far
    std::int64_t resets = 0;       // connections reset by reset_connections()
    std::int64_t bytes_forwarded = 0;
  };

  // Listens on 127.0.0.1 (a port the kernel picks); forwards to 127.0.0.1:upstream_port(),
  // asked at each new connection (the broker may come back on another port).
  FaultProxy(boost::asio::io_context& io, std::function<int()> upstream_port,
             std::uint64_t jitter_seed);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return port_; }

  void reset_connections();
  void set_blackhole(bool on);
  void set_latency(std::int64_t latency_us, std::int64_t jitter_us);
  void set_bandwidth(std::int64_t bytes_per_s);  // 0: unlimited
  // Every fault off (open connections stay open).
  void heal();
  // Stops accepting and closes every connection; waits for the io thread to do it.
  // REQUIRES: the io_context runs (or its thread was joined); checked: a close the io thread
  // has not done within a minute fails.
  void close();

  Stats stats() const;

  // Internals, public for the session code in proxy.cpp.
  struct Shared;

 private:
  void accept();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::function<int()> upstream_port_;
  int port_ = 0;
  std::shared_ptr<Shared> shared_;  // the faults and the open connections (sessions share it)
  bool closed_ = false;
};

}  // namespace eventmart::chaos
