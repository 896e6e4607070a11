// TableBuilder: data blocks are written as records arrive; the first key of each block and every
// record's (hash, location) are spilled to temporary files, so memory stays bounded. Finish
// writes the sparse index from its spill file and builds the hash index partition by partition
// (docs/format.md, "Table file", format 2: with compression none the hash slots hold records'
// file offsets).
#include <algorithm>
#include <bit>
#include <cstring>
#include <thread>
#include <vector>

#include "table/block_writer.h"
#include "table/table_internal.h"
#include "util/coding.h"

namespace varve {
namespace table {
namespace {

// Runs fn(i) for every i in [0, n): threads - 1 new threads and the caller each take a
// contiguous share.
template <typename Fn>
void ParallelFor(int threads, uint64_t n, Fn&& fn) {
  const uint64_t t_count = std::min<uint64_t>(std::max(threads, 1), n);
  auto share = [&](uint64_t t) {
    for (uint64_t i = n * t / t_count; i < n * (t + 1) / t_count; ++i) fn(i);
  };
  std::vector<std::thread> helpers;
  for (uint64_t t = 1; t < t_count; ++t) helpers.emplace_back(share, t);
  if (t_count > 0) share(0);
  for (auto& h : helpers) h.join();
}

class TableBuilderImpl final : public TableBuilderInternal {
 public:
  TableBuilderImpl(std::string path, const TableOptions& options, Env* env)
      : path_(std::move(path)),
        options_(options),
        env_(env),
        direct_(options.compression == TableCompression::kNone),
        writer_threads_(ResolveWriterThreads(options.writer_threads)) {}

  static int ResolveWriterThreads(int n) {
    if (n >= 0) return n;
    const int cpus = static_cast<int>(std::thread::hardware_concurrency());
    return std::clamp(cpus - 1, 1, kMaxAutoWriterThreads);
  }
  static constexpr int kMaxAutoWriterThreads = 4;

  ~TableBuilderImpl() override {
    blocks_writer_.reset();  // its workers write to out_, sparse_ and hashes_
    out_.reset();
    sparse_.reset();
    hashes_.reset();
    if (!finished_) (void)env_->RemoveFile(tmp_path());
    (void)env_->RemoveFile(sparse_path());
    (void)env_->RemoveFile(hash_path());
  }

  std::string tmp_path() const { return path_ + ".tmp"; }
  std::string sparse_path() const { return path_ + ".sparse.tmp"; }
  std::string hash_path() const { return path_ + ".hash.tmp"; }

  // Calls fn(12-byte entry head: block offset u64, key length u32; first key) for every block,
  // in order, from the spilled sparse list.
  template <typename Fn>
  Status ForEachSparseEntry(Fn&& fn) {
    VARVE_ASSIGN_OR_RETURN(auto r, BufferedReader::Open(env_, sparse_path()));
    char head[12];
    std::string key;
    for (uint64_t i = 0; i < blocks_; ++i) {
      VARVE_RETURN_IF_ERROR(r->Read(12, head));
      key.resize(DecodeFixed32(head + 8));
      VARVE_RETURN_IF_ERROR(r->Read(key.size(), key.data()));
      VARVE_RETURN_IF_ERROR(fn(head, key));
    }
    return Status::Ok();
  }

  Status Start() {
    VARVE_ASSIGN_OR_RETURN(out_, BufferedWriter::Create(env_, tmp_path(), options_.direct_writes));
    VARVE_ASSIGN_OR_RETURN(sparse_, BufferedWriter::Create(env_, sparse_path()));
    VARVE_ASSIGN_OR_RETURN(hashes_, BufferedWriter::Create(env_, hash_path()));
    char header[kHeaderSize] = {};
    std::memcpy(header, kHeaderMagic.data(), 8);
    EncodeFixed16(header + 8, kMajorVersion);
    EncodeFixed16(header + 10, kMinorVersion);
    VARVE_RETURN_IF_ERROR(out_->Append(std::string_view(header, kHeaderSize)));
    block_offset_ = kHeaderSize;
    blocks_writer_ =
        std::make_unique<BlockWriter>(options_.compression, options_.zstd_level, direct_,
                                      out_.get(), sparse_.get(), hashes_.get(), writer_threads_);
    return Status::Ok();
  }

