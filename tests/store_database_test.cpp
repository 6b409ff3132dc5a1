// A service's database file as `serve` opens it (apps/store_database.h): born whole, this
// store's, refused when damaged, another store's or a newer release's, migrated when older.
#include "runtime/store_database.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "services/journal.h"
#include "tests/test_support.h"

namespace eventmart::test {
namespace {

namespace fs = std::filesystem;
using runtime::DataFileError;
using runtime::FreshStart;
using runtime::StoreIdentity;

const StoreIdentity kStore{"spectrum-grocers", "fresh-frontier", "inventory-intel"};

std::unique_ptr<Database> open(const std::string& path, FreshStart fresh = FreshStart::kRefuse,
                               const StoreIdentity& identity = kStore) {
  static RecordingLogger logger;
  return runtime::open_store_database(path, identity, Durability::kNormal, fresh, logger);
}

DataFileError::Kind refusal(const std::string& path, const StoreIdentity& identity = kStore) {
  try {
    open(path, FreshStart::kRefuse, identity);
  } catch (const DataFileError& e) {
    return e.kind();
  }
  ADD_FAILURE() << path << " was not refused";
  return DataFileError::Kind::kDamaged;
}

std::string refusal_text(const std::string& path) {
  try {
    open(path);
  } catch (const DataFileError& e) {
    return e.what();
  }
  return "";
}

std::int64_t rows(Database& db, const std::string& table) {
  Statement s = db.prepare("SELECT count(*) FROM " + table);
  s.step();
  return s.column_int64(0);
}

// A database with `n` inbox rows whose commits are still in its write-ahead log, copied as a
// kill -9 would leave it (the log not checkpointed), to `copy`.
void crashed_copy(const std::string& path, const std::string& copy, int n) {
  auto db = open(path);
  Journal journal(*db);
  db->exec("PRAGMA wal_autocheckpoint = 0");
  for (int i = 0; i < n; ++i) {
    Transaction txn(*db);
    journal.record_inbox("event-" + std::to_string(i), i);
    txn.commit();
  }
  ASSERT_GT(fs::file_size(path + "-wal"), 0u);
  for (const char* part : {"", "-wal"}) fs::copy_file(path + part, copy + part);
}

TEST(StoreDatabase, ANewDatabaseIsBornWithItsIdentityAndTheSchemaVersion) {
  TempDir dir;
  auto db = open(dir.file("inventory-intel.sqlite"));
  Statement s = db->prepare("SELECT chain, store, service FROM eventmart_identity");
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.column_text(1), "fresh-frontier");
  EXPECT_EQ(s.column_text(2), "inventory-intel");
  Statement v = db->prepare("PRAGMA user_version");
  v.step();
  EXPECT_EQ(v.column_int64(0), runtime::kSchemaVersion);
  EXPECT_FALSE(fs::exists(dir.file("inventory-intel.sqlite.new")));
}

TEST(StoreDatabase, ADatabaseEmptiedToZeroBytesIsRefusedAndStartFreshKeepsItAside) {
  TempDir dir;
  const std::string path = dir.file("inventory-intel.sqlite");
  open(path).reset();
  fs::resize_file(path, 0);
  EXPECT_EQ(refusal(path), DataFileError::Kind::kDamaged);
  EXPECT_NE(refusal_text(path).find("is empty (0 bytes)"), std::string::npos);
  EXPECT_NE(refusal_text(path).find("--start-fresh"), std::string::npos);
  EXPECT_EQ(fs::file_size(path), 0u) << "a refusal changes nothing";

  auto db = open(path, FreshStart::kMoveAside);
  EXPECT_EQ(rows(*db, "eventmart_identity"), 1);
  int kept = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    kept += entry.path().filename().string().rfind("inventory-intel.sqlite.refused-", 0) == 0;
  }
  EXPECT_EQ(kept, 1) << "the refused file is kept, renamed";
}

