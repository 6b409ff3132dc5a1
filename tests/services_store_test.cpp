// The services' SQLite layer on real database files: schema on open, persistence across
// reopen, inbox deduplication, the outbox and its relay.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdio>
#include <functional>
#include <set>

#include "services/fastlane_finale.h"
#include "services/hello_helper.h"
#include "services/inventory_intel.h"
#include "services/journal.h"
#include "services/outbox_relay.h"
#include "services/sqlite.h"
#include "sim/disk.h"
#include "test_support.h"

namespace eventmart::test {
namespace {

// Queues one outbox row the way a service does: inside a transaction (the journal checks it),
// its own committed one unless the test holds one open.
std::int64_t add_row(Database& db, Journal& journal, Channel channel, const std::string& topic,
                     const Envelope& envelope) {
  if (db.in_transaction()) return journal.add_outbox(channel, topic, envelope);
  Transaction txn(db);
  const std::int64_t seq = journal.add_outbox(channel, topic, envelope);
  txn.commit();
  return seq;
}

Product product(Sku sku, std::int64_t price, std::int64_t stock, std::int64_t threshold,
                std::int64_t quantity) {
  return Product{sku, "Product " + std::to_string(sku), price, stock, threshold, quantity};
}

TEST(SqliteStores, SchemaIsCreatedOnOpenAndStateSurvivesReopening) {
  TempDir dir;
  const std::string path = dir.file("inventory.db");
  {
    Database db(path);
    InventoryStore store(db);
    store.seed({product(1, 100, 50, 10, 40)});
    store.update(1, StockRecord{7, 2, 10, 40, false});
  }
  Database db(path);
  InventoryStore store(db);
  store.seed({product(1, 100, 50, 10, 40)});  // seeding again keeps existing stock
  EXPECT_EQ(store.find(1), (StockRecord{7, 2, 10, 40, false}));
  EXPECT_FALSE(store.find(2).has_value());
}

TEST(SqliteStores, OpeningAnUnwritablePathIsAClearError) {
  try {
    Database db("/nonexistent-dir/x/y.db");
    FAIL() << "expected SqliteError";
  } catch (const SqliteError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x/y.db"), std::string::npos);
  }
}

TEST(SqliteStores, ATransactionThatIsNotCommittedLeavesNoTrace) {
  TempDir dir;
  Database db(dir.file("t.db"));
  Journal journal(db);
  {
    Transaction txn(db);
    EXPECT_EQ(journal.record_inbox("e1", 0), Admission::kNew);
    add_row(db, journal, Channel::kStore, "t",
            Envelope{"out-1", EventType::kPaymentDue, "s", 0, "e1", "x"});
    // no commit: a crash here
  }
  EXPECT_FALSE(journal.in_inbox("e1"));
  EXPECT_EQ(journal.outbox_size(), 0);
}

TEST(Journal, TheInboxRecognisesAnEventIdItHasSeen) {
  Database db(":memory:");
  Journal journal(db);
  Transaction txn(db);
  EXPECT_EQ(journal.record_inbox("e1", 1), Admission::kNew);
  EXPECT_EQ(journal.record_inbox("e1", 2), Admission::kDuplicate);
  EXPECT_EQ(journal.record_inbox("e2", 3), Admission::kNew);
  txn.commit();
  EXPECT_EQ(journal.inbox_size(), 2);
}

TEST(Journal, AnIdSeenBeforeWithOtherContentIsAConflictNotADuplicate) {
  Database db(":memory:");
  Journal journal(db);
  Transaction txn(db);
  EXPECT_EQ(journal.record_inbox("e1", 1, 111), Admission::kNew);
  EXPECT_EQ(journal.record_inbox("e1", 2, 111), Admission::kDuplicate);
  EXPECT_EQ(journal.record_inbox("e1", 3, 222), Admission::kConflict);
  EXPECT_EQ(journal.record_inbox("e1", 4, 0), Admission::kDuplicate);  // content not known
  EXPECT_EQ(journal.record_inbox("e2", 5), Admission::kNew);           // recorded without
  EXPECT_EQ(journal.record_inbox("e2", 6, 333), Admission::kDuplicate);
  txn.commit();
}

TEST(Journal, AnInboxWrittenBeforeContentHashesExistedIsUpgradedInPlace) {
  const std::string path = ::testing::TempDir() + "/journal-upgrade.sqlite";
  std::remove(path.c_str());
  {
    Database db(path);
    db.exec(
        "CREATE TABLE inbox(event_id TEXT PRIMARY KEY, received_at_us INTEGER NOT NULL) "
        "WITHOUT ROWID; INSERT INTO inbox VALUES('old', 1)");
  }
  Database db(path);
  Journal journal(db);
  Transaction txn(db);
  EXPECT_EQ(journal.record_inbox("old", 2, 123), Admission::kDuplicate);
  EXPECT_EQ(journal.record_inbox("new", 3, 123), Admission::kNew);
  EXPECT_EQ(journal.record_inbox("new", 4, 456), Admission::kConflict);
  txn.commit();
}

TEST(Journal, OutboxRowsComeBackInOrderWithTheWholeEnvelope) {
  Database db(":memory:");
  Journal journal(db);
  const Envelope a{"a",       EventType::kPaymentDue, "fastlane-finale", 10,
                   "cause-a", std::string("\0\1", 2)};
  const Envelope b{"b", EventType::kRestockNeeded, "inventory-intel", 20, "cause-b", ""};
  add_row(db, journal, Channel::kStore, "store/t", a);
  add_row(db, journal, Channel::kLogistics, "logistics/t", b);
  auto rows = journal.pending_outbox(0, 10);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].envelope, a);
  EXPECT_EQ(rows[0].channel, Channel::kStore);
  EXPECT_EQ(rows[1].envelope, b);
  EXPECT_EQ(rows[1].channel, Channel::kLogistics);
  EXPECT_EQ(journal.pending_outbox(rows[0].seq, 10).size(), 1u);
  journal.mark_sent_through(rows[0].seq);
  EXPECT_EQ(journal.outbox_size(), 1);
}

