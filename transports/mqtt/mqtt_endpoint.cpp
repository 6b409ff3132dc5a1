// Where the broker is, and why a connection to it failed: the endpoint of a URI, a TCP probe that
// says what a person can act on, and TCP_NODELAY on the process's sockets.
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "transports/mqtt/mqtt_bus_parts.h"

namespace eventmart::mqtt {
namespace {

// Probes host:port over TCP to say why a connection attempt failed, then calls `done` (on the
// timer thread) with the problem and a sentence a person can act on.
class EndpointProbe : public std::enable_shared_from_this<EndpointProbe> {
 public:
  using Done = std::function<void(ConnectProblem, std::string)>;
  EndpointProbe(boost::asio::io_context& io, Endpoint endpoint, std::string tls_error, Done done)
      : resolver_(io),
        socket_(io),
        deadline_(io),
        endpoint_(std::move(endpoint)),
        tls_error_(std::move(tls_error)),
        done_(std::move(done)) {}

  void start() {
    auto self = shared_from_this();
    deadline_.expires_after(std::chrono::seconds(kProbeTimeoutS));
    deadline_.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->finished_) return;
      self->finish(ConnectProblem::kUnreachable, "no answer from " + self->where() + " within " +
                                                     std::to_string(kProbeTimeoutS) +
                                                     " s (a wrong address, or a firewall?)");
      boost::system::error_code ignored;
      self->socket_.close(ignored);
      self->resolver_.cancel();
    });
    resolver_.async_resolve(
        endpoint_.host, endpoint_.port,
        [self](const boost::system::error_code& ec,
               boost::asio::ip::tcp::resolver::results_type results) {
          if (self->finished_) return;
          if (ec) {
            return self->finish(
                ConnectProblem::kUnreachable,
                "cannot resolve host '" + self->endpoint_.host + "': " + ec.message());
          }
          boost::asio::async_connect(
              self->socket_, results,
              [self](const boost::system::error_code& error,
                     const boost::asio::ip::tcp::endpoint&) { self->connected(error); });
        });
  }

 private:
  std::string where() const { return endpoint_.host + ":" + endpoint_.port; }

  void connected(const boost::system::error_code& ec) {
    if (finished_) return;
    if (ec == boost::asio::error::connection_refused) {
      return finish(
          ConnectProblem::kUnreachable,
          "nothing listens on " + where() + " (connection refused): is the broker running?");
    }
    if (ec)
      return finish(ConnectProblem::kUnreachable, "cannot reach " + where() + ": " + ec.message());
    if (endpoint_.tls) {
      return finish(ConnectProblem::kHandshakeFailed,
                    "the TLS handshake with " + where() + " failed" +
                        (tls_error_.empty() ? "" : " (" + tls_error_ + ")") +
                        ": the broker's certificate must chain to --ca-file and name the host, "
                        "and the port must speak TLS");
    }
    finish(ConnectProblem::kHandshakeFailed,
           where() +
               " accepts TCP connections but did not complete an MQTT handshake: if it is a "
               "TLS port, use ssl://; if the broker speaks only MQTT 3.1.1, use "
               "--mqtt-version 3.1.1");
  }

  void finish(ConnectProblem problem, std::string text) {
    finished_ = true;
    deadline_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
    done_(problem, std::move(text));
  }

  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer deadline_;
  Endpoint endpoint_;
  std::string tls_error_;
  Done done_;
  bool finished_ = false;
};

}  // namespace

// Paho C 1.3 leaves Nagle's algorithm on and offers no socket option. A small PUBLISH written
// right after a PUBACK then waits for the broker's delayed ACK (40 ms on Linux) - that is the
// latency of every hop of the pipeline. On each connect, TCP_NODELAY is set on the process's
// TCP sockets (setting it twice, or on another client's socket, is harmless).
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

// tcp://host:port, mqtt://, ssl://, mqtts:// (ports default to 1883 and 8883).
Endpoint endpoint_of(const std::string& uri) {
  Endpoint e;
  std::size_t scheme_end = uri.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "tcp" : uri.substr(0, scheme_end);
  e.tls = scheme == "ssl" || scheme == "mqtts";
  std::string rest = scheme_end == std::string::npos ? uri : uri.substr(scheme_end + 3);
  if (const std::size_t slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  const std::size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']') < colon + 1) {
    e.host = rest.substr(0, colon);
    e.port = rest.substr(colon + 1);
  } else if (colon != std::string::npos && rest.find('[') == std::string::npos) {
    e.host = rest.substr(0, colon);
    e.port = rest.substr(colon + 1);
  } else {
    e.host = rest;
    e.port = e.tls ? "8883" : "1883";
  }
  if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']') {
    e.host = e.host.substr(1, e.host.size() - 2);
  }
  return e;
}

void MqttBus::diagnose(int return_code) {
  // No descriptor for a socket: nothing about the broker to learn, and the probe needs one too.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
    const std::string why = std::string("this process is out of file descriptors (") +
                            std::strerror(errno) +
                            "): held by too many HTTP clients, or a leak? (see LimitNOFILE)";
    report_failure(ConnectProblem::kUnreachable, why);
    return schedule_reconnect(why, true);
  }
  if (fd >= 0) ::close(fd);
  std::string tls;
  {
    std::lock_guard lock(tls_mutex_);
    tls.swap(tls_error_);
  }
  const std::uint64_t generation = generation_;
  auto post = clock_.poster();
  auto probe = std::make_shared<EndpointProbe>(
      clock_.io(), endpoint_of(broker()), tls,
      [this, post, alive = alive_, generation](ConnectProblem problem, std::string text) {
        post([this, alive, generation, problem, text] {
          if (!*alive || generation != generation_ || stopping_ || is_connected_) return;
          report_failure(problem, text);
          schedule_reconnect(text, true);
        });
      });
  probe->start();
}

}  // namespace eventmart::mqtt
