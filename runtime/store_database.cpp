#include "runtime/store_database.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/json_wire.h"
#include "runtime/live_store.h"

namespace eventmart::runtime {
namespace {

namespace fs = std::filesystem;

// Holds an exclusive lock on a folder (flock on its descriptor) while alive: replicas that open
// the same database at once take turns to create or migrate it.
class FolderLock {
 public:
  explicit FolderLock(const fs::path& folder) {
    fd_ = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0) {
      throw SqliteError("cannot open the data folder '" + folder.string() +
                        "': " + std::strerror(errno));
    }
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~FolderLock() { ::close(fd_); }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

std::uint32_t word(const unsigned char* p, bool big_endian) {
  return big_endian ? (std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 |
                       std::uint32_t{p[2]} << 8 | std::uint32_t{p[3]})
                    : (std::uint32_t{p[3]} << 24 | std::uint32_t{p[2]} << 16 |
                       std::uint32_t{p[1]} << 8 | std::uint32_t{p[0]});
}

bool has_table(Database& db, const std::string& table) {
  Statement s = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
  s.bind(1, table);
  return s.step();
}

std::int64_t user_version(Database& db) {
  Statement s = db.prepare("PRAGMA user_version");
  s.step();
  return s.column_int64(0);
}

const char* kIdentityTable =
    "CREATE TABLE IF NOT EXISTS eventmart_identity("
    "  chain TEXT NOT NULL, store TEXT NOT NULL, service TEXT NOT NULL)";

void write_identity(Database& db, const StoreIdentity& identity) {
  db.exec(kIdentityTable);
  db.exec("DELETE FROM eventmart_identity");
  db.prepare("INSERT INTO eventmart_identity(chain, store, service) VALUES(?, ?, ?)")
      .bind(1, identity.chain)
      .bind(2, identity.store)
      .bind(3, identity.service)
      .run();
}

// The schema's steps: steps[v] takes a database from version v to v + 1.
void migrate(Database& db, std::int64_t from, const StoreIdentity& identity) {
  Transaction txn(db);
  for (std::int64_t v = from; v < kSchemaVersion; ++v) {
    switch (v) {
      case 0:  // before versions: the identity of the folder's store, taken on trust
        write_identity(db, identity);
        break;
      default:
        throw std::logic_error("no migration from schema " + std::to_string(v));
    }
  }
  db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
  txn.commit();
}

// A new database: made in a temporary file and renamed into place once whole.
void give_birth(const fs::path& path, const StoreIdentity& identity, Durability durability) {
  const fs::path temporary = path.string() + ".new";
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(temporary.string() + suffix);
  {
    Database db(temporary.string(), durability);
    Transaction txn(db);
    write_identity(db, identity);
    db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
    txn.commit();
  }  // closing checkpoints the log into the file and removes it
  fs::rename(temporary, path);
}

std::string refused_suffix() {
  std::string stamp = json_wire::format_timestamp(mqtt::wall_clock_us());
  for (char& c : stamp) {
    if (c == ':' || c == '.') c = '-';
  }
  return ".refused-" + stamp;
}

// Renames the database's files out of the way (kept for whoever wants to look at them).
std::string move_aside(const fs::path& path) {
  const std::string suffix = refused_suffix();
  for (const char* part : {"", "-wal", "-shm"}) {
    const fs::path from = path.string() + part;
    if (fs::exists(from)) fs::rename(from, path.string() + suffix + part);
  }
  return path.string() + suffix;
}

// Whether the database at `path` can be trusted before it is opened, and why not.
Status damage_before_open(const fs::path& path) {
  if (fs::file_size(path) == 0) {
    return Status::error(
        "it exists but is empty (0 bytes): a database is never born empty, so its contents "
        "were lost (truncated, or a restore that failed)");
  }
  return damaged_wal(path.string());
}

std::string identity_text(const StoreIdentity& i) {
  return i.service + " of " + i.chain + "/" + i.store;
}

[[noreturn]] void refuse_damaged(const fs::path& path, const std::string& why) {
  throw DataFileError(
      DataFileError::Kind::kDamaged,
      "the database '" + path.string() + "' cannot be used: " + why +
          ". Opening it would start this service as a new store without a word (stock back to "
          "the catalog, consumed and owed events gone). Restore it from a backup, or start this "
          "service afresh with --start-fresh (the files are moved aside, not deleted)",
      why);
}

// Opens an existing database and checks it; throws what refuses it.
std::unique_ptr<Database> open_existing(const fs::path& path, const StoreIdentity& identity,
                                        Durability durability) {
  if (Status sound = damage_before_open(path); !sound) refuse_damaged(path, sound.error());
  std::unique_ptr<Database> db;
  std::int64_t version = 0;
  bool identified = false;
  bool ours = false;
  try {
    db = std::make_unique<Database>(path.string(), durability);
    version = user_version(*db);
    identified = has_table(*db, "eventmart_identity");
    ours = identified || has_table(*db, "inbox") || has_table(*db, "outbox");
  } catch (const SqliteError& e) {
    if (e.locked()) throw;  // another replica opening it at once: not a damaged file
    refuse_damaged(path, std::string("SQLite cannot read it (") + e.what() + ")");
  }
  if (version > kSchemaVersion) {
    throw DataFileError(DataFileError::Kind::kNewerRelease,
                        "the database '" + path.string() +
                            "' was written by a newer release of eventmart (schema " +
                            std::to_string(version) + "; this release knows schemas up to " +
                            std::to_string(kSchemaVersion) +
                            "): run that release, or restore a backup made by this one",
                        "written by a newer release (schema " + std::to_string(version) + ")");
  }
  if (!ours) {
    refuse_damaged(path,
                   "it holds none of eventmart's tables (emptied, or its write-ahead log "
                   "was lost)");
  }
  if (identified) {
    Statement s = db->prepare("SELECT chain, store, service FROM eventmart_identity");
    StoreIdentity found;
    if (s.step()) found = {s.column_text(0), s.column_text(1), s.column_text(2)};
    if (found.chain != identity.chain || found.store != identity.store ||
        found.service != identity.service) {
      throw DataFileError(DataFileError::Kind::kOtherStore,
                          "the database '" + path.string() + "' belongs to " +
                              identity_text(found) + ", not to " + identity_text(identity) +
                              ": run with that store's settings, or give this one its own "
                              "--data-dir",
                          "another store's");
    }
  }
  if (version < kSchemaVersion) migrate(*db, version, identity);
  return db;
}

}  // namespace

Status damaged_wal(const std::string& path) {
  const std::string wal = path + "-wal";
  std::error_code ec;
  const auto size = fs::file_size(wal, ec);
  if (ec || size == 0) return Status::ok();
  std::array<unsigned char, 32> h{};
  std::ifstream in(wal, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(h.data()), h.size())) {
    return Status::error("its write-ahead log '" + wal + "' is cut short (" + std::to_string(size) +
                         " bytes)");
  }
  const std::uint32_t magic = word(h.data(), true);
  const std::string damaged = "its write-ahead log '" + wal + "' is damaged: ";
  if (magic != 0x377f0682 && magic != 0x377f0683) {
    return Status::error(damaged +
                         "it does not start with a SQLite WAL header (the commits in it would be "
                         "ignored)");
  }
  const std::uint32_t page_size = word(h.data() + 8, true);
  if (word(h.data() + 4, true) != 3007000 || page_size < 512 || page_size > 65536 ||
      (page_size & (page_size - 1)) != 0) {
    return Status::error(damaged + "its header names no valid format or page size");
  }
  // The header's checksum (SQLite's walChecksumBytes over its first 24 bytes), in the byte
  // order the magic number names.
  const bool big = (magic & 1) != 0;
  std::uint32_t s1 = 0, s2 = 0;
  for (int i = 0; i < 24; i += 8) {
    s1 += word(h.data() + i, big) + s2;
    s2 += word(h.data() + i + 4, big) + s1;
  }
  if (s1 != word(h.data() + 24, true) || s2 != word(h.data() + 28, true)) {
    return Status::error(
        damaged + "its header's checksum does not match (the commits in it would be ignored)");
  }
  return Status::ok();
}

std::unique_ptr<Database> open_store_database(const std::string& path_text,
                                              const StoreIdentity& identity, Durability durability,
                                              FreshStart fresh, Logger& logger) {
  const fs::path path(path_text);
  FolderLock lock(path.parent_path().empty() ? fs::path(".") : path.parent_path());
  if (!fs::exists(path)) {
    give_birth(path, identity, durability);
    return std::make_unique<Database>(path.string(), durability);
  }
  try {
    return open_existing(path, identity, durability);
  } catch (const DataFileError& e) {
    if (e.kind() != DataFileError::Kind::kDamaged || fresh != FreshStart::kMoveAside) throw;
    const std::string kept = move_aside(path);
    logger.log(LogLevel::kWarning, identity.service,
               "the database '" + path.string() + "' cannot be used: " + e.reason() +
                   "; --start-fresh: moved aside to '" + kept + "', starting afresh");
    give_birth(path, identity, durability);
    return std::make_unique<Database>(path.string(), durability);
  }
}

}  // namespace eventmart::runtime