  // Bytes of the block being filled (at the end of the current batch's raw blocks).
  size_t BlockBytes() {
    const BlockWriter::Batch* b = blocks_writer_->current();
    return b->raw.size() - (b->raw_ends.empty() ? 0 : b->raw_ends.back());
  }

  Status Add(std::string_view key, std::string_view value) override {
    return AddRecord(key, value, false);
  }
  Status AddTombstone(std::string_view key) override { return AddRecord(key, {}, true); }

  Status AddRecord(std::string_view key, std::string_view value, bool tombstone) {
    if (!status_.ok()) return status_;
    if (finished_) return Status::InvalidArgument("table builder: Add after Finish");
    if (entries_ > 0 && key <= std::string_view(last_key_)) {
      return Status::InvalidArgument(std::string(key == last_key_
                                                     ? "table builder: duplicate key '"
                                                     : "table builder: key out of order: '") +
                                     Printable(key) + "' after '" + Printable(last_key_) + "'");
    }
    if (key.size() > (1u << 26) || value.size() > (1u << 30)) {
      return Status::InvalidArgument("table builder: key or value too large");
    }
    uint64_t record_size =
        VarintLength(key.size()) + VarintLength(value.size() << 1 | 1) + key.size() + value.size();
    if (!offsets_.empty() && (BlockBytes() + record_size > options_.block_size_bytes ||
                              offsets_.size() >= kMaxRecordsPerBlock)) {
      status_ = FlushBlock();
      if (!status_.ok()) return status_;
    }
    if (offsets_.empty()) {
      if (blocks_ >= kMaxBlocks) {
        status_ = Status::InvalidArgument("table builder: too many blocks (raise block size)");
        return status_;
      }
      first_key_.assign(key);
    }
    const size_t in_block = BlockBytes();
    // Uncompressed blocks are stored as they are: the record's file offset must fit a direct
    // hash slot (its hash spill entry is made by the block writer).
    if (direct_ && block_offset_ + in_block > kMaxDirectOffset) {
      status_ = Status::InvalidArgument("table builder: table larger than 16 TiB");
      return status_;
    }
    offsets_.push_back(static_cast<uint32_t>(in_block));
    std::string& raw = blocks_writer_->current()->raw;
    PutVarint64(&raw, key.size());
    PutVarint64(&raw, value.size() << 1 | (tombstone ? 1 : 0));
    raw.append(key);
    raw.append(value);
    last_key_.assign(key);
    ++entries_;
    if (tombstone) ++tombstones_;
    key_bytes_ += key.size();
    value_bytes_ += value.size();
    return Status::Ok();
  }

  static std::string Printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 64)) {
      if (c >= 0x20 && c < 0x7f) {
        out += c;
      } else {
        char b[8];
        std::snprintf(b, sizeof b, "\\x%02x", static_cast<unsigned char>(c));
        out += b;
      }
    }
    if (s.size() > 64) out += "...";
    return out;
  }

  // Closes the block being filled; the block writer compresses and writes it (in a batch).
  Status FlushBlock() {
    BlockWriter::Batch* b = blocks_writer_->current();
    for (uint32_t off : offsets_) PutFixed32(&b->raw, off);
    PutFixed32(&b->raw, static_cast<uint32_t>(offsets_.size()));
    const size_t raw_size = BlockBytes();
    b->raw.append(kBlockTrailerSize, '\0');  // room for the trailer (BlockWriter::Batch)
    b->raw_ends.push_back(b->raw.size());
    b->copied.push_back(false);
    b->records.push_back(static_cast<uint32_t>(offsets_.size()));
    b->first_keys.append(first_key_);
    b->key_ends.push_back(b->first_keys.size());
    raw_block_bytes_ += raw_size;
    block_offset_ += raw_size + kBlockTrailerSize;  // (used only when uncompressed)
    offsets_.clear();
    ++blocks_;
    if (b->raw.size() < BlockWriter::kBatchBytes) return Status::Ok();
    return blocks_writer_->Submit();
  }

