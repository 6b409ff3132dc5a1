#include "sim/disk.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <new>

#include "services/sqlite.h"

namespace eventmart::sim {
namespace {

constexpr std::uint64_t kChunk = 4096;  // the unit of dirtiness, and the sector size

// Disks by prefix ("/eventmart-sim/7/"). Worlds run on several threads at once (the swarm),
// each with its own disk: only this map is shared.
std::mutex registry_mutex;
std::map<std::string, Disk*>& registry() {
  static std::map<std::string, Disk*> disks;
  return disks;
}

Disk* disk_of(const char* path) {
  if (path == nullptr) return nullptr;
  const std::string_view p(path);
  std::lock_guard lock(registry_mutex);
  for (const auto& [prefix, disk] : registry()) {
    if (p.substr(0, prefix.size()) == prefix) return disk;
  }
  return nullptr;
}

// An open file. SQLite allocates szOsFile bytes and xOpen constructs one in place.
struct OpenFile {
  sqlite3_file base;  // first: SQLite sees a sqlite3_file*
  Disk* disk;
  std::string path;
  std::string database;                   // whose file it is ("" for a temporary file)
  Disk::File* file;                       // on the disk, or `anonymous`
  std::unique_ptr<Disk::File> anonymous;  // a temporary file without a name
};

OpenFile* open_file(sqlite3_file* f) {
  return reinterpret_cast<OpenFile*>(f);
}

int x_close(sqlite3_file* f) {
  open_file(f)->~OpenFile();
  return SQLITE_OK;
}

// SQLITE_OK, or the error the disk's fault injector wants this call to fail with.
int injected(const OpenFile& o, DiskOp op, bool grows = false) {
  DiskFaults* faults = o.disk != nullptr ? o.disk->faults() : nullptr;
  if (faults == nullptr || o.database.empty()) return SQLITE_OK;
  return faults->on_call(o.database, op, grows);
}

int x_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  OpenFile& o = *open_file(f);
  if (const int rc = injected(o, DiskOp::kRead)) return rc;
  ++o.disk->mutable_stats().reads;
  const auto want = static_cast<std::uint64_t>(amount);
  const std::uint64_t have =
      o.file->read(static_cast<char*>(out), want, static_cast<std::uint64_t>(offset));
  return have < want ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

// True while the file's machine has no power: what the dying process does is lost.
bool unpowered(const OpenFile& o) {
  return o.disk != nullptr && !o.database.empty() && o.disk->powered_off(o.database);
}

int x_write(sqlite3_file* f, const void* in, int amount, sqlite3_int64 offset) {
  OpenFile& o = *open_file(f);
  if (unpowered(o)) return SQLITE_OK;
  const auto from = static_cast<std::uint64_t>(offset);
  const auto length = static_cast<std::uint64_t>(amount);
  if (const int rc = injected(o, DiskOp::kWrite, from + length > o.file->size())) return rc;
  ++o.disk->mutable_stats().writes;
  o.file->write(static_cast<const char*>(in), length, from);
  return SQLITE_OK;
}

int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (unpowered(*open_file(f))) return SQLITE_OK;
  open_file(f)->file->truncate(static_cast<std::uint64_t>(size));
  return SQLITE_OK;
}

int x_sync(sqlite3_file* f, int) {
  OpenFile& o = *open_file(f);
  if (unpowered(o)) return SQLITE_OK;
  if (const int rc = injected(o, DiskOp::kSync)) return rc;
  ++o.disk->mutable_stats().syncs;
  o.file->sync();
  return SQLITE_OK;
}

int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  *size = static_cast<sqlite3_int64>(open_file(f)->file->size());
  return SQLITE_OK;
}

