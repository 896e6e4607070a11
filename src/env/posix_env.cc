// POSIX implementation of the Env seam.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>

#include "env/mmap_guard.h"
#include "env/residency_guess.h"
#include "varve/env.h"

namespace varve {
namespace {

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string msg = what + " " + path + ": " + std::strerror(err);
  return Status::IOError(msg);
}

// Writes all of data, retrying short writes, and adds what was written to *size: at the file
// offset (write) or at offset *size (pwrite).
Status WriteAll(int fd, const std::string& path, std::string_view data, uint64_t* size,
                bool at_size) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = at_size ? ::pwrite(fd, p, left, static_cast<off_t>(*size)) : ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", path, errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
    *size += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    return WriteAll(fd_, path_, data, &size_, /*at_size=*/false);
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_, errno);
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return ErrnoStatus("close", path_, errno);
    return Status::Ok();
  }

  uint64_t Size() const override { return size_; }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;
};

// Gathers appends into an aligned chunk; a full chunk is written with O_DIRECT (no copy into the
// page cache) by a flusher thread while the next one fills, so the device's write latency
// overlaps the caller's work (at most one chunk in flight; its error is returned by the next
// call). Once the file is no longer direct (the unaligned tail at Sync or Close, a short write,
// or a file system that refuses the I/O with EINVAL) O_DIRECT is cleared and the rest is written
// through the page cache by the caller, after the chunk in flight.
class PosixDirectWritableFile final : public WritableFile {
 public:
  static constexpr size_t kAlign = 4096;
  static constexpr size_t kChunk = 1 << 20;

  // fill and flush: kChunk bytes each, kAlign-aligned; owned.
  PosixDirectWritableFile(std::string path, int fd, char* fill, char* flush)
      : path_(std::move(path)), fd_(fd), fill_(fill), flush_(flush) {
    flusher_ = std::thread([this] { RunFlusher(); });
  }
  ~PosixDirectWritableFile() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    flusher_.join();
    if (fd_ >= 0) ::close(fd_);
    std::free(fill_);
    std::free(flush_);
  }

  Status Append(std::string_view data) override {
    while (!data.empty()) {
      if (!direct_) {
        VARVE_RETURN_IF_ERROR(WaitFlushed());
        VARVE_RETURN_IF_ERROR(WriteFillBuffered());
        return WriteAll(fd_, path_, data, &size_, /*at_size=*/false);
      }
      const size_t take = std::min(kChunk - used_, data.size());
      std::memcpy(fill_ + used_, data.data(), take);
      used_ += take;
      data.remove_prefix(take);
      if (used_ == kChunk) VARVE_RETURN_IF_ERROR(StartFlush());
    }
    return Status::Ok();
  }

  Status Sync() override {
    VARVE_RETURN_IF_ERROR(WriteTail());
    if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_, errno);
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    Status s = WriteTail();
    int rc = ::close(fd_);
    fd_ = -1;
    VARVE_RETURN_IF_ERROR(s);
    if (rc != 0) return ErrnoStatus("close", path_, errno);
    return Status::Ok();
  }

  uint64_t Size() const override { return size_ + used_; }

 private:
  // Hands the full fill buffer to the flusher (after the chunk before it is written).
  Status StartFlush() {
    VARVE_RETURN_IF_ERROR(WaitFlushed());
    std::lock_guard<std::mutex> l(mu_);
    std::swap(fill_, flush_);
    flush_bytes_ = used_;
    size_ += used_;
    used_ = 0;
    cv_.notify_all();
    return Status::Ok();
  }

  Status WaitFlushed() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return flush_bytes_ == 0; });
    return flush_status_;
  }

  void RunFlusher() {
    std::unique_lock<std::mutex> l(mu_);
    while (true) {
      cv_.wait(l, [&] { return stop_ || flush_bytes_ > 0; });
      if (flush_bytes_ == 0) return;  // stop_
      l.unlock();
      Status s = flush_status_.ok() ? WriteChunk(flush_, flush_bytes_) : Status::Ok();
      l.lock();
      if (flush_status_.ok()) flush_status_ = s;
      flush_bytes_ = 0;
      cv_.notify_all();
    }
  }

  // Writes n bytes of p (a multiple of kAlign, aligned) at the file's offset: with O_DIRECT while
  // the file is direct, the rest (after a refusal or a short write) through the page cache.
  // Called by the flusher, or by the caller when no chunk is in flight.
  Status WriteChunk(const char* p, size_t n) {
    size_t done = 0;
    while (done < n && direct_) {
      ssize_t w = ::write(fd_, p + done, n - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno != EINVAL) return ErrnoStatus("write", path_, errno);
        VARVE_RETURN_IF_ERROR(StopDirect());
        break;
      }
      done += static_cast<size_t>(w);
      if (done % kAlign != 0) VARVE_RETURN_IF_ERROR(StopDirect());
    }
    uint64_t ignored = 0;
    if (done < n)
      return WriteAll(fd_, path_, std::string_view(p + done, n - done), &ignored, false);
    return Status::Ok();
  }

  Status WriteFillBuffered() {
    uint64_t ignored = 0;
    Status s = WriteAll(fd_, path_, std::string_view(fill_, used_), &ignored, false);
    size_ += used_;
    used_ = 0;
    return s;
  }

  Status WriteTail() {
    VARVE_RETURN_IF_ERROR(WaitFlushed());
    if (direct_) {
      const size_t aligned = used_ & ~(kAlign - 1);
      VARVE_RETURN_IF_ERROR(WriteChunk(fill_, aligned));
      std::memmove(fill_, fill_ + aligned, used_ - aligned);
      size_ += aligned;
      used_ -= aligned;
      if (direct_) VARVE_RETURN_IF_ERROR(StopDirect());
    }
    return WriteFillBuffered();
  }

  Status StopDirect() {
    direct_ = false;
    int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) {
      return ErrnoStatus("fcntl", path_, errno);
    }
    return Status::Ok();
  }

  std::string path_;
  int fd_;
  char* fill_;         // being filled by Append
  size_t used_ = 0;    // bytes in fill_
  uint64_t size_ = 0;  // bytes written or handed to the flusher
  // Set by the flusher while a chunk is in flight, or by the caller when none is.
  std::atomic<bool> direct_{true};

  std::mutex mu_;
  std::condition_variable cv_;  // flush_bytes_ or stop_ changed
  char* flush_;                 // the chunk in flight
  size_t flush_bytes_ = 0;      // 0: none in flight
  Status flush_status_;         // the flusher's first error
  bool stop_ = false;
  std::thread flusher_;
};

