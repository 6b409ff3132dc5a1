// The five services on a real mosquitto, end to end: scanner readings in, the welcome on the
// display topic, stock decremented, payment-due with the right total, a restock raised once;
// malformed payloads on every subscribed topic dead-lettered; the reference JSON wire format;
// the same workload on the memory transport and on MQTT ending in the same state; the auth
// config from deploy/; Fastlane Finale replicas behind a shared subscription.
#include "runtime/live_store.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include "apps/load.h"
#include "core/json.h"
#include "core/json_wire.h"
#include "core/wire.h"
#include "services/catalog.h"
#include "services/fastlane_finale.h"
#include "services/inventory_intel.h"
#include "services/scan_logic.h"
#include "sim/workload.h"
#include "testkit/broker_probe.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

using runtime::LiveOptions;
using runtime::LiveStore;

LiveOptions live_options(const Mosquitto& broker, const std::string& data_dir,
                         std::vector<std::string> services = runtime::all_service_names()) {
  LiveOptions o;
  o.connection.broker = broker.uri();
  o.data_dir = data_dir;
  o.services = std::move(services);
  return o;
}

const Product& product(Sku sku) {
  for (const Product& p : default_store().products) {
    if (p.sku == sku) return p;
  }
  throw std::logic_error("no sku " + std::to_string(sku));
}

std::optional<StockRecord> stock_in(const std::string& data_dir, Sku sku) {
  Database db(data_dir + "/inventory-intel.sqlite");
  return InventoryStore(db).find(sku);
}

// Starts the store and a probe recording `filters` together (a Paho client that connects
// while others of the process are connected waits for their network loop, about 2 s), and
// waits until all are connected and the probe's subscriptions are granted.
bool start_together(LiveStore& store, Probe& probe, const std::vector<std::string>& filters) {
  for (const std::string& f : filters) probe.record(f);
  store.start();
  probe.bus().start();
  return wait_until([&] { return store.all_ready(); }) && wait_until([&] {
           return probe.bus().stats().subscriptions_acknowledged >= filters.size();
         });
}

struct Payment {
  std::string event_id;
  std::string caused_by;
  PaymentDue due;
};

std::vector<Payment> payments(const Probe& probe, const Topics& topics,
                              WireFormat wire = WireFormat::kCapnp) {
  std::vector<Payment> out;
  for (const Message& m : probe.messages(topics.payment_due)) {
    auto envelope = decode_wire(wire, topics, m.topic, m.bytes);
    EXPECT_TRUE(envelope) << envelope.error();
    if (!envelope) continue;
    auto due = decode_payment_due(envelope.value().payload);
    EXPECT_TRUE(due) << due.error();
    if (due)
      out.push_back(Payment{envelope.value().event_id, envelope.value().caused_by, due.value()});
  }
  return out;
}

// The whole store under each protocol version the services speak: MQTT 5 (the default) and
// 3.1.1 (--mqtt-version 3.1.1, for brokers that speak only that).
class LiveStoreOnVersion : public ::testing::TestWithParam<mqtt::MqttVersion> {};

INSTANTIATE_TEST_SUITE_P(Mqtt, LiveStoreOnVersion,
                         ::testing::Values(mqtt::MqttVersion::k5, mqtt::MqttVersion::k311),
                         [](const ::testing::TestParamInfo<mqtt::MqttVersion>& info) {
                           return info.param == mqtt::MqttVersion::k5 ? "Version5" : "Version311";
                         });

