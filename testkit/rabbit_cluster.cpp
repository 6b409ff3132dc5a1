#include "testkit/rabbit_cluster.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <stdexcept>

#include "runtime/process.h"

namespace eventmart::test {
namespace {

bool port_free(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

bool RabbitCluster::available() {
  return std::filesystem::exists("/usr/lib/rabbitmq/bin/rabbitmq-server") ||
         std::getenv("RABBITMQ_BIN") != nullptr;
}

RabbitCluster::RabbitCluster() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "eventmart-rabbit-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  // Three ports for MQTT, three for AMQP (+100), three for Erlang distribution (+200).
  std::mt19937 pick(static_cast<unsigned>(::getpid()));
  for (int tries = 0; tries < 50 && base_ == 0; ++tries) {
    const int base = 20000 + static_cast<int>(pick() % 30000);
    bool free = true;
    for (int n = 0; n < 3 && free; ++n) {
      free = port_free(base + n) && port_free(base + 100 + n) && port_free(base + 200 + n);
    }
    if (free) base_ = base;
  }
  ok_ = base_ != 0 && script({"start", dir_, std::to_string(base_)}) == 0;
}

RabbitCluster::~RabbitCluster() {
  script({"stop", dir_});
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string RabbitCluster::uri(int node) const {
  return "tcp://127.0.0.1:" + std::to_string(base_ + node - 1);
}

std::string RabbitCluster::brokers(const std::vector<int>& order) const {
  std::string out;
  for (int n : order) out += (out.empty() ? "" : ",") + uri(n);
  return out;
}

std::string RabbitCluster::password(const std::string& user) const {
  std::ifstream in(dir_ + "/passwords");
  std::string name, pw;
  while (in >> name >> pw) {
    if (name == user) return pw;
  }
  return "";
}

int RabbitCluster::kill(int node) {
  return script({"node", dir_, std::to_string(node), "kill"});
}

int RabbitCluster::start(int node) {
  return script({"node", dir_, std::to_string(node), "start"});
}

void RabbitCluster::signal(int node, int sig) {
  std::ifstream in(dir_ + "/node-" + std::to_string(node) + "/pid");
  pid_t pid = 0;
  if (in >> pid && pid > 0) ::kill(pid, sig);
}

bool RabbitCluster::all_running() {
  const std::string out = dir_ + "/status.txt";
  if (script({"status", dir_}, out) != 0) return false;
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto running = text.find("Running Nodes");
  if (running == std::string::npos) return false;
  const std::string after = text.substr(running, text.find("Versions") - running);
  for (int n = 1; n <= 3; ++n) {
    if (after.find("eventmart-" + std::to_string(n) + "@") == std::string::npos) return false;
  }
  return true;
}

int RabbitCluster::script(const std::vector<std::string>& args, const std::string& out) const {
  runtime::SpawnOptions spawn;
  spawn.argv = {"/bin/bash", std::string(EVENTMART_SOURCE_DIR) + "/deploy/rabbitmq/cluster.sh"};
  spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
  spawn.log_file = out.empty() ? dir_ + "/cluster-script.log" : out;
  const int status = runtime::run_to_end(spawn);
  if (status != 0 && out.empty()) {  // what the script said, for whoever reads the test's output
    std::ifstream log(spawn.log_file);
    std::cerr << log.rdbuf();
  }
  return status;
}

}  // namespace eventmart::test
