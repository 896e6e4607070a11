// TableReader: the whole file is mapped read-only. Open checks the footer, the sparse and hash
// indexes (checksums, bounds, key order of the sparse index); data blocks are checksum-verified
// the first time a read touches them, tracked per 4 KiB page of the file (a page's bit is set
// once every block overlapping it has been verified), their structure on every read. Reads
// formats 1 and 2; in format 2 with compression none a hash slot holds the record's file offset.
// Every read of the mapping after Open runs in a SIGBUS guard (env/mmap_guard.h) and ends by
// checking that the file still ends in the footer's magic: a file cut short (or a disk error)
// under an open table is an IOError, never a crash or a value read from the zeros past its end.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "env/mmap_guard.h"
#include "table/table_internal.h"
#include "util/coding.h"

namespace varve {
namespace table {
namespace {

std::string Hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%llu", static_cast<unsigned long long>(v));
  return b;
}

// Copies src (which may view a mapping) into *dst: the resize (which may allocate) is done before
// the copy, so a SIGBUS in the copy leaves no allocation half-finished (see RunGuarded).
void CopyOut(std::string* dst, std::string_view src) {
  dst->resize(src.size());
  if (!src.empty()) std::memcpy(dst->data(), src.data(), src.size());
}

// Decodes the record at off in a raw block whose first `end` bytes are at raw (end: before the
// block's count, or the end of a decoded prefix); false if it does not fit before end.
bool DecodeRecordAt(const char* raw, uint64_t end, uint64_t off, RecordView* r) {
  if (off >= end) return false;
  const char* p = raw + off;
  const char* limit = raw + end;
  uint64_t klen, vword;
  p = DecodeVarint64(p, limit, &klen);
  if (p == nullptr) return false;
  p = DecodeVarint64(p, limit, &vword);
  if (p == nullptr) return false;
  const uint64_t vlen = vword >> 1;
  r->tombstone = (vword & 1) != 0;
  if (r->tombstone && vlen != 0) return false;
  const uint64_t room = static_cast<uint64_t>(limit - p);
  if (klen > room || vlen > room - klen) return false;
  r->key = std::string_view(p, klen);
  r->value = std::string_view(p + klen, vlen);
  return true;
}

class TableReaderImpl final : public TableReader,
                              public std::enable_shared_from_this<TableReaderImpl> {
 public:
  ~TableReaderImpl() override {
    if (map_ != nullptr) munmap(map_, map_size_);
  }

  Status Init(std::string name, const char* data, uint64_t size) {
    name_ = std::move(name);
    data_ = data;
    size_ = size;
    // Validate checks the footer itself (a damaged one is Corruption, not a cut).
    return Guarded([&] { return Validate(); }, /*check_end=*/false);
  }

  // Runs read() (which reads the mapping and returns a Status) under the SIGBUS guard, then
  // (check_end) checks that the file still ends in the footer's magic: a file cut anywhere before
  // its end lost that page (SIGBUS) or reads zeros there. Either way whatever read() saw may be
  // wrong: IOError.
  template <typename Fn>
  Status Guarded(Fn&& read, bool check_end = true) const {
    Status result;
    bool intact = false;
    if (!RunGuarded([&] {
          result = read();
          std::atomic_thread_fence(std::memory_order_acquire);  // the magic is read last
          intact = !check_end || std::memcmp(data_ + size_ - 8, kFooterMagic.data(), 8) == 0;
        })) {
      const char* at = static_cast<const char*>(tls_sigbus_address);
      const std::string where =
          at >= data_ && at < data_ + size_ ? " at offset " + Hex(at - data_) : "";
      return Status::IOError(name_ + ": cannot read the table file" + where +
                             " (SIGBUS: the file was cut short or the disk failed)");
    }
    if (!intact) {
      return Status::IOError(
          name_ + ": the table file was cut short while open (no footer magic at offset " +
          Hex(size_ - 8) + ")");
    }
    return result;
  }

  Status Bad(std::string_view what, uint64_t offset) const {
    return Status::Corruption(name_ + ": " + std::string(what) + " at offset " + Hex(offset));
  }

  Status Validate() {
    if (size_ < kHeaderSize + kFooterSize) return Bad("file too short for a table", size_);
    if (std::string_view(data_, 8) != kHeaderMagic) return Bad("not a table (bad magic)", 0);
    const uint16_t major = DecodeFixed16(data_ + 8);
    if (major != kMajorVersion && major != kMajorVersion1) {
      return Status::NotSupported(name_ + ": table major version " + Hex(major) +
                                  " (this build reads 1 and 2)");
    }
    if (DecodeFixed32(data_ + 12) != 0) return Bad("unknown header flags", 12);
    const uint64_t fo = size_ - kFooterSize;
    const char* f = data_ + fo;
    if (std::string_view(f + footer::kEndMagic, 8) != kFooterMagic) {
      return Bad("bad footer magic (truncated table?)", fo);
    }
    if (DecodeFixed64(f + footer::kFooterChecksum) != SectionChecksum(f, footer::kFooterChecksum)) {
      return Bad("footer checksum mismatch", fo);
    }
    if (DecodeFixed16(f + footer::kMajor) != major) {
      return Bad("footer major version " + Hex(DecodeFixed16(f + footer::kMajor)) +
                     " differs from the header's " + Hex(major),
                 fo + footer::kMajor);
    }
    auto& p = props_;
    p.entries = DecodeFixed64(f + footer::kEntries);
    p.tombstones = DecodeFixed64(f + footer::kTombstones);
    p.blocks = DecodeFixed64(f + footer::kBlocks);
    p.key_bytes = DecodeFixed64(f + footer::kKeyBytes);
    p.value_bytes = DecodeFixed64(f + footer::kValueBytes);
    p.raw_block_bytes = DecodeFixed64(f + footer::kRawBlockBytes);
    const uint64_t sparse_offset = DecodeFixed64(f + footer::kSparseOffset);
    p.sparse_index_bytes = DecodeFixed64(f + footer::kSparseBytes);
    hash_offset_ = DecodeFixed64(f + footer::kHashOffset);
    home_slots_ = DecodeFixed64(f + footer::kHomeSlots);
    physical_slots_ = DecodeFixed64(f + footer::kPhysicalSlots);
    uint32_t flags = DecodeFixed32(f + footer::kFlags);
    p.compression = static_cast<TableCompression>(flags & 0xff);
    p.file_bytes = size_;
    p.hash_slots = physical_slots_;

    if (p.blocks > kMaxBlocks || p.tombstones > p.entries ||
        p.entries > p.blocks * kMaxRecordsPerBlock || (p.entries == 0) != (p.blocks == 0)) {
      return Bad("footer counts inconsistent", fo);
    }
    if (home_slots_ != HomeSlotsFor(p.entries) || physical_slots_ < home_slots_ ||
        physical_slots_ - home_slots_ > p.entries || hash_offset_ % 8 != 0 || hash_offset_ > fo ||
        (fo - hash_offset_) / kSlotSize != physical_slots_ ||
        (fo - hash_offset_) % kSlotSize != 0) {
      return Bad("footer hash index fields inconsistent", fo);
    }
    const uint64_t fixed = (p.blocks + 1) * 8 + (p.blocks + 2) * 4;
    if (sparse_offset < kHeaderSize || sparse_offset > hash_offset_ ||
        p.sparse_index_bytes > hash_offset_ - sparse_offset || p.sparse_index_bytes < fixed) {
      return Bad("footer sparse index fields inconsistent", fo);
    }
    p.hash_index_bytes = fo - hash_offset_;
    const uint64_t sparse_end = sparse_offset + p.sparse_index_bytes;
    if (hash_offset_ - sparse_end >= 8 || !Zeros(sparse_end, hash_offset_)) {
      return Bad("bad padding before the hash index", sparse_end);
    }
    const uint32_t known_flags = major == kMajorVersion1 ? 0xffu : 0xffu | kFlagDirectSlots;
    if ((flags & ~known_flags) != 0 || (flags & 0xff) > 2) return Bad("unknown footer flags", fo);
    direct_ = (flags & kFlagDirectSlots) != 0;
    if (direct_ && p.compression != TableCompression::kNone) {
      return Bad("direct hash slots in a compressed table", fo);
    }
    if (SectionChecksum(data_ + sparse_offset, p.sparse_index_bytes) !=
        DecodeFixed64(f + footer::kSparseChecksum)) {
      return Bad("sparse index checksum mismatch", sparse_offset);
    }
    if (SectionChecksum(data_ + hash_offset_, p.hash_index_bytes) !=
        DecodeFixed64(f + footer::kHashChecksum)) {
      return Bad("hash index checksum mismatch", hash_offset_);
    }
    block_offsets_ = data_ + sparse_offset;
    key_offsets_ = block_offsets_ + (p.blocks + 1) * 8;
    keys_ = key_offsets_ + (p.blocks + 2) * 4;
    keys_size_ = p.sparse_index_bytes - fixed;
    hash_ = data_ + hash_offset_;
    uint64_t prev = kHeaderSize;
    if (BlockOffset(0) != kHeaderSize) return Bad("first block offset wrong", sparse_offset);
    if (BlockType(p.blocks) != TableCompression::kNone) {
      return Bad("data end offset has type bits", sparse_offset + 8 * p.blocks);
    }
    for (uint64_t i = 1; i <= p.blocks; ++i) {
      uint64_t o = BlockOffset(i);
      if (direct_ && BlockType(i - 1) != TableCompression::kNone) {
        return Bad("compressed block in a table with direct hash slots", sparse_offset + 8 * i - 8);
      }
      if (o < prev + kBlockTrailerSize || o > sparse_offset) {
        return Bad("block offsets out of order", sparse_offset + 8 * i);
      }
      prev = o;
    }
    if (sparse_offset - prev >= 8 || !Zeros(prev, sparse_offset)) {
      return Bad("data end does not meet the sparse index", prev);
    }
    p.data_bytes = prev - kHeaderSize;
    data_end_ = prev;
    uint32_t prev_key = 0;
    for (uint64_t i = 0; i < p.blocks + 2; ++i) {
      uint32_t o = DecodeFixed32(key_offsets_ + 4 * i);
      if (o < prev_key || o > keys_size_) {
        return Bad("sparse key offsets out of order",
                   sparse_offset + fixed - (p.blocks + 2 - i) * 4);
      }
      prev_key = o;
    }
    if (prev_key != keys_size_) return Bad("sparse key area size mismatch", sparse_offset);
    for (uint64_t i = 1; i < p.blocks; ++i) {
      if (!(FirstKey(i - 1) < FirstKey(i)))
        return Bad("sparse index keys out of order", sparse_offset);
    }
    if (p.blocks > 0) {
      if (MaxKey() < FirstKey(p.blocks - 1)) return Bad("max key below last block", sparse_offset);
      CopyOut(&p.min_key, FirstKey(0));
      CopyOut(&p.max_key, MaxKey());
    }
    // Twice the mean record (key, value and two varints), and at least 64 bytes.
    const uint64_t mean = p.entries == 0 ? 0 : (p.key_bytes + p.value_bytes) / p.entries + 4;
    record_guess_ = std::max<uint64_t>(64, 2 * std::min<uint64_t>(mean, kMaxRawBlockSize));
    const uint64_t pages = (data_end_ >> kVerifyPageShift) + 1;
    verified_ = std::make_unique<std::atomic<uint64_t>[]>((pages + 63) / 64);
    return Status::Ok();
  }

  // VerifyTableBlocks.
  Status VerifyBlocks(uint64_t first, uint64_t n) const {
    const uint64_t end = std::min(props_.blocks, first + std::min(n, props_.blocks));
    if (first >= end) return Status::Ok();
    return Guarded([&] { return VerifyRange(BlockOffset(first), BlockOffset(end)); });
  }

  // True if every block overlapping the file bytes [begin, end) (end > begin) was verified.
  bool Verified(uint64_t begin, uint64_t end) const {
    const uint64_t last = (end - 1) >> kVerifyPageShift;
    for (uint64_t pg = begin >> kVerifyPageShift; pg <= last; ++pg) {
      if ((verified_[pg >> 6].load(std::memory_order_acquire) >> (pg & 63) & 1) == 0) return false;
    }
    return true;
  }

  // Verifies every block overlapping the pages of the file bytes [begin, end) (begin <
  // end <= data_end_), then marks those pages verified.
  Status VerifyRange(uint64_t begin, uint64_t end) const {
    if (Verified(begin, end)) return Status::Ok();
    const uint64_t first = begin >> kVerifyPageShift;
    const uint64_t last = (end - 1) >> kVerifyPageShift;
    const uint64_t lo = first << kVerifyPageShift;
    const uint64_t hi = (last + 1) << kVerifyPageShift;
    // The last block starting at or before lo (or block 0).
    uint64_t l = 0, h = props_.blocks;
    while (l < h) {
      const uint64_t mid = (l + h) / 2;
      if (BlockOffset(mid) <= lo) {
        l = mid + 1;
      } else {
        h = mid;
      }
    }
    for (uint64_t b = l == 0 ? 0 : l - 1; b < props_.blocks && BlockOffset(b) < hi; ++b) {
      VARVE_RETURN_IF_ERROR(VerifyBlock(b));
    }
    for (uint64_t pg = first; pg <= last; ++pg) {
      verified_[pg >> 6].fetch_or(uint64_t{1} << (pg & 63), std::memory_order_release);
    }
    return Status::Ok();
  }

  bool Zeros(uint64_t begin, uint64_t end) const {
    for (uint64_t i = begin; i < end; ++i) {
      if (data_[i] != 0) return false;
    }
    return true;
  }

  uint64_t BlockOffset(uint64_t i) const {
    return DecodeFixed64(block_offsets_ + 8 * i) & kBlockOffsetMask;
  }
  TableCompression BlockType(uint64_t i) const {
    return static_cast<TableCompression>(DecodeFixed64(block_offsets_ + 8 * i) >> 62);
  }
  std::string_view SparseKey(uint64_t i) const {
    uint32_t b = DecodeFixed32(key_offsets_ + 4 * i);
    uint32_t e = DecodeFixed32(key_offsets_ + 4 * (i + 1));
    return std::string_view(keys_ + b, e - b);
  }
  std::string_view FirstKey(uint64_t i) const { return SparseKey(i); }
  std::string_view MaxKey() const { return SparseKey(props_.blocks); }

  // Loads block b; its raw bytes are in *scratch, or (uncompressed blocks, in_place) view the
  // mapping. Reads the mapping: run under Guarded.
  Status LoadBlock(uint64_t b, std::string* scratch, BlockView* out, bool in_place) const {
    const uint64_t start = BlockOffset(b);
    const uint64_t end = BlockOffset(b + 1);
    const char* t = data_ + end - kBlockTrailerSize;
    const uint64_t raw_size = DecodeFixed32(t);
    const auto type = static_cast<TableCompression>(static_cast<uint8_t>(t[4]));
    const uint64_t stored = end - kBlockTrailerSize - start;
    out->start = start;
    out->compression = type;
    out->stored_size = end - start;
    VARVE_RETURN_IF_ERROR(VerifyRange(start, end));
    if (type == TableCompression::kNone) {
      if (raw_size != stored) return Bad("block " + Hex(b) + ": size mismatch", start);
      if (in_place) {
        out->raw = std::string_view(data_ + start, stored);
      } else {
        CopyOut(scratch, std::string_view(data_ + start, stored));
        out->raw = *scratch;
      }
    } else if (type == TableCompression::kLz4 || type == TableCompression::kZstd) {
      if (!DecompressBlock(type, std::string_view(data_ + start, stored), raw_size, scratch)) {
        return Bad("block " + Hex(b) + ": cannot decompress", start);
      }
      out->raw = std::string_view(scratch->data(), raw_size);
    } else {
      return Bad("block " + Hex(b) + ": unknown compression", start);
    }
    if (out->raw.size() < 4) return Bad("block " + Hex(b) + ": too short", start);
    out->count = DecodeFixed32(out->raw.data() + out->raw.size() - 4);
    if (out->count == 0 || out->count > kMaxRecordsPerBlock ||
        4ull + 4ull * out->count > out->raw.size()) {
      return Bad("block " + Hex(b) + ": bad record count", start);
    }
    out->records_end = out->raw.size() - 4 - 4ull * out->count;
    return Status::Ok();
  }

  // Checks block b's checksum and that its trailer agrees with the sparse index; once done (see
  // VerifyRange), a block's bytes are trusted (the file does not change while open).
  Status VerifyBlock(uint64_t b) const {
    const uint64_t start = BlockOffset(b);
    const uint64_t end = BlockOffset(b + 1);
    const char* t = data_ + end - kBlockTrailerSize;
    if (BlockChecksum(data_ + start, end - start - 4) != DecodeFixed32(t + 5)) {
      return Bad("block " + Hex(b) + ": checksum mismatch", start);
    }
    const auto type = static_cast<TableCompression>(static_cast<uint8_t>(t[4]));
    if (type != BlockType(b))
      return Bad("block " + Hex(b) + ": compression differs from the index", start);
    if (type == TableCompression::kNone && DecodeFixed32(t) != end - kBlockTrailerSize - start) {
      return Bad("block " + Hex(b) + ": size mismatch", start);
    }
    return Status::Ok();
  }

  Status BadRecord(uint64_t b, const BlockView& block, uint32_t i) const {
    return Bad("block " + Hex(b) + ": record " + Hex(i) + " damaged", block.start);
  }

  // Direct slots: decodes the record at file offset off, checking (once per page) the blocks
  // under it. Ok with *r set, or Corruption.
  Status DirectRecord(uint64_t s, uint64_t off, RecordView* r) const {
    if (off < kHeaderSize || off >= data_end_) {
      return Bad("hash slot " + Hex(s) + " names no record", hash_offset_ + s * kSlotSize);
    }
    const char* p = data_ + off;
    const char* limit = data_ + data_end_;
    uint64_t klen = 0, vword = 0;
    p = DecodeVarint64(p, limit, &klen);
    if (p != nullptr) p = DecodeVarint64(p, limit, &vword);
    const uint64_t vlen = vword >> 1;
    const uint64_t room = p == nullptr ? 0 : static_cast<uint64_t>(limit - p);
    if (p == nullptr || klen > room || vlen > room - klen || ((vword & 1) != 0 && vlen != 0)) {
      VARVE_RETURN_IF_ERROR(VerifyRange(off, off + 1));  // names a damaged block first
      return Bad("no record", off);
    }
    const uint64_t end = static_cast<uint64_t>(p - data_) + klen + vlen;
    if (!Verified(off, end)) VARVE_RETURN_IF_ERROR(VerifyRange(off, end));
    r->key = std::string_view(p, klen);
    r->value = std::string_view(p + klen, vlen);
    r->tombstone = (vword & 1) != 0;
    return Status::Ok();
  }

  // Block slots: decodes the record slot s names (block and offset in its raw block), reading
  // an uncompressed block in place with no look at its trailer or offset table once its pages
  // are verified; others are loaded into *scratch. Ok with *r set, or Corruption.
  Status BlockRecord(uint64_t s, uint64_t slot, std::string* scratch, RecordView* r) const {
    const uint64_t b = SlotBlock(slot);
    const uint64_t off = SlotOffset(slot);
    if (b >= props_.blocks) return Bad("hash slot " + Hex(s) + " names no block", hash_offset_);
    std::string_view raw;
    const uint64_t start = BlockOffset(b);
    const uint64_t end = BlockOffset(b + 1);
    const TableCompression type = BlockType(b);
    if (type == TableCompression::kNone && Verified(start, end)) {
      raw = std::string_view(data_ + start, end - kBlockTrailerSize - start);
    } else if (type == TableCompression::kLz4 && Verified(start, end) &&
               Lz4RecordPrefix(start, end, off, scratch, r)) {
      return Status::Ok();
    } else {
      BlockView block;
      VARVE_RETURN_IF_ERROR(LoadBlock(b, scratch, &block, /*in_place=*/true));
      raw = block.raw;
    }
    if (raw.size() < 4 || !DecodeRecordAt(raw.data(), raw.size() - 4, off, r)) {
      return Bad("block " + Hex(b) + ": no record at block offset " + Hex(off), start);
    }
    return Status::Ok();
  }

  // An lz4 block (verified) is decompressed only up to where the record at raw offset off
  // likely ends (record_guess_ bytes on), not whole. False if the record does not fit in that
  // prefix (or anything is amiss): the caller then loads the whole block, which reports damage.
  bool Lz4RecordPrefix(uint64_t start, uint64_t end, uint64_t off, std::string* scratch,
                       RecordView* r) const {
    const uint64_t raw_size = DecodeFixed32(data_ + end - kBlockTrailerSize);
    if (off + 4 >= raw_size) return false;
    const uint64_t want = std::min(raw_size - 4, off + record_guess_);
    const std::string_view in(data_ + start, end - kBlockTrailerSize - start);
    const int64_t n = DecompressLz4Prefix(in, raw_size, want, scratch);
    return n == static_cast<int64_t>(want) && DecodeRecordAt(scratch->data(), want, off, r);
  }

  // The hash probe, one loop for both slot kinds (kDirect: direct slots); the record's bytes are
  // read (and the value copied) from the mapping: run under Guarded.
  template <bool kDirect>
  Status Probe(std::string_view key, std::string* value, bool* tombstone) const {
    const uint64_t h = HashKey(key);
    const uint64_t fp = Fingerprint(h);
    for (uint64_t s = HomeSlot(h, home_slots_); s < physical_slots_; ++s) {
      const uint64_t slot = DecodeFixed64(hash_ + s * kSlotSize);
      const uint64_t sfp = slot & kFingerprintMask;
      if (sfp == 0) break;
      if (sfp != fp) continue;
      RecordView r;
      if constexpr (kDirect) {
        VARVE_RETURN_IF_ERROR(DirectRecord(s, DirectSlotOffset(slot), &r));
      } else {
        thread_local std::string scratch;  // a decompressed block
        VARVE_RETURN_IF_ERROR(BlockRecord(s, slot, &scratch, &r));
      }
      if (r.key != key) continue;  // fingerprint collision
      CopyOut(value, r.value);
      *tombstone = r.tombstone;
      return Status::Ok();
    }
    return Status::NotFound();
  }

  Status Find(std::string_view key, std::string* value, bool* tombstone) const override {
    if (props_.entries == 0) return Status::NotFound();
    return Guarded([&] {
      return direct_ ? Probe<true>(key, value, tombstone) : Probe<false>(key, value, tombstone);
    });
  }

  Status Get(std::string_view key, std::string* value) const override {
    bool tombstone = false;
    Status s = Find(key, value, &tombstone);
    if (s.ok() && tombstone) {
      value->clear();
      return Status::NotFound();
    }
    return s;
  }

  std::unique_ptr<TableIterator> NewIterator() const override;
  Status Check() const override;
  const TableProperties& properties() const override { return props_; }
  const std::string& name() const override { return name_; }

  std::string name_;
  std::string memory_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const char* data_ = nullptr;
  uint64_t size_ = 0;
  TableProperties props_;
  const char* block_offsets_ = nullptr;
  const char* key_offsets_ = nullptr;
  const char* keys_ = nullptr;
  uint64_t keys_size_ = 0;
  const char* hash_ = nullptr;
  uint64_t hash_offset_ = 0;
  uint64_t home_slots_ = 0;
  uint64_t physical_slots_ = 0;
  uint64_t data_end_ = 0;      // end of the last data block
  uint64_t record_guess_ = 0;  // bytes decoded past a record's start (Lz4RecordPrefix)
  bool direct_ = false;        // hash slots hold file offsets (format 2, compression none)
  // Bit per 4 KiB page of [0, data_end_): every block overlapping the page was verified.
  std::unique_ptr<std::atomic<uint64_t>[]> verified_;
};

class TableIteratorImpl final : public BlockIterator {
 public:
  explicit TableIteratorImpl(std::shared_ptr<const TableReaderImpl> t) : t_(std::move(t)) {}

