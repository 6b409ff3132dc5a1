// A service's database file in a store's data folder, as `serve` opens it: created whole or not
// at all, recognised as this store's, refused when it is damaged, migrated forward when it was
// written by an older release and refused when written by a newer one.
//
// Why. SQLite opens whatever it is given: a file emptied to 0 bytes, or one whose write-ahead
// log was garbled after a kill -9, opens as an empty database, and the service used to seed it
// as a new store without a word (stock back to the catalog; inbox and owed outbox rows gone).
// And nothing said which store a folder belonged to: `serve --store sb` on store sa's folder
// ran on sa's stock and sent sa's owed rows.
//
// The rules:
// - No file: a new database is born in a temporary file (its identity, chain/store/service,
//   and its schema version written and checkpointed), then renamed into place. So a file that
//   exists was born whole: it is never legitimately empty.
// - A file of 0 bytes, a write-ahead log (-wal) whose header is not a valid SQLite WAL header
//   (SQLite would ignore every commit in it), a file SQLite cannot read, or one without any of
//   eventmart's tables: refused (DataFileError, kDamaged), unless the operator starts afresh
//   (FreshStart::kMoveAside: the files are renamed "*.refused-<time>", nothing is deleted, and
//   a new database is born).
// - Another chain, store or service in the identity: refused (kOtherStore).
// - PRAGMA user_version above kSchemaVersion: refused (kNewerRelease); below it (0: written
//   before versions existed), migrated forward in one transaction.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "core/log.h"
#include "core/result.h"
#include "services/sqlite.h"

namespace eventmart::runtime {

// The schema this release writes. 1: the identity table (eventmart_identity).
inline constexpr int kSchemaVersion = 1;

struct StoreIdentity {
  std::string chain;
  std::string store;
  std::string service;
};

class DataFileError : public std::runtime_error {
 public:
  enum class Kind { kDamaged, kOtherStore, kNewerRelease };
  // `what`: the whole message, with what to do; `reason`: what is wrong, in a few words.
  DataFileError(Kind kind, const std::string& what, std::string reason)
      : std::runtime_error(what), kind_(kind), reason_(std::move(reason)) {}
  Kind kind() const { return kind_; }
  const std::string& reason() const { return reason_; }

 private:
  Kind kind_;
  std::string reason_;
};

enum class FreshStart : std::uint8_t {
  kRefuse,     // a damaged database is refused with the reason
  kMoveAside,  // ... is moved aside (renamed, kept) and a new one is born
};

// Opens (creating when missing) the database of `identity.service` at `path`, as the rules above
// say. Replicas may open the same file at the same time: birth and migration hold a lock on the
// folder. Throws DataFileError, or SqliteError when the folder is not usable.
// A database moved aside is logged on `logger` as a warning, with where it went.
std::unique_ptr<Database> open_store_database(const std::string& path,
                                              const StoreIdentity& identity, Durability durability,
                                              FreshStart fresh, Logger& logger);

// Whether the write-ahead log of the database at `path` can be read: it is absent, empty, or
// starts with a valid header; else why not.
Status damaged_wal(const std::string& path);

}  // namespace eventmart::runtime
