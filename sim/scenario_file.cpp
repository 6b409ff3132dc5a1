#include "sim/scenario_file.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <optional>

#include "core/json.h"
#include "core/limits.h"
#include "services/registry.h"
#include "sim/logistics.h"

namespace eventmart::sim {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::pair<memory::PacketKind, std::string_view> kLegs[] = {
    {memory::PacketKind::kPublish, "publish"},
    {memory::PacketKind::kPuback, "puback"},
    {memory::PacketKind::kDeliver, "deliver"},
    {memory::PacketKind::kDeliverAck, "deliver-ack"},
};
constexpr std::pair<PacketFault::Kind, std::string_view> kPacketFaults[] = {
    {PacketFault::Kind::kDrop, "drop"},
    {PacketFault::Kind::kDuplicate, "duplicate"},
    {PacketFault::Kind::kDelay, "delay"},
};
constexpr std::pair<ScheduledCrash::When, std::string_view> kCrashWhen[] = {
    {ScheduledCrash::When::kNow, "now"},
    {ScheduledCrash::When::kBeforeCommit, "before-commit"},
    {ScheduledCrash::When::kAfterCommit, "after-commit"},
};

template <typename E, std::size_t N>
std::string_view name_of(const std::pair<E, std::string_view> (&table)[N], E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "?";
}

template <typename E, std::size_t N>
std::string names_of(const std::pair<E, std::string_view> (&table)[N]) {
  std::string out;
  for (const auto& [v, name] : table) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

Json faults_json(const FaultOptions& f) {
  Json j = Json::object();
  j["qos"] = f.qos == Qos::kAtLeastOnce ? 1 : 0;
  for (const FaultKnob& knob : fault_knobs()) j[std::string(knob.key)] = knob.get(f);
  return j;
}

Json scenario_json(const Scenario& s) {
  Json store = Json::array();
  for (const Product& p : s.products) {
    store.push_back(Json{{"sku", p.sku},
                         {"name", p.name},
                         {"price_cents", p.price_cents},
                         {"stock", p.stock},
                         {"restock_threshold", p.restock_threshold},
                         {"restock_quantity", p.restock_quantity}});
  }
  Json visits = Json::array();
  for (const ScenarioVisit& v : s.visits) {
    Json wanted = Json::array();
    for (const LineItem& item : v.wanted) {
      wanted.push_back(Json{{"sku", item.sku}, {"quantity", item.quantity}});
    }
    visits.push_back(Json{{"customer", v.customer_id},
                          {"arrives_at_us", v.arrives_at_us},
                          {"shopping_us", v.shopping_us},
                          {"wanted", wanted}});
  }
  Json faults = Json::array();
  for (const PacketFault& f : s.packet_faults) {
    Json j{{"fault", name_of(kPacketFaults, f.kind)},
           {"bus", bus_name(f.bus)},
           {"leg", name_of(kLegs, f.leg)},
           {"client", f.client},
           {"nth", f.nth}};
    if (f.kind == PacketFault::Kind::kDelay) j["delay_us"] = f.delay_us;
    faults.push_back(j);
  }
  Json crashes = Json::array();
  for (const ScheduledCrash& c : s.crashes) {
    crashes.push_back(
        Json{{"service", c.service}, {"at_us", c.at_us}, {"when", name_of(kCrashWhen, c.when)}});
  }
  return Json{{"qos", s.qos == Qos::kAtLeastOnce ? 1 : 0},
              {"store", store},
              {"visits", visits},
              {"packet_faults", faults},
              {"crashes", crashes}};
}

// Reading: each accessor throws Bad with the key's path and what was wrong.
struct Bad : std::invalid_argument {
  explicit Bad(const std::string& why) : std::invalid_argument(why) {}
};

// Every key of `obj` is one of `known`.
void only_keys(const Json& obj, const std::string& path, std::initializer_list<const char*> known) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (const char* k : known) ok = ok || it.key() == k;
    if (!ok) throw Bad{path + "." + it.key() + ": not a key here"};
  }
}

const Json& member(const Json& obj, const std::string& path, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) throw Bad{path + (path.empty() ? "" : ".") + key + ": missing"};
  return *it;
}

