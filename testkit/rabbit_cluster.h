// A 3-node RabbitMQ cluster (deploy/rabbitmq/cluster.sh) in a temporary folder on free
// loopback ports, for the cluster tests and the MQTT benchmark. Stopped (and its folder
// removed) with the object.
#pragma once

#include <string>
#include <vector>

namespace eventmart::test {

class RabbitCluster {
 public:
  RabbitCluster();  // starts it and waits until the three nodes are clustered; see ok()
  ~RabbitCluster();
  RabbitCluster(const RabbitCluster&) = delete;
  RabbitCluster& operator=(const RabbitCluster&) = delete;

  // Whether rabbitmq-server is installed at all (the script needs it).
  static bool available();
  bool ok() const { return ok_; }
  std::string uri(int node) const;  // node 1..3
  // The nodes in this order, as a --broker list.
  std::string brokers(const std::vector<int>& order) const;
  std::string password(const std::string& user) const;
  int kill(int node);   // SIGKILL
  int start(int node);  // starts it again and waits until it serves MQTT
  void signal(int node, int sig);
  // Every node runs, clustered (the script's status lists the three as running).
  bool all_running();

 private:
  // Runs deploy/rabbitmq/cluster.sh with `args`, its output to `out` (or a log in the folder).
  int script(const std::vector<std::string>& args, const std::string& out = "") const;
  std::string dir_;
  int base_ = 0;
  bool ok_ = false;
};

}  // namespace eventmart::test