TEST_P(LiveStoreOnVersion, ScansBecomeAWelcomeAPaymentAndOneRestockOverTheBroker) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  LiveOptions options = live_options(broker, data.file(""));
  options.connection.version = GetParam();
  LiveStore store(options, logger);
  mqtt::MqttOptions probe_options;
  probe_options.version = GetParam();
  Probe probe(broker.uri(), "probe", logger, topics, probe_options);
  ASSERT_TRUE(start_together(store, probe,
                             {topics.display_entrance, topics.payment_due, topics.restock_needed}));

  // A card at the entrance scanner's device topic, as a real scanner sends it.
  probe.publish(topics.entrance_scanner, "2 scan=entrance/1");
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.display_entrance) == 1; }));
  const auto welcome = json::parse(probe.messages(topics.display_entrance)[0].bytes);
  ASSERT_TRUE(welcome) << welcome.error();
  EXPECT_EQ(json::as_int64(*welcome.value().find("customer_id")), 2);
  EXPECT_NE(welcome.value().find("message")->text.find("Alan Turing"), std::string::npos);

  // Enough units of sku 1 to fall below its threshold, then one more departure of it.
  const Product& milk = product(1);
  const std::int64_t units = milk.stock - milk.restock_threshold + 1;
  probe.publish(topics.exit_gate, "departure 8 1:" + std::to_string(units) + ",7:2 scan=exit/1");
  probe.publish(topics.exit_gate, "8 1:1 scan=exit/2");
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.payment_due) == 2; }));
  const auto paid = payments(probe, topics);
  EXPECT_EQ(paid[0].due.customer_id, 8);
  EXPECT_EQ(paid[0].due.total_cents, units * milk.price_cents + 2 * product(7).price_cents);
  EXPECT_EQ(paid[1].due.total_cents, milk.price_cents);
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.restock_needed) >= 1; }));

  // A display that connects later still shows the last welcome: it is retained.
  Probe display(broker.uri(), "display", logger, topics, probe_options);
  display.record(topics.display_entrance);
  display.bus().start();
  ASSERT_TRUE(wait_until([&] { return display.count() == 1; }));
  EXPECT_TRUE(display.messages()[0].bytes.find("Alan Turing") != std::string::npos);

  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(probe.count(topics.restock_needed), 1u) << "one crossing, one restock";
  store.stop();
  const auto after = stock_in(data.file(""), 1);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->stock, milk.stock - units - 1);
  EXPECT_EQ(stock_in(data.file(""), 7)->stock, product(7).stock - 2);
  // mosquitto logs each client's protocol: p5 is MQTT 5, p2 is 3.1.1.
  const std::string protocol = GetParam() == mqtt::MqttVersion::k5 ? "(p5," : "(p2,";
  EXPECT_NE(broker.log().find("-fastlane-finale " + protocol), std::string::npos) << broker.log();
}

TEST(LiveStore, MalformedPayloadsOnEverySubscribedTopicReachTheDeadLetterTopics) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  LiveStore store(live_options(broker, data.file("")), logger);
  Probe probe(broker.uri(), "probe", logger);
  ASSERT_TRUE(start_together(
      store, probe, {topics.chain + "/" + topics.store + "/dead-letter/#", topics.payment_due}));

  // Every topic a service subscribes to, with the services that read it.
  const std::vector<std::pair<std::string, std::vector<std::string>>> inputs = {
      {topics.customer_arrival, {"hello-helper"}},
      {topics.customer_departure, {"inventory-intel", "fastlane-finale"}},
      {topics.stock_replenished, {"inventory-intel"}},
      {topics.entrance_scanner, {"gateway-guardian"}},
      {topics.exit_gate, {"gate-exit-guardian"}},
  };
  std::size_t expected = 0;
  for (const auto& [topic, readers] : inputs) {
    probe.publish(topic, std::string("\x01garbage\xff on ") + topic);
    expected += readers.size();
  }
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.chain) >= expected; }))
      << probe.count(topics.chain) << " of " << expected << " dead letters";
  std::set<std::pair<std::string, std::string>> seen;  // (service, topic)
  for (const Message& m : probe.messages(topics.chain + "/" + topics.store + "/dead-letter/")) {
    const auto doc = json::parse(m.bytes);
    ASSERT_TRUE(doc) << m.bytes;
    const std::string service = doc.value().find("service")->text;
    EXPECT_EQ(m.topic, topics.dead_letter(service));
    EXPECT_FALSE(doc.value().find("reason")->text.empty());
    EXPECT_NE(doc.value().find("payload_base64"), nullptr);
    seen.insert({service, doc.value().find("topic")->text});
  }
  for (const auto& [topic, readers] : inputs) {
    for (const std::string& reader : readers) {
      EXPECT_TRUE(seen.count({reader, topic})) << reader << " did not dead-letter " << topic;
    }
  }
  // The services are still running.
  probe.publish(topics.exit_gate, "departure 3 5:1 scan=after-garbage");
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.payment_due) == 1; }));
  EXPECT_EQ(payments(probe, topics)[0].due.total_cents, product(5).price_cents);
}

