// Small in-memory file system for the fuzz targets and the corpus generator: just enough of
// varve::Env for HintWriter and ReadHintFile, plus a RandomAccessFile over pieces of memory for
// SegmentScanner. Not thread-safe (each fuzzer runs one input at a time).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "varve/env.h"

namespace varve::fuzz {

// A read-only file made of pieces of memory laid end to end; the caller keeps the pieces alive.
// Reads fail with IOError once fail_after_reads reads have succeeded (-1: never), so the
// callers' I/O error paths are covered too.
class PiecesFile : public RandomAccessFile {
 public:
  explicit PiecesFile(std::vector<std::string_view> pieces, int fail_after_reads = -1)
      : pieces_(std::move(pieces)), reads_left_(fail_after_reads) {
    for (std::string_view p : pieces_) size_ += p.size();
  }

  Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    if (reads_left_ == 0) return Status::IOError("injected read error");
    if (reads_left_ > 0) --reads_left_;
    size_t done = 0;
    uint64_t piece_start = 0;
    for (std::string_view p : pieces_) {
      uint64_t piece_end = piece_start + p.size();
      if (done < n && offset + done < piece_end && offset + done >= piece_start) {
        size_t from = static_cast<size_t>(offset + done - piece_start);
        size_t take = std::min(n - done, p.size() - from);
        std::memcpy(scratch + done, p.data() + from, take);
        done += take;
      }
      piece_start = piece_end;
    }
    return done;
  }
  Result<uint64_t> Size() const override { return size_; }
  uint64_t size() const { return size_; }

 private:
  std::vector<std::string_view> pieces_;
  uint64_t size_ = 0;
  mutable int reads_left_;
};

// Files are strings in a map; directories are not modelled (ListDir lists every file whose path
// starts with dir + "/").
class MemEnv : public Env {
 public:
  // What reads through NewRandomAccessFile files do (tests the callers' error paths).
  enum class ReadFault { kNone, kShortRead, kIOError };
  void SetReadFault(ReadFault f) { read_fault_ = f; }

  void Put(const std::string& path, std::string contents) {
    files_[path] = std::make_shared<std::string>(std::move(contents));
  }
  // The contents of path, or nullptr.
  const std::string* Get(const std::string& path) const {
    auto it = files_.find(path);
    return it == files_.end() ? nullptr : it->second.get();
  }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    auto data = std::make_shared<std::string>();
    files_[path] = data;
    return std::unique_ptr<WritableFile>(new MemWritableFile(std::move(data)));
  }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override {
    auto it = files_.find(path);
    if (it == files_.end()) return NewWritableFile(path);
    return std::unique_ptr<WritableFile>(new MemWritableFile(it->second));
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    auto it = files_.find(path);
    if (it == files_.end()) return Status::NotFound(path);
    return std::unique_ptr<RandomAccessFile>(new MemRandomAccessFile(it->second, read_fault_));
  }
  bool FileExists(const std::string& path) override { return files_.count(path) != 0; }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    std::vector<std::string> names;
    for (const auto& [path, data] : files_) {
      if (path.size() > dir.size() + 1 && path.compare(0, dir.size(), dir) == 0 &&
          path[dir.size()] == '/') {
        names.push_back(path.substr(dir.size() + 1));
      }
    }
    return names;
  }
  Status CreateDirIfMissing(const std::string& dir) override { return Status::Ok(); }
  Status RemoveFile(const std::string& path) override {
    if (files_.erase(path) == 0) return Status::NotFound(path);
    return Status::Ok();
  }
  Status RenameFile(const std::string& from, const std::string& to) override {
    auto it = files_.find(from);
    if (it == files_.end()) return Status::NotFound(from);
    std::shared_ptr<std::string> data = it->second;
    files_.erase(it);
    files_[to] = std::move(data);
    return Status::Ok();
  }
  Status Truncate(const std::string& path, uint64_t size) override {
    auto it = files_.find(path);
    if (it == files_.end()) return Status::NotFound(path);
    if (size < it->second->size()) it->second->resize(size);
    return Status::Ok();
  }
  Status SyncDir(const std::string& dir) override { return Status::Ok(); }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return Status::NotSupported("MemEnv has no locks");
  }

 private:
  class MemWritableFile : public WritableFile {
   public:
    explicit MemWritableFile(std::shared_ptr<std::string> data) : data_(std::move(data)) {}
    Status Append(std::string_view d) override {
      data_->append(d);
      return Status::Ok();
    }
    Status Sync() override { return Status::Ok(); }
    Status Close() override { return Status::Ok(); }
    uint64_t Size() const override { return data_->size(); }

   private:
    std::shared_ptr<std::string> data_;
  };

  class MemRandomAccessFile : public RandomAccessFile {
   public:
    MemRandomAccessFile(std::shared_ptr<const std::string> data, ReadFault fault)
        : data_(std::move(data)), fault_(fault) {}
    Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
      if (fault_ == ReadFault::kIOError) return Status::IOError("injected read error");
      if (offset >= data_->size()) return size_t{0};
      size_t take = std::min<uint64_t>(n, data_->size() - offset);
      if (fault_ == ReadFault::kShortRead && take > 0) --take;
      std::memcpy(scratch, data_->data() + offset, take);
      return take;
    }
    Result<uint64_t> Size() const override { return uint64_t{data_->size()}; }

   private:
    std::shared_ptr<const std::string> data_;
    ReadFault fault_;
  };

  std::map<std::string, std::shared_ptr<std::string>> files_;
  ReadFault read_fault_ = ReadFault::kNone;
};

}  // namespace varve::fuzz