  bool Valid() const override { return valid_; }
  Status status() const override { return status_; }
  std::string_view key() const override { return rec_.key; }
  std::string_view value() const override { return rec_.value; }
  bool is_tombstone() const override { return rec_.tombstone; }

  void SeekToFirst() override { Position(0, 0); }

  void Seek(std::string_view target) override {
    // The last block whose first key is <= target.
    uint64_t lo = 0, hi = t_->props_.blocks;
    Status s = t_->Guarded([&] {
      while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (t_->FirstKey(mid) <= target) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      return Status::Ok();
    });
    if (!s.ok()) {
      valid_ = false;
      if (status_.ok()) status_ = s;
      return;
    }
    Position(lo == 0 ? 0 : lo - 1, 0);
    while (valid_ && rec_.key < target) Next();
  }

  void Next() override {
    if (!valid_) return;
    if (index_ + 1 < block_.count) {
      Decode(index_ + 1);
    } else {
      Position(b_ + 1, 0);
    }
  }

  bool AtBlockStart() const override { return index_ == 0; }
  const BlockView& Block() const override { return block_; }
  Status AppendStoredBlock(std::string* dst) override {
    const size_t before = dst->size();
    if (block_.compression == TableCompression::kNone) {
      // The block's bytes are the verified copy in scratch_; only the trailer is read.
      char trailer[kBlockTrailerSize];
      VARVE_RETURN_IF_ERROR(t_->Guarded([&] {
        std::memcpy(trailer, t_->data_ + block_.start + block_.raw.size(), kBlockTrailerSize);
        return Status::Ok();
      }));
      dst->append(block_.raw);
      dst->append(trailer, kBlockTrailerSize);
      return Status::Ok();
    }
    // Grown before the guarded copy: no allocation inside it (see CopyOut).
    dst->resize(before + block_.stored_size);
    Status s = t_->Guarded([&] {
      std::memcpy(dst->data() + before, t_->data_ + block_.start, block_.stored_size);
      return Status::Ok();
    });
    if (!s.ok()) dst->resize(before);
    return s;
  }
  void NextBlock() override {
    if (valid_) Position(b_ + 1, 0);
  }

