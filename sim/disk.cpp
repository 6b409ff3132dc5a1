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
  Disk::File* file;                       // on the disk, or `anonymous`
  std::unique_ptr<Disk::File> anonymous;  // a temporary file without a name
};

OpenFile* open_file(sqlite3_file* f) {
  return reinterpret_cast<OpenFile*>(f);
}

// Saves the synced bytes of every chunk [offset, offset + length) touches that still holds
// synced bytes and was not saved since the last sync.
void save_pre_images(Disk::File& file, std::uint64_t offset, std::uint64_t length) {
  if (length == 0 || offset >= file.synced_size) return;
  const std::uint64_t first = offset / kChunk;
  const std::uint64_t last = (std::min(offset + length, file.synced_size) - 1) / kChunk;
  for (std::uint64_t c = first; c <= last; ++c) {
    auto [it, fresh] = file.pre_images.try_emplace(c);
    if (!fresh) continue;
    const std::uint64_t from = c * kChunk;
    const std::uint64_t end = std::min(
        {from + kChunk, file.synced_size, static_cast<std::uint64_t>(file.written.size())});
    if (end > from) it->second.assign(file.written, from, end - from);
  }
}

int x_close(sqlite3_file* f) {
  open_file(f)->~OpenFile();
  return SQLITE_OK;
}

int x_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  OpenFile& o = *open_file(f);
  ++o.disk->mutable_stats().reads;
  const std::string& data = o.file->written;
  const auto want = static_cast<std::uint64_t>(amount);
  const auto from = static_cast<std::uint64_t>(offset);
  const std::uint64_t have =
      from >= data.size() ? 0 : std::min<std::uint64_t>(want, data.size() - from);
  if (have > 0) std::memcpy(out, data.data() + from, have);
  if (have < want) {
    std::memset(static_cast<char*>(out) + have, 0, want - have);
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

int x_write(sqlite3_file* f, const void* in, int amount, sqlite3_int64 offset) {
  OpenFile& o = *open_file(f);
  ++o.disk->mutable_stats().writes;
  std::string& data = o.file->written;
  const auto from = static_cast<std::uint64_t>(offset);
  const auto length = static_cast<std::uint64_t>(amount);
  const char* bytes = static_cast<const char*>(in);
  save_pre_images(*o.file, from, length);
  if (from == data.size()) {
    data.append(bytes, length);  // the common case: a WAL frame at the end
  } else {
    if (data.size() < from + length) data.resize(from + length, '\0');
    std::memcpy(data.data() + from, bytes, length);
  }
  return SQLITE_OK;
}

int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  Disk::File& file = *open_file(f)->file;
  const auto to = static_cast<std::uint64_t>(size);
  // What a power loss would bring back of the part cut off.
  if (to < file.written.size()) save_pre_images(file, to, file.written.size() - to);
  file.written.resize(static_cast<std::size_t>(to));
  return SQLITE_OK;
}

int x_sync(sqlite3_file* f, int) {
  OpenFile& o = *open_file(f);
  ++o.disk->mutable_stats().syncs;
  o.file->pre_images.clear();
  o.file->synced_size = o.file->written.size();
  return SQLITE_OK;
}

int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  *size = static_cast<sqlite3_int64>(open_file(f)->file->written.size());
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
int x_device_characteristics(sqlite3_file*) {
  return 0;  // promise nothing: no atomic or safe-append writes
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
    o->anonymous = std::make_unique<Disk::File>();
    o->file = o->anonymous.get();
    if (disk == nullptr) {
      o->~OpenFile();
      return SQLITE_CANTOPEN;  // only named databases live on a simulated disk
    }
  } else {
    o->path = name;
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
  if (Disk* disk = disk_of(name)) disk->remove(name);
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

Disk::File* Disk::find(const std::string& path) {
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : it->second.get();
}

Disk::File& Disk::create(const std::string& path) {
  auto& slot = files_[path];
  if (!slot) slot = std::make_unique<File>();
  return *slot;
}

void Disk::remove(const std::string& path) {
  files_.erase(path);
}

std::string Disk::File::synced() const {
  std::string image = written;
  for (const auto& [chunk, bytes] : pre_images) {
    const std::uint64_t from = chunk * kChunk;
    if (image.size() < from + bytes.size()) image.resize(from + bytes.size(), '\0');
    image.replace(from, bytes.size(), bytes);
  }
  image.resize(synced_size, '\0');
  return image;
}

Disk::Image Disk::synced_image(std::string_view name) {
  const std::string base = path_of(name);
  Image image;
  for (const auto& [path, file] : files_) {
    if (path.compare(0, base.size(), base) != 0) continue;
    image[path] = file->synced();
    const std::uint64_t appended =
        file->written.size() > file->synced_size ? file->written.size() - file->synced_size : 0;
    stats_.bytes_lost += appended + file->pre_images.size() * kChunk;
  }
  return image;
}

void Disk::restore(std::string_view name, const Image& image) {
  ++stats_.power_losses;
  const std::string base = path_of(name);
  std::erase_if(files_,
                [&](const auto& entry) { return entry.first.compare(0, base.size(), base) == 0; });
  for (const auto& [path, bytes] : image) {
    File& file = create(path);
    file.written = bytes;
    file.synced_size = bytes.size();
    file.pre_images.clear();
  }
  shm_.erase(base);  // the WAL index is memory: rebuilt from the WAL at the next open
}

}  // namespace eventmart::sim