// A reading the guardian refused (an unreadable card) was counted twice: once by the guardian,
// once more when it was dead-lettered. One reading, one dead letter, one count.
TEST(LiveStore, ARefusedReadingIsOneDeadLetterCountedOnce) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  runtime::LiveOptions o = live_options(broker, data.file(""));
  o.services = {"gateway-guardian"};
  LiveStore store(o, logger);
  Probe probe(broker.uri(), "probe", logger);
  ASSERT_TRUE(start_together(store, probe, {topics.dead_letter("gateway-guardian")}));
  probe.publish(topics.entrance_scanner, "arrival abc scan=unreadable-1");
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.dead_letter("gateway-guardian")) == 1; }));
  EXPECT_EQ(store.metrics().at(0).events.rejected, 1u);
}

// The operator's limits (serve --max-*) reach the services, not only the transport: the exit
// gate's guardian refuses a bag over --max-basket-lines as it reads it, and publishes nothing.
TEST(LiveStore, TheOperatorsLimitsReachTheGuardiansThatReadTheDevices) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  runtime::LiveOptions o = live_options(broker, data.file(""));
  o.services = {"gate-exit-guardian"};
  o.limits.max_basket_lines = 2;
  LiveStore store(o, logger);
  Probe probe(broker.uri(), "probe", logger);
  ASSERT_TRUE(start_together(
      store, probe, {topics.dead_letter("gate-exit-guardian"), topics.customer_departure}));
  probe.publish(topics.exit_gate, "departure 3 1:1,2:1,3:1 scan=three-lines");
  ASSERT_TRUE(
      wait_until([&] { return probe.count(topics.dead_letter("gate-exit-guardian")) == 1; }));
  probe.publish(topics.exit_gate, "departure 3 1:1,2:1 scan=two-lines");
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.customer_departure) == 1; }))
      << "a bag within the limit goes on";
  EXPECT_EQ(probe.count(topics.customer_departure), 1u) << "the bag over the limit went on too";
}

TEST(LiveStore, ConsumesTheReferenceJsonMessagesAndWritesThem) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  LiveOptions options = live_options(broker, data.file(""));
  options.connection.wire = WireFormat::kJson;
  LiveStore store(options, logger);
  Probe probe(broker.uri(), "probe", logger);
  ASSERT_TRUE(start_together(
      store, probe, {topics.display_entrance, topics.payment_due, topics.customer_arrival}));

  // Exactly the reference implementation's messages.
  probe.publish(topics.customer_arrival,
                R"({"timestamp": "2026-11-26T03:11:26.745261", "customer_id": 2})");
  probe.publish(topics.customer_departure,
                R"({"timestamp": "2026-11-26T03:12:01.000001", "customer_id": 8, )"
                R"("product_ids": [59, 52, 47, 11, 68, 68]})");
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.payment_due) == 1; }));
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.display_entrance) == 1; }));
  EXPECT_NE(probe.messages(topics.display_entrance)[0].bytes.find("Alan Turing"),
            std::string::npos);

  // eventmart's payment-due reads as the reference format: timestamp, customer_id, amount.
  const std::string payment_json = probe.messages(topics.payment_due)[0].bytes;
  const auto payment = json::parse(payment_json);
  ASSERT_TRUE(payment) << payment_json;
  const std::int64_t expected_cents = product(59).price_cents + product(52).price_cents +
                                      product(47).price_cents + product(11).price_cents +
                                      2 * product(68).price_cents;
  EXPECT_EQ(json::as_int64(*payment.value().find("customer_id")), 8);
  EXPECT_EQ(json::as_cents(*payment.value().find("amount")), expected_cents);
  const std::string amount_text = payment.value().find("amount")->text;
  EXPECT_EQ(amount_text.size() - amount_text.find('.'), 3u) << "two decimals: " << amount_text;
  EXPECT_TRUE(json_wire::parse_timestamp(payment.value().find("timestamp")->text).has_value());

  // eventmart's own arrival (from a scan) reads as the reference format too.
  probe.publish(topics.entrance_scanner, "5 scan=json/1");
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.customer_arrival) == 2; }));
  const auto arrival = json::parse(probe.messages(topics.customer_arrival)[1].bytes);
  ASSERT_TRUE(arrival);
  EXPECT_EQ(json::as_int64(*arrival.value().find("customer_id")), 5);
  EXPECT_TRUE(json_wire::parse_timestamp(arrival.value().find("timestamp")->text).has_value());
}