 private:
  void Position(uint64_t b, uint32_t i) {
    valid_ = false;
    if (!status_.ok() || b >= t_->props_.blocks) return;
    b_ = b;
    // A copy: the caller reads key() and value() outside the guard.
    Status s =
        t_->Guarded([&] { return t_->LoadBlock(b, &scratch_, &block_, /*in_place=*/false); });
    if (!s.ok()) {
      status_ = s;
      return;
    }
    Decode(i);
  }

  void Decode(uint32_t i) {
    index_ = i;
    valid_ = false;
    if (!block_.Record(i, &rec_)) {
      status_ = t_->BadRecord(b_, block_, i);
      return;
    }
    valid_ = true;
  }

  std::shared_ptr<const TableReaderImpl> t_;
  std::string scratch_;
  BlockView block_;
  RecordView rec_;
  uint64_t b_ = 0;
  uint32_t index_ = 0;
  bool valid_ = false;
  Status status_;
};

std::unique_ptr<TableIterator> TableReaderImpl::NewIterator() const {
  return std::make_unique<TableIteratorImpl>(shared_from_this());
}

Status TableReaderImpl::Check() const {
  auto it = NewIterator();
  std::string prev, value;
  uint64_t entries = 0, tombstones = 0, key_bytes = 0, value_bytes = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (entries > 0 && !(prev < it->key())) {
      return Status::Corruption(name_ + ": keys out of order after '" + prev + "'");
    }
    prev.assign(it->key());
    ++entries;
    tombstones += it->is_tombstone();
    key_bytes += it->key().size();
    value_bytes += it->value().size();
    bool tomb = false;
    Status s = Find(prev, &value, &tomb);
    if (s.IsNotFound()) {
      return Status::Corruption(name_ + ": hash index does not find key '" + prev + "'");
    }
    VARVE_RETURN_IF_ERROR(s);
    if (tomb != it->is_tombstone() || value != it->value()) {
      return Status::Corruption(name_ + ": hash index finds another record for '" + prev + "'");
    }
  }
  VARVE_RETURN_IF_ERROR(it->status());
  if (entries != props_.entries || tombstones != props_.tombstones ||
      key_bytes != props_.key_bytes || value_bytes != props_.value_bytes) {
    return Status::Corruption(name_ + ": record counts differ from the footer");
  }
  if (entries > 0 && prev != props_.max_key) {
    return Status::Corruption(name_ + ": last key differs from the footer's max key");
  }
  std::string scratch;
  return Guarded([&] {
    for (uint64_t b = 0; b < props_.blocks; ++b) {
      BlockView block;
      VARVE_RETURN_IF_ERROR(LoadBlock(b, &scratch, &block, /*in_place=*/false));
      RecordView r;
      if (!block.Record(0, &r)) return BadRecord(b, block, 0);
      const uint64_t start = BlockOffset(b);
      if (r.key != FirstKey(b)) {
        return Bad("block " + Hex(b) + ": first key differs from the sparse index", start);
      }
    }
    return Status::Ok();
  });
}

}  // namespace

