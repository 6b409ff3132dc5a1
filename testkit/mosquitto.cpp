#include "testkit/mosquitto.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace eventmart::testing {

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

std::string find_program(const std::string& name, const std::string& env_override) {
  if (const char* p = std::getenv(env_override.c_str()); p != nullptr && *p != '\0') return p;
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/usr/local/sbin/", "/usr/local/bin/"}) {
    const std::string path = std::string(dir) + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  throw std::runtime_error(name + " not found (install the Debian package 'mosquitto', or set " +
                           env_override + ")");
}

// Runs a program to completion; throws when it fails.
void run_program(const std::vector<std::string>& argv) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // (its output went to the test's stderr)
    throw std::runtime_error("'" + argv[0] + "' failed");
  }
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
  if (pid_ > 0) return;
  const std::string binary = find_program("mosquitto", "EVENTMART_MOSQUITTO");
  for (int attempt = 0; attempt < 5; ++attempt) {
    // Everything the child needs is made before fork: between fork and exec only
    // async-signal-safe calls (the test may have threads holding locks).
    const std::string log = dir_ + "/mosquitto.log";
    const std::string conf = dir_ + "/mosquitto.conf";
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test (or `eventmart chaos`)
      if (::getppid() != parent) ::_exit(127);
      ::setpgid(0, 0);  // a terminal's Ctrl-C is for the test, which stops the broker itself
      const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (out >= 0) {
        ::dup2(out, 1);
        ::dup2(out, 2);
      }
      // The broker takes none of the test's sockets along: a copy of a client's or a proxy's
      // socket in a restarted broker would keep that connection open after it was closed.
      ::close_range(3, ~0U, 0);
      ::execl(binary.c_str(), binary.c_str(), "-c", conf.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    bool died = false;
    const bool ready = wait_until(
        [&] {
          died = died || exited();
          return died || accepts_connections(port_);
        },
        std::chrono::seconds(10));
    if (ready && !died) return;
    if (!died) {
      // Neither up nor gone within 10 s: not left running behind the test.
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    // A taken port is only logged: take another one and try again.
    pid_ = 0;
    port_ = free_loopback_port();
    write_config();
  }
  throw std::runtime_error("mosquitto did not start; its log:\n" + log());
}

void Mosquitto::kill_now() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = 0;
}

void Mosquitto::reload() {
  if (pid_ > 0) ::kill(pid_, SIGHUP);
}

void Mosquitto::reconfigure(std::vector<std::string> extra_config) {
  options_.extra_config = std::move(extra_config);
  write_config();
  reload();
}

void Mosquitto::stop() {
  if (pid_ <= 0) return;
  // A SIGTERM that arrives while mosquitto is still starting is lost: its main loop sets its
  // "run" flag again when it begins (seen once: a broker stopped right after it accepted the
  // readiness probe ran on, and the test hung). So SIGTERM is sent again every 200 ms until
  // it exits, and after 10 s it is killed.
  int status = 0;
  for (int tries = 0; tries < 50; ++tries) {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 20; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = 0;
}

void Mosquitto::make_certificates() {
  const std::string openssl = find_program("openssl", "EVENTMART_OPENSSL");
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

bool Mosquitto::exited() {
  int status = 0;
  return ::waitpid(pid_, &status, WNOHANG) == pid_;
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
    const std::string tool = find_program("mosquitto_passwd", "EVENTMART_MOSQUITTO_PASSWD");
    for (const auto& [user, password] : options_.users) {
      run_program({tool, "-b", passwd_file, user, password});
    }
    conf << "password_file " << passwd_file << "\n";
    if (!options_.acl_file.empty()) conf << "acl_file " << options_.acl_file << "\n";
  }
  std::ofstream(dir_ + "/mosquitto.conf") << conf.str();
}

}  // namespace eventmart::testing