TEST(LiveStore, TheSameDeparturesOnMemoryAndOnMqttEndInTheSameStockAndPayments) {
  // The workload: 120 departures from the simulator's basket picker.
  std::vector<std::pair<std::string, CustomerDeparted>> departures;
  {
    std::vector<Sku> skus;
    sim::Shelves shelves;
    for (const Product& p : default_store().products) {
      skus.push_back(p.sku);
      shelves[p.sku] = p.stock;
    }
    sim::WorkloadOptions wo;
    wo.customers = 120;
    wo.closes_at_us = sim::kHourUs;
    sim::Workload workload(wo, Rng(7), {1, 2, 3, 4, 5}, skus);
    for (const sim::Visit& v : workload.plan_visits()) {
      auto d = departure_from_lines(v.customer_id, lines_of_units(workload.pick_basket(shelves)));
      departures.emplace_back("diff-" + std::to_string(v.number), d.value());
    }
  }
  using Ledger = std::map<std::string, std::int64_t>;  // departure id -> total
  auto ledger_of = [](Database& db) {
    Ledger ledger;
    Statement s = db.prepare("SELECT departure_event_id, total_cents FROM payments");
    while (s.step()) ledger[s.column_text(0)] = s.column_int64(1);
    return ledger;
  };
  auto stock_of = [](Database& db) {
    std::map<Sku, StockRecord> stock;
    for (const auto& [sku, record] : InventoryStore(db).all()) stock[sku] = record;
    return stock;
  };

  // Memory transport, virtual time.
  Ledger memory_ledger;
  std::map<Sku, StockRecord> memory_stock;
  {
    sim::Scheduler scheduler(sim::kStoreOpensAtUs);
    memory::MemoryBroker broker(scheduler, {100});
    memory::MemoryBroker logistics(scheduler, {100});
    auto inventory_bus = broker.connect("inventory-intel");
    auto inventory_logistics = logistics.connect("inventory-intel");
    auto fastlane_bus = broker.connect("fastlane-finale");
    auto probe = broker.connect("probe");
    Database inventory_db(":memory:");
    Database fastlane_db(":memory:");
    const Topics topics;
    NullLogger null;
    InventoryIntel inventory(ServiceContext{*inventory_bus, inventory_logistics.get(), scheduler,
                                            inventory_db, topics, null});
    FastlaneFinale fastlane(
        ServiceContext{*fastlane_bus, nullptr, scheduler, fastlane_db, topics, null});
    inventory.store().seed(default_store().products);
    fastlane.store().seed(default_store().products);
    inventory.start();
    fastlane.start();
    scheduler.run_until_idle();
    for (const auto& [id, d] : departures) {
      probe->publish(topics.customer_departure,
                     make_envelope(EventType::kCustomerDeparted, id, "probe", 1, "", d),
                     Qos::kAtLeastOnce, nullptr);
    }
    scheduler.run_until_idle();
    memory_ledger = ledger_of(fastlane_db);
    memory_stock = stock_of(inventory_db);
  }

  // Real MQTT, wall time.
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  {
    LiveStore store(live_options(broker, data.file(""), {"inventory-intel", "fastlane-finale"}),
                    logger);
    Probe probe(broker.uri(), "probe", logger);
    ASSERT_TRUE(start_together(store, probe, {topics.payment_due}));
    for (const auto& [id, d] : departures) {
      probe.bus().publish(
          topics.customer_departure,
          make_envelope(EventType::kCustomerDeparted, id, "probe", mqtt::wall_clock_us(), "", d),
          Qos::kAtLeastOnce, nullptr);
    }
    ASSERT_TRUE(wait_until([&] { return probe.count() == departures.size(); }));
    // Inventory commits independently of Fastlane: wait until it consumed them all.
    ASSERT_TRUE(wait_until([&] {
      std::uint64_t consumed = 0;
      store.with_service("inventory-intel", [&](Service& s) { consumed = s.stats().consumed; });
      return consumed == departures.size();
    }));
    store.stop();
  }
  Database inventory_db(data.file("inventory-intel.sqlite"));
  Database fastlane_db(data.file("fastlane-finale.sqlite"));
  EXPECT_EQ(ledger_of(fastlane_db), memory_ledger);
  EXPECT_EQ(stock_of(inventory_db), memory_stock);
  EXPECT_EQ(memory_ledger.size(), departures.size());
}