  Result<bool> AddBlock(BlockIterator* it, bool allow_tombstones) override {
    if (!status_.ok()) return status_;
    if (finished_) return Status::InvalidArgument("table builder: Add after Finish");
    const BlockView& block = it->Block();
    if (block.compression != options_.compression ||
        blocks_ + (offsets_.empty() ? 0 : 1) >= kMaxBlocks) {
      return false;
    }
    // One pass over the records: their counts, and (the block writer cannot hash the keys of a
    // compressed block) their hashes.
    const bool compressed = block.compression != TableCompression::kNone;
    uint64_t hashes[kMaxRecordsPerBlock];
    uint64_t tombstones = 0, key_bytes = 0, value_bytes = 0;
    RecordView r;
    for (uint32_t i = 0; i < block.count; ++i) {
      if (!block.Record(i, &r)) return Status::Corruption("table builder: damaged block copied");
      if (r.tombstone && !allow_tombstones) return false;
      if (i == 0 && entries_ > 0 && r.key <= std::string_view(last_key_)) return false;
      if (compressed) hashes[i] = HashKey(r.key);
      tombstones += r.tombstone;
      key_bytes += r.key.size();
      value_bytes += r.value.size();
    }
    if (!offsets_.empty()) {
      status_ = FlushBlock();
      VARVE_RETURN_IF_ERROR(status_);
    }
    if (direct_ && block_offset_ + block.stored_size > kMaxDirectOffset) return false;
    BlockWriter::Batch* b = blocks_writer_->current();
    VARVE_RETURN_IF_ERROR(it->AppendStoredBlock(&b->raw));  // appends nothing on failure
    for (uint32_t i = 0; compressed && i < block.count; ++i) {
      b->copied_hashes.emplace_back(hashes[i],
                                    DecodeFixed32(block.raw.data() + block.records_end + 4ull * i));
    }
    b->records.push_back(block.count);
    b->raw_ends.push_back(b->raw.size());
    b->copied.push_back(true);
    RecordView first;
    (void)block.Record(0, &first);
    b->first_keys.append(first.key);
    b->key_ends.push_back(b->first_keys.size());
    last_key_.assign(r.key);
    entries_ += block.count;
    tombstones_ += tombstones;
    key_bytes_ += key_bytes;
    value_bytes_ += value_bytes;
    raw_block_bytes_ += block.raw.size();
    block_offset_ += block.stored_size;
    ++blocks_;
    if (b->raw.size() >= BlockWriter::kBatchBytes) {
      status_ = blocks_writer_->Submit();
      VARVE_RETURN_IF_ERROR(status_);
    }
    return true;
  }

  Status Finish() override {
    if (!status_.ok()) return status_;
    if (finished_) return Status::InvalidArgument("table builder: Finish called twice");
    status_ = DoFinish();
    if (status_.ok()) finished_ = true;
    return status_;
  }

  Status Pad() {
    static const char zeros[8] = {};
    uint64_t pad = (8 - out_->Size() % 8) % 8;
    return out_->Append(std::string_view(zeros, pad));
  }

