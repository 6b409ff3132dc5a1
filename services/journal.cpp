#include "services/journal.h"

#include <algorithm>

#include "core/assert.h"

namespace eventmart {

Journal::Journal(Database& db, std::string owner) : db_(db), owner_(std::move(owner)) {
  db_.exec_once(
      "CREATE TABLE IF NOT EXISTS inbox("
      "  event_id TEXT PRIMARY KEY,"
      "  received_at_us INTEGER NOT NULL,"
      "  content_hash INTEGER) WITHOUT ROWID;"
      // seq is assigned by add_outbox (no AUTOINCREMENT: its sqlite_sequence row would be one
      // more page written by every transaction that emits). Databases made before keep theirs.
      "CREATE TABLE IF NOT EXISTS outbox("
      "  seq INTEGER PRIMARY KEY,"
      "  owner TEXT NOT NULL DEFAULT '',"
      "  channel INTEGER NOT NULL,"
      "  topic TEXT NOT NULL,"
      "  event_id TEXT NOT NULL,"
      "  type INTEGER NOT NULL,"
      "  source TEXT NOT NULL,"
      "  occurred_at_us INTEGER NOT NULL,"
      "  caused_by TEXT NOT NULL,"
      "  payload BLOB NOT NULL);");
  // Databases written before the content hash existed get the column (NULL: not known).
  if (!db_.has_column("inbox", "content_hash")) {
    db_.exec("ALTER TABLE inbox ADD COLUMN content_hash INTEGER");
  }
  insert_inbox_ = db_.prepare(
      "INSERT OR IGNORE INTO inbox(event_id, received_at_us, content_hash) VALUES(?, ?, ?)");
  inbox_hash_ = db_.prepare("SELECT content_hash FROM inbox WHERE event_id = ?");
  find_inbox_ = db_.prepare("SELECT 1 FROM inbox WHERE event_id = ?");
  // A row's seq is above every row's in the table and above every seq this journal assigned
  // before: the relay hands rows over in seq order and never looks below the last it handed,
  // so a seq must not come back once the rows below it were confirmed and deleted.
  insert_outbox_ = db_.prepare(
      "INSERT INTO outbox(seq, channel, topic, event_id, type, source, occurred_at_us, "
      "caused_by, payload, owner) VALUES(max(coalesce((SELECT max(seq) FROM outbox), 0), ?10) "
      "+ 1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  select_outbox_ = db_.prepare(
      "SELECT seq, channel, topic, event_id, type, source, occurred_at_us, caused_by, payload "
      "FROM outbox WHERE seq > ? AND owner = ? ORDER BY seq LIMIT ?");
  delete_outbox_ = db_.prepare("DELETE FROM outbox WHERE seq <= ? AND owner = ?");
  count_outbox_ = db_.prepare("SELECT count(*) FROM outbox WHERE owner = ?");
  count_inbox_ = db_.prepare("SELECT count(*) FROM inbox");
}

Admission Journal::record_inbox(const std::string& event_id, std::int64_t received_at_us,
                                std::uint64_t content_hash) {
  EVENTMART_REQUIRE(db_.in_transaction(), event_id);
  insert_inbox_.bind(1, event_id).bind(2, received_at_us);
  if (content_hash != 0) {
    insert_inbox_.bind(3, static_cast<std::int64_t>(content_hash));
  }  // else NULL (bindings are cleared on reset)
  insert_inbox_.run();
  if (db_.changes() == 1) return Admission::kNew;
  if (content_hash == 0) return Admission::kDuplicate;
  inbox_hash_.bind(1, event_id);
  Admission admission = Admission::kDuplicate;
  if (inbox_hash_.step() && !inbox_hash_.column_is_null(0) &&
      static_cast<std::uint64_t>(inbox_hash_.column_int64(0)) != content_hash) {
    admission = Admission::kConflict;
  }
  inbox_hash_.reset();
  return admission;
}

bool Journal::in_inbox(const std::string& event_id) {
  find_inbox_.bind(1, event_id);
  const bool found = find_inbox_.step();
  find_inbox_.reset();
  return found;
}

std::int64_t Journal::add_outbox(Channel channel, const std::string& topic,
                                 const Envelope& envelope) {
  EVENTMART_REQUIRE(db_.in_transaction(), envelope.event_id);
  insert_outbox_.bind(1, static_cast<std::int64_t>(channel))
      .bind(2, topic)
      .bind(3, envelope.event_id)
      .bind(4, static_cast<std::int64_t>(envelope.type))
      .bind(5, envelope.source)
      .bind(6, envelope.occurred_at_us)
      .bind(7, envelope.caused_by)
      .bind_blob(8, envelope.payload)
      .bind(9, owner_)
      .bind(10, last_seq_)
      .run();
  ++outbox_writes_;
  last_seq_ = db_.last_insert_rowid();
  return last_seq_;
}

std::vector<OutboxRow> Journal::pending_outbox(std::int64_t after_seq, int limit) {
  std::vector<OutboxRow> rows;
  select_outbox_.bind(1, after_seq).bind(2, owner_).bind(3, static_cast<std::int64_t>(limit));
  while (select_outbox_.step()) {
    OutboxRow row;
    row.seq = select_outbox_.column_int64(0);
    row.channel = static_cast<Channel>(select_outbox_.column_int64(1));
    row.topic = select_outbox_.column_text(2);
    row.envelope.event_id = select_outbox_.column_text(3);
    row.envelope.type = static_cast<EventType>(select_outbox_.column_int64(4));
    row.envelope.source = select_outbox_.column_text(5);
    row.envelope.occurred_at_us = select_outbox_.column_int64(6);
    row.envelope.caused_by = select_outbox_.column_text(7);
    row.envelope.payload = select_outbox_.column_blob(8);
    last_seq_ = std::max(last_seq_, row.seq);  // a row handed over: no seq at or below it again
    rows.push_back(std::move(row));
  }
  select_outbox_.reset();
  return rows;
}

void Journal::mark_sent_through(std::int64_t through_seq) {
  delete_outbox_.bind(1, through_seq).bind(2, owner_).run();
}

std::int64_t Journal::prune_inbox(std::int64_t received_before_us) {
  if (!prune_inbox_) {
    // Only a pruning service pays for this index on every insert.
    db_.exec("CREATE INDEX IF NOT EXISTS inbox_by_time ON inbox(received_at_us)");
    prune_inbox_ = db_.prepare("DELETE FROM inbox WHERE received_at_us < ?");
  }
  prune_inbox_.bind(1, received_before_us).run();
  return db_.changes();
}

std::int64_t Journal::outbox_size() {
  count_outbox_.bind(1, owner_);
  count_outbox_.step();
  const std::int64_t n = count_outbox_.column_int64(0);
  count_outbox_.reset();
  return n;
}

std::int64_t Journal::inbox_size() {
  count_inbox_.step();
  const std::int64_t n = count_inbox_.column_int64(0);
  count_inbox_.reset();
  return n;
}

}  // namespace eventmart