TEST(LiveStore, TheDeployAuthConfigRefusesAnonymousClientsAndAdmitsServices) {
  Mosquitto::Options auth;
  auth.base_config = std::string(EVENTMART_SOURCE_DIR) + "/deploy/mosquitto.conf";
  auth.acl_file = std::string(EVENTMART_SOURCE_DIR) + "/deploy/eventmart.acl";
  for (const std::string& s : runtime::all_service_names()) auth.users.emplace_back(s, s + "-pw");
  auth.users.emplace_back("load", "load-pw");
  Mosquitto broker(auth);
  SharedLogger logger;
  const Topics topics;

  Probe anonymous(broker.uri(), "anonymous", logger);
  anonymous.bus().start();
  mqtt::MqttOptions wrong;
  wrong.username = "fastlane-finale";
  wrong.password = "not-the-password";
  Probe impostor(broker.uri(), "impostor", logger, topics, wrong);
  impostor.bus().start();

  // Each service with its own user; they can do their work under the ACL.
  TempDir data;
  std::vector<std::unique_ptr<LiveStore>> stores;
  for (const std::string& s : runtime::all_service_names()) {
    LiveOptions o = live_options(broker, data.file(""), {s});
    o.connection.username = s;
    o.connection.password = s + "-pw";
    stores.push_back(std::make_unique<LiveStore>(o, logger));
    stores.back()->start();
  }
  for (auto& s : stores) ASSERT_TRUE(wait_until([&] { return s->all_ready(); }));
  apps::LoadOptions load;
  load.connection.broker = broker.uri();
  load.connection.username = "load";
  load.connection.password = "load-pw";
  load.customers = 30;
  load.rate = 0;
  load.timeout_s = 10;
  const apps::LoadReport report = apps::run_load(load, logger);
  EXPECT_TRUE(report.ok()) << report.to_text();
  EXPECT_EQ(report.payments_received, 30);

  EXPECT_FALSE(anonymous.bus().connected());
  EXPECT_GE(anonymous.bus().stats().connect_failures, 1u);
  EXPECT_FALSE(impostor.bus().connected());
  EXPECT_GE(impostor.bus().stats().connect_failures, 1u);
  for (auto& s : stores) s->stop();
}

// deploy/eventmart.acl without the lines that contain `without`.
std::string deploy_acl_without(const std::string& without) {
  std::ifstream in(std::string(EVENTMART_SOURCE_DIR) + "/deploy/eventmart.acl");
  std::string out, line;
  while (std::getline(in, line)) {
    if (without.empty() || line.find(without) == std::string::npos) out += line + "\n";
  }
  return out;
}

