// A thin RAII layer over the sqlite3 C API: a connection, prepared statements, transactions.
// Errors are faults (a broken disk, a corrupt file), so they throw SqliteError; business
// outcomes never travel as exceptions.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/bus.h"

struct sqlite3;
struct sqlite3_stmt;

namespace eventmart {

class SqliteError : public std::runtime_error, public FailureKind {
 public:
  explicit SqliteError(const std::string& what, int code = 0)
      : std::runtime_error(what), code_(code) {}
  // SQLite's primary result code (SQLITE_IOERR, SQLITE_FULL, ...), 0 when not from SQLite.
  int code() const { return code_; }
  // A full disk, or a database another writer holds: it passes, the message is not at fault
  // (the transports retry it without limit). An I/O error is not: it may last.
  bool transient() const override;
  // Another connection holds the database (SQLITE_BUSY or SQLITE_LOCKED): waiting may help.
  bool locked() const;

 private:
  int code_;
};

class Statement;

// How hard a commit pushes to stable storage (file databases only).
enum class Durability : std::uint8_t {
  kNormal,  // WAL + synchronous=NORMAL: survives a process crash, may lose the last commits on
            // power loss
  kFull,    // WAL + synchronous=FULL: survives power loss, one fsync per commit
};

// Configures SQLite for this program (multi-thread mode, no memory statistics). Runs once;
// must run before SQLite initialises: anything that registers a VFS calls it first.
void prepare_sqlite();

class Database {
 public:
  // Opens, creating if missing, the database file at `path`; ":memory:" opens a private
  // in-memory database. `vfs` names a registered SQLite VFS (null: the default, the real
  // file system; the simulator passes its disk's). Throws SqliteError when it cannot be
  // opened.
  explicit Database(const std::string& path, Durability durability = Durability::kNormal,
                    const char* vfs = nullptr);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more SQL statements without results (schema, pragmas). Throws on error.
  void exec(std::string_view sql);

  // exec() for idempotent schema statements (CREATE ... IF NOT EXISTS): runs `sql` once per
  // connection; later calls with the same text do nothing (a service that restarts on the
  // same connection finds its tables made).
  void exec_once(std::string_view sql);

  // Compiles `sql` (one statement). Throws SqliteError with the SQL and SQLite's message.
  // A statement given back by a destroyed Statement of this connection is reused (reset, no
  // bindings) instead of compiling the same text again.
  Statement prepare(std::string_view sql);

  // True when `table` has a column named `column`.
  bool has_column(std::string_view table, std::string_view column);

  // Rows changed by the most recent INSERT/UPDATE/DELETE.
  std::int64_t changes() const;

  // The rowid of the most recent successful INSERT.
  std::int64_t last_insert_rowid() const;

  const std::string& path() const { return path_; }
  sqlite3* handle() { return db_; }
  // True between BEGIN and COMMIT or ROLLBACK (SQLite's autocommit is off).
  bool in_transaction() const;

 private:
  friend class Transaction;
  // The constructor's work after opening (pragmas, BEGIN/COMMIT/ROLLBACK compiled).
  void configure(const std::string& path, Durability durability);
  void close();  // finalizes every statement it holds, then closes the connection
  sqlite3* db_ = nullptr;
  std::string path_;
  // Compiled once: a transaction per consumed event must not re-parse BEGIN and COMMIT.
  std::unique_ptr<Statement> begin_;
  std::unique_ptr<Statement> commit_;
  std::unique_ptr<Statement> rollback_;
  // Compiled statements no Statement holds, by SQL text; and the exec_once() texts run. Only
  // looked up, never iterated for anything a run can see.
  friend class Statement;
  void give_back(std::string sql, sqlite3_stmt* stmt);
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> spare_;
  std::unordered_set<std::string> done_once_;
};

class Statement {
 public:
  Statement() = default;
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQL.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view text);
  Statement& bind_blob(int index, std::string_view bytes);

  // Advances to the next row: true when a row is available, false when done.
  // Throws SqliteError on failure (constraint violations included).
  bool step();

  // Runs a statement that returns no rows, then resets it for reuse.
  void run();

  std::int64_t column_int64(int index) const;
  std::string column_text(int index) const;
  std::string column_blob(int index) const;
  bool column_is_null(int index) const;

  // Makes the statement ready to run again and clears its bindings.
  void reset();

  // False for a default-constructed (not yet prepared) statement.
  explicit operator bool() const { return stmt_ != nullptr; }

 private:
  friend class Database;
  Statement(Database* home, sqlite3_stmt* stmt, std::string sql)
      : home_(home), stmt_(stmt), sql_(std::move(sql)) {}
  void check_bind(int rc);
  void release();             // gives the compiled statement back to its connection
  Database* home_ = nullptr;  // the connection it was prepared on (set whenever stmt_ is)
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

// BEGIN on construction; ROLLBACK on destruction unless commit() ran. A crash between the
// two (an exception, a killed process) leaves the database as it was before BEGIN.
class Transaction {
 public:
  explicit Transaction(Database& db);
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  void commit();

 private:
  Database& db_;
  bool open_ = true;
};

}  // namespace eventmart