std::int64_t integer(const Json& v, const std::string& path, std::int64_t lo, std::int64_t hi) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u <= static_cast<std::uint64_t>(hi) && static_cast<std::int64_t>(u) >= lo) {
      return static_cast<std::int64_t>(u);
    }
  } else if (v.is_number_integer()) {
    const auto x = v.get<std::int64_t>();
    if (x >= lo && x <= hi) return x;
  }
  throw Bad{path + ": must be an integer " + std::to_string(lo) + ".." + std::to_string(hi) +
            " (got " + v.dump() + ")"};
}

std::uint64_t unsigned_integer(const Json& v, const std::string& path) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
    throw Bad{path + ": must be an integer 0..2^64-1 (got " + v.dump() + ")"};
  }
  return v.get<std::uint64_t>();
}

double number(const Json& v, const std::string& path) {
  if (!v.is_number()) throw Bad{path + ": must be a number (got " + v.dump() + ")"};
  return v.get<double>();
}

std::string text(const Json& v, const std::string& path) {
  if (!v.is_string()) throw Bad{path + ": must be a string (got " + v.dump() + ")"};
  return v.get<std::string>();
}

template <typename E, std::size_t N>
E named(const std::pair<E, std::string_view> (&table)[N], const Json& v, const std::string& path) {
  const std::string name = text(v, path);
  for (const auto& [value, n] : table) {
    if (n == name) return value;
  }
  throw Bad{path + ": must be one of " + names_of(table) + " (got '" + name + "')"};
}

void read_faults(const Json& j, FaultOptions& f) {
  if (!j.is_object()) throw Bad{"faults: must be \"none\", \"swarm\" or an object"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string path = "faults." + it.key();
    if (it.key() == "qos") {
      f.qos = integer(it.value(), path, 0, 1) == 1 ? Qos::kAtLeastOnce : Qos::kAtMostOnce;
      continue;
    }
    const auto& knobs = fault_knobs();
    const auto knob = std::find_if(knobs.begin(), knobs.end(),
                                   [&](const FaultKnob& k) { return k.key == it.key(); });
    if (knob == knobs.end()) throw Bad{path + ": no such fault option"};
    const double value = number(it.value(), path);
    if (knob->option == SimOption::kDelayMean && !(value >= 0 && value <= knob->max)) {
      throw Bad{path + ": must be 0..60000"};
    }
    knob->set(f, value);
  }
}

// The clients with a link on `bus` that a scenario may name.
bool links(BusId bus, std::string_view client) {
  if (bus == BusId::kLogistics) return client == kInventoryIntel || client == kLogisticsClient;
  for (const ServiceSpec& spec : service_specs()) {
    if (spec.store_service && client == spec.name) return true;
  }
  return false;
}