  Status DoFinish() {
    if (!offsets_.empty()) VARVE_RETURN_IF_ERROR(FlushBlock());
    VARVE_RETURN_IF_ERROR(blocks_writer_->Finish());
    blocks_writer_.reset();
    const uint64_t data_end = out_->Size();
    VARVE_RETURN_IF_ERROR(sparse_->Close());
    VARVE_RETURN_IF_ERROR(hashes_->Close());
    sparse_.reset();
    hashes_.reset();

    // Sparse index: (blocks + 1) u64 block offsets, (blocks + 2) u32 key offsets, then the
    // first key of every block and the table's last key.
    VARVE_RETURN_IF_ERROR(Pad());
    const uint64_t sparse_offset = out_->Size();
    XxhState xs;
    auto emit = [&](std::string_view piece) -> Status {
      xs.Update(piece);
      return out_->Append(piece);
    };
    // Three passes over the spilled (block offset, first key) list, one per section.
    VARVE_RETURN_IF_ERROR(ForEachSparseEntry(
        [&](const char* head, const std::string&) { return emit(std::string_view(head, 8)); }));
    {
      char e[8];
      EncodeFixed64(e, data_end);
      VARVE_RETURN_IF_ERROR(emit(std::string_view(e, 8)));
    }
    uint64_t key_offset = 0;
    VARVE_RETURN_IF_ERROR(ForEachSparseEntry([&](const char*, const std::string& key) {
      char o[4];
      EncodeFixed32(o, static_cast<uint32_t>(key_offset));
      key_offset += key.size();
      return emit(std::string_view(o, 4));
    }));
    if (key_offset + last_key_.size() > UINT32_MAX) {
      return Status::InvalidArgument("table builder: sparse index keys exceed 4 GiB");
    }
    {
      char o[8];
      EncodeFixed32(o, static_cast<uint32_t>(key_offset));
      EncodeFixed32(o + 4, static_cast<uint32_t>(key_offset + last_key_.size()));
      VARVE_RETURN_IF_ERROR(emit(std::string_view(o, 8)));
    }
    VARVE_RETURN_IF_ERROR(
        ForEachSparseEntry([&](const char*, const std::string& key) { return emit(key); }));
    VARVE_RETURN_IF_ERROR(emit(last_key_));
    const uint64_t sparse_bytes = out_->Size() - sparse_offset;
    const uint64_t sparse_checksum = xs.Digest();

    // Hash index.
    VARVE_RETURN_IF_ERROR(Pad());
    const uint64_t hash_offset = out_->Size();
    const uint64_t home_slots = HomeSlotsFor(entries_);
    XxhState hs;
    VARVE_ASSIGN_OR_RETURN(uint64_t physical_slots, WriteHashIndex(home_slots, &hs));
    const uint64_t hash_checksum = hs.Digest();

    char f[kFooterSize] = {};
    EncodeFixed64(f + footer::kEntries, entries_);
    EncodeFixed64(f + footer::kTombstones, tombstones_);
    EncodeFixed64(f + footer::kBlocks, blocks_);
    EncodeFixed64(f + footer::kKeyBytes, key_bytes_);
    EncodeFixed64(f + footer::kValueBytes, value_bytes_);
    EncodeFixed64(f + footer::kRawBlockBytes, raw_block_bytes_);
    EncodeFixed64(f + footer::kSparseOffset, sparse_offset);
    EncodeFixed64(f + footer::kSparseBytes, sparse_bytes);
    EncodeFixed64(f + footer::kHashOffset, hash_offset);
    EncodeFixed64(f + footer::kHomeSlots, home_slots);
    EncodeFixed64(f + footer::kPhysicalSlots, physical_slots);
    EncodeFixed64(f + footer::kSparseChecksum, sparse_checksum);
    EncodeFixed64(f + footer::kHashChecksum, hash_checksum);
    EncodeFixed32(f + footer::kFlags,
                  static_cast<uint32_t>(options_.compression) | (direct_ ? kFlagDirectSlots : 0));
    EncodeFixed16(f + footer::kMajor, kMajorVersion);
    EncodeFixed16(f + footer::kMinor, kMinorVersion);
    EncodeFixed64(f + footer::kFooterChecksum, SectionChecksum(f, footer::kFooterChecksum));
    std::memcpy(f + footer::kEndMagic, kFooterMagic.data(), 8);
    VARVE_RETURN_IF_ERROR(out_->Append(std::string_view(f, kFooterSize)));
    if (options_.sync) {
      VARVE_RETURN_IF_ERROR(out_->Sync());
    }
    VARVE_RETURN_IF_ERROR(out_->Close());
    out_.reset();
    VARVE_RETURN_IF_ERROR(env_->RenameFile(tmp_path(), path_));
    if (options_.sync) {
      auto slash = path_.rfind('/');
      std::string dir = slash == std::string::npos ? "." : path_.substr(0, slash);
      VARVE_RETURN_IF_ERROR(env_->SyncDir(dir.empty() ? "/" : dir));
    }
    return Status::Ok();
  }

