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
#include <cstring>
#include <mutex>
#include <string>

#include "env/mmap_guard.h"
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

// Appends by copying into a MAP_SHARED mapping: no system call per Append. The file is grown
// ahead of the data with fallocate (blocks reserved, so a full disk is an error at the reserve,
// not a SIGBUS at writeback) and cut back to the data at Close. A copy that raises SIGBUS
// anyway (a disk error on a page being read back) is an I/O error.
class PosixMappedWritableFile final : public WritableFile {
 public:
  static constexpr uint64_t kReserveStep = 1u << 20;
  static constexpr size_t kMaxMappedAppend = 4096;

  PosixMappedWritableFile(std::string path, int fd, uint64_t size, uint64_t map_bytes)
      : path_(std::move(path)), fd_(fd), size_(size), reserved_(size) {
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
    std::lock_guard lock(mu_);
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
    uint64_t want = std::min(map_length_, std::max(end, reserved_ + kReserveStep));
    int rc = ::posix_fallocate(fd_, 0, static_cast<off_t>(want));
    if (rc == ENOSPC && want > end) {
      want = end;  // take what is left: only the data must fit
      rc = ::posix_fallocate(fd_, 0, static_cast<off_t>(want));
    }
    if (rc == EOPNOTSUPP || rc == EINVAL) {
      // No reservations here: the size alone (a full disk then shows as SIGBUS in the copy).
      rc = ::ftruncate(fd_, static_cast<off_t>(want)) == 0 ? 0 : errno;
    }
    if (rc != 0) return ErrnoStatus("fallocate", path_, rc);
    reserved_ = want;
    return Status::Ok();
  }

  Status AppendWrite(std::string_view data) {
    Status s = WriteAll(fd_, path_, data, &size_, /*at_size=*/true);
    reserved_ = std::max(reserved_, size_);
    return s;
  }

  std::string path_;
  std::mutex mu_;  // Sync (the sync thread) against Close
  int fd_;
  uint64_t size_;      // data bytes
  uint64_t reserved_;  // file size: data plus the zeros reserved after it
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
    // A larger read comes from the mapping only if all its pages are cached: otherwise pread
    // makes one request to the disk, where a copy from the mapping would fault in (and wait
    // for) one page at a time.
    if (map_ != nullptr && offset + n <= map_length_ && offset + n >= offset &&
        (n <= kMaxMappedRead || Resident(offset, n)) && GuardedCopy(scratch, map_ + offset, n)) {
      return n;
    }
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

  Result<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoStatus("fstat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  void AdviseRandom() override { ::posix_fadvise(fd_, 0, 0, POSIX_FADV_RANDOM); }
  void AdviseSequential() override { ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL); }

 private:
  static constexpr size_t kMaxResidentCheck = 64 << 10;  // larger reads always use pread

  // True if every page of [offset, offset + n) is in the page cache (mincore). After a miss the
  // thread skips the check (false) for its next kSkipAfterMiss calls: data larger than memory
  // then costs one mincore per that many reads, and its pages stay unmapped (cheaper to reclaim).
  static constexpr uint32_t kSkipAfterMiss = 64;
  bool Resident(uint64_t offset, size_t n) const {
    thread_local uint32_t skip = 0;
    if (skip > 0) {
      --skip;
      return false;
    }
    bool resident = AllPagesCached(offset, n);
    if (!resident) skip = kSkipAfterMiss;
    return resident;
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

  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override {
    uint64_t size;
    VARVE_ASSIGN_OR_RETURN(int fd, OpenWithSize(path, O_WRONLY | O_APPEND | O_CLOEXEC, &size));
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd, size));
  }

  Result<std::unique_ptr<WritableFile>> NewMappedWritableFile(const std::string& path,
                                                              uint64_t map_bytes,
                                                              bool truncate) override {
    uint64_t size;
    VARVE_ASSIGN_OR_RETURN(
        int fd, OpenWithSize(path, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), &size));
    return std::unique_ptr<WritableFile>(new PosixMappedWritableFile(path, fd, size, map_bytes));
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
