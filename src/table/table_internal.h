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

#include "util/coding.h"
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

// Room CompressBlockTo may need for a raw block of raw_size bytes.
size_t MaxCompressedSize(TableCompression c, size_t raw_size);
// Compresses raw into dst (MaxCompressedSize bytes of room) and returns the compressed size, or
// 0 when c is kNone or compressing would not make the block smaller (the caller then stores raw
// itself).
size_t CompressBlockTo(TableCompression c, int zstd_level, std::string_view raw, char* dst);
// Decompresses exactly raw_size bytes into *out. False if the input is damaged.
bool DecompressBlock(TableCompression c, std::string_view in, uint64_t raw_size, std::string* out);

// One decoded record.
struct RecordView {
  std::string_view key;
  std::string_view value;
  bool tombstone = false;
};

// A raw (decompressed) block: records, u32 offsets[count], u32 count.
struct BlockView {
  std::string_view raw;
  uint32_t count = 0;
  uint64_t records_end = 0;
  uint64_t start = 0;  // the block's file offset, for messages
  // As stored in the file: the block's compression and size (trailer included).
  TableCompression compression = TableCompression::kNone;
  uint64_t stored_size = 0;

  // Decodes record i; false if it does not exactly fill its slot.
  bool Record(uint32_t i, RecordView* r) const {
    uint64_t begin = DecodeFixed32(raw.data() + records_end + 4ull * i);
    uint64_t end =
        i + 1 < count ? DecodeFixed32(raw.data() + records_end + 4ull * (i + 1)) : records_end;
    if (begin >= end || end > records_end) return false;
    const char* p = raw.data() + begin;
    const char* limit = raw.data() + end;
    uint64_t klen, vword;
    p = DecodeVarint64(p, limit, &klen);
    if (p == nullptr) return false;
    p = DecodeVarint64(p, limit, &vword);
    if (p == nullptr) return false;
    uint64_t vlen = vword >> 1;
    r->tombstone = (vword & 1) != 0;
    if (r->tombstone && vlen != 0) return false;
    if (klen > static_cast<uint64_t>(limit - p) ||
        vlen != static_cast<uint64_t>(limit - p) - klen) {
      return false;
    }
    r->key = std::string_view(p, klen);
    r->value = std::string_view(p + klen, vlen);
    return true;
  }
};

// The table iterator's view of its current block, for merges that copy whole blocks.
class BlockIterator : public TableIterator {
 public:
  // Preconditions for the rest: Valid().
  // True on the first record of a block.
  virtual bool AtBlockStart() const = 0;
  // The current block, decoded (checksum verified).
  virtual const BlockView& Block() const = 0;
  // Appends the current block as stored in the file (trailer included) to *dst; on an error
  // (IOError: the file was cut short) *dst is left as it was.
  virtual Status AppendStoredBlock(std::string* dst) = 0;
  // Moves to the first record of the next block.
  virtual void NextBlock() = 0;
};

// What a merge needs from the builder beyond TableBuilder.
class TableBuilderInternal : public TableBuilder {
 public:
  // Appends the records of the block it stands on (another table's) by copying the block as
  // stored (no re-encoding; the indexes still take every key). Returns false, adding nothing,
  // when the block cannot be copied: its compression is not the table's, it holds a tombstone
  // and !allow_tombstones, or its first key is not above the last key added. A block being
  // filled record by record is closed first.
  virtual Result<bool> AddBlock(BlockIterator* it, bool allow_tombstones) = 0;
};

// Checks the checksums of blocks [first, first + n) of a table opened by TableReader (others:
// nothing to do), as a read of them would, so that later reads find them checked: a merge's
// read-ahead. Corruption or IOError as a read would report.
Status VerifyTableBlocks(const TableReader& t, uint64_t first, uint64_t n);

// Decompresses the first want (<= raw_size) bytes of an lz4 block of raw_size bytes into *out
// (grown to raw_size if smaller). Returns the bytes decoded (fewer than want: the block is
// damaged), or a negative number if the input is damaged.
int64_t DecompressLz4Prefix(std::string_view in, uint64_t raw_size, uint64_t want,
                            std::string* out);

// A file written sequentially through a buffer.
class BufferedWriter {
 public:
  // direct: through Env::NewDirectWritableFile, which gathers its own aligned chunks (appends
  // are passed straight to it).
  static Result<std::unique_ptr<BufferedWriter>> Create(Env* env, const std::string& path,
                                                        bool direct = false);
  Status Append(std::string_view data) {
    if (direct_) {
      flushed_ += data.size();
      return file_->Append(data);
    }
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
  bool direct_ = false;
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
