// Env: the file-system seam. Every byte the engine reads or writes goes through it, so tests can
// substitute an implementation that injects I/O errors, short writes or power loss.
// Implementations must be safe to call from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "varve/result.h"
#include "varve/status.h"

namespace varve {

// A file opened for appending. One writer at a time; a store's segment files (the plain and
// mapped ones) also take Syncs while it appends, several at once (group commits overlap them).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends all of data or fails; a failure may leave a partial write behind.
  virtual Status Append(std::string_view data) = 0;
  // Makes everything appended so far durable (fdatasync).
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
  // Bytes in the file (including those appended but not synced).
  virtual uint64_t Size() const = 0;
};

// A file opened for positional reads. Thread-safe.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to n bytes at offset into scratch; returns the bytes read (fewer at end of file).
  virtual Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const = 0;
  virtual Result<uint64_t> Size() const = 0;
  // Hints that reads will be random (no readahead).
  virtual void AdviseRandom() {}
  // Hints that the file will be read start to end (more readahead).
  virtual void AdviseSequential() {}
  // Hints that [offset, offset + n) will be read soon: reads of it may start now, all at once.
  virtual void AdviseWillNeed(uint64_t offset, uint64_t n) {}
  // Serves later reads of the first length bytes from a shared read-only memory mapping (the
  // same page cache, no system call per read); the file may still grow into that range. A read
  // the mapping cannot serve (past the end of the file, or a disk error, which would raise
  // SIGBUS) falls back to the plain read and its error. Call before the file is shared between
  // threads. Implementations without mappings ignore it; the POSIX one serves reads of up
  // to a page from the mapping, and larger ones (up to 64 KiB) only when all their pages are
  // cached (mincore, skipped for a while once a thread's checks keep finding them cached): a
  // cold large read is one pread, not a fault per page.
  virtual void MapForReads(uint64_t length) {}
  // For a reader that can use the bytes where they lie (one copy less): if Read would serve
  // [offset, offset + n) from the mapping, calls fn(data, arg) with a pointer to those bytes in
  // the mapping and returns true. Otherwise returns false without calling fn: use Read. fn runs
  // under the SIGBUS guard: if a page cannot be read, fn is abandoned where it is and false is
  // returned, so fn must not allocate, lock or take ownership of anything, and what it wrote
  // may be partial. Implementations without mappings return false.
  virtual bool VisitMapped(uint64_t offset, size_t n, void (*fn)(const char* data, void* arg),
                           void* arg) const {
    return false;
  }
};

// Held while a directory is open; released by destruction.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class Env {
 public:
  virtual ~Env() = default;
  // The process-wide POSIX implementation.
  static Env* Default();

  // Creates or truncates.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // Creates (or empties) path for sequential writes that bypass the page cache where the file
  // system allows it (O_DIRECT): appends are gathered into aligned 1 MiB chunks (the POSIX
  // implementation writes each on a flusher thread while the next fills), and the
  // unaligned tail is written through the page cache at Sync or Close (after which the file is
  // an ordinary one). Where direct I/O is refused the file is an ordinary writable file. The
  // default implementation opens a plain writable file.
  virtual Result<std::unique_ptr<WritableFile>> NewDirectWritableFile(const std::string& path) {
    return NewWritableFile(path);
  }
  // Opens an existing file for appending at its end.
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) = 0;
  // Opens path for appending through a shared writable memory mapping of its first map_bytes:
  // an Append is a copy into the page cache, no system call (a process crash loses nothing that
  // was appended; Sync makes it durable as usual). Space is reserved ahead of the end in steps,
  // so until Close truncates the file (and after a crash) it may end in zero bytes past Size().
  // Appends past map_bytes are written with write(2). truncate: create or empty the file; else
  // append at its current end. write_zeros: reserve by writing zeros instead of allocating
  // unwritten blocks, for files synced often (on ext4 every fdatasync after appends into
  // unwritten blocks commits the journal to convert them). The default implementation opens a
  // plain writable file.
  virtual Result<std::unique_ptr<WritableFile>> NewMappedWritableFile(const std::string& path,
                                                                      uint64_t map_bytes,
                                                                      bool truncate,
                                                                      bool write_zeros = false) {
    (void)map_bytes;
    (void)write_zeros;
    return truncate ? NewWritableFile(path) : NewAppendableFile(path);
  }
  virtual Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  virtual Status CreateDirIfMissing(const std::string& dir) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  // Makes renames and creations in dir durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Takes an exclusive lock on path, writing this process's id into it. Fails with Busy naming
  // the holder's pid if another process holds it.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

}  // namespace varve