// The relay never looks below the last row it handed over, so a row written after every
// earlier row was confirmed and deleted (the table empty again) must still get a higher seq;
// so must one written after a transaction that took a seq rolled back.
TEST(Journal, ASeqIsNeverGivenTwiceInALifeEvenAfterTheRowsBelowItWereDeleted) {
  Database db(":memory:");
  Journal journal(db);
  const Envelope e{"a", EventType::kPaymentDue, "s", 0, "", ""};
  const std::int64_t first = add_row(db, journal, Channel::kStore, "t", e);
  const std::int64_t second = add_row(db, journal, Channel::kStore, "t", e);
  journal.mark_sent_through(second);
  ASSERT_EQ(journal.outbox_size(), 0);
  const std::int64_t third = add_row(db, journal, Channel::kStore, "t", e);
  EXPECT_GT(second, first);
  EXPECT_GT(third, second);
  {
    Transaction txn(db);
    add_row(db, journal, Channel::kStore, "t", e);
  }  // rolled back
  const std::int64_t fifth = add_row(db, journal, Channel::kStore, "t", e);
  EXPECT_GT(fifth, third);
  ASSERT_EQ(journal.pending_outbox(third - 1, 10).size(), 2u);
  EXPECT_EQ(journal.pending_outbox(third, 10).front().seq, fifth);
}

// A restarted service's journal reads rows an earlier life left: its own rows come above
// them even once those are confirmed and deleted.
TEST(Journal, ANewLifesRowsComeAboveTheRowsItReadFromBefore) {
  Database db(":memory:");
  std::int64_t left = 0;
  {
    Journal before(db);
    add_row(db, before, Channel::kStore, "t",
            Envelope{"a", EventType::kPaymentDue, "s", 0, "", ""});
    left = add_row(db, before, Channel::kStore, "t",
                   Envelope{"b", EventType::kPaymentDue, "s", 0, "", ""});
    before.mark_sent_through(left - 1);
  }
  Journal after(db);
  const auto rows = after.pending_outbox(0, 10);
  ASSERT_EQ(rows.size(), 1u);
  after.mark_sent_through(rows.back().seq);  // handed over, confirmed, deleted
  EXPECT_GT(add_row(db, after, Channel::kStore, "t",
                    Envelope{"c", EventType::kPaymentDue, "s", 0, "", ""}),
            left);
}