Status VerifyTableBlocks(const TableReader& t, uint64_t first, uint64_t n) {
  const auto* impl = dynamic_cast<const TableReaderImpl*>(&t);
  return impl == nullptr ? Status::Ok() : impl->VerifyBlocks(first, n);
}

}  // namespace table

Result<std::shared_ptr<TableReader>> TableReader::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Status::IOError(path + ": " + std::strerror(e));
  }
  auto t = std::make_shared<table::TableReaderImpl>();
  const char* data = "";
  if (st.st_size > 0) {
    InstallSigbusHandler();
    void* m = mmap(nullptr, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return Status::IOError(path + ": mmap: " + std::strerror(e));
    }
    t->map_ = m;
    t->map_size_ = st.st_size;
    data = static_cast<const char*>(m);
  }
  ::close(fd);
  VARVE_RETURN_IF_ERROR(t->Init(path, data, st.st_size));
  // No MADV_RANDOM: it would also turn off the kernel's fault-around, so that every page a Get
  // or scan touches for the first time costs its own page fault.
  return std::shared_ptr<TableReader>(std::move(t));
}

Result<std::shared_ptr<TableReader>> TableReader::OpenFromMemory(std::string name,
                                                                 std::string data) {
  auto t = std::make_shared<table::TableReaderImpl>();
  t->memory_ = std::move(data);
  VARVE_RETURN_IF_ERROR(t->Init(std::move(name), t->memory_.data(), t->memory_.size()));
  return std::shared_ptr<TableReader>(std::move(t));
}

std::string TablePrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) != 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

Result<TableCompression> ParseTableCompression(std::string_view name) {
  if (name == "none") return TableCompression::kNone;
  if (name == "lz4") return TableCompression::kLz4;
  if (name == "zstd") return TableCompression::kZstd;
  return Status::InvalidArgument("unknown compression '" + std::string(name) +
                                 "' (none, lz4, zstd)");
}

const char* TableCompressionName(TableCompression c) {
  switch (c) {
    case TableCompression::kNone:
      return "none";
    case TableCompression::kLz4:
      return "lz4";
    case TableCompression::kZstd:
      return "zstd";
  }
  return "unknown";
}

}  // namespace varve