  // Fills the hash index partition by partition: each partition of home slots is built in
  // memory from its own spill file; entries whose probe runs past a partition's end are carried
  // into the next one (and past the last home slot, into overflow slots at the end), so a probe
  // never wraps. Returns the number of physical slots written.
  Result<uint64_t> WriteHashIndex(uint64_t home_slots, XxhState* xs) {
    const uint64_t per_partition = std::max<uint64_t>(4096, options_.hash_memory_bytes / kSlotSize);
    const uint64_t partitions = (home_slots + per_partition - 1) / per_partition;
    std::vector<std::string> files;
    if (partitions == 1) {
      files.push_back(hash_path());
    } else {
      std::vector<std::unique_ptr<BufferedWriter>> writers;
      for (uint64_t p = 0; p < partitions; ++p) {
        files.push_back(hash_path() + "." + std::to_string(p));
        VARVE_ASSIGN_OR_RETURN(auto w, BufferedWriter::Create(env_, files.back()));
        writers.push_back(std::move(w));
      }
      VARVE_ASSIGN_OR_RETURN(auto r, BufferedReader::Open(env_, hash_path()));
      char e[16];
      for (uint64_t i = 0; i < entries_; ++i) {
        VARVE_RETURN_IF_ERROR(r->Read(16, e));
        uint64_t p = HomeSlot(DecodeFixed64(e), home_slots) / per_partition;
        VARVE_RETURN_IF_ERROR(writers[p]->Append(std::string_view(e, 16)));
      }
      for (auto& w : writers) VARVE_RETURN_IF_ERROR(w->Close());
    }
    struct Cleanup {
      Env* env;
      std::vector<std::string>* files;
      bool partitioned;
      ~Cleanup() {
        if (partitioned) {
          for (auto& f : *files) (void)env->RemoveFile(f);
        }
      }
    } cleanup{env_, &files, partitions > 1};

    std::vector<uint64_t> carry, next_carry;
    std::vector<uint64_t> slots;
    std::string chunk;                                   // spill entries read
    std::vector<std::pair<uint64_t, uint64_t>> entries;  // (home slot - begin, slot)
    std::vector<std::pair<uint64_t, uint64_t>> ordered;  // the same in home-slot order
    std::vector<uint16_t> bucket_of;                     // of each entry (counting sort)
    // Probes from rel (in slots) onwards; past the partition's end the entry is carried.
    auto put = [&](uint64_t rel, uint64_t slot) {
      while (rel < slots.size() && slots[rel] != 0) ++rel;
      if (rel == slots.size()) {
        next_carry.push_back(slot);
      } else {
        slots[rel] = slot;
      }
    };
    // The writer threads are done by now: the fill uses as many threads, and the caller's.
    const int threads = 1 + writer_threads_;
    std::vector<std::vector<uint64_t>> counts(threads);  // per thread and bucket
    uint64_t written = 0;
    for (uint64_t p = 0; p < partitions; ++p) {
      const uint64_t begin = p * per_partition;
      const uint64_t end = std::min(home_slots, begin + per_partition);
      const uint64_t span = end - begin;
      slots.assign(span, 0);
      next_carry.clear();
      for (uint64_t s : carry) put(0, s);
      // Stripes of the partition's slots, filled in parallel; an entry whose probe runs past its
      // stripe's end is deferred, and placed (in stripe order) after every stripe is filled.
      // Their number depends only on the partition's size, so the index is the same for any
      // number of threads.
      uint64_t stripes = 1;
      while (stripes < kMaxStripes && span / (2 * stripes) >= kMinStripeSlots) stripes *= 2;
      const uint64_t buckets_per_stripe = kFillBuckets / stripes;
      auto stripe_begin = [&](uint64_t k) { return (k * span + stripes - 1) / stripes; };
      std::vector<std::vector<uint64_t>> deferred(stripes);
      VARVE_ASSIGN_OR_RETURN(auto r, BufferedReader::Open(env_, files[p]));
      // Entries are placed a chunk at a time in home-slot order (a counting sort on the home
      // slot's top bits within the partition), so the fills sweep the slots forward instead of
      // missing the cache on every entry. Any insertion order gives a valid index.
      while (!r->AtEnd()) {
        const uint64_t n = std::min<uint64_t>(kFillChunk, r->Remaining() / 16);
        if (n == 0) return Status::Corruption(files[p] + ": partial hash spill entry");
        chunk.resize(n * 16);
        VARVE_RETURN_IF_ERROR(r->Read(n * 16, chunk.data()));
        entries.resize(n);
        bucket_of.resize(n);
        ordered.resize(n);
        // Each thread decodes and counts a contiguous part of the chunk, then scatters it after
        // the parts before it (so the order within a bucket is the chunk's order).
        const int sort_threads = n >= kMinStripeSlots ? threads : 1;
        auto part = [&](uint64_t t) { return n * t / sort_threads; };
        ParallelFor(sort_threads, sort_threads, [&](uint64_t t) {
          std::vector<uint64_t>& c = counts[t];
          c.assign(kFillBuckets, 0);
          for (uint64_t i = part(t); i < part(t + 1); ++i) {
            const uint64_t h = DecodeFixed64(chunk.data() + 16 * i);
            const uint64_t rel = HomeSlot(h, home_slots) - begin;
            entries[i] = {rel, DecodeFixed64(chunk.data() + 16 * i + 8) | Fingerprint(h)};
            bucket_of[i] = static_cast<uint16_t>((rel * kFillBuckets) / span);
            ++c[bucket_of[i]];
          }
        });
        std::vector<uint64_t> bucket_end(kFillBuckets);  // after the scatter
        uint64_t at = 0;
        for (uint64_t b = 0; b < kFillBuckets; ++b) {
          for (int t = 0; t < sort_threads; ++t) {
            const uint64_t c = counts[t][b];
            counts[t][b] = at;  // where thread t's entries of bucket b go
            at += c;
          }
          bucket_end[b] = at;
        }
        ParallelFor(sort_threads, sort_threads, [&](uint64_t t) {
          std::vector<uint64_t>& c = counts[t];
          for (uint64_t i = part(t); i < part(t + 1); ++i) {
            ordered[c[bucket_of[i]]++] = entries[i];
          }
        });
        ParallelFor(threads, stripes, [&](uint64_t k) {
          const uint64_t first = k == 0 ? 0 : bucket_end[k * buckets_per_stripe - 1];
          const uint64_t last = bucket_end[(k + 1) * buckets_per_stripe - 1];
          const uint64_t stop = stripe_begin(k + 1);
          for (uint64_t i = first; i < last; ++i) {
            uint64_t rel = ordered[i].first;
            while (rel < stop && slots[rel] != 0) ++rel;
            if (rel == stop) {
              deferred[k].push_back(ordered[i].second);
            } else {
              slots[rel] = ordered[i].second;
            }
          }
        });
        for (uint64_t k = 0; k < stripes; ++k) {
          for (uint64_t slot : deferred[k]) put(stripe_begin(k + 1), slot);
          deferred[k].clear();
        }
      }
      carry.swap(next_carry);
      VARVE_RETURN_IF_ERROR(WriteSlots(slots, xs));
      written += slots.size();
    }
    VARVE_RETURN_IF_ERROR(WriteSlots(carry, xs));  // overflow slots
    written += carry.size();
    return written;
  }