// One connection per database in the simulator: locks always succeed.
int x_lock(sqlite3_file*, int) {
  return SQLITE_OK;
}
int x_check_reserved_lock(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int x_file_control(sqlite3_file*, int, void*) {
  return SQLITE_NOTFOUND;
}
int x_sector_size(sqlite3_file*) {
  return static_cast<int>(kChunk);
}
// Powersafe overwrite, as the unix VFS production runs on says by default: a write lost to a
// power loss leaves the bytes around it in its sector as they were (the model reverts only
// what was written since the last sync). Without it SQLite pads every synced WAL commit to a
// sector boundary with copies of its last frame, a WAL production never writes. No atomic or
// safe-append writes are promised.
int x_device_characteristics(sqlite3_file*) {
  return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  OpenFile& o = *open_file(f);
  auto& regions = o.disk->shm(o.path);
  const auto index = static_cast<std::size_t>(region);
  if (regions.size() <= index) {
    if (!extend) {
      *out = nullptr;
      return SQLITE_OK;
    }
    regions.resize(index + 1);
  }
  if (!regions[index]) {
    regions[index] = std::make_unique<char[]>(static_cast<std::size_t>(size));
    std::memset(regions[index].get(), 0, static_cast<std::size_t>(size));
  }
  *out = regions[index].get();
  return SQLITE_OK;
}
int x_shm_lock(sqlite3_file*, int, int, int) {
  return SQLITE_OK;
}
void x_shm_barrier(sqlite3_file*) {}
int x_shm_unmap(sqlite3_file* f, int delete_flag) {
  OpenFile& o = *open_file(f);
  if (delete_flag) o.disk->shm(o.path).clear();
  return SQLITE_OK;
}

const sqlite3_io_methods kMethods = {2,
                                     x_close,
                                     x_read,
                                     x_write,
                                     x_truncate,
                                     x_sync,
                                     x_file_size,
                                     x_lock,
                                     x_lock,
                                     x_check_reserved_lock,
                                     x_file_control,
                                     x_sector_size,
                                     x_device_characteristics,
                                     x_shm_map,
                                     x_shm_lock,
                                     x_shm_barrier,
                                     x_shm_unmap,
                                     nullptr,
                                     nullptr};

int x_open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  f->pMethods = nullptr;
  Disk* disk = disk_of(name);
  if (name != nullptr && disk == nullptr) return SQLITE_CANTOPEN;
  auto* o = new (f) OpenFile{};
  o->disk = disk;
  if (name == nullptr) {  // a temporary file: private, gone when closed
    if (disk == nullptr) {
      o->~OpenFile();
      return SQLITE_CANTOPEN;  // only named databases live on a simulated disk
    }
    o->anonymous = std::make_unique<Disk::File>(disk->pool());
    o->file = o->anonymous.get();
  } else {
    o->path = name;
    o->database = disk->database_of(o->path);
    Disk::File* existing = disk->find(o->path);
    if (existing == nullptr && !(flags & SQLITE_OPEN_CREATE)) {
      o->~OpenFile();
      return SQLITE_CANTOPEN;
    }
    o->file = existing != nullptr ? existing : &disk->create(o->path);
  }
  if (out_flags != nullptr) *out_flags = flags;
  f->pMethods = &kMethods;
  return SQLITE_OK;
}

int x_delete(sqlite3_vfs*, const char* name, int) {
  Disk* disk = disk_of(name);
  if (disk != nullptr && !disk->powered_off(disk->database_of(name))) disk->remove(name);
  return SQLITE_OK;
}

int x_access(sqlite3_vfs*, const char* name, int, int* out) {
  Disk* disk = disk_of(name);
  *out = disk != nullptr && disk->find(name) != nullptr ? 1 : 0;
  return SQLITE_OK;
}

int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  sqlite3_snprintf(n, out, "%s", name);
  return SQLITE_OK;
}

int x_randomness(sqlite3_vfs*, int n, char* out) {
  for (int i = 0; i < n; ++i) out[i] = static_cast<char>(0x5a ^ i);
  return n;
}

int x_sleep(sqlite3_vfs*, int microseconds) {
  return microseconds;
}

int x_current_time(sqlite3_vfs*, double* now) {
  *now = 2461371.5;  // a fixed Julian day: the simulator has no wall clock
  return SQLITE_OK;
}

int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* now) {
  *now = static_cast<sqlite3_int64>(2461371.5 * 86'400'000.0);
  return SQLITE_OK;
}

int x_get_last_error(sqlite3_vfs*, int, char*) {
  return 0;
}

