// The simulated machine's disk, for the services' real SQLite databases: an SQLite VFS
// ("eventmart-sim") that keeps every file in memory as two images, what was written and what
// was synced (xSync). SQLite's own pager, WAL and recovery code run unchanged on it.
//
// The model:
//  - a process crash keeps everything written (the operating system's page cache survives);
//  - a power loss keeps, for every file, only what was synced: each write since the file's
//    last sync is lost whole (no torn pages: a lost write leaves the bytes as they were
//    synced). The WAL index (-shm) is memory and is rebuilt from the WAL when the database is
//    opened again, as after a real reboot.
// Under this model SQLite promises: a transaction committed with synchronous=FULL in WAL mode
// survives (the WAL is synced at every commit); with synchronous=NORMAL the WAL is synced
// only at checkpoints, so the last commits can be lost, but the database is never corrupt.
//
// Production never uses this VFS. Deterministic: no clock, no randomness (xRandomness gives
// a fixed pattern; xCurrentTime a fixed date).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace eventmart::sim {

inline constexpr const char* kSimVfsName = "eventmart-sim";

enum class DiskOp : std::uint8_t { kRead, kWrite, kSync };

// Decides whether one VFS call on a database's files fails; the simulator's fault injector
// implements it. A failed call changes nothing on the disk (the model: the error is reported
// before anything reaches the medium; a failed sync leaves the unsynced writes unsynced).
class DiskFaults {
 public:
  virtual ~DiskFaults() = default;
  // SQLITE_OK, or the result code the call returns (SQLITE_IOERR_READ, SQLITE_IOERR_WRITE,
  // SQLITE_IOERR_FSYNC, SQLITE_FULL). `database` is the name given to path_of(); `grows` says
  // a write reaches past the file's end (a full disk refuses those and nothing else: writes
  // over bytes the file already has need no new blocks).
  virtual int on_call(std::string_view database, DiskOp op, bool grows) = 0;
};

class Disk {
 public:
  // Spare 4 KiB chunks, so that a run's steady state allocates nothing.
  class ChunkPool {
   public:
    std::unique_ptr<char[]> take();
    void give(std::unique_ptr<char[]> chunk);

   private:
    std::vector<std::unique_ptr<char[]>> spare_;
  };

  // One file: what was written, and how to get back to what was synced. The written image is
  // a row of 4 KiB chunks. The first write to a chunk since the last sync keeps the chunk's
  // synced bytes (its pre-image) first: a write over the whole chunk just keeps the old chunk
  // and takes a fresh one, a partial write copies it. A sync forgets the pre-images; a power
  // loss puts them back and cuts the file to its synced size. Appending (the WAL's common
  // case) keeps nothing: there was nothing synced there.
  class File {
   public:
    explicit File(ChunkPool& pool) : pool_(&pool) {}
    ~File();
    File(const File&) = delete;
    File& operator=(const File&) = delete;

    std::uint64_t size() const { return size_; }
    // Copies [offset, offset + n) into `out`; bytes past the end read as zeros. Returns the
    // bytes that were inside the file.
    std::uint64_t read(char* out, std::uint64_t n, std::uint64_t offset) const;
    void write(const char* in, std::uint64_t n, std::uint64_t offset);
    void truncate(std::uint64_t size);
    void sync();
    std::uint64_t unsynced_bytes() const;  // what a power loss would drop, about
    std::string synced() const;            // the synced image
    void revert();                         // written = what was synced (a power loss)

   private:
    char* chunk_for_write(std::uint64_t index, bool whole);
    ChunkPool* pool_;
    std::vector<std::unique_ptr<char[]>> chunks_;      // the written image
    std::vector<std::unique_ptr<char[]>> pre_images_;  // by chunk: synced bytes (or null)
    std::vector<std::uint64_t> dirty_;                 // chunks with a pre-image
    std::uint64_t size_ = 0;
    std::uint64_t synced_size_ = 0;
  };

  struct Stats {
    std::uint64_t reads = 0;
    std::uint64_t writes = 0;
    std::uint64_t syncs = 0;
    std::uint64_t power_losses = 0;
    std::uint64_t bytes_lost = 0;  // written but not synced when the power went
  };

  Disk();  // registers the VFS (once per process) and this disk
  ~Disk();
  Disk(const Disk&) = delete;
  Disk& operator=(const Disk&) = delete;

  // Where the database `name` lives on this disk; open it with kSimVfsName.
  std::string path_of(std::string_view name) const;

  // The power goes for database `name`'s machine: each of its files (main file, WAL,
  // journal) is put back to what was synced, in place (what that drops is counted in
  // stats().bytes_lost), and until power_on() nothing the dying process still does reaches
  // them (its connection's close would checkpoint, sync and delete the WAL).
  void power_off(std::string_view name);
  // The machine is back: its files take writes again; the WAL index (-shm, memory) is gone
  // and is rebuilt from the WAL at the next open, as after a real reboot.
  void power_on(std::string_view name);
  bool powered_off(std::string_view name) const { return off_.count(std::string(name)) > 0; }

  const Stats& stats() const { return stats_; }

  // Where every VFS call on this disk's databases asks whether to fail (null: never).
  void set_faults(DiskFaults* faults) { faults_ = faults; }
  DiskFaults* faults() const { return faults_; }
  // The database a path on this disk belongs to ("inventory-intel" for its -wal too).
  std::string database_of(std::string_view path) const;

  // The VFS's view (sim/disk.cpp).
  File* find(const std::string& path);
  File& create(const std::string& path);
  void remove(const std::string& path);
  std::vector<std::unique_ptr<char[]>>& shm(const std::string& path) { return shm_[path]; }
  Stats& mutable_stats() { return stats_; }
  ChunkPool& pool() { return pool_; }

 private:
  std::string prefix_;
  ChunkPool pool_;  // before the files: they give their chunks back to it
  std::map<std::string, std::unique_ptr<File>> files_;
  std::map<std::string, std::vector<std::unique_ptr<char[]>>> shm_;
  Stats stats_;
  DiskFaults* faults_ = nullptr;
  std::set<std::string, std::less<>> off_;  // databases whose machine has no power
};

}  // namespace eventmart::sim
