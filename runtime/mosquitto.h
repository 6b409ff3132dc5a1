// A real mosquitto of its own, for `eventmart chaos` and for the broker tests and benchmarks:
// started (runtime/process.h) on a fresh loopback port with a config generated for it (plain,
// with users and an ACL, or TLS), in its own directory (persistence and log), checked ready by
// connecting, and stopped with the object. stop() and start() restart it on the same port with
// the same persistence, as an operator would; kill_now() kills it with -9.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/process.h"

namespace eventmart::runtime {

// Polls `done` every 2 ms until it is true or `timeout` passed; returns its last value.
bool wait_until(const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A port the kernel just handed out on 127.0.0.1 (free at the time of the call).
int free_loopback_port();

// True when something accepts TCP connections on 127.0.0.1:port.
bool accepts_connections(int port);

// Runs a program to completion; throws when it fails.
void run_program(const std::vector<std::string>& argv);

class Mosquitto {
 public:
  struct Options {
    // Users (name, password): the broker then refuses anonymous clients.
    std::vector<std::pair<std::string, std::string>> users;
    std::string acl_file;     // with users: the ACL to enforce
    std::string base_config;  // a config to start from (its listener and paths replaced)
    bool start = true;        // false: call start() yourself
    // TLS only: a CA and a server certificate for 127.0.0.1 are made with openssl;
    // ca_file() is what clients must trust, uri() is ssl://.
    bool tls = false;
    // Lines added to the generated config (e.g. "autosave_on_changes true").
    std::vector<std::string> extra_config;
  };

  Mosquitto() : Mosquitto(Options{}) {}
  explicit Mosquitto(Options options);
  ~Mosquitto();
  Mosquitto(const Mosquitto&) = delete;
  Mosquitto& operator=(const Mosquitto&) = delete;

  int port() const { return port_; }
  std::string uri() const;
  std::string ca_file() const { return dir_ + "/ca.crt"; }
  const std::string& dir() const { return dir_; }
  std::string log() const;

  void start();
  // SIGKILL: mosquitto dies at once; what it did not save is gone.
  void kill_now();
  // SIGTERM: mosquitto saves its persistence file and exits.
  void stop();
  // SIGHUP: mosquitto reads its config, password and ACL files again.
  void reload();
  // Replaces Options::extra_config, writes the config again and reloads it.
  void reconfigure(std::vector<std::string> extra_config);

 private:
  void make_certificates();
  void write_config();

  Options options_;
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<Process> process_;  // while started
};

}  // namespace eventmart::runtime
