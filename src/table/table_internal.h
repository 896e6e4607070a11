// Shared by the table builder, reader and merger: hashing, block coding, buffered temp files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "table/table_format.h"
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL  // the hash is on every Get
#endif
#include <xxhash.h>

#include "varve/env.h"
#include "varve/table.h"

namespace varve::table {

inline uint64_t HashKey(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }
inline uint64_t Fingerprint(uint64_t h) {
  uint64_t fp = h & kFingerprintMask;
  return fp == 0 ? 1 : fp;
}
inline uint64_t HomeSlot(uint64_t h, uint64_t home_slots) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(h >> 32) * home_slots) >> 32);
}
uint32_t BlockChecksum(const char* data, size_t n);
uint64_t SectionChecksum(const char* data, size_t n);

// Streaming SectionChecksum.
class XxhState {
 public:
  XxhState();
  ~XxhState();
  XxhState(const XxhState&) = delete;
  XxhState& operator=(const XxhState&) = delete;
  void Update(std::string_view data);
  uint64_t Digest() const;

 private:
  void* state_;
};

// Compresses raw into *out (replacing it). Returns the compression actually used: kNone when c
// is kNone or compressing would not make the block smaller, and then *out is unspecified (the
// caller stores raw itself, uncopied).
TableCompression CompressBlock(TableCompression c, int zstd_level, std::string_view raw,
                               std::string* out);
// Decompresses exactly raw_size bytes into *out. False if the input is damaged.
bool DecompressBlock(TableCompression c, std::string_view in, uint64_t raw_size, std::string* out);

// Decompresses the first want (<= raw_size) bytes of an lz4 block of raw_size bytes into *out
// (grown to raw_size if smaller). Returns the bytes decoded (fewer than want: the block is
// damaged), or a negative number if the input is damaged.
int64_t DecompressLz4Prefix(std::string_view in, uint64_t raw_size, uint64_t want,
                            std::string* out);

// A file written sequentially through a buffer.
class BufferedWriter {
 public:
  static Result<std::unique_ptr<BufferedWriter>> Create(Env* env, const std::string& path);
  Status Append(std::string_view data) {
    buf_.append(data);
    if (buf_.size() >= kBufferSize) return Flush();
    return Status::Ok();
  }
  Status Flush();
  Status Sync();
  Status Close();
  uint64_t Size() const { return flushed_ + buf_.size(); }

 private:
  static constexpr size_t kBufferSize = 1 << 20;
  std::unique_ptr<WritableFile> file_;
  std::string buf_;
  uint64_t flushed_ = 0;
};

// A file read sequentially through a buffer.
class BufferedReader {
 public:
  static Result<std::unique_ptr<BufferedReader>> Open(Env* env, const std::string& path);
  // Reads exactly n bytes; Corruption at a short file.
  Status Read(size_t n, char* dst);
  bool AtEnd() const { return pos_ == buf_.size() && offset_ >= size_; }
  // Bytes not read yet.
  uint64_t Remaining() const { return (size_ - offset_) + (buf_.size() - pos_); }

 private:
  std::unique_ptr<RandomAccessFile> file_;
  std::string path_;
  std::string buf_;
  size_t pos_ = 0;
  uint64_t offset_ = 0;
  uint64_t size_ = 0;
};

}  // namespace varve::table