TEST(StoreDatabase, AWriteAheadLogLeftByAKillIsReadAndAGarbledOneIsRefused) {
  TempDir dir;
  const std::string path = dir.file("inventory-intel.sqlite");
  crashed_copy(path, dir.file("a.sqlite"), 20);
  crashed_copy(dir.file("b-source.sqlite"), dir.file("b.sqlite"), 20);
  // As a kill -9 leaves it: every commit is there.
  EXPECT_TRUE(runtime::damaged_wal(dir.file("a.sqlite")));
  auto a = open(dir.file("a.sqlite"));
  EXPECT_EQ(rows(*a, "inbox"), 20);
  // Garbled: SQLite would ignore the log and open the database without its 20 commits.
  {
    std::fstream wal(dir.file("b.sqlite-wal"), std::ios::in | std::ios::out | std::ios::binary);
    wal.seekp(16);
    wal.write("garbage!", 8);  // the salts: the header's checksum no longer matches
  }
  EXPECT_NE(runtime::damaged_wal(dir.file("b.sqlite")).error().find("checksum"), std::string::npos);
  EXPECT_EQ(refusal(dir.file("b.sqlite")), DataFileError::Kind::kDamaged);
  {
    std::fstream wal(dir.file("b.sqlite-wal"), std::ios::in | std::ios::out | std::ios::binary);
    wal.write("\x00\x00\x00\x00", 4);  // not a WAL at all
  }
  EXPECT_NE(runtime::damaged_wal(dir.file("b.sqlite")).error().find("does not start"),
            std::string::npos);
}

TEST(StoreDatabase, AFileSqliteCannotReadIsRefused) {
  TempDir dir;
  const std::string path = dir.file("inventory-intel.sqlite");
  std::ofstream(path) << std::string(8192, 'x');
  EXPECT_EQ(refusal(path), DataFileError::Kind::kDamaged);
  EXPECT_NE(refusal_text(path).find("SQLite cannot read it"), std::string::npos);
}

TEST(StoreDatabase, AnotherStoresOrServicesDatabaseIsRefused) {
  TempDir dir;
  const std::string path = dir.file("inventory-intel.sqlite");
  open(path).reset();
  const StoreIdentity other_store{"spectrum-grocers", "other-store", "inventory-intel"};
  EXPECT_EQ(refusal(path, other_store), DataFileError::Kind::kOtherStore);
  const StoreIdentity other_chain{"other-chain", "fresh-frontier", "inventory-intel"};
  EXPECT_EQ(refusal(path, other_chain), DataFileError::Kind::kOtherStore);
  const StoreIdentity other_service{"spectrum-grocers", "fresh-frontier", "fastlane-finale"};
  EXPECT_EQ(refusal(path, other_service), DataFileError::Kind::kOtherStore);
  // --start-fresh is no way around it: the folder is another store's, and its data stays.
  EXPECT_THROW(open(path, FreshStart::kMoveAside, other_store), DataFileError);
  EXPECT_TRUE(fs::exists(path));
}

TEST(StoreDatabase, ANewerReleasesDatabaseIsRefusedAndAnOlderOneMigrated) {
  TempDir dir;
  const std::string newer = dir.file("newer.sqlite");
  open(newer)->exec("PRAGMA user_version = " + std::to_string(runtime::kSchemaVersion + 1));
  EXPECT_EQ(refusal(newer), DataFileError::Kind::kNewerRelease);
  EXPECT_THROW(open(newer, FreshStart::kMoveAside), DataFileError);

  // As the releases before schema versions left it: the journal's tables, no identity.
  const std::string older = dir.file("older.sqlite");
  {
    Database db(older);
    Journal journal(db);
    Transaction txn(db);
    journal.record_inbox("consumed-before", 1);
    txn.commit();
  }
  auto db = open(older);
  EXPECT_EQ(rows(*db, "inbox"), 1) << "nothing consumed before is lost";
  EXPECT_EQ(rows(*db, "eventmart_identity"), 1);
  Statement v = db->prepare("PRAGMA user_version");
  v.step();
  EXPECT_EQ(v.column_int64(0), runtime::kSchemaVersion);

  // A database with none of eventmart's tables (its log lost before any checkpoint).
  const std::string bare = dir.file("bare.sqlite");
  Database(bare).exec("CREATE TABLE unrelated(x)");
  EXPECT_EQ(refusal(bare), DataFileError::Kind::kDamaged);
}

}  // namespace
}  // namespace eventmart::test