// Statements given back to their connection are reused: clean (no bindings left) and
// working; exec_once runs a text once per connection.
TEST(SqliteStores, AReusedStatementStartsCleanAndExecOnceRunsOnce) {
  Database db(":memory:");
  db.exec_once("CREATE TABLE t(a INTEGER, b TEXT)");
  db.exec_once("CREATE TABLE t(a INTEGER, b TEXT)");  // would fail if it ran again
  {
    Statement insert = db.prepare("INSERT INTO t(a, b) VALUES(?, ?)");
    insert.bind(1, std::int64_t{1}).bind(2, std::string_view("one")).run();
    insert.bind(1, std::int64_t{2});  // left bound when the statement goes back
  }
  Statement again = db.prepare("INSERT INTO t(a, b) VALUES(?, ?)");
  again.run();  // nothing bound: NULLs, not the 2 left behind
  Statement other = db.prepare("INSERT INTO t(a, b) VALUES(?, ?)");  // a second one compiles
  other.bind(1, std::int64_t{3}).bind(2, std::string_view("three")).run();
  Statement count = db.prepare("SELECT count(*), count(a), sum(a) FROM t");
  ASSERT_TRUE(count.step());
  EXPECT_EQ(count.column_int64(0), 3);
  EXPECT_EQ(count.column_int64(1), 2);
  EXPECT_EQ(count.column_int64(2), 4);
}

// A step that fails leaves nothing bound: a parameter the next use does not bind is NULL,
// as after a run() (record_inbox relies on it for an unknown content hash).
TEST(SqliteStores, AFailedStepLeavesNoBindingForTheNextUse) {
  Database db(":memory:");
  db.exec("CREATE TABLE t(a INTEGER UNIQUE, b INTEGER)");
  Statement insert = db.prepare("INSERT INTO t(a, b) VALUES(?, ?)");
  insert.bind(1, std::int64_t{1}).bind(2, std::int64_t{7}).run();
  insert.bind(1, std::int64_t{1}).bind(2, std::int64_t{8});
  EXPECT_THROW(insert.run(), SqliteError);  // a unique constraint
  insert.bind(1, std::int64_t{2}).run();
  Statement b = db.prepare("SELECT b IS NULL FROM t WHERE a = 2");
  ASSERT_TRUE(b.step());
  EXPECT_EQ(b.column_int64(0), 1);
}

class Relay : public BusFixture {};

TEST_F(Relay, PublishesPendingRowsAndDeletesEachWhenTheBrokerConfirms) {
  Database db(":memory:");
  Journal journal(db);
  auto bus = store_broker.connect("svc");
  std::vector<Received> got;
  record(*probe, "#", got);
  OutboxRelay relay(journal, scheduler, *bus, nullptr);
  add_row(db, journal, Channel::kStore, "store/t",
          Envelope{"a", EventType::kPaymentDue, "s", 0, "", ""});
  add_row(db, journal, Channel::kStore, "store/t",
          Envelope{"b", EventType::kPaymentDue, "s", 0, "", ""});
  relay.pump();
  relay.pump();  // nothing new: not handed twice
  EXPECT_EQ(relay.published(), 2u);
  EXPECT_EQ(journal.outbox_size(), 2);  // not yet confirmed
  scheduler.run_until_idle();
  EXPECT_EQ(journal.outbox_size(), 0);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].envelope.event_id, "a");
  EXPECT_EQ(got[1].envelope.event_id, "b");
}

