// FaultEnv: an Env for tests that wraps another (usually the POSIX one) and can
//  - fail the Nth call of an operation with EIO or ENOSPC (optionally after a short write),
//  - simulate a power failure: every file loses what was appended since its last Sync, and files
//    created or renamed since the last SyncDir of their directory disappear.
// Deleting a file counts as durable at once (a real file system may bring it back after a power
// failure; the engine only deletes files whose contents exist elsewhere).
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "varve/env.h"

namespace varve {

class FaultEnv final : public Env {
 public:
  enum class Op { kAppend, kSync, kCreate, kRead, kRename, kRemove, kTruncate, kSyncDir };

  explicit FaultEnv(Env* base);

  // The nth call of op from now on (n = 0: the next one) fails with error (EIO or ENOSPC); with
  // sticky, every later call fails too. A failing Append first writes half of its data.
  void FailAfter(Op op, int n, int error, bool sticky);
  void ClearFaults();
  // From now on every operation fails with EIO, as if the machine had stopped: use before
  // destroying a DB whose power "went out", then call DropUnsyncedData and ClearCrash.
  void Crash();
  void ClearCrash();
  // Applies the power failure to the files on the base Env. Call with no file open for writing.
  Status DropUnsyncedData();
  uint64_t calls(Op op) const;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override;
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;
  bool FileExists(const std::string& path) override { return base_->FileExists(path); }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    return base_->ListDir(dir);
  }
  Status CreateDirIfMissing(const std::string& dir) override {
    return base_->CreateDirIfMissing(dir);
  }
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status Truncate(const std::string& path, uint64_t size) override;
  Status SyncDir(const std::string& dir) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return base_->LockFile(path);
  }

  // Used by the file wrappers.
  Status MaybeFail(Op op, const std::string& path, bool* short_write = nullptr);
  void NoteAppended(const std::string& path, uint64_t size);
  void NoteSynced(const std::string& path, uint64_t size);

 private:
  struct FileState {
    uint64_t size = 0;
    uint64_t synced_size = 0;
    bool entry_durable = true;  // its directory entry survives a power failure
  };
  struct Fault {
    int remaining = -1;  // calls to let through; -1 = none planned
    int error = 0;
    bool sticky = false;
    bool firing = false;
  };
  static std::string DirOf(const std::string& path);

  Env* const base_;
  mutable std::mutex mu_;
  std::map<std::string, FileState> files_;
  std::map<Op, Fault> faults_;
  std::map<Op, uint64_t> calls_;
  bool crashed_ = false;
};

}  // namespace varve
