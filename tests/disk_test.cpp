// The simulator's disk (sim/disk.h): real SQLite databases on an in-memory VFS that keeps
// what was written apart from what was synced, and a power loss that keeps only the latter.
#include "sim/disk.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>
#include <utility>

#include "services/sqlite.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

using sim::Disk;
using sim::DiskFaults;
using sim::DiskOp;
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
  disk.power_off("svc");
  db.reset();  // the close would checkpoint, sync and delete the WAL: the power is gone first
  disk.power_on("svc");
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

// What a database's file tells SQLite about the medium under it: the sector size and the
// device characteristics (SQLITE_IOCAP_*).
std::pair<int, int> medium_of(Database& db) {
  sqlite3_file* file = nullptr;
  EXPECT_EQ(sqlite3_file_control(db.handle(), "main", SQLITE_FCNTL_FILE_POINTER, &file), SQLITE_OK);
  if (file == nullptr || file->pMethods == nullptr) return {-1, -1};
  return {file->pMethods->xSectorSize(file), file->pMethods->xDeviceCharacteristics(file)};
}

// SQLite shapes its WAL by what the VFS promises: without "powersafe overwrite" it pads every
// synced commit to a sector boundary with copies of the last frame. The simulated disk keeps
// that promise (a power loss reverts unsynced writes only; the bytes around them stay as
// synced, see DiskFile.APowerLossBringsBackExactlyWhatWasSynced), and production's disk
// makes it, so the simulator must write the WAL production writes.
TEST(Disk, PromisesSqliteWhatTheRealFileSystemPromises) {
  TempDir dir;
  Database real(dir.path() + "/real.db", Durability::kFull);
  real.exec("CREATE TABLE t(x INTEGER)");
  Disk disk;
  Database simulated(disk.path_of("svc"), Durability::kFull, kSimVfsName);
  simulated.exec("CREATE TABLE t(x INTEGER)");
  const auto [real_sector, real_caps] = medium_of(real);
  const auto [sim_sector, sim_caps] = medium_of(simulated);
  EXPECT_EQ(sim_sector, real_sector);
  EXPECT_EQ(sim_caps & SQLITE_IOCAP_POWERSAFE_OVERWRITE,
            real_caps & SQLITE_IOCAP_POWERSAFE_OVERWRITE);
  EXPECT_NE(sim_caps & SQLITE_IOCAP_POWERSAFE_OVERWRITE, 0) << "the model keeps the promise";
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

// The file model itself, byte for byte: writes that straddle chunks, overwrite synced bytes,
// grow with holes and are truncated; a power loss brings back exactly the synced image.
TEST(DiskFile, APowerLossBringsBackExactlyWhatWasSynced) {
  Disk::ChunkPool pool;
  Disk::File file(pool);
  std::string model;  // what the file holds, written
  const auto write = [&](std::uint64_t at, std::string_view bytes) {
    file.write(bytes.data(), bytes.size(), at);
    if (model.size() < at + bytes.size()) model.resize(at + bytes.size(), '\0');
    model.replace(at, bytes.size(), bytes);
  };
  const auto contents = [&] {
    std::string out(file.size(), '?');
    EXPECT_EQ(file.read(out.data(), out.size(), 0), out.size());
    return out;
  };
  write(0, std::string(10000, 'a'));  // three chunks, the last one partly
  file.sync();
  const std::string synced = model;
  write(4090, std::string(20, 'b'));    // straddles chunks 0 and 1
  write(8192, std::string(4096, 'c'));  // all of chunk 2: kept as it was, no copy
  write(20000, "tail");                 // a hole from 10000 to 20000
  file.truncate(15000);
  model.resize(15000);
  write(16000, "x");  // past the cut: zeros between
  EXPECT_EQ(contents(), model);
  EXPECT_EQ(file.synced(), synced);
  file.revert();
  EXPECT_EQ(file.size(), synced.size());
  EXPECT_EQ(contents(), synced);
  // Reading past the end gives zeros and says how much was inside.
  std::string past(100, '?');
  EXPECT_EQ(file.read(past.data(), past.size(), synced.size() - 10), 10u);
  EXPECT_EQ(past.substr(10), std::string(90, '\0'));
}

// A fault hook that fails the n-th call of a kind, or every write past the end.
class ScriptedFaults final : public DiskFaults {
 public:
  int on_call(std::string_view, DiskOp op, bool grows) override {
    if (disk_full && op == DiskOp::kWrite && grows) return SQLITE_FULL;
    if (fail_next_write && op == DiskOp::kWrite) {
      fail_next_write = false;
      return SQLITE_IOERR_WRITE;
    }
    return SQLITE_OK;
  }
  bool disk_full = false;
  bool fail_next_write = false;
};

TEST(Disk, AnInjectedWriteErrorFailsTheCommitAndLeavesTheDatabaseAsItWas) {
  Disk disk;
  ScriptedFaults faults;
  disk.set_faults(&faults);
  Database db(disk.path_of("svc"), Durability::kFull, kSimVfsName);
  db.exec("CREATE TABLE t(x INTEGER)");
  faults.fail_next_write = true;
  try {
    Transaction txn(db);
    db.exec("INSERT INTO t VALUES(1)");
    txn.commit();
    ADD_FAILURE() << "the commit should have failed";
  } catch (const SqliteError& e) {
    EXPECT_EQ(e.code(), SQLITE_IOERR);
    EXPECT_FALSE(e.transient()) << "an I/O error may last: it counts towards a dead letter";
  }
  EXPECT_EQ(rows_in(db), 0);
  db.exec("INSERT INTO t VALUES(2)");  // the connection goes on
  EXPECT_EQ(rows_in(db), 1);
}

TEST(Disk, AFullDiskRefusesGrowthOnlyAndTheErrorIsTransient) {
  Disk disk;
  ScriptedFaults faults;
  disk.set_faults(&faults);
  Database db(disk.path_of("svc"), Durability::kFull, kSimVfsName);
  db.exec("CREATE TABLE t(x BLOB)");
  faults.disk_full = true;
  try {
    db.exec("INSERT INTO t VALUES(zeroblob(100000))");  // needs new pages
    ADD_FAILURE() << "the insert should have failed";
  } catch (const SqliteError& e) {
    EXPECT_EQ(e.code(), SQLITE_FULL);
    EXPECT_TRUE(e.transient()) << "a full disk passes: the message is not to blame";
  }
  faults.disk_full = false;
  db.exec("INSERT INTO t VALUES(zeroblob(100000))");
  EXPECT_EQ(rows_in(db), 1);
}

}  // namespace
}  // namespace eventmart::test