// Issue 15's "nothing lost": under MQTT 5, payments the broker's ACL refuses (Fastlane
// Finale's user may not write payment-due) stay owed in its outbox, each refusal logged; once
// the ACL allows them, every one arrives, once.
TEST(LiveStore, UnderMqtt5PaymentsTheAclRefusesStayOwedAndArriveOnceItAllowsThem) {
  TempDir data;
  const std::string acl = data.file("eventmart.acl");
  std::ofstream(acl) << deploy_acl_without("topic write +/+/payment-due");
  Mosquitto::Options auth;
  auth.acl_file = acl;
  auth.users = {{"fastlane-finale", "ff-pw"}, {"load", "load-pw"}};
  Mosquitto broker(auth);
  SharedLogger logger;
  const Topics topics;
  LiveOptions o = live_options(broker, data.file(""), {"fastlane-finale"});
  o.connection.username = "fastlane-finale";
  o.connection.password = "ff-pw";
  LiveStore store(o, logger);
  mqtt::MqttOptions as_load;
  as_load.username = "load";
  as_load.password = "load-pw";
  Probe probe(broker.uri(), "probe", logger, topics, as_load);
  ASSERT_TRUE(start_together(store, probe, {topics.payment_due}));

  constexpr int kDepartures = 20;
  std::int64_t expected_cents = 0;
  for (int i = 0; i < kDepartures; ++i) {
    const CustomerDeparted d{static_cast<CustomerId>(1 + i % 5), {LineItem{1 + i % 3, 1 + i % 2}}};
    expected_cents += product(d.items[0].sku).price_cents * d.items[0].quantity;
    probe.bus().publish(topics.customer_departure,
                        make_envelope(EventType::kCustomerDeparted, "acl-" + std::to_string(i),
                                      "probe", mqtt::wall_clock_us(), "", d),
                        Qos::kAtLeastOnce, nullptr);
  }
  const auto fastlane = [&] {
    for (const runtime::ServiceMetrics& m : store.metrics()) {
      if (m.service == "fastlane-finale") return m;
    }
    throw std::logic_error("no fastlane-finale");
  };
  ASSERT_TRUE(wait_until([&] {
    const auto m = fastlane();
    return m.events.consumed == kDepartures && m.bus.refused >= kDepartures;
  })) << "each payment is refused at least once";
  EXPECT_EQ(fastlane().outbox, kDepartures) << "every refused payment stays owed";
  EXPECT_EQ(probe.count(topics.payment_due), 0u);
  EXPECT_TRUE(logger.contains("the broker refused the publish to '" + topics.payment_due +
                              "': not authorized (0x87) (check the ACL for user "
                              "'fastlane-finale')"));

  std::ofstream(acl) << deploy_acl_without("");
  broker.reload();
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.payment_due) >= kDepartures; },
                         std::chrono::seconds(20)));
  ASSERT_TRUE(wait_until([&] { return fastlane().outbox == 0; }, std::chrono::seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Delivery is at least once: the relay resends every row after a refused one (go-back-N),
  // so a payment may arrive in copies, under its one event id (consumers drop the copies).
  // What must hold: every departure paid, by exactly one payment event, with its total.
  std::map<std::string, std::set<std::string>> payment_events;  // departure -> payment ids
  std::map<std::string, std::int64_t> cents_of;                 // payment id -> total
  for (const Payment& p : payments(probe, topics)) {
    payment_events[p.caused_by].insert(p.event_id);
    cents_of[p.event_id] = p.due.total_cents;
  }
  EXPECT_EQ(payment_events.size(), static_cast<std::size_t>(kDepartures)) << "none lost";
  for (const auto& [departure, ids] : payment_events) {
    EXPECT_EQ(ids.size(), 1u) << departure << " is charged once";
  }
  std::int64_t cents = 0;
  for (const auto& [id, total] : cents_of) cents += total;
  EXPECT_EQ(cents, expected_cents);
  store.stop();
}

TEST(LiveStore, TheLogisticsDeskDeliversEachRestockOnceAndTheShelfRecovers) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  LiveStore store(live_options(broker, data.file(""), {"inventory-intel", "logistics-desk"}),
                  logger);
  Probe probe(broker.uri(), "probe", logger);
  ASSERT_TRUE(start_together(store, probe, {topics.restock_needed, topics.stock_replenished}));
  const Product& milk = product(1);
  const std::int64_t units = milk.stock - milk.restock_threshold + 1;
  probe.bus().publish(topics.customer_departure,
                      make_envelope(EventType::kCustomerDeparted, "restock-1", "probe",
                                    mqtt::wall_clock_us(), "", CustomerDeparted{4, {{1, units}}}),
                      Qos::kAtLeastOnce, nullptr);
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.stock_replenished) == 1; }));
  const auto delivered = decode_wire(WireFormat::kCapnp, topics, topics.stock_replenished,
                                     probe.messages(topics.stock_replenished)[0].bytes);
  ASSERT_TRUE(delivered);
  EXPECT_EQ(decode_stock_replenished(delivered.value().payload).value().quantity,
            milk.restock_quantity);
  ASSERT_TRUE(wait_until([&] {
    std::int64_t stock = -1;
    store.with_service("inventory-intel", [&](Service& s) {
      stock = static_cast<InventoryIntel&>(s).store().find(1)->stock;
    });
    return stock == milk.stock - units + milk.restock_quantity;
  }));
  // The same restock request again (a redelivery): no second delivery.
  probe.publish(topics.restock_needed, probe.messages(topics.restock_needed)[0].bytes);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(probe.count(topics.stock_replenished), 1u);
}

