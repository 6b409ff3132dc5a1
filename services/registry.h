// The one place that builds a service. The simulator (sim/world) and `eventmart serve`
// (apps/) both call build_service(); nothing else constructs a service, so what the
// simulator proves is what production runs. A deliberately broken variant (sim/bugs) is not
// an if-chain in a caller: it is a ServiceVariant handed to the factory by name.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "core/marks.h"
#include "services/catalog.h"
#include "services/service.h"

namespace eventmart {

enum class ServiceKind : std::uint8_t {
  kGatewayGuardian,
  kHelloHelper,
  kGateExitGuardian,
  kInventoryIntel,
  kFastlaneFinale,
  kLogisticsDesk,  // a stand-in for the logistics department (not one of the store's five)
};

struct ServiceSpec {
  ServiceKind kind;
  std::string_view name;    // "gateway-guardian", ...: client ids, files, topics, logs
  bool store_service;       // one of the store's five (what `serve --all` runs)
  bool uses_logistics_bus;  // needs ServiceContext::logistics_bus
  bool reads_devices;       // a guardian: takes scanner readings (ScanOutcome scan(...))
  bool consumes_store_bus;  // subscribes to store events (replicas share their messages)
  std::string_view role;    // one line, for --help
  // The mark of a delivery hours late in this service (its catch-up, core/marks.h), if it
  // consumes store events.
  std::optional<Mark> catch_up;
};

// Every kind, the five store services in pipeline order, then the logistics desk.
const std::vector<ServiceSpec>& service_specs();
// The five store services, in pipeline order.
const std::vector<ServiceKind>& store_service_kinds();
const ServiceSpec& spec_of(ServiceKind kind);
std::optional<ServiceKind> service_kind(std::string_view name);
std::string_view service_name(ServiceKind kind);

// Builds a service differently. Each hook's default builds the real thing; a variant
// overrides what it changes. Variants live outside services/ (sim/bugs) and are looked up
// by name there.
class ServiceVariant {
 public:
  virtual ~ServiceVariant() = default;
  virtual std::string_view name() const = 0;
  // The bus `kind` sees in place of `bus` (a wrapper around it), or null to see `bus`.
  virtual std::unique_ptr<Bus> wrap_bus(ServiceKind kind, Bus& bus) const { return nullptr; }
  // The service itself, or null for the real one.
  virtual std::unique_ptr<Service> make(ServiceKind kind, const ServiceContext& context) const {
    return nullptr;
  }
  // Runs on the service's database before anything else touches it (a pragma, say).
  virtual void prepare_database(ServiceKind kind, Database& db) const {}
  // The service's outbox relay, or null for the real one.
  virtual std::unique_ptr<OutboxRelay> make_relay(ServiceKind kind,
                                                  const OutboxRelay::Parts& parts) const {
    return nullptr;
  }
};

// What a service is built from. Every reference must outlive the built service.
struct ServiceInputs {
  ServiceContext context;                   // buses, clock, database, topics, logger, options
  const StoreData* store_data = nullptr;    // seeds the database (rows missing only); null: not
  const ServiceVariant* variant = nullptr;  // null: the real service
};

// A built service and the bus views it was given. They die with it, the service first (it
// still talks to its buses as it goes): destroy the object or call reset(), never assign.
struct BuiltService {
  BuiltService() = default;
  BuiltService(BuiltService&&) = default;
  BuiltService& operator=(BuiltService&&) = delete;
  ~BuiltService() { reset(); }
  void reset() {
    service.reset();
    logistics_view.reset();
    bus_view.reset();
  }

  std::unique_ptr<Bus> bus_view;
  std::unique_ptr<Bus> logistics_view;
  std::unique_ptr<Service> service;
};

// Builds `kind`: seeds its database from `inputs.store_data` (products for Inventory Intel
// and Fastlane Finale, customers for Hello Helper; existing rows are kept), lets the variant
// wrap its buses and build it, else builds the real service. Does not start it.
// Throws std::invalid_argument when an input the kind needs is missing.
BuiltService build_service(ServiceKind kind, ServiceInputs inputs);

}  // namespace eventmart