TEST_F(Relay, RowsLeftByACrashedRelayAreSentAgainAfterRestartWithTheSameIds) {
  Database db(":memory:");
  Journal journal(db);
  std::vector<Received> got;
  record(*probe, "#", got);
  {
    auto bus = store_broker.connect("svc");
    OutboxRelay relay(journal, scheduler, *bus, nullptr);
    add_row(db, journal, Channel::kStore, "store/t",
            Envelope{"a", EventType::kPaymentDue, "s", 0, "", ""});
    relay.pump();
    scheduler.run_until(scheduler.now_us() + 100);  // reached the broker, not confirmed
  }  // crash: relay and connection gone before the confirmation came back
  scheduler.run_until_idle();
  EXPECT_EQ(journal.outbox_size(), 1);
  auto bus = store_broker.connect("svc");
  OutboxRelay relay(journal, scheduler, *bus, nullptr);
  relay.pump();
  scheduler.run_until_idle();
  EXPECT_EQ(journal.outbox_size(), 0);
  ASSERT_EQ(got.size(), 2u);  // at-least-once: the same event twice, same id
  EXPECT_EQ(got[0].envelope.event_id, "a");
  EXPECT_EQ(got[1].envelope.event_id, "a");
}

// A bus that refuses the publishes `fails(n)` picks (n counts publishes from 0) and forwards
// every other to a real one.
class FlakyBus final : public BusWrapper {
 public:
  FlakyBus(Bus& inner, Clock& clock, std::function<bool(int)> fails)
      : BusWrapper(inner), clock_(clock), fails_(std::move(fails)) {}
  // Refuses the first `failures` publishes.
  FlakyBus(Bus& inner, Clock& clock, int failures)
      : FlakyBus(inner, clock, [failures](int n) { return n < failures; }) {}
  void publish(const std::string& topic, Envelope envelope, Qos qos,
               PublishCallback done) override {
    if (fails_(seen_++)) {
      clock_.call_after(0, [done] { done(PublishOutcome::kFailed); });
      return;
    }
    BusWrapper::publish(topic, std::move(envelope), qos, std::move(done));
  }

 private:
  Clock& clock_;
  std::function<bool(int)> fails_;
  int seen_ = 0;
};

TEST_F(Relay, HandedOverRowsWaitBehindRowsLeftFromBefore) {
  Database db(":memory:");
  Journal journal(db);
  std::vector<Received> got;
  record(*probe, "#", got);
  // A row a crashed predecessor never sent, then a row just committed by this process.
  add_row(db, journal, Channel::kStore, "store/t",
          Envelope{"old", EventType::kPaymentDue, "s", 0, "", ""});
  auto bus = store_broker.connect("svc");
  OutboxRelay relay(journal, scheduler, *bus, nullptr);
  const Envelope fresh{"new", EventType::kPaymentDue, "s", 0, "", ""};
  const std::int64_t seq = add_row(db, journal, Channel::kStore, "store/t", fresh);
  relay.hand_over({OutboxRow{seq, Channel::kStore, "store/t", fresh}});
  scheduler.run_until_idle();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].envelope.event_id, "old");  // read from the outbox first
  EXPECT_EQ(got[1].envelope.event_id, "new");
  EXPECT_EQ(relay.published(), 2u);
  EXPECT_EQ(journal.outbox_size(), 0);
}

TEST_F(Relay, RowsHandedOverInLineAreSentOnceWithoutReReadingTheOutbox) {
  Database db(":memory:");
  Journal journal(db);
  std::vector<Received> got;
  record(*probe, "#", got);
  auto bus = store_broker.connect("svc");
  OutboxRelay relay(journal, scheduler, *bus, nullptr);
  relay.pump();  // nothing pending: the relay is now in line with the outbox
  for (const char* id : {"a", "b"}) {
    const Envelope e{id, EventType::kPaymentDue, "s", 0, "", ""};
    const std::int64_t seq = add_row(db, journal, Channel::kStore, "store/t", e);
    relay.hand_over({OutboxRow{seq, Channel::kStore, "store/t", e}});
    relay.pump();  // a pump afterwards finds nothing new to send
  }
  scheduler.run_until_idle();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].envelope.event_id, "a");
  EXPECT_EQ(got[1].envelope.event_id, "b");
  EXPECT_EQ(relay.published(), 2u);
}