TEST(LiveStore, WorksOverTlsAndRefusesABrokerItCannotVerify) {
  Mosquitto::Options tls;
  tls.tls = true;
  Mosquitto broker(tls);
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  LiveOptions o = live_options(broker, data.file(""), {"fastlane-finale"});
  o.connection.ca_file = broker.ca_file();
  LiveStore store(o, logger);
  mqtt::MqttOptions trusting;
  trusting.ca_file = broker.ca_file();
  Probe probe(broker.uri(), "probe", logger, topics, trusting);
  ASSERT_TRUE(start_together(store, probe, {topics.payment_due}));
  probe.bus().publish(topics.customer_departure,
                      make_envelope(EventType::kCustomerDeparted, "tls-1", "probe",
                                    mqtt::wall_clock_us(), "", CustomerDeparted{4, {{9, 3}}}),
                      Qos::kAtLeastOnce, nullptr);
  ASSERT_TRUE(wait_until([&] { return probe.count(topics.payment_due) == 1; }));
  EXPECT_EQ(payments(probe, topics)[0].due.total_cents, 3 * product(9).price_cents);

  // Without the CA, the broker's certificate does not verify: no connection.
  Probe stranger(broker.uri(), "stranger", logger);
  stranger.bus().start();
  ASSERT_TRUE(wait_until([&] { return stranger.bus().stats().connect_failures >= 1; }));
  EXPECT_FALSE(stranger.bus().connected());
  store.stop();
}

TEST(LiveStore, FastlaneReplicasBehindASharedSubscriptionPayEachDepartureOnce) {
  Mosquitto broker;
  TempDir data;
  SharedLogger logger;
  const Topics topics;
  std::vector<std::unique_ptr<LiveStore>> replicas;
  for (const char* name : {"a", "b"}) {
    LiveOptions o = live_options(broker, data.file(""), {"fastlane-finale"});
    o.instance = name;
    replicas.push_back(std::make_unique<LiveStore>(o, logger));
    replicas.back()->start();
  }
  for (auto& r : replicas) ASSERT_TRUE(wait_until([&] { return r->all_ready(); }));
  apps::LoadOptions load;
  load.connection.broker = broker.uri();
  load.customers = 200;
  load.rate = 0;
  load.send_arrivals = false;
  load.timeout_s = 15;
  const apps::LoadReport report = apps::run_load(load, logger);
  EXPECT_TRUE(report.ok()) << report.to_text();
  EXPECT_EQ(report.payments_received, 200);
  EXPECT_EQ(report.payment_messages, 200) << "no departure was priced by both replicas";
  std::vector<std::uint64_t> consumed;
  for (auto& r : replicas) {
    r->with_service("fastlane-finale", [&](Service& s) { consumed.push_back(s.stats().consumed); });
  }
  EXPECT_EQ(consumed[0] + consumed[1], 200u);
  EXPECT_GT(consumed[0], 0u);
  EXPECT_GT(consumed[1], 0u);
}

}  // namespace
}  // namespace eventmart::test
