#include "runtime/mosquitto.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace eventmart::runtime {

// Polls `done` every 2 ms until it is true or `timeout` passed; returns its last value.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// A port the kernel just handed out on 127.0.0.1 (free at the time of the call).
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool accepts_connections(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

void run_program(const std::vector<std::string>& argv) {
  SpawnOptions options;
  options.argv = argv;
  if (run_to_end(options) != 0) throw std::runtime_error("'" + argv.front() + "' failed");
}

Mosquitto::Mosquitto(Options options) : options_(std::move(options)) {
  char pattern[] = "/tmp/eventmart-mosquitto-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  port_ = free_loopback_port();
  if (options_.tls) make_certificates();
  write_config();
  if (options_.start) start();
}

Mosquitto::~Mosquitto() {
  stop();
  std::filesystem::remove_all(dir_);
}

std::string Mosquitto::uri() const {
  return (options_.tls ? "ssl://127.0.0.1:" : "tcp://127.0.0.1:") + std::to_string(port_);
}

std::string Mosquitto::log() const {
  std::ifstream in(dir_ + "/mosquitto.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Mosquitto::start() {
  if (process_ && process_->running()) return;
  const std::string binary = find_program("mosquitto", "EVENTMART_MOSQUITTO", "mosquitto");
  for (int attempt = 0; attempt < 5; ++attempt) {
    SpawnOptions spawn;
    spawn.argv = {binary, "-c", dir_ + "/mosquitto.conf"};
    spawn.log_file = dir_ + "/mosquitto.log";
    process_ = std::make_unique<Process>(std::move(spawn));
    bool died = false;
    const bool ready = wait_until(
        [&] {
          died = died || !process_->running();
          return died || accepts_connections(port_);
        },
        std::chrono::seconds(10));
    if (ready && !died) return;
    process_.reset();  // neither up nor gone within 10 s: not left running behind
    // A taken port is only logged: take another one and try again.
    port_ = free_loopback_port();
    write_config();
  }
  throw std::runtime_error("mosquitto did not start; its log:\n" + log());
}

void Mosquitto::kill_now() {
  if (process_) process_->kill_now();
}

void Mosquitto::reload() {
  if (process_) process_->signal(SIGHUP);
}

void Mosquitto::reconfigure(std::vector<std::string> extra_config) {
  options_.extra_config = std::move(extra_config);
  write_config();
  reload();
}

void Mosquitto::stop() {
  if (!process_ || !process_->running()) return;
  // A SIGTERM that arrives while mosquitto is still starting is lost: its main loop sets its
  // "run" flag again when it begins (seen once: a broker stopped right after it accepted the
  // readiness probe ran on, and the test hung). So SIGTERM is sent again every 200 ms until
  // it exits, and after 10 s it is killed.
  for (int tries = 0; tries < 50; ++tries) {
    process_->signal(SIGTERM);
    if (process_->wait_for(std::chrono::milliseconds(200))) return;
  }
  process_->kill_now();
}

void Mosquitto::make_certificates() {
  const std::string openssl = find_program("openssl", "EVENTMART_OPENSSL", "openssl");
  const std::string d = dir_ + "/";
  std::ofstream(d + "san.ext") << "subjectAltName=IP:127.0.0.1\n";
  run_program({openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
               "-nodes", "-keyout", d + "ca.key", "-out", d + "ca.crt", "-days", "2", "-subj",
               "/CN=eventmart test CA"});
  run_program({openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
               "-nodes", "-keyout", d + "server.key", "-out", d + "server.csr", "-subj",
               "/CN=127.0.0.1"});
  run_program({openssl, "x509", "-req", "-in", d + "server.csr", "-CA", d + "ca.crt", "-CAkey",
               d + "ca.key", "-CAcreateserial", "-out", d + "server.crt", "-days", "2", "-extfile",
               d + "san.ext"});
}

void Mosquitto::write_config() {
  std::ostringstream conf;
  if (!options_.base_config.empty()) {
    // Keep every line of the base config but the ones this fixture owns.
    std::ifstream in(options_.base_config);
    if (!in) throw std::runtime_error("cannot read " + options_.base_config);
    std::string line;
    while (std::getline(in, line)) {
      const std::string key = line.substr(0, line.find(' '));
      if (key == "listener" || key == "persistence_location" || key == "password_file" ||
          key == "acl_file" || key == "log_dest" || key == "user" || key == "pid_file" ||
          key == "certfile" || key == "keyfile" || key == "cafile") {
        continue;
      }
      conf << line << "\n";
    }
  } else {
    conf << "persistence true\n"
         << "set_tcp_nodelay true\n"
         << "max_queued_messages 1000000\n"
         << "max_inflight_messages 1000\n"  // as deploy/mosquitto.conf
         << "allow_anonymous " << (options_.users.empty() ? "true" : "false") << "\n";
  }
  conf << "listener " << port_ << " 127.0.0.1\n";
  if (options_.tls) {
    conf << "cafile " << dir_ << "/ca.crt\n"
         << "certfile " << dir_ << "/server.crt\n"
         << "keyfile " << dir_ << "/server.key\n";
  }
  conf << "persistence_location " << dir_ << "/\n"
       << "log_dest stderr\n";
  for (const std::string& line : options_.extra_config) conf << line << "\n";
  // Run as whoever runs the tests (as root, mosquitto would switch to user 'mosquitto',
  // who cannot write this directory).
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr) {
    conf << "user " << pw->pw_name << "\n";
  }
  if (!options_.users.empty()) {
    const std::string passwd_file = dir_ + "/passwd";
    std::filesystem::remove(passwd_file);
    std::ofstream(passwd_file).close();
    const std::string tool =
        find_program("mosquitto_passwd", "EVENTMART_MOSQUITTO_PASSWD", "mosquitto");
    for (const auto& [user, password] : options_.users) {
      run_program({tool, "-b", passwd_file, user, password});
    }
    conf << "password_file " << passwd_file << "\n";
    if (!options_.acl_file.empty()) conf << "acl_file " << options_.acl_file << "\n";
  }
  std::ofstream(dir_ + "/mosquitto.conf") << conf.str();
}

}  // namespace eventmart::runtime
