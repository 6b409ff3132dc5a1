// The tests' and benchmarks' broker: the product's own mosquitto runner (runtime/mosquitto.h),
// under the names the tests use.
#pragma once

#include "runtime/mosquitto.h"

namespace eventmart::test {

using runtime::accepts_connections;
using runtime::free_loopback_port;
using runtime::Mosquitto;
using runtime::run_program;
using runtime::wait_until;

}  // namespace eventmart::test
