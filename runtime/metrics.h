// `serve --metrics-listen HOST:PORT`: an HTTP endpoint for the operator (Prometheus and a load
// balancer or orchestrator). Built on Boost.Beast, which is part of the Boost the project
// already uses (Debian's libboost-dev): no other package, and the HTTP it needs is three GETs.
//
//   /metrics  the Prometheus text exposition (format 0.0.4), one series per service
//   /healthz  200 while the process runs and answers
//   /readyz   200 when every service is connected with every subscription granted, else 503
//             naming the services that are not
//
// The server has one thread of its own for HTTP, which never waits for a service: /healthz
// and /readyz answer from what the process knows without a service's lock (a handler may hold
// it for seconds on a locked database, and a liveness probe must not then kill a healthy
// service). A scrape's numbers are collected on a second thread, one collection at a time
// however many scrapers ask (each takes a service's strand briefly; the database counts are
// made on a connection of their own, outside it); scrapes that come while one runs share the
// next, which starts after them, so an answer is never older than its request.
// Connections are capped and timed out (apps/http_server.h).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/http_server.h"
#include "runtime/live_store.h"

namespace eventmart::runtime {

// The exposition of `services`' metrics, "# HELP"/"# TYPE" before each family.
std::string prometheus_text(const std::vector<ServiceMetrics>& services);

class MetricsServer {
 public:
  struct Handlers {
    // A snapshot of every service (may wait for their strands): the collection thread calls it.
    std::function<std::vector<ServiceMetrics>()> metrics;
    // What /readyz needs, without waiting for any service (the HTTP thread calls it). Null:
    // /readyz reads a collection of `metrics` instead.
    std::function<std::vector<ServiceReadiness>()> readiness;
  };
  // Listens on `host_port` ("127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464"; port 0 picks a
  // free one). Throws std::invalid_argument for a malformed address, std::runtime_error when it
  // cannot listen (naming the address and why).
  MetricsServer(const std::string& host_port, Handlers handlers, HttpLimits limits = {});
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  std::uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eventmart::runtime
