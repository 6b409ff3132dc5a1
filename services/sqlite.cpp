#include "services/sqlite.h"

#include <sqlite3.h>

#include <mutex>
#include <utility>

#include "core/marks.h"

namespace eventmart {
namespace {

constexpr int kBusyTimeoutMs = 5000;  // how long a statement waits for another writer

// SQLite's primary result code `rc`, counted when it is a storage fault.
int storage_code(int rc) {
  const int code = rc & 0xff;
  if (code == SQLITE_IOERR) mark(Mark::kStorageIoError);
  if (code == SQLITE_FULL) mark(Mark::kStorageFull);
  return code;
}

[[noreturn]] void fail(sqlite3* db, std::string_view what) {
  throw SqliteError(std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "out of memory"),
                    storage_code(db ? sqlite3_extended_errcode(db) : SQLITE_NOMEM));
}

}  // namespace

bool SqliteError::locked() const {
  return code_ == SQLITE_BUSY || code_ == SQLITE_LOCKED;
}

bool SqliteError::transient() const {
  return code_ == SQLITE_FULL || locked();
}

// Each connection is used by one thread only, so SQLite needs no mutex of its own around a
// connection (multi-thread mode), and no global one around every allocation (memory
// statistics off). Both must be set before SQLite initialises, so before the first open.
void prepare_sqlite() {
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  });
}

Database::Database(const std::string& path, Durability durability, const char* vfs) : path_(path) {
  prepare_sqlite();
  const int rc = sqlite3_open_v2(
      path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, vfs);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw SqliteError("cannot open database '" + path + "': " + message, storage_code(rc));
  }
  try {
    configure(path, durability);
  } catch (...) {
    close();  // a storage fault while configuring: nothing is left open
    throw;
  }
}

void Database::configure(const std::string& path, Durability durability) {
  sqlite3_extended_result_codes(db_, 1);
  if (path == ":memory:") {
    exec("PRAGMA journal_mode=MEMORY;");
  } else {
    // First: every statement after it, switching to WAL included, waits for a replica that
    // opened the same file at the same moment instead of failing with "database is locked".
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    exec("PRAGMA journal_mode=WAL;");
    exec(durability == Durability::kFull ? "PRAGMA synchronous=FULL;"
                                         : "PRAGMA synchronous=NORMAL;");
  }
  exec("PRAGMA foreign_keys=ON;");
  begin_ = std::make_unique<Statement>(prepare("BEGIN IMMEDIATE"));
  commit_ = std::make_unique<Statement>(prepare("COMMIT"));
  rollback_ = std::make_unique<Statement>(prepare("ROLLBACK"));
}

Database::~Database() {
  close();
}

void Database::close() {
  begin_.reset();
  commit_.reset();
  rollback_.reset();
  for (auto& [sql, stmts] : spare_) {
    for (sqlite3_stmt* stmt : stmts) sqlite3_finalize(stmt);
  }
  spare_.clear();
  sqlite3_close_v2(db_);
  db_ = nullptr;
}

void Database::exec_once(std::string_view sql) {
  std::string text(sql);
  if (done_once_.count(text)) return;
  exec(text);
  done_once_.insert(std::move(text));
}

void Database::give_back(std::string sql, sqlite3_stmt* stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  spare_[std::move(sql)].push_back(stmt);
}

void Database::exec(std::string_view sql) {
  char* error = nullptr;
  const std::string text(sql);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw SqliteError("'" + text + "' failed on '" + path_ + "': " + message,
                      storage_code(sqlite3_extended_errcode(db_)));
  }
}

Statement Database::prepare(std::string_view sql) {
  std::string text(sql);
  if (auto it = spare_.find(text); it != spare_.end() && !it->second.empty()) {
    sqlite3_stmt* stmt = it->second.back();
    it->second.pop_back();
    return Statement(this, stmt, std::move(text));
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &stmt, nullptr) != SQLITE_OK) {
    fail(db_, "cannot prepare '" + std::string(sql) + "'");
  }
  return Statement(this, stmt, std::move(text));
}

bool Database::has_column(std::string_view table, std::string_view column) {
  Statement info = prepare("SELECT 1 FROM pragma_table_info(?) WHERE name = ?");
  info.bind(1, table).bind(2, column);
  const bool found = info.step();
  info.reset();
  return found;
}

bool Database::in_transaction() const {
  return db_ != nullptr && sqlite3_get_autocommit(db_) == 0;
}

std::int64_t Database::changes() const {
  return sqlite3_changes64(db_);
}

std::int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

Statement::Statement(Statement&& other) noexcept
    : home_(std::exchange(other.home_, nullptr)),
      stmt_(std::exchange(other.stmt_, nullptr)),
      sql_(std::move(other.sql_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    release();
    home_ = std::exchange(other.home_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
    sql_ = std::move(other.sql_);
  }
  return *this;
}

Statement::~Statement() {
  release();
}

void Statement::release() {
  if (stmt_ == nullptr) return;
  sqlite3_stmt* stmt = std::exchange(stmt_, nullptr);
  try {
    home_->give_back(std::move(sql_), stmt);
  } catch (...) {
    sqlite3_finalize(stmt);  // no memory to keep it: compiled again when needed
  }
}

void Statement::check_bind(int rc) {
  if (rc != SQLITE_OK)
    fail(home_->db_, std::string("cannot bind parameter of '") + sqlite3_sql(stmt_) + "'");
}

Statement& Statement::bind(int index, std::int64_t value) {
  check_bind(sqlite3_bind_int64(stmt_, index, value));
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  check_bind(
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

Statement& Statement::bind_blob(int index, std::string_view bytes) {
  // A zero-length blob must not bind as NULL.
  static const char kEmpty = 0;
  check_bind(sqlite3_bind_blob64(stmt_, index, bytes.empty() ? &kEmpty : bytes.data(), bytes.size(),
                                 SQLITE_TRANSIENT));
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const std::string message = std::string("'") + sqlite3_sql(stmt_) + "' failed";
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);  // the next use starts clean, as after run()
  fail(home_->db_, message);
}

void Statement::run() {
  while (step()) {
  }
  reset();
}

std::int64_t Statement::column_int64(int index) const {
  return sqlite3_column_int64(stmt_, index);
}

std::string Statement::column_text(int index) const {
  const auto* text = sqlite3_column_text(stmt_, index);
  const int size = sqlite3_column_bytes(stmt_, index);
  return text ? std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size))
              : std::string();
}

std::string Statement::column_blob(int index) const {
  const void* blob = sqlite3_column_blob(stmt_, index);
  const int size = sqlite3_column_bytes(stmt_, index);
  return blob ? std::string(static_cast<const char*>(blob), static_cast<std::size_t>(size))
              : std::string();
}

bool Statement::column_is_null(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Transaction::Transaction(Database& db) : db_(db) {
  db_.begin_->run();
}

Transaction::~Transaction() {
  if (!open_) return;
  try {
    db_.rollback_->run();
  } catch (const SqliteError&) {
    // Nothing more to do: SQLite has already rolled back when a statement failed mid-transaction.
  }
}

void Transaction::commit() {
  db_.commit_->run();
  open_ = false;
}

}  // namespace eventmart