Product read_product(const Json& p, const std::string& path, const std::vector<Product>& store) {
  if (!p.is_object()) throw Bad{path + ": must be an object"};
  only_keys(p, path,
            {"sku", "name", "price_cents", "stock", "restock_threshold", "restock_quantity"});
  Product product;
  product.sku = static_cast<Sku>(integer(member(p, path, "sku"), path + ".sku", 1, kMaxSku));
  if (auto n = p.find("name"); n != p.end()) product.name = text(*n, path + ".name");
  product.price_cents =
      integer(member(p, path, "price_cents"), path + ".price_cents", 0, 1'000'000'000);
  product.stock = integer(member(p, path, "stock"), path + ".stock", 0, kMaxDeliveryUnits);
  product.restock_threshold = integer(member(p, path, "restock_threshold"),
                                      path + ".restock_threshold", 0, kMaxDeliveryUnits);
  product.restock_quantity = integer(member(p, path, "restock_quantity"),
                                     path + ".restock_quantity", 1, kMaxDeliveryUnits);
  for (const Product& other : store) {
    if (other.sku == product.sku) {
      throw Bad{path + ".sku: " + std::to_string(product.sku) + " is in the store twice"};
    }
  }
  return product;
}

LineItem read_wanted(const Json& w, const std::string& wpath, const std::vector<Product>& store,
                     const std::vector<LineItem>& wanted_before) {
  if (!w.is_object()) throw Bad{wpath + ": must be an object"};
  only_keys(w, wpath, {"sku", "quantity"});
  const auto sku = static_cast<Sku>(integer(member(w, wpath, "sku"), wpath + ".sku", 1, kMaxSku));
  const bool stocked =
      std::any_of(store.begin(), store.end(), [&](const Product& p) { return p.sku == sku; });
  if (!stocked) {
    throw Bad{wpath + ".sku: " + std::to_string(sku) +
              " is not in the store (a visit takes what the shelves hold)"};
  }
  for (const LineItem& other : wanted_before) {
    if (other.sku == sku) throw Bad{wpath + ".sku: " + std::to_string(sku) + " wanted twice"};
  }
  return LineItem{sku, integer(member(w, wpath, "quantity"), wpath + ".quantity", 1, 1000)};
}

ScenarioVisit read_visit(const Json& v, const std::string& path,
                         const std::vector<Product>& store) {
  if (!v.is_object()) throw Bad{path + ": must be an object"};
  only_keys(v, path, {"customer", "arrives_at_us", "shopping_us", "wanted"});
  ScenarioVisit visit;
  visit.customer_id =
      static_cast<CustomerId>(integer(member(v, path, "customer"), path + ".customer", 1,
                                      static_cast<std::int64_t>(kMaxCustomerId)));
  visit.arrives_at_us =
      integer(member(v, path, "arrives_at_us"), path + ".arrives_at_us", 0, 168 * kHourUs);
  visit.shopping_us =
      integer(member(v, path, "shopping_us"), path + ".shopping_us", 0, 24 * kHourUs);
  const Json& wanted = member(v, path, "wanted");
  if (!wanted.is_array()) throw Bad{path + ".wanted: must be an array"};
  for (std::size_t k = 0; k < wanted.size(); ++k) {
    visit.wanted.push_back(
        read_wanted(wanted[k], path + ".wanted[" + std::to_string(k) + "]", store, visit.wanted));
  }
  return visit;
}

PacketFault read_packet_fault(const Json& f, const std::string& path) {
  if (!f.is_object()) throw Bad{path + ": must be an object"};
  only_keys(f, path, {"fault", "bus", "leg", "client", "nth", "delay_us"});
  PacketFault fault;
  fault.kind = named(kPacketFaults, member(f, path, "fault"), path + ".fault");
  const std::string bus = text(member(f, path, "bus"), path + ".bus");
  if (bus != "store" && bus != "logistics") {
    throw Bad{path + ".bus: must be store or logistics (got '" + bus + "')"};
  }
  fault.bus = bus == "store" ? BusId::kStore : BusId::kLogistics;
  fault.leg = named(kLegs, member(f, path, "leg"), path + ".leg");
  fault.client = text(member(f, path, "client"), path + ".client");
  if (!links(fault.bus, fault.client)) {
    throw Bad{path + ".client: '" + fault.client + "' has no link on the " + bus +
              " bus (store: the five services; logistics: inventory-intel, " +
              std::string(kLogisticsClient) + ")"};
  }
  fault.nth = unsigned_integer(member(f, path, "nth"), path + ".nth");
  if (fault.kind == PacketFault::Kind::kDelay) {
    fault.delay_us = integer(member(f, path, "delay_us"), path + ".delay_us", 0, 24 * kHourUs);
  } else if (f.contains("delay_us")) {
    throw Bad{path + ".delay_us: only a delay fault has one"};
  }
  return fault;
}

ScheduledCrash read_crash(const Json& c, const std::string& path) {
  if (!c.is_object()) throw Bad{path + ": must be an object"};
  only_keys(c, path, {"service", "at_us", "when"});
  ScheduledCrash crash;
  crash.service = text(member(c, path, "service"), path + ".service");
  if (!links(BusId::kStore, crash.service)) {
    throw Bad{path + ".service: '" + crash.service + "' is not one of the five services"};
  }
  crash.at_us = integer(member(c, path, "at_us"), path + ".at_us", 0, 168 * kHourUs);
  crash.when = named(kCrashWhen, member(c, path, "when"), path + ".when");
  return crash;
}

// The array `key` of `j` (absent: none, unless `required`), each element read by `read`;
// `what` says what it must be.
template <typename Read>
void read_array(const Json& j, const char* key, bool required, const char* what, Read read) {
  const auto it = j.find(key);
  if (it == j.end()) {
    if (required) member(j, "", key);  // throws: missing
    return;
  }
  if (!it->is_array()) throw Bad{std::string(key) + ": must be " + what};
  for (std::size_t i = 0; i < it->size(); ++i) {
    read((*it)[i], std::string(key) + "[" + std::to_string(i) + "]");
  }
}

std::shared_ptr<const Scenario> read_scenario(const Json& j) {
  auto s = std::make_shared<Scenario>();
  if (auto q = j.find("qos"); q != j.end()) {
    s->qos = integer(*q, "qos", 0, 1) == 1 ? Qos::kAtLeastOnce : Qos::kAtMostOnce;
  }
  read_array(j, "store", true, "an array of products", [&](const Json& p, const std::string& path) {
    s->products.push_back(read_product(p, path, s->products));
  });
  read_array(j, "visits", true, "an array", [&](const Json& v, const std::string& path) {
    s->visits.push_back(read_visit(v, path, s->products));
  });
  read_array(j, "packet_faults", false, "an array", [&](const Json& f, const std::string& path) {
    s->packet_faults.push_back(read_packet_fault(f, path));
  });
  read_array(j, "crashes", false, "an array", [&](const Json& c, const std::string& path) {
    s->crashes.push_back(read_crash(c, path));
  });
  return s;
}

}  // namespace