TEST_F(Relay, ARowThatFailedIsNeverDeletedBecauseALaterOneWasConfirmed) {
  Database db(":memory:");
  Journal journal(db);
  auto bus = store_broker.connect("svc");
  FlakyBus flaky(*bus, scheduler, 1);  // the first publish (row a) fails
  OutboxRelay relay(journal, scheduler, flaky, nullptr, Qos::kAtLeastOnce, 60'000'000);
  add_row(db, journal, Channel::kStore, "store/t",
          Envelope{"a", EventType::kPaymentDue, "s", 0, "", ""});
  add_row(db, journal, Channel::kStore, "store/t",
          Envelope{"b", EventType::kPaymentDue, "s", 0, "", ""});
  relay.pump();
  scheduler.run_until(scheduler.now_us() + 1'000'000);  // b confirmed, a's retry not yet due
  EXPECT_EQ(relay.confirmed(), 1u);
  auto rows = journal.pending_outbox(0, 10);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].envelope.event_id, "a");  // still owed
  scheduler.run_until_idle();
  EXPECT_EQ(journal.outbox_size(), 0);
}

TEST_F(Relay, ARowThatFailedAmongMoreThanADeleteBatchOfConfirmedRowsStaysOwedAndIsSent) {
  Database db(":memory:");
  Journal journal(db);
  auto bus = store_broker.connect("svc");
  // Row e10 fails; the 89 rows after it are confirmed.
  FlakyBus flaky(*bus, scheduler, std::function<bool(int)>([](int n) { return n == 10; }));
  std::vector<Received> got;
  record(*probe, "#", got);
  OutboxRelay relay(journal, scheduler, flaky, nullptr, Qos::kAtLeastOnce, 60'000'000);
  for (int i = 0; i < 100; ++i) {
    add_row(db, journal, Channel::kStore, "store/t",
            Envelope{"e" + std::to_string(i), EventType::kPaymentDue, "s", 0, "", ""});
  }
  relay.pump();
  scheduler.run_until(scheduler.now_us() + 1'000'000);  // the retry is a minute away
  EXPECT_EQ(relay.failed(), 1u);
  EXPECT_EQ(relay.confirmed(), 99u);
  // The failed row stays in the outbox however many rows after it were confirmed.
  std::set<std::string> owed;
  for (const OutboxRow& row : journal.pending_outbox(0, 200)) owed.insert(row.envelope.event_id);
  EXPECT_TRUE(owed.count("e10")) << "the failed row was deleted while still owed";
  scheduler.run_until_idle();  // the retry
  EXPECT_EQ(journal.outbox_size(), 0);
  std::set<std::string> ids;
  for (const Received& r : got) ids.insert(r.envelope.event_id);
  EXPECT_EQ(ids.size(), 100u) << "every row reached the broker at least once";
  EXPECT_TRUE(ids.count("e10"));
}

TEST_F(Relay, ConfirmedRowsAreDeletedInBatchesAndAllOnceIdle) {
  Database db(":memory:");
  Journal journal(db);
  auto bus = store_broker.connect("svc");
  OutboxRelay relay(journal, scheduler, *bus, nullptr);
  for (int i = 0; i < 100; ++i) {
    add_row(db, journal, Channel::kStore, "store/t",
            Envelope{"e" + std::to_string(i), EventType::kPaymentDue, "s", 0, "", ""});
  }
  relay.pump();
  scheduler.run_until_idle();
  EXPECT_EQ(relay.confirmed(), 100u);
  EXPECT_EQ(journal.outbox_size(), 0);
}

TEST_F(Relay, AFailedPublishIsRetriedByTimerEvenWhenNothingElseHappens) {
  Database db(":memory:");
  Journal journal(db);
  auto bus = store_broker.connect("svc");
  FlakyBus flaky(*bus, scheduler, 2);
  std::vector<Received> got;
  record(*probe, "#", got);
  OutboxRelay relay(journal, scheduler, flaky, nullptr, Qos::kAtLeastOnce, 1000);
  add_row(db, journal, Channel::kStore, "store/t",
          Envelope{"a", EventType::kPaymentDue, "s", 0, "", ""});
  relay.pump();
  scheduler.run_until_idle();
  EXPECT_EQ(relay.failed(), 2u);
  EXPECT_EQ(relay.confirmed(), 1u);
  EXPECT_EQ(journal.outbox_size(), 0);
  ASSERT_EQ(got.size(), 1u);
}