sqlite3_vfs make_vfs() {
  sqlite3_vfs vfs{};
  vfs.iVersion = 2;
  vfs.szOsFile = sizeof(OpenFile);
  vfs.mxPathname = 512;
  vfs.zName = kSimVfsName;
  vfs.xOpen = x_open;
  vfs.xDelete = x_delete;
  vfs.xAccess = x_access;
  vfs.xFullPathname = x_full_pathname;
  vfs.xRandomness = x_randomness;
  vfs.xSleep = x_sleep;
  vfs.xCurrentTime = x_current_time;
  vfs.xGetLastError = x_get_last_error;
  vfs.xCurrentTimeInt64 = x_current_time_int64;
  return vfs;
}

void register_vfs_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    prepare_sqlite();  // its configuration must come before SQLite initialises
    static sqlite3_vfs vfs = make_vfs();
    sqlite3_vfs_register(&vfs, 0);
  });
}

std::atomic<std::uint64_t> next_disk{1};

}  // namespace

Disk::Disk() : prefix_("/eventmart-sim/" + std::to_string(next_disk++) + "/") {
  register_vfs_once();
  std::lock_guard lock(registry_mutex);
  registry()[prefix_] = this;
}

Disk::~Disk() {
  std::lock_guard lock(registry_mutex);
  registry().erase(prefix_);
}

std::string Disk::path_of(std::string_view name) const {
  return prefix_ + std::string(name) + ".db";
}

std::string Disk::database_of(std::string_view path) const {
  if (path.substr(0, prefix_.size()) != prefix_) return {};
  path.remove_prefix(prefix_.size());
  return std::string(path.substr(0, path.rfind(".db")));
}

Disk::File* Disk::find(const std::string& path) {
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : it->second.get();
}

Disk::File& Disk::create(const std::string& path) {
  auto& slot = files_[path];
  if (!slot) slot = std::make_unique<File>(pool_);
  return *slot;
}

void Disk::remove(const std::string& path) {
  files_.erase(path);
}

std::unique_ptr<char[]> Disk::ChunkPool::take() {
  if (spare_.empty()) return std::make_unique<char[]>(kChunk);
  std::unique_ptr<char[]> chunk = std::move(spare_.back());
  spare_.pop_back();
  return chunk;
}

void Disk::ChunkPool::give(std::unique_ptr<char[]> chunk) {
  if (chunk) spare_.push_back(std::move(chunk));
}

Disk::File::~File() {
  for (auto& c : chunks_) pool_->give(std::move(c));
  for (auto& c : pre_images_) pool_->give(std::move(c));
}

std::uint64_t Disk::File::read(char* out, std::uint64_t n, std::uint64_t offset) const {
  const std::uint64_t have = offset >= size_ ? 0 : std::min(n, size_ - offset);
  for (std::uint64_t done = 0; done < have;) {
    const std::uint64_t at = offset + done;
    const std::uint64_t in_chunk = std::min(have - done, kChunk - at % kChunk);
    std::memcpy(out + done, chunks_[at / kChunk].get() + at % kChunk, in_chunk);
    done += in_chunk;
  }
  if (have < n) std::memset(out + have, 0, n - have);
  return have;
}

char* Disk::File::chunk_for_write(std::uint64_t index, bool whole) {
  if (index >= chunks_.size()) {
    chunks_.resize(index + 1);
    pre_images_.resize(index + 1);
  }
  std::unique_ptr<char[]>& chunk = chunks_[index];
  const bool was_synced = index * kChunk < synced_size_;
  if (was_synced && !pre_images_[index]) {
    // The synced bytes are kept before anything overwrites them.
    dirty_.push_back(index);
    if (whole) {
      pre_images_[index] = std::move(chunk);  // all of it is overwritten: keep it as it is
    } else {
      pre_images_[index] = pool_->take();
      std::memcpy(pre_images_[index].get(), chunk.get(), kChunk);
    }
  }
  if (!chunk) {
    chunk = pool_->take();
    if (!whole) std::memset(chunk.get(), 0, kChunk);
  }
  return chunk.get();
}

