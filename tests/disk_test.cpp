// The simulator's disk (sim/disk.h): real SQLite databases on an in-memory VFS that keeps
// what was written apart from what was synced, and a power loss that keeps only the latter.
#include "sim/disk.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "services/sqlite.h"

namespace eventmart::testing {
namespace {

using sim::Disk;
using sim::kSimVfsName;

std::int64_t rows_in(Database& db) {
  Statement count = db.prepare("SELECT count(*) FROM t");
  count.step();
  return count.column_int64(0);
}

// Opens database "svc" on `disk`, inserts `rows` rows one commit each, and then loses power:
// the connection is dropped without a clean close and only what was synced stays.
std::int64_t rows_after_power_loss(Durability durability, int rows) {
  Disk disk;
  auto db = std::make_unique<Database>(disk.path_of("svc"), durability, kSimVfsName);
  db->exec("CREATE TABLE IF NOT EXISTS t(x INTEGER)");
  db->exec("PRAGMA wal_checkpoint(FULL)");  // the empty table is on the disk, synced
  for (int i = 0; i < rows; ++i) {
    Transaction txn(*db);
    db->prepare("INSERT INTO t VALUES(?)").bind(1, i).run();
    txn.commit();
  }
  const Disk::Image image = disk.synced_image("svc");
  db.reset();  // the close would checkpoint: it happens after the power is gone
  disk.restore("svc", image);
  Database reopened(disk.path_of("svc"), durability, kSimVfsName);
  return rows_in(reopened);
}

TEST(Disk, WithSynchronousFullEveryCommittedRowSurvivesAPowerLoss) {
  EXPECT_EQ(rows_after_power_loss(Durability::kFull, 50), 50);
}

TEST(Disk, WithSynchronousNormalAPowerLossDropsCommitsSinceTheLastCheckpoint) {
  // The WAL is synced only at checkpoints (1000 pages by default): 50 small commits are all
  // in an unsynced WAL, so the power loss leaves the table as it was last synced: empty.
  EXPECT_EQ(rows_after_power_loss(Durability::kNormal, 50), 0);
}

TEST(Disk, ACrashWithoutPowerLossKeepsEverythingWrittenEvenUnsynced) {
  Disk disk;
  {
    Database db(disk.path_of("svc"), Durability::kNormal, kSimVfsName);
    db.exec("CREATE TABLE t(x INTEGER)");
    for (int i = 0; i < 20; ++i) db.exec("INSERT INTO t VALUES(1)");
  }  // the process ends; the page cache (the disk's written image) stays
  Database reopened(disk.path_of("svc"), Durability::kNormal, kSimVfsName);
  EXPECT_EQ(rows_in(reopened), 20);
}

TEST(Disk, AFileNameOutsideEveryDiskCannotBeOpened) {
  Disk disk;  // the VFS is registered
  EXPECT_THROW(Database("/not-a-sim-disk/x.db", Durability::kFull, kSimVfsName), SqliteError);
}

TEST(Disk, TwoDisksKeepTheirFilesApart) {
  Disk a;
  Disk b;
  {
    Database da(a.path_of("svc"), Durability::kFull, kSimVfsName);
    da.exec("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES(1);");
  }
  Database db(b.path_of("svc"), Durability::kFull, kSimVfsName);
  db.exec("CREATE TABLE IF NOT EXISTS t(x INTEGER)");
  EXPECT_EQ(rows_in(db), 0);
}

}  // namespace
}  // namespace eventmart::testing