// Appends by copying into a MAP_SHARED mapping: no system call per Append. The file is grown
// ahead of the data with fallocate (blocks reserved, so a full disk is an error at the reserve,
// not a SIGBUS at writeback) and cut back to the data at Close. A copy that raises SIGBUS
// anyway (a disk error on a page being read back) is an I/O error.
class PosixMappedWritableFile final : public WritableFile {
 public:
  static constexpr uint64_t kReserveStep = 1u << 20;
  static constexpr size_t kMaxMappedAppend = 4096;

  PosixMappedWritableFile(std::string path, int fd, uint64_t size, uint64_t map_bytes,
                          bool write_zeros)
      : path_(std::move(path)), fd_(fd), size_(size), reserved_(size), write_zeros_(write_zeros) {
    void* p = map_bytes == 0
                  ? MAP_FAILED
                  : ::mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p != MAP_FAILED) {  // else every Append uses write(2)
      InstallSigbusHandler();
      map_ = static_cast<char*>(p);
      map_length_ = map_bytes;
    }
  }
  ~PosixMappedWritableFile() override { (void)Close(); }

  Status Append(std::string_view data) override {
    uint64_t end = size_ + data.size();
    if (map_ == nullptr || end > map_length_ || end < size_) return AppendWrite(data);
    if (end > reserved_) VARVE_RETURN_IF_ERROR(Reserve(end));
    // A large append amortises its system call, and write(2) takes no page faults.
    if (data.size() >= kMaxMappedAppend) return AppendWrite(data);
    if (!GuardedCopy(map_ + size_, data.data(), data.size(), /*forward=*/true)) {
      return Status::IOError("write " + path_ + ": I/O error at offset " + std::to_string(size_) +
                             " (SIGBUS while copying into the mapping)");
    }
    size_ = end;
    return Status::Ok();
  }

  Status Sync() override {
    std::shared_lock lock(mu_);        // syncs may overlap (group commit)
    if (fd_ < 0) return Status::Ok();  // closed: nothing left to sync through this handle
    if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_, errno);
    return Status::Ok();
  }

  Status Close() override {
    std::lock_guard lock(mu_);
    if (fd_ < 0) return Status::Ok();
    Status s;
    if (map_ != nullptr) ::munmap(map_, map_length_);
    map_ = nullptr;
    if (reserved_ > size_) {
      // Durable before the caller writes a hint that describes the cut size.
      if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
        s = ErrnoStatus("ftruncate", path_, errno);
      } else if (::fsync(fd_) != 0) {
        s = ErrnoStatus("fsync", path_, errno);
      }
    }
    if (::close(fd_) != 0 && s.ok()) s = ErrnoStatus("close", path_, errno);
    fd_ = -1;
    return s;
  }

  uint64_t Size() const override { return size_; }

 private:
  // Grows the file to cover end, a step ahead where the disk has room.
  Status Reserve(uint64_t end) {
    // Whole steps: a range of zeros (write_zeros_) is then dropped from the cache to its end.
    uint64_t want = std::max(end, reserved_ + kReserveStep);
    want = std::min(map_length_, (want + kReserveStep - 1) / kReserveStep * kReserveStep);
    // Only the new range: reserving from 0 makes the file system walk every block already held
    // (on tmpfs, every page: a quadratic cost over a segment).
    auto reserve = [&](uint64_t to) {
      return write_zeros_ ? WriteZeros(to)
                          : ::posix_fallocate(fd_, static_cast<off_t>(reserved_),
                                              static_cast<off_t>(to - reserved_));
    };
    int rc = want > reserved_ ? reserve(want) : 0;
    if (rc == ENOSPC && want > end) {
      want = end;  // take what is left: only the data must fit
      rc = want > reserved_ ? reserve(want) : 0;
    }
    if (rc == EOPNOTSUPP || rc == EINVAL) {
      // No reservations here: the size alone (a full disk then shows as SIGBUS in the copy).
      rc = ::ftruncate(fd_, static_cast<off_t>(want)) == 0 ? 0 : errno;
    }
    if (rc != 0) return ErrnoStatus(write_zeros_ ? "write" : "fallocate", path_, rc);
    reserved_ = std::max(reserved_, want);  // zeros written before ENOSPC may reach past want
    return Status::Ok();
  }

  // Reserves [reserved_, to) with written zeros (a full disk fails the write, as it fails
  // fallocate), waits for their writeback, then drops them from the page cache: a page the
  // writer later dirties is then read back as a small folio, where a cached zero range sits in
  // large folios that each fdatasync would write back whole (2 MiB per sync on Linux 6.18).
  // Returns 0 or an errno; reserved_ covers what was written either way.
  int WriteZeros(uint64_t to) {
    static const std::string zeros(256 << 10, '\0');
    const uint64_t from = reserved_;
    while (reserved_ < to) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), to - reserved_));
      ssize_t w = ::pwrite(fd_, zeros.data(), n, static_cast<off_t>(reserved_));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return w < 0 ? errno : ENOSPC;
      reserved_ += static_cast<uint64_t>(w);
    }
    if (::sync_file_range(fd_, static_cast<off_t>(from), static_cast<off_t>(to - from),
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                              SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
      return errno;
    }
    // Only whole pages past the data are dropped; the writer has not mapped them yet.
    ::posix_fadvise(fd_, static_cast<off_t>(from), static_cast<off_t>(to - from),
                    POSIX_FADV_DONTNEED);
    return 0;
  }

  Status AppendWrite(std::string_view data) {
    Status s = WriteAll(fd_, path_, data, &size_, /*at_size=*/true);
    reserved_ = std::max(reserved_, size_);
    return s;
  }

  std::string path_;
  std::shared_mutex mu_;  // Syncs (the sync thread, group commits) against Close
  int fd_;
  uint64_t size_;      // data bytes
  uint64_t reserved_;  // file size: data plus the zeros reserved after it
  const bool write_zeros_;
  char* map_ = nullptr;
  uint64_t map_length_ = 0;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  static constexpr size_t kMaxMappedRead = 4096;

  PosixRandomAccessFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override {
    if (map_ != nullptr) ::munmap(map_, map_length_);
    ::close(fd_);
  }

  void MapForReads(uint64_t length) override {
    if (map_ != nullptr || length == 0) return;
    void* p = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) return;  // reads keep using pread
    ::madvise(p, length, MADV_RANDOM);
    InstallSigbusHandler();
    map_ = static_cast<char*>(p);
    map_length_ = length;
  }

  Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    // A larger read comes from the mapping only where its pages are cached (ResidencyGuess):
    // otherwise pread makes one request to the disk, where a copy from the mapping would fault
    // in (and wait for) one page at a time.
    if (MappedRead(offset, n, [&] { return GuardedCopy(scratch, map_ + offset, n); })) return n;
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, scratch + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("pread", path_, errno);
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

  bool VisitMapped(uint64_t offset, size_t n, void (*fn)(const char* data, void* arg),
                   void* arg) const override {
    return MappedRead(offset, n, [&] {
      const char* data = map_ + offset;
      return RunGuarded([&] { fn(data, arg); });
    });
  }

  Result<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoStatus("fstat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  void AdviseRandom() override { ::posix_fadvise(fd_, 0, 0, POSIX_FADV_RANDOM); }
  void AdviseSequential() override { ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL); }
  void AdviseWillNeed(uint64_t offset, uint64_t n) override {
    ::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(n), POSIX_FADV_WILLNEED);
  }

 private:
  static constexpr size_t kMaxResidentCheck = 64 << 10;  // larger reads always use pread

  // Runs copy() (true if it read the mapping without SIGBUS) if [offset, offset + n) should come
  // from the mapping (ResidencyGuess); false if it should not, or could not.
  template <typename Copy>
  bool MappedRead(uint64_t offset, size_t n, Copy&& copy) const {
    if (map_ == nullptr || offset + n > map_length_ || offset + n < offset) return false;
    if (n <= kMaxMappedRead) return copy();
    if (n > kMaxResidentCheck) return false;
    ResidencyGuess& guess = tls_residency_guess;
    switch (guess.Next()) {
      case ResidencyGuess::Plan::kPread:
        return false;
      case ResidencyGuess::Plan::kCheck: {
        const bool cached = AllPagesCached(offset, n);
        guess.Checked(cached);
        return cached && copy();
      }
      case ResidencyGuess::Plan::kTrust:
        break;
    }
    const auto start = std::chrono::steady_clock::now();
    const bool ok = copy();
    guess.Trusted(ok && std::chrono::steady_clock::now() - start < ResidencyGuess::kSlowRead);
    return ok;
  }

  bool AllPagesCached(uint64_t offset, size_t n) const {
    if (n > kMaxResidentCheck) return false;
    static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    uint64_t first = offset / page * page;
    size_t pages = static_cast<size_t>((offset + n - first + page - 1) / page);
    unsigned char vec[kMaxResidentCheck / 4096 + 2];
    if (pages > sizeof(vec)) return false;
    if (::mincore(map_ + first, pages * page, vec) != 0) return false;
    for (size_t i = 0; i < pages; ++i) {
      if ((vec[i] & 1) == 0) return false;
    }
    return true;
  }

  std::string path_;
  int fd_;
  char* map_ = nullptr;
  uint64_t map_length_ = 0;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  int fd_;
};