  // Spill entries placed per chunk in the hash index build (50 bytes each: read, decoded,
  // bucket, ordered; 12.5 MiB on top of hash_memory_bytes), and the buckets of its counting sort.
  static constexpr uint64_t kFillChunk = 1 << 18;
  static constexpr uint64_t kFillBuckets = 1 << 12;
  static_assert(kFillBuckets <= 1 << 16, "bucket numbers are u16");
  // Stripes of a partition filled in parallel: a power of two up to kMaxStripes (dividing
  // kFillBuckets), each of at least kMinStripeSlots slots (smaller partitions have one). Chunks
  // of fewer entries than kMinStripeSlots are sorted on one thread.
  static constexpr uint64_t kMaxStripes = 64;
  static constexpr uint64_t kMinStripeSlots = 1 << 16;

  Status WriteSlots(std::vector<uint64_t>& slots, XxhState* xs) {
    // Little-endian u64s: in place (converted first on a big-endian host).
    if constexpr (std::endian::native != std::endian::little) {
      for (uint64_t& s : slots) s = __builtin_bswap64(s);
    }
    const char* p = reinterpret_cast<const char*>(slots.data());
    const size_t n = slots.size() * kSlotSize;
    for (size_t at = 0; at < n; at += kSlotsWriteBytes) {
      const std::string_view piece(p + at, std::min(kSlotsWriteBytes, n - at));
      xs->Update(piece);
      VARVE_RETURN_IF_ERROR(out_->Append(piece));
    }
    return Status::Ok();
  }
  static constexpr size_t kSlotsWriteBytes = 1 << 20;

