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
#include <string>
#include <string_view>
#include <vector>

namespace eventmart::sim {

inline constexpr const char* kSimVfsName = "eventmart-sim";

class Disk {
 public:
  // One file: what was written, and how to get back to what was synced. Writes go to
  // `written`; the first write to a 4 KiB chunk since the last sync saves the chunk's synced
  // bytes (its pre-image) first. A sync forgets the pre-images; a power loss puts them back
  // and cuts the file to its synced size. Appending to a file (the WAL's common case) saves
  // nothing: there was nothing synced there.
  struct File {
    std::string written;
    std::uint64_t synced_size = 0;
    std::map<std::uint64_t, std::string> pre_images;  // by chunk index, since the last sync
    std::string synced() const;                       // the synced image, rebuilt
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

  // What a power loss would leave of database `name`'s files (its main file, WAL, journal):
  // taken at the moment the power goes (and what it drops is counted in stats().bytes_lost),
  // restored after the process is gone.
  using Image = std::map<std::string, std::string>;
  Image synced_image(std::string_view name);
  // Replaces database `name`'s files by `image` (written = synced = the image); files not in
  // it are gone. Counts a power loss.
  void restore(std::string_view name, const Image& image);

  const Stats& stats() const { return stats_; }

  // The VFS's view (sim/disk.cpp).
  File* find(const std::string& path);
  File& create(const std::string& path);
  void remove(const std::string& path);
  std::vector<std::unique_ptr<char[]>>& shm(const std::string& path) { return shm_[path]; }
  Stats& mutable_stats() { return stats_; }

 private:
  std::string prefix_;
  std::map<std::string, std::unique_ptr<File>> files_;
  std::map<std::string, std::vector<std::unique_ptr<char[]>>> shm_;
  Stats stats_;
};

}  // namespace eventmart::sim