// Opens path with flags (creating it 0644 if asked) and reports its size.
Result<int> OpenWithSize(const std::string& path, int flags, uint64_t* size) {
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus("fstat", path, err);
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd, 0));
  }

  Result<std::unique_ptr<WritableFile>> NewDirectWritableFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
    if (fd < 0 && errno == EINVAL) return NewWritableFile(path);  // e.g. tmpfs
    if (fd < 0) return ErrnoStatus("open", path, errno);
    auto alloc = [] {
      return static_cast<char*>(
          std::aligned_alloc(PosixDirectWritableFile::kAlign, PosixDirectWritableFile::kChunk));
    };
    char* fill = alloc();
    char* flush = alloc();
    if (fill == nullptr || flush == nullptr) {
      std::free(fill);
      std::free(flush);
      ::close(fd);
      return Status::IOError("open " + path + ": out of memory for the write buffers");
    }
    return std::unique_ptr<WritableFile>(new PosixDirectWritableFile(path, fd, fill, flush));
  }

  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override {
    uint64_t size;
    VARVE_ASSIGN_OR_RETURN(int fd, OpenWithSize(path, O_WRONLY | O_APPEND | O_CLOEXEC, &size));
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd, size));
  }

  Result<std::unique_ptr<WritableFile>> NewMappedWritableFile(const std::string& path,
                                                              uint64_t map_bytes, bool truncate,
                                                              bool write_zeros) override {
    uint64_t size;
    VARVE_ASSIGN_OR_RETURN(
        int fd, OpenWithSize(path, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), &size));
    return std::unique_ptr<WritableFile>(
        new PosixMappedWritableFile(path, fd, size, map_bytes, write_zeros));
  }

  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(path, fd));
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("opendir", dir, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(d);
    return names;
  }

  Status CreateDirIfMissing(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus("mkdir", dir, errno);
    }
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path, errno);
    return Status::Ok();
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("rename", from, errno);
    return Status::Ok();
  }

  Status Truncate(const std::string& path, uint64_t size) override {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
      return ErrnoStatus("truncate", path, errno);
    }
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return ErrnoStatus("fsync", dir, err);
    return Status::Ok();
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      char buf[32] = {0};
      ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
      ::close(fd);
      if (err == EWOULDBLOCK) {
        std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) {
          holder.pop_back();
        }
        return Status::Busy(path + " is locked by another process (pid " + holder +
                            "); only one process may open a store at a time");
      }
      return ErrnoStatus("flock", path, err);
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus("write", path, err);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

}  // namespace varve
