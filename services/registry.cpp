#include "services/registry.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "services/fastlane_finale.h"
#include "services/guardians.h"
#include "services/hello_helper.h"
#include "services/inventory_intel.h"
#include "services/logistics_desk.h"

namespace eventmart {

const std::vector<ServiceSpec>& service_specs() {
  static const std::vector<ServiceSpec> specs = {
      {ServiceKind::kGatewayGuardian, kGatewayGuardian, true, false, true, false,
       "the entrance's card scanner -> customer-arrival", std::nullopt},
      {ServiceKind::kHelloHelper, kHelloHelper, true, false, false, true,
       "customer-arrival -> a welcome on the entrance display", Mark::kHelloCatchUp},
      {ServiceKind::kGateExitGuardian, kGateExitGuardian, true, false, true, false,
       "the exit gate's bag scan -> customer-departure", std::nullopt},
      {ServiceKind::kInventoryIntel, kInventoryIntel, true, true, false, true,
       "departures and deliveries -> stock; restock-needed to logistics", Mark::kInventoryCatchUp},
      {ServiceKind::kFastlaneFinale, kFastlaneFinale, true, false, false, true,
       "customer-departure -> payment-due", Mark::kFastlaneCatchUp},
      {ServiceKind::kLogisticsDesk, kLogisticsDesk, false, true, false, false,
       "a stand-in for the logistics department: delivers every restock at once", std::nullopt},
  };
  return specs;
}

const std::vector<ServiceKind>& store_service_kinds() {
  static const std::vector<ServiceKind> kinds = [] {
    std::vector<ServiceKind> out;
    for (const ServiceSpec& s : service_specs()) {
      if (s.store_service) out.push_back(s.kind);
    }
    return out;
  }();
  return kinds;
}

const ServiceSpec& spec_of(ServiceKind kind) {
  for (const ServiceSpec& s : service_specs()) {
    if (s.kind == kind) return s;
  }
  throw std::logic_error("no spec for a service kind");
}

std::optional<ServiceKind> service_kind(std::string_view name) {
  for (const ServiceSpec& s : service_specs()) {
    if (s.name == name) return s.kind;
  }
  return std::nullopt;
}

std::string_view service_name(ServiceKind kind) {
  return spec_of(kind).name;
}

namespace {

std::unique_ptr<Service> make_real(ServiceKind kind, const ServiceContext& context) {
  switch (kind) {
    case ServiceKind::kGatewayGuardian:
      return std::make_unique<GatewayGuardian>(context);
    case ServiceKind::kHelloHelper:
      return std::make_unique<HelloHelper>(context);
    case ServiceKind::kGateExitGuardian:
      return std::make_unique<GateExitGuardian>(context);
    case ServiceKind::kInventoryIntel:
      return std::make_unique<InventoryIntel>(context);
    case ServiceKind::kFastlaneFinale:
      return std::make_unique<FastlaneFinale>(context);
    case ServiceKind::kLogisticsDesk:
      return std::make_unique<LogisticsDesk>(context);
  }
  throw std::logic_error("unknown service kind");
}

void seed(ServiceKind kind, Database& db, const StoreData& data) {
  switch (kind) {
    case ServiceKind::kHelloHelper:
      return CustomerStore(db).seed(data.customers);
    case ServiceKind::kInventoryIntel:
      return InventoryStore(db).seed(data.products);
    case ServiceKind::kFastlaneFinale: {
      std::vector<Product> priced;
      for (const Product& p : data.products) {
        if (std::find(data.without_price.begin(), data.without_price.end(), p.sku) ==
            data.without_price.end()) {
          priced.push_back(p);
        }
      }
      return PriceStore(db).seed(priced);
    }
    case ServiceKind::kGatewayGuardian:
    case ServiceKind::kGateExitGuardian:
    case ServiceKind::kLogisticsDesk:
      return;  // no master data
  }
}

}  // namespace

BuiltService build_service(ServiceKind kind, ServiceInputs inputs) {
  const ServiceSpec& spec = spec_of(kind);
  if (spec.uses_logistics_bus && inputs.context.logistics_bus == nullptr) {
    throw std::invalid_argument(std::string(spec.name) + " needs the logistics bus");
  }
  if (inputs.variant != nullptr) inputs.variant->prepare_database(kind, inputs.context.db);
  if (inputs.store_data != nullptr) seed(kind, inputs.context.db, *inputs.store_data);

  BuiltService built;
  const ServiceContext& context = inputs.context;
  Bus* logistics = context.logistics_bus;
  if (inputs.variant != nullptr) {
    built.bus_view = inputs.variant->wrap_bus(kind, context.bus);
    if (logistics != nullptr && logistics != &context.bus) {
      built.logistics_view = inputs.variant->wrap_bus(kind, *logistics);
    }
  }
  Bus& bus = built.bus_view ? *built.bus_view : context.bus;
  if (logistics == &context.bus) {
    logistics = &bus;  // one bus for both (the logistics desk): the same view
  } else if (built.logistics_view) {
    logistics = built.logistics_view.get();
  }
  ServiceContext seen = with_buses(context, bus, logistics);
  if (const ServiceVariant* variant = inputs.variant; variant != nullptr) {
    seen.make_relay = [variant, kind](const OutboxRelay::Parts& parts) {
      std::unique_ptr<OutboxRelay> relay = variant->make_relay(kind, parts);
      return relay ? std::move(relay) : std::make_unique<OutboxRelay>(parts);
    };
  }
  if (inputs.variant != nullptr) built.service = inputs.variant->make(kind, seen);
  if (!built.service) built.service = make_real(kind, seen);
  return built;
}

}  // namespace eventmart