void Disk::File::write(const char* in, std::uint64_t n, std::uint64_t offset) {
  if (offset > size_) {
    // A hole: the bytes between the end and `offset` read as zeros.
    const std::uint64_t from = size_;
    size_ = offset;
    for (std::uint64_t at = from; at < offset;) {
      const std::uint64_t in_chunk = std::min(offset - at, kChunk - at % kChunk);
      std::memset(chunk_for_write(at / kChunk, false) + at % kChunk, 0, in_chunk);
      at += in_chunk;
    }
  }
  for (std::uint64_t done = 0; done < n;) {
    const std::uint64_t at = offset + done;
    const std::uint64_t in_chunk = std::min(n - done, kChunk - at % kChunk);
    // Bytes of the chunk past the old end were never written: no need to keep them.
    const bool whole = in_chunk == kChunk;
    std::memcpy(chunk_for_write(at / kChunk, whole) + at % kChunk, in + done, in_chunk);
    done += in_chunk;
  }
  size_ = std::max(size_, offset + n);
}

void Disk::File::truncate(std::uint64_t size) {
  if (size >= size_) {
    if (size > size_) write(nullptr, 0, size);  // grows: zeros (a hole)
    return;
  }
  const std::uint64_t keep = (size + kChunk - 1) / kChunk;
  for (std::uint64_t c = keep; c < chunks_.size(); ++c) {
    if (c * kChunk < synced_size_ && !pre_images_[c]) {
      dirty_.push_back(c);
      pre_images_[c] = std::move(chunks_[c]);  // a power loss brings it back
    } else {
      pool_->give(std::move(chunks_[c]));
    }
  }
  if (size % kChunk != 0) {
    // The cut chunk's tail reads as zeros if the file grows again.
    char* last = chunk_for_write(size / kChunk, false);
    std::memset(last + size % kChunk, 0, kChunk - size % kChunk);
  }
  size_ = size;
}

void Disk::File::sync() {
  for (std::uint64_t c : dirty_) pool_->give(std::move(pre_images_[c]));
  dirty_.clear();
  synced_size_ = size_;
}

std::uint64_t Disk::File::unsynced_bytes() const {
  return (size_ > synced_size_ ? size_ - synced_size_ : 0) + dirty_.size() * kChunk;
}

std::string Disk::File::synced() const {
  std::string image(synced_size_, '\0');
  for (std::uint64_t at = 0; at < synced_size_; at += kChunk) {
    const std::uint64_t c = at / kChunk;
    const char* bytes = c < pre_images_.size() && pre_images_[c] ? pre_images_[c].get()
                        : c < chunks_.size() && chunks_[c]       ? chunks_[c].get()
                                                                 : nullptr;
    if (bytes != nullptr)
      image.replace(at, std::min(kChunk, synced_size_ - at), bytes,
                    std::min(kChunk, synced_size_ - at));
  }
  return image;
}

void Disk::File::revert() {
  for (std::uint64_t c : dirty_) {
    pool_->give(std::move(chunks_[c]));
    chunks_[c] = std::move(pre_images_[c]);
  }
  dirty_.clear();
  const std::uint64_t keep = (synced_size_ + kChunk - 1) / kChunk;
  for (std::uint64_t c = keep; c < chunks_.size(); ++c) pool_->give(std::move(chunks_[c]));
  chunks_.resize(std::min<std::size_t>(chunks_.size(), keep));
  pre_images_.resize(chunks_.size());
  if (synced_size_ % kChunk != 0 && keep <= chunks_.size() && chunks_[keep - 1]) {
    std::memset(chunks_[keep - 1].get() + synced_size_ % kChunk, 0, kChunk - synced_size_ % kChunk);
  }
  size_ = synced_size_;
}

void Disk::power_off(std::string_view name) {
  ++stats_.power_losses;
  const std::string base = path_of(name);
  for (auto& [path, file] : files_) {
    if (path.compare(0, base.size(), base) != 0) continue;
    stats_.bytes_lost += file->unsynced_bytes();
    file->revert();
  }
  off_.emplace(name);
}

void Disk::power_on(std::string_view name) {
  off_.erase(std::string(name));
  shm_.erase(path_of(name));  // the WAL index is memory: rebuilt from the WAL at the next open
}

}  // namespace eventmart::sim