std::string to_json(const ScenarioFile& file) {
  const SimOptions& o = file.options;
  Json j = Json::object();
  j["eventmart_scenario"] = kScenarioFileVersion;
  if (!file.found.empty()) j["found"] = file.found;
  if (!file.violates.empty()) j["violates"] = file.violates;
  j["seed"] = o.seed;
  // A timeline of the explorer: the seed reseeded at these splitpoints (sim/recipe.h).
  if (!o.splits.empty()) j["recipe"] = to_string(Recipe{o.seed, o.splits});
  j["bug"] = bug_name(o.bug);
  // A swarm draws durability from the seed, so a swarm file does not name one.
  if (!file.swarm) j["durability"] = o.durability == Durability::kFull ? "full" : "normal";
  if (o.scenario) {
    const Json scenario = scenario_json(*o.scenario);
    for (auto it = scenario.begin(); it != scenario.end(); ++it) j[it.key()] = it.value();
  } else {
    j["customers"] = o.customers;
    j["products"] = o.products;
    j["hours"] = static_cast<double>(o.open_duration_us) / kHourUs;
    if (file.swarm) {
      j["faults"] = "swarm";
    } else if (!o.faults.any() && o.faults.qos == Qos::kAtLeastOnce) {
      j["faults"] = "none";
    } else {
      j["faults"] = faults_json(o.faults);
    }
  }
  // A swarm draws its knobs from the seed; otherwise the ones that are not production's.
  if (!file.swarm && o.knobs != Knobs{}) {
    Json knobs = Json::object();
    const Knobs defaults;
    for (const KnobInfo& k : knob_table()) {
      if (o.knobs.*k.field != defaults.*k.field) knobs[std::string(k.key)] = o.knobs.*k.field;
    }
    j["knobs"] = knobs;
  }
  return j.dump(2) + "\n";
}