  uint64_t NumEntries() const override { return entries_; }

 private:
  const std::string path_;
  const TableOptions options_;
  Env* env_;
  const bool direct_;         // hash slots hold file offsets (compression none)
  const int writer_threads_;  // options_.writer_threads, -1 resolved
  std::unique_ptr<BufferedWriter> out_, sparse_, hashes_;
  std::unique_ptr<BlockWriter> blocks_writer_;
  Status status_;
  bool finished_ = false;
  std::string last_key_;
  std::string first_key_;  // of the block being filled
  std::vector<uint32_t> offsets_;
  uint64_t block_offset_ = 0;  // file offset of the block being filled, if uncompressed
  uint64_t entries_ = 0, tombstones_ = 0, blocks_ = 0, key_bytes_ = 0, value_bytes_ = 0;
  uint64_t raw_block_bytes_ = 0;
};

}  // namespace
}  // namespace table

Result<std::unique_ptr<TableBuilder>> TableBuilder::Create(const std::string& path,
                                                           const TableOptions& options) {
  if (options.block_size_bytes < table::kMinBlockSize ||
      options.block_size_bytes > table::kMaxBlockSize) {
    return Status::InvalidArgument("table builder: block_size_bytes out of range 256 B .. 1 MiB");
  }
  if (options.writer_threads < -1 || options.writer_threads > 64) {
    return Status::InvalidArgument("table builder: writer_threads out of range -1 .. 64");
  }
  if (options.compression != TableCompression::kNone &&
      options.compression != TableCompression::kLz4 &&
      options.compression != TableCompression::kZstd) {
    return Status::InvalidArgument("table builder: unknown compression");
  }
  Env* env = options.env ? options.env : Env::Default();
  auto b = std::make_unique<table::TableBuilderImpl>(path, options, env);
  VARVE_RETURN_IF_ERROR(b->Start());
  return std::unique_ptr<TableBuilder>(std::move(b));
}

}  // namespace varve