// Storage errors are the relay's to retry, never its caller's: a read of the outbox or a
// delete of confirmed rows that fails is tried again by timer, and nothing is lost.
class FailingReads final : public sim::DiskFaults {
 public:
  int on_call(std::string_view, sim::DiskOp op, bool) override {
    if (op == sim::DiskOp::kRead && failing_reads > 0) {
      --failing_reads;
      return SQLITE_IOERR_READ;
    }
    if (op == sim::DiskOp::kWrite && failing_writes > 0) {
      --failing_writes;
      return SQLITE_IOERR_WRITE;
    }
    return SQLITE_OK;
  }
  int failing_reads = 0;
  int failing_writes = 0;
};

TEST_F(Relay, AStorageErrorReadingOrDeletingTheOutboxIsRetriedNotThrown) {
  sim::Disk disk;
  FailingReads faults;
  disk.set_faults(&faults);
  Database db(disk.path_of("svc"), Durability::kFull, sim::kSimVfsName);
  db.exec("PRAGMA cache_size=0;");  // every statement reads the file
  Journal journal(db);
  auto bus = store_broker.connect("svc");
  std::vector<Received> got;
  record(*probe, "#", got);
  OutboxRelay relay(journal, scheduler, *bus, nullptr, Qos::kAtLeastOnce, 1000);
  for (const char* id : {"a", "b"}) {
    add_row(db, journal, Channel::kStore, "store/t",
            Envelope{id, EventType::kPaymentDue, "s", 0, "", ""});
  }
  faults.failing_reads = 1;
  EXPECT_NO_THROW(relay.pump());  // the read fails: tried again 1 ms later
  faults.failing_writes = 1;      // and the first delete of the confirmed rows
  scheduler.run_until_idle();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(relay.confirmed(), 2u);
  EXPECT_EQ(journal.outbox_size(), 0) << "the confirmed rows were deleted on the retry";
}

TEST(PriceStoreTest, PricesAndTheLedgerPersistInTheFile) {
  TempDir dir;
  {
    Database db(dir.file("fastlane.db"));
    PriceStore store(db);
    store.seed({product(1, 129, 1, 1, 5)});
    store.set_price(2, "New", 300);
    store.record_payment("dep-1", "pay-1", 7, 429, 0);
  }
  Database db(dir.file("fastlane.db"));
  PriceStore store(db);
  EXPECT_EQ(store.price_cents(1), 129);
  EXPECT_EQ(store.price_cents(2), 300);
  EXPECT_EQ(store.price_cents(3), std::nullopt);
  EXPECT_EQ(store.payments_recorded(), 1);
}

TEST(CustomerStoreTest, VisitsAreCountedOnlyForKnownCustomers) {
  Database db(":memory:");
  CustomerStore store(db);
  store.seed({{1, "Ada Lovelace"}});
  EXPECT_EQ(store.name_of(1), "Ada Lovelace");
  EXPECT_EQ(store.name_of(2), std::nullopt);
  const auto first = store.record_visit(1, 5);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->number, 1);
  EXPECT_EQ(store.record_visit(1, 6)->number, 2);
  EXPECT_EQ(store.record_visit(1, 7)->name, "Ada Lovelace");
  EXPECT_EQ(store.visits_of(1), 3);
  EXPECT_EQ(store.record_visit(2, 8), std::nullopt);  // unknown: nothing recorded
  EXPECT_EQ(store.visits_of(2), 0);
}

}  // namespace
}  // namespace eventmart::test

namespace eventmart::test {
namespace {

TEST(InboxRetention, PrunesEventIdsPastTheRetentionAndKeepsRecentOnes) {
  Database db(":memory:");
  Journal journal(db);
  {
    Transaction txn(db);
    journal.record_inbox("old-1", 1'000);
    journal.record_inbox("old-2", 1'999);
    journal.record_inbox("new", 5'000);
    txn.commit();
  }
  EXPECT_EQ(journal.prune_inbox(2'000), 2);
  EXPECT_FALSE(journal.in_inbox("old-1"));
  EXPECT_TRUE(journal.in_inbox("new"));
  EXPECT_EQ(journal.prune_inbox(2'000), 0);
}

}  // namespace
}  // namespace eventmart::test