Result<ScenarioFile> parse_scenario_file(std::string_view text_in) {
  // The bounded parser first: nesting deeper than json::kMaxDepth is refused before anything
  // recurses into it (a file nested a few thousand levels deep crashed this reader).
  if (auto bounded = json::parse(text_in); !bounded) {
    return Result<ScenarioFile>::error("not valid JSON: " + bounded.error());
  }
  const Json j = Json::parse(text_in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Result<ScenarioFile>::error("not valid JSON");
  if (!j.is_object()) return Result<ScenarioFile>::error("must be a JSON object");
  try {
    const std::int64_t version =
        integer(member(j, "", "eventmart_scenario"), "eventmart_scenario", 1, 1'000'000);
    if (version != kScenarioFileVersion) {
      throw Bad{"eventmart_scenario: version " + std::to_string(version) +
                " is not one this build reads (" + std::to_string(kScenarioFileVersion) + ")"};
    }
    ScenarioFile file;
    SimOptions& o = file.options;
    std::optional<std::uint64_t> recipe_seed;  // a recipe's own seed, if the file has one
    const bool explicit_scenario = j.contains("store") || j.contains("visits");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      const Json& v = it.value();
      if (key == "eventmart_scenario") continue;
      if (key == "found") {
        file.found = text(v, key);
      } else if (key == "violates") {
        if (!v.is_array()) throw Bad{"violates: must be an array of invariant names"};
        for (std::size_t i = 0; i < v.size(); ++i) {
          file.violates.push_back(text(v[i], "violates[" + std::to_string(i) + "]"));
        }
      } else if (key == "seed") {
        o.seed = unsigned_integer(v, key);
      } else if (!explicit_scenario && key == "recipe") {
        auto recipe = parse_recipe(text(v, key));
        if (!recipe) throw Bad{"recipe: " + recipe.error()};
        o.splits = recipe.value().splits;
        recipe_seed = recipe.value().seed;
      } else if (key == "bug") {
        const std::string name = text(v, key);
        const auto bug = parse_bug(name);
        if (!bug) throw Bad{"bug: no bug variant named '" + name + "'"};
        o.bug = *bug;
      } else if (key == "durability") {
        const std::string d = text(v, key);
        if (d != "full" && d != "normal") throw Bad{"durability: must be full or normal"};
        o.durability = d == "full" ? Durability::kFull : Durability::kNormal;
      } else if (key == "knobs") {
        if (!v.is_object()) throw Bad{"knobs: must be an object of knob values"};
        for (auto k = v.begin(); k != v.end(); ++k) {
          const KnobInfo* knob = find_knob(k.key());
          if (knob == nullptr) throw Bad{"knobs." + k.key() + ": no such knob"};
          o.knobs.*knob->field = integer(k.value(), "knobs." + k.key(), knob->min, knob->max);
        }
      } else if (explicit_scenario && (key == "qos" || key == "store" || key == "visits" ||
                                       key == "packet_faults" || key == "crashes")) {
        continue;  // read below
      } else if (!explicit_scenario && key == "customers") {
        o.customers = integer(v, key, 0, 10'000'000);
      } else if (!explicit_scenario && key == "products") {
        o.products = integer(v, key, 1, 1'000'000);
      } else if (!explicit_scenario && key == "hours") {
        const double h = number(v, key);
        if (!(h > 0) || h > 168) throw Bad{"hours: must be more than 0 and at most 168"};
        o.open_duration_us = std::llround(h * static_cast<double>(kHourUs));
      } else if (!explicit_scenario && key == "faults") {
        if (v.is_string() && v.get<std::string>() == "swarm") {
          file.swarm = true;
        } else if (!(v.is_string() && v.get<std::string>() == "none")) {
          read_faults(v, o.faults);
        }
      } else {
        throw Bad{key + ": not a key of " +
                  std::string(explicit_scenario ? "an explicit scenario" : "a seeded run") +
                  " file"};
      }
    }
    if (!j.contains("seed")) throw Bad{"seed: missing (every run has one)"};
    if (recipe_seed && *recipe_seed != o.seed) {
      throw Bad{"recipe: its seed is not the file's seed"};
    }
    if (file.swarm && j.contains("durability")) {
      throw Bad{"durability: a swarm run draws it from the seed; leave it out"};
    }
    if (file.swarm && j.contains("knobs")) {
      throw Bad{"knobs: a swarm run draws them from the seed; leave them out"};
    }
    if (!explicit_scenario && !j.contains("faults")) {
      throw Bad{"faults: missing (\"none\", \"swarm\" or an object of fault options)"};
    }
    if (!file.violates.empty() && o.bug == Bug::kNone) {
      throw Bad{"violates: only a bug-zoo run is expected to violate an invariant"};
    }
    if (explicit_scenario) o.scenario = read_scenario(j);
    return Result<ScenarioFile>::ok(std::move(file));
  } catch (const Bad& bad) {
    return Result<ScenarioFile>::error(bad.what());
  }
}

}  // namespace eventmart::sim
