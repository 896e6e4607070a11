// Hash index: 256 shards, each a table of groups in the manner of Swiss tables. A group is one
// cache line: 12 control bytes (empty, erased, or 7 bits of the key's hash; matched at once),
// 4 bytes of padding and 12 4-byte references into an arena holding the items:
//   [varint key length][key][tag][segment][offset][size]
// the tag: bit 0 tombstone, bits 1-2, 3-4 and 5-6 the byte count - 1 of the segment id, offset
// and size that follow (each little-endian, 1 to 4 bytes). The key first: a probe compares it
// without decoding anything else. A lookup touches one line of the table and the item. Per key:
// 5.33 bytes of slot / load factor (0.58 to 0.875) + 7 to 9 bytes of item (16-byte keys, 100-byte
// values: 24 bytes with the key) + the key.
// Where the memory is: tables and chunks from malloc while the index is small; once the arenas
// hold 32 MiB, carved from 2 MiB-aligned huge-page regions the shards share (HugeHeap; tables
// and chunks in regions of their own), so that
// the table line and the item a lookup touches cost no TLB miss (back to malloc if the index
// shrinks and leaves the regions mostly free); a loaded checkpoint lies in one block
// (LoadBlock), from 4 MiB on a mapping of its own that asks for huge pages once loaded.
#define XXH_INLINE_ALL  // the hash is on every lookup: inline it
#include <xxhash.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <tuple>

#include "engine/index.h"
#include "util/check.h"
#include "util/coding.h"
#include "util/rw_mutex.h"

namespace varve {
namespace {

constexpr int kShardBits = 8;
constexpr size_t kShards = size_t{1} << kShardBits;
constexpr size_t kGroupSlots = 12;
constexpr uint32_t kGroupMask = (1u << kGroupSlots) - 1;
constexpr uint8_t kEmpty = 0x80;
constexpr uint8_t kErased = 0xfe;  // a removed slot a probe must pass (its group was full)
// Loads: a table grows past 7/8 (empties and erased slots counted), sized at 0.85 when the
// number of keys is known, shrunk below 0.6 after recovery.
constexpr double kMaxLoad = 0.875;
constexpr double kReserveLoad = 0.85;

inline uint64_t HashKey(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }
inline size_t ShardOf(uint64_t h) { return h >> (64 - kShardBits); }
inline uint8_t H2(uint64_t h) { return static_cast<uint8_t>((h >> (64 - kShardBits - 7)) & 0x7f); }
// The home group: the low 32 bits scaled to the group count (no power-of-two sizes needed).
inline uint64_t HomeGroup(uint64_t h, uint64_t groups) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(h)) * groups) >> 32;
}

// One cache line: control bytes, then the slots' arena references.
struct alignas(64) Group {
  uint8_t ctrl[16];  // bytes 12..15 are padding (0xff: never matches, masked off)
  uint32_t refs[kGroupSlots];
};
static_assert(sizeof(Group) == 64);

// Bit i set for each of the group's 12 control bytes that matches.
class GroupBits {
 public:
  explicit GroupBits(const uint8_t* ctrl) : ctrl_(ctrl) {}
#if defined(__SSE2__)
  uint32_t Match(uint8_t v) const {
    __m128i g = _mm_load_si128(reinterpret_cast<const __m128i*>(ctrl_));
    return kGroupMask & static_cast<uint32_t>(_mm_movemask_epi8(
                            _mm_cmpeq_epi8(g, _mm_set1_epi8(static_cast<char>(v)))));
  }
  // Empty and erased both have the high bit set; full slots never do.
  uint32_t MatchFree() const {
    __m128i g = _mm_load_si128(reinterpret_cast<const __m128i*>(ctrl_));
    return kGroupMask & static_cast<uint32_t>(_mm_movemask_epi8(g));
  }
#else
  uint32_t Match(uint8_t v) const {
    uint32_t m = 0;
    for (size_t i = 0; i < kGroupSlots; ++i) m |= static_cast<uint32_t>(ctrl_[i] == v) << i;
    return m;
  }
  uint32_t MatchFree() const {
    uint32_t m = 0;
    for (size_t i = 0; i < kGroupSlots; ++i) m |= static_cast<uint32_t>(ctrl_[i] >> 7) << i;
    return m;
  }
#endif
  uint32_t MatchEmpty() const { return Match(kEmpty); }

 private:
  const uint8_t* ctrl_;
};

constexpr size_t kHugePage = size_t{2} << 20;

// length bytes (a multiple of 4 KiB) in a mapping of their own that starts on a 2 MiB boundary,
// with transparent huge pages asked for if advise (the machine's mode may be `madvise`); nullptr
// if the mapping fails. Only whole 2 MiB ranges inside it can get huge pages: a shorter tail stays
// on 4 KiB pages, so nothing beyond length becomes resident.
char* MapHugeAligned(size_t length, bool advise = true) {
  void* p = ::mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (start + kHugePage - 1) & ~uintptr_t{kHugePage - 1};
  if (aligned > start) ::munmap(p, aligned - start);
  const uintptr_t end = start + length + kHugePage;
  if (end > aligned + length) {
    ::munmap(reinterpret_cast<void*>(aligned + length), end - aligned - length);
  }
  if (advise) ::madvise(reinterpret_cast<void*>(aligned), length, MADV_HUGEPAGE);  // a hint
  return reinterpret_cast<char*>(aligned);
}

// Memory on huge pages for a large index built by Puts: group tables and arena chunks carved
// from regions of 2 MiB (or more, for a larger request) that MapHugeAligned maps, shared by all
// the shards (a region per shard would cost 256 x 2 MiB). A lookup's group line and item then
// cost no TLB miss. Carving is first fit by address; freed ranges merge with their free
// neighbours of the same region, and a region nothing is carved from any more is unmapped:
// tables freed as they grow and arenas rewritten by compaction go back to the heap, and to the
// system once a whole region is free. Allocations are rare (a chunk, a table): one lock, and a
// walk of the free ranges.
class HugeHeap {
 public:
  // On from this many arena bytes (all shards). Below it the rounding (a partly carved 2 MiB
  // region, up to 6% here) is not worth it (bench/RESULTS.md, "Huge pages for the index built by
  // Puts").
  static constexpr size_t kStartBytes = size_t{32} << 20;

  HugeHeap() = default;
  HugeHeap(const HugeHeap&) = delete;
  HugeHeap& operator=(const HugeHeap&) = delete;
  ~HugeHeap() {
    for (const auto& [start, region] : regions_) {
      ::munmap(reinterpret_cast<void*>(start), region.bytes);
    }
  }

  // New tables and chunks come from the heap. On once the arenas hold kStartBytes; off again
  // once they hold less and more of the regions is free than carved (the index shrank, and what
  // is left of it is scattered over the regions: 256 shards carve and compact at their own
  // times), so that its memory goes back to the system.
  bool active() const { return active_.load(std::memory_order_relaxed); }
  // Whether it switched on or off since the last call: the shards then follow (MoveShards).
  bool TakeSwitched() {
    return switched_.load(std::memory_order_relaxed) &&
           switched_.exchange(false, std::memory_order_acq_rel);
  }
  void AddArenaBytes(size_t n) {
    if (arena_bytes_.fetch_add(n, std::memory_order_relaxed) + n >= kStartBytes && !active()) {
      Switch(true);
    }
  }
  void SubArenaBytes(size_t n) { arena_bytes_.fetch_sub(n, std::memory_order_relaxed); }

  static size_t Rounded(size_t n) { return (n + 63) & ~size_t{63}; }

  // Rounded(n) bytes at a 64-byte boundary, or nullptr if no region could be mapped.
  char* Allocate(size_t n) {
    n = Rounded(n);
    std::lock_guard lock(mu_);
    auto fit = free_.begin();
    while (fit != free_.end() && fit->second < n) ++fit;
    uintptr_t at;
    if (fit != free_.end()) {
      at = fit->first;
      const size_t bytes = fit->second;
      free_.erase(fit);
      if (bytes > n) free_.emplace(at + n, bytes - n);
    } else {
      const size_t bytes = (std::max(n, kHugePage) + kHugePage - 1) & ~(kHugePage - 1);
      char* p = MapHugeAligned(bytes);
      if (p == nullptr) return nullptr;
      at = reinterpret_cast<uintptr_t>(p);
      regions_.emplace(at, Region{bytes, 0});
      mapped_ += bytes;
      if (bytes > n) free_.emplace(at + n, bytes - n);
    }
    RegionOf(at)->second.used += n;
    used_ += n;
    return reinterpret_cast<char*>(at);
  }

  // p and n as given to (and by) Allocate.
  void Free(char* p, size_t n) {
    n = Rounded(n);
    uintptr_t start = reinterpret_cast<uintptr_t>(p);
    std::lock_guard lock(mu_);
    auto region = RegionOf(start);
    const uintptr_t region_start = region->first, region_end = region_start + region->second.bytes;
    VARVE_CHECK(start >= region_start && start + n <= region_end && region->second.used >= n);
    region->second.used -= n;
    used_ -= n;
    if (active() && mapped_ - used_ > std::max(used_, kHugePage) &&
        arena_bytes_.load(std::memory_order_relaxed) < kStartBytes) {
      Switch(false);
    }
    if (region->second.used == 0) {  // what is left of it is free ranges: give it back
      free_.erase(free_.lower_bound(region_start), free_.lower_bound(region_end));
      ::munmap(reinterpret_cast<void*>(region_start), region->second.bytes);
      mapped_ -= region->second.bytes;
      regions_.erase(region);
      return;
    }
    uintptr_t end = start + n;
    auto next = free_.lower_bound(start);
    if (next != free_.end() && next->first == end && end < region_end) {
      end += next->second;
      next = free_.erase(next);
    }
    if (next != free_.begin()) {
      auto prev = std::prev(next);
      if (prev->first >= region_start && prev->first + prev->second == start) {
        start = prev->first;
        free_.erase(prev);
      }
    }
    free_.emplace(start, end - start);
  }

  // Mapped and not handed out: the regions' free ranges (a 2 MiB page is resident whole).
  size_t FreeBytes() const {
    std::lock_guard lock(mu_);
    return mapped_ - used_;
  }

 private:
  struct Region {
    size_t bytes;
    size_t used;  // bytes handed out
  };

  void Switch(bool on) {
    active_.store(on, std::memory_order_relaxed);
    switched_.store(true, std::memory_order_release);
  }
  std::map<uintptr_t, Region>::iterator RegionOf(uintptr_t p) {
    auto it = regions_.upper_bound(p);
    VARVE_CHECK(it != regions_.begin());
    return std::prev(it);
  }

  mutable std::mutex mu_;
  std::map<uintptr_t, Region> regions_;  // by start
  std::map<uintptr_t, size_t> free_;     // free ranges, start -> bytes, none across regions
  size_t mapped_ = 0;
  size_t used_ = 0;
  // Apart from the lock's line: every write reads switched_.
  alignas(64) std::atomic<bool> active_{false};
  std::atomic<bool> switched_{false};
  std::atomic<size_t> arena_bytes_{0};  // every shard's Arena::allocated_bytes()
};

// Bump allocator with chunks growing from 4 KiB to 1 MiB by a sixteenth of what is held (so at
// most ~6% sits unused in the last chunk); a larger item gets a chunk of its own. A chunk takes
// all that the allocator handed out (its size classes are up to 25% apart). Every allocation
// ends in kTailPad spare bytes: an item's last field is read with a 4-byte load.
// A reference is ((chunk << 20) | offset) + 1, so 0 means none.
// Chunks come from malloc, or from the index's HugeHeap while it is active; Move takes them
// from one to the other (a reference names a chunk and an offset: it stays valid).
class Arena {
 public:
  static constexpr size_t kOffsetBits = 20;
  static constexpr size_t kMaxChunkBytes = size_t{1} << kOffsetBits;
  static constexpr size_t kMaxChunks = 4094;
  static constexpr size_t kTailPad = 3;

  Arena() = default;
  explicit Arena(HugeHeap* heap) : heap_(heap), in_heap_(heap != nullptr && heap->active()) {}
  ~Arena() {
    for (const Block& b : blocks_) FreeBlock(b);
    Uncount(allocated_bytes_);  // external memory
  }
  Arena(Arena&& o) noexcept { Swap(o); }
  Arena& operator=(Arena&& o) noexcept {
    Arena old(std::move(*this));
    Swap(o);
    return *this;
  }

  uint32_t Allocate(size_t n, char** out) {
    if (n + kTailPad > kMaxChunkBytes) {
      AddChunk(NewBlock(n + kTailPad), n, n);
      *out = chunks_.back();
      return Ref(chunks_.size() - 1, 0);
    }
    if (chunks_.empty() || used_in_last_ + n > last_chunk_bytes_) {
      size_t want = std::max((n + kTailPad + 63) & ~size_t{63},
                             std::clamp(allocated_bytes_ / 16, size_t{4096}, kMaxChunkBytes));
      size_t got = want;
      char* p = NewBlock(want, &got);
      // Offsets stay below 2^20; a multiple of 64 keeps a checkpoint's bytes the same whatever
      // the allocator (the first chunk: 4096 with jemalloc, 4104 with glibc).
      AddChunk(p, (std::min(got, kMaxChunkBytes) & ~size_t{63}) - kTailPad, 0);
    }
    size_t off = used_in_last_;
    used_in_last_ += n;
    used_bytes_ += n;
    chunk_used_.back() = static_cast<uint32_t>(used_in_last_);
    *out = chunks_.back() + off;
    return Ref(chunks_.size() - 1, off);
  }

  // Checkpoints: the chunks as they are. Only the first used bytes of a chunk were ever written.
  size_t chunks() const { return chunks_.size(); }
  const char* chunk_data(size_t i) const { return chunks_[i]; }
  uint32_t chunk_bytes(size_t i) const { return chunk_bytes_[i]; }
  uint32_t chunk_used(size_t i) const { return chunk_used_[i]; }
  // Loading a checkpoint: one allocation for all the chunks' used bytes, then each chunk in turn
  // takes its used bytes of it, which the caller fills. The loaded chunks are full: new items go
  // to new chunks.
  // In external memory (of total_used + kTailPad bytes, which the caller keeps) if given.
  void ReserveLoad(size_t total_used, char* external = nullptr) {
    if (external == nullptr) {
      load_next_ = NewBlock(total_used + kTailPad);
      return;
    }
    load_next_ = external;
    in_external_ = true;
    Count(total_used + kTailPad);
  }
  // Some chunks lie in the caller's memory.
  bool in_external() const { return in_external_; }
  char* AddLoadedChunk(size_t used) {
    char* p = load_next_;
    load_next_ += used;
    AddChunk(p, used, used);
    ++loaded_chunks_;
    return p;
  }

  // New chunks from the heap (to_heap) or malloc, and the chunks there now copied over (not
  // those in external memory, a loaded checkpoint's block, which asks for huge pages itself).
  // Pointers into the chunks are stale after it.
  void Move(bool to_heap) {
    if (heap_ == nullptr || in_heap_ == to_heap) return;
    in_heap_ = to_heap;
    std::vector<Block> old;
    old.swap(blocks_);
    for (size_t c = in_external_ ? loaded_chunks_ : 0; c < chunks_.size(); ++c) {
      char* p = NewBlock(size_t{chunk_bytes_[c]} + kTailPad);
      std::memcpy(p, chunks_[c], chunk_used_[c]);
      chunks_[c] = p;
    }
    for (const Block& b : old) FreeBlock(b);
  }

  char* At(uint32_t ref) const {
    uint32_t r = ref - 1;
    return chunks_[r >> kOffsetBits] + (r & (kMaxChunkBytes - 1));
  }

  size_t allocated_bytes() const { return allocated_bytes_; }
  size_t used_bytes() const { return used_bytes_; }

 private:
  struct Block {
    char* p;
    size_t bytes;
    bool in_heap;
  };

  // Holds n bytes or more (*got: how many the allocator handed out, for the caller to use).
  char* NewBlock(size_t n, size_t* got = nullptr) {
    Block b{in_heap_ ? heap_->Allocate(n) : nullptr, HugeHeap::Rounded(n), true};
    if (b.p == nullptr) {  // malloc, or the heap could map no region
      b.p = static_cast<char*>(std::malloc(n));
      VARVE_CHECK(b.p != nullptr);
      b.bytes = std::max(n, malloc_usable_size(b.p));
      b.in_heap = false;
    }
    blocks_.push_back(b);
    Count(b.bytes);
    if (got != nullptr) *got = b.bytes;
    return b.p;
  }
  void AddChunk(char* p, size_t bytes, size_t used) {
    VARVE_CHECK(chunks_.size() < kMaxChunks);
    chunks_.push_back(p);
    chunk_bytes_.push_back(static_cast<uint32_t>(bytes));
    chunk_used_.push_back(static_cast<uint32_t>(used));
    last_chunk_bytes_ = bytes;
    used_in_last_ = used;
    used_bytes_ += used;
  }
  static uint32_t Ref(size_t chunk, size_t off) {
    return static_cast<uint32_t>((chunk << kOffsetBits) | off) + 1;
  }
  void Count(size_t n) {
    allocated_bytes_ += n;
    if (heap_ != nullptr) heap_->AddArenaBytes(n);
  }
  void Uncount(size_t n) {
    allocated_bytes_ -= n;
    if (heap_ != nullptr) heap_->SubArenaBytes(n);
  }
  void FreeBlock(const Block& b) {
    if (b.in_heap) {
      heap_->Free(b.p, b.bytes);
    } else {
      std::free(b.p);
    }
    Uncount(b.bytes);
  }
  void Swap(Arena& o) {
    auto fields = [](Arena& a) {
      return std::tie(a.heap_, a.in_heap_, a.blocks_, a.chunks_, a.chunk_bytes_, a.chunk_used_,
                      a.load_next_, a.in_external_, a.loaded_chunks_, a.last_chunk_bytes_,
                      a.used_in_last_, a.allocated_bytes_, a.used_bytes_);
    };
    auto mine = fields(*this), theirs = fields(o);
    mine.swap(theirs);
  }

  HugeHeap* heap_ = nullptr;   // the index's, shared by the shards
  bool in_heap_ = false;       // new chunks come from heap_
  std::vector<Block> blocks_;  // what the chunks lie in (not external memory)
  std::vector<char*> chunks_;
  std::vector<uint32_t> chunk_bytes_;  // room of each chunk (an item is under 4 GiB)
  std::vector<uint32_t> chunk_used_;   // bytes handed out of each chunk
  char* load_next_ = nullptr;
  bool in_external_ = false;
  size_t loaded_chunks_ = 0;  // the first chunks, from ReserveLoad
  size_t last_chunk_bytes_ = 0;
  size_t used_in_last_ = 0;
  size_t allocated_bytes_ = 0;
  size_t used_bytes_ = 0;
};

// Items. The key comes first; the entry after it is a tag byte and three fields of 1 to 4 bytes.
constexpr size_t kMinItemBytes = 5;  // empty key, three 1-byte fields

inline unsigned FieldBytes(uint32_t v) { return (39 - std::countl_zero(v | 1)) >> 3; }
inline uint32_t LoadField(const char* p, unsigned bytes) {
  return DecodeFixed32(p) & (0xffffffffu >> (32 - 8 * bytes));  // the arena's tail pad allows it
}
inline void StoreField(char* p, uint32_t v, unsigned bytes) {
  char b[4];
  EncodeFixed32(b, v);
  std::memcpy(p, b, bytes);
}
inline unsigned SegmentBytes(uint8_t tag) { return ((tag >> 1) & 3) + 1; }
inline unsigned OffsetBytes(uint8_t tag) { return ((tag >> 3) & 3) + 1; }
inline unsigned SizeBytes(uint8_t tag) { return ((tag >> 5) & 3) + 1; }
inline size_t EntryBytes(uint8_t tag) {
  return 1 + SegmentBytes(tag) + OffsetBytes(tag) + SizeBytes(tag);
}

// The tag for e with each field at least as wide as in min_tag.
inline uint8_t TagFor(const IndexEntry& e, uint8_t min_tag = 0) {
  unsigned s = std::max(FieldBytes(e.segment), SegmentBytes(min_tag));
  unsigned o = std::max(FieldBytes(e.offset), OffsetBytes(min_tag));
  unsigned z = std::max(FieldBytes(e.size), SizeBytes(min_tag));
  return static_cast<uint8_t>((e.tombstone() ? 1 : 0) | (s - 1) << 1 | (o - 1) << 3 | (z - 1) << 5);
}

void EncodeEntry(char* p, const IndexEntry& e, uint8_t tag) {
  p[0] = static_cast<char>(tag);
  p += 1;
  StoreField(p, e.segment, SegmentBytes(tag));
  p += SegmentBytes(tag);
  StoreField(p, e.offset, OffsetBytes(tag));
  p += OffsetBytes(tag);
  StoreField(p, e.size, SizeBytes(tag));
}

IndexEntry DecodeEntry(const char* p) {
  const uint8_t tag = static_cast<uint8_t>(p[0]);
  const unsigned s = SegmentBytes(tag), o = OffsetBytes(tag);
  IndexEntry e;
  e.segment = LoadField(p + 1, s);
  e.offset = LoadField(p + 1 + s, o);
  e.size = LoadField(p + 1 + s + o, SizeBytes(tag));
  e.flags = (tag & 1) != 0 ? IndexEntry::kTombstone : 0;
  return e;
}

std::string_view KeyOf(const char* p) {
  if (static_cast<uint8_t>(*p) < 0x80) return {p + 1, static_cast<uint8_t>(*p)};
  uint64_t len = 0;
  const char* k = DecodeVarint64(p, p + kMaxVarint64Bytes, &len);
  return {k, static_cast<size_t>(len)};
}

// The item's entry part (its tag), just past the key.
inline char* EntryOf(char* p) {
  std::string_view k = KeyOf(p);
  return const_cast<char*>(k.data() + k.size());
}
inline const char* EntryOf(const char* p) { return EntryOf(const_cast<char*>(p)); }
inline IndexEntry DecodeItem(const char* p) { return DecodeEntry(EntryOf(p)); }

size_t ItemBytes(const char* p) {
  const char* e = EntryOf(p);
  return static_cast<size_t>(e - p) + EntryBytes(static_cast<uint8_t>(*e));
}

// The memory a checkpoint's parts load into: every shard's table and arena bytes in one
// allocation instead of two per shard, each rounded up to a size class (0.5-1 KB a shard).
// A shard holds it until its table and arena have both moved out.
class LoadBlock {
 public:
  explicit LoadBlock(size_t n) : size_((n + 63) & ~size_t{63}) {
    if (size_ >= 2 * kHugePage && MapAligned()) return;
    base_ = static_cast<char*>(std::aligned_alloc(64, size_));
    VARVE_CHECK(base_ != nullptr);
  }
  ~LoadBlock() {
    if (mapped_ != 0) {
      ::munmap(base_, mapped_);
    } else {
      std::free(base_);
    }
  }
  LoadBlock(const LoadBlock&) = delete;
  LoadBlock& operator=(const LoadBlock&) = delete;

  // n bytes at a 64-byte boundary (parts load in parallel), or nullptr when it is full.
  char* Take(size_t n) {
    size_t at = used_.fetch_add((n + 63) & ~size_t{63}, std::memory_order_relaxed);
    return at <= size_ && n <= size_ - at ? base_ + at : nullptr;
  }

  // Once loaded: transparent huge pages for the block, so that a lookup's group line and item
  // cost no TLB miss (14-23% of a small Get's CPU with huge pages, bench/RESULTS.md). Asked for
  // only now, so that khugepaged collapses the pages in the background: faulting huge pages in
  // while loading made a warm open of 10M keys 3x slower (zeroing 2 MiB pages that are new to
  // the VM). Only the part below the last 2 MiB boundary gets them, so the block's size is what
  // is resident.
  void AdviseHuge() {
    if (mapped_ != 0) ::madvise(base_, mapped_, MADV_HUGEPAGE);  // a hint: without it, 4 KiB
  }

 private:
  // A mapping of its own that starts on a 2 MiB boundary (see AdviseHuge).
  bool MapAligned() {
    const size_t length = (size_ + 4095) & ~size_t{4095};
    base_ = MapHugeAligned(length, /*advise=*/false);
    if (base_ == nullptr) return false;
    mapped_ = length;
    return true;
  }

  size_t size_;
  char* base_ = nullptr;
  size_t mapped_ = 0;  // bytes mapped by MapAligned (0: from the allocator)
  std::atomic<size_t> used_{0};
};

// A table is the shard's own (from new or the HugeHeap), or lies in a LoadBlock.
struct TableFree {
  enum class From : uint8_t { kNew, kHeap, kLoadBlock };
  From from = From::kNew;
  HugeHeap* heap = nullptr;  // kHeap: where it goes back, and its size
  size_t bytes = 0;
  void operator()(Group* g) const {
    if (from == From::kNew) delete[] g;
    if (from == From::kHeap) heap->Free(reinterpret_cast<char*>(g), bytes);
  }
};
using Table = std::unique_ptr<Group[], TableFree>;

struct alignas(64) Shard {
  mutable RWMutex mu;
  Table table;
  std::shared_ptr<LoadBlock> load_block;  // while the table or arena lies in it
  std::unique_ptr<uint64_t[]> seqs;       // recovery only: sequence number per slot
  bool has_tombstones = false;            // an entry marked tombstone was stored (recovery)
  uint64_t groups = 0;
  uint64_t count = 0;
  std::atomic<uint64_t> published_count{0};  // count, readable without the lock (Size)
  uint64_t erased = 0;                       // slots marked kErased
  uint64_t dead_bytes = 0;                   // arena bytes of removed items
  Arena arena;
  HugeHeap* heap = nullptr;        // the index's, for chunks (and whether tables use regions)
  HugeHeap* table_heap = nullptr;  // the index's, for tables
  // Lock-free copies for Prefetch only: a stale value just prefetches a useless line.
  std::atomic<Group*> prefetch_table{nullptr};
  std::atomic<uint64_t*> prefetch_seqs{nullptr};
  std::atomic<uint64_t> prefetch_groups{0};

  // Slot i is control byte and reference i % 12 of group i / 12.
  uint64_t capacity() const { return groups * kGroupSlots; }
  uint8_t& Ctrl(uint64_t i) const { return table[i / kGroupSlots].ctrl[i % kGroupSlots]; }
  uint32_t& Ref(uint64_t i) const { return table[i / kGroupSlots].refs[i % kGroupSlots]; }
  bool Full(uint64_t i) const { return (Ctrl(i) & 0x80) == 0; }
  char* ItemAt(uint64_t i) const { return arena.At(Ref(i)); }

  // Uninitialized; from the heap once it is active.
  Table AllocTable(uint64_t n) const {
    const size_t bytes = n * sizeof(Group);
    if (heap != nullptr && heap->active()) {
      if (char* p = table_heap->Allocate(bytes)) {
        return Table(reinterpret_cast<Group*>(p),
                     TableFree{TableFree::From::kHeap, table_heap, bytes});
      }
    }
    return Table(new Group[n]);
  }

  Table NewTable(uint64_t groups) const {
    Table t = AllocTable(groups);
    for (uint64_t g = 0; g < groups; ++g) {
      std::memset(t[g].ctrl, kEmpty, kGroupSlots);
      std::memset(t[g].ctrl + kGroupSlots, 0xff, sizeof(t[g].ctrl) - kGroupSlots);
      std::memset(t[g].refs, 0, sizeof(t[g].refs));
    }
    return t;
  }

  // Returns the slot holding key (*found), or else the free slot where it would go.
  uint64_t Find(std::string_view key, uint64_t h, bool* found) const {
    const uint8_t h2 = H2(h);
    uint64_t g = HomeGroup(h, groups);
    uint64_t insert_at = UINT64_MAX;
    while (true) {
      const Group& grp = table[g];
      GroupBits bits(grp.ctrl);
      for (uint32_t m = bits.Match(h2); m != 0; m &= m - 1) {
        uint32_t ref = grp.refs[__builtin_ctz(m)];
        if (KeyOf(arena.At(ref)) == key) {
          *found = true;
          return g * kGroupSlots + static_cast<unsigned>(__builtin_ctz(m));
        }
      }
      uint32_t free = bits.MatchFree();
      if (insert_at == UINT64_MAX && free != 0) {
        insert_at = g * kGroupSlots + static_cast<unsigned>(__builtin_ctz(free));
      }
      if (bits.MatchEmpty() != 0) {
        *found = false;
        return insert_at;
      }
      if (++g == groups) g = 0;
    }
  }

  // Moves every item into a table of at least min_slots slots (also clears erased slots).
  void Rehash(uint64_t min_slots) {
    uint64_t new_groups = std::max<uint64_t>(1, (min_slots + kGroupSlots - 1) / kGroupSlots);
    Table fresh = NewTable(new_groups);
    std::unique_ptr<uint64_t[]> fresh_seqs(seqs ? new uint64_t[new_groups * kGroupSlots]()
                                                : nullptr);
    // The keys are hashed again: load items a few slots ahead (they lie in insertion order).
    constexpr uint64_t kAhead = 12;
    for (uint64_t i = 0; i < std::min(capacity(), kAhead); ++i) {
      if (Full(i)) __builtin_prefetch(ItemAt(i));
    }
    for (uint64_t i = 0; i < capacity(); ++i) {
      if (i + kAhead < capacity() && Full(i + kAhead)) __builtin_prefetch(ItemAt(i + kAhead));
      if (!Full(i)) continue;
      uint64_t h = HashKey(KeyOf(ItemAt(i)));
      uint64_t g = HomeGroup(h, new_groups);
      while (true) {
        uint32_t free = GroupBits(fresh[g].ctrl).MatchEmpty();
        if (free != 0) {
          unsigned j = static_cast<unsigned>(__builtin_ctz(free));
          fresh[g].ctrl[j] = Ctrl(i);
          fresh[g].refs[j] = Ref(i);
          if (seqs) fresh_seqs[g * kGroupSlots + j] = seqs[i];
          break;
        }
        if (++g == new_groups) g = 0;
      }
    }
    table = std::move(fresh);
    seqs = std::move(fresh_seqs);
    groups = new_groups;
    erased = 0;
    prefetch_table.store(table.get(), std::memory_order_relaxed);
    prefetch_seqs.store(seqs.get(), std::memory_order_relaxed);
    prefetch_groups.store(groups, std::memory_order_relaxed);
    DropLoadBlockIfUnused();
  }

  void DropLoadBlockIfUnused() {
    if (load_block && table.get_deleter().from != TableFree::From::kLoadBlock &&
        !arena.in_external()) {
      load_block.reset();
    }
  }

  // After the heap switched on or off: the table and the arena's chunks move to or from it.
  // Pointers into them are stale after it.
  void FollowHeap() {
    const bool on = heap->active();
    arena.Move(on);
    const TableFree::From from = table.get_deleter().from;
    if (table && from != TableFree::From::kLoadBlock && (from == TableFree::From::kHeap) != on) {
      Table moved = AllocTable(groups);
      std::memcpy(static_cast<void*>(moved.get()), table.get(), groups * sizeof(Group));
      table = std::move(moved);
      prefetch_table.store(table.get(), std::memory_order_relaxed);
    }
  }

  // Ensures room for one more item; may move slots, so call before Find for an insert.
  void MakeRoom() {
    if (static_cast<double>(count + erased + 1) <= kMaxLoad * static_cast<double>(capacity())) {
      return;
    }
    // Many erased slots: rebuild at the same size; otherwise grow by half.
    uint64_t slots = erased * 4 >= count ? capacity() : capacity() + capacity() / 2;
    Rehash(std::max<uint64_t>({slots, kGroupSlots, SlotsFor(count + 1, kReserveLoad)}));
  }

  static uint64_t SlotsFor(uint64_t keys, double load) {
    return static_cast<uint64_t>(std::ceil(static_cast<double>(keys) / load));
  }

  // Writes key's item with entry e into the arena; returns its reference.
  uint32_t NewItem(std::string_view key, const IndexEntry& e) {
    if (e.tombstone()) has_tombstones = true;
    const uint8_t tag = TagFor(e);
    size_t n = VarintLength(key.size()) + key.size() + EntryBytes(tag);
    char* p;
    uint32_t ref = arena.Allocate(n, &p);
    p = EncodeVarint64(p, key.size());
    std::memcpy(p, key.data(), key.size());
    EncodeEntry(p + key.size(), e, tag);
    return ref;
  }

  void Insert(uint64_t pos, std::string_view key, uint64_t h, const IndexEntry& e) {
    uint32_t ref = NewItem(key, e);
    if (Ctrl(pos) == kErased) --erased;
    Ctrl(pos) = H2(h);
    Ref(pos) = ref;
    published_count.store(++count, std::memory_order_relaxed);
  }

  // Replaces the entry of the item in slot i: in place when each field fits the width it has,
  // else the item moves.
  void SetEntry(uint64_t i, const IndexEntry& e) {
    char* p = ItemAt(i);
    char* entry = EntryOf(p);
    const uint8_t old_tag = static_cast<uint8_t>(*entry);
    const uint8_t tag = TagFor(e, old_tag);
    if (EntryBytes(tag) == EntryBytes(old_tag)) {
      if (e.tombstone()) has_tombstones = true;
      EncodeEntry(entry, e, tag);
      return;
    }
    dead_bytes += ItemBytes(p);
    Ref(i) = NewItem(KeyOf(p), e);
    MaybeCompactArena();
  }

  void EraseAt(uint64_t i) {
    dead_bytes += ItemBytes(ItemAt(i));
    published_count.store(--count, std::memory_order_relaxed);
    // A group that still has an empty slot never made a probe pass it: the slot can be empty.
    if (GroupBits(table[i / kGroupSlots].ctrl).MatchEmpty() != 0) {
      Ctrl(i) = kEmpty;
    } else {
      Ctrl(i) = kErased;
      ++erased;
    }
    Ref(i) = 0;
    MaybeCompactArena();
  }

  void MaybeCompactArena() {
    if (dead_bytes < 64 * 1024 || dead_bytes * 2 < arena.used_bytes()) return;
    CompactArena();
  }

  void CompactArena() {
    Arena fresh(heap);
    for (uint64_t i = 0; i < capacity(); ++i) {
      if (!Full(i)) continue;
      const char* old = ItemAt(i);
      size_t n = ItemBytes(old);
      char* p;
      Ref(i) = fresh.Allocate(n, &p);
      std::memcpy(p, old, n);
    }
    arena = std::move(fresh);
    dead_bytes = 0;
    DropLoadBlockIfUnused();
  }

  // Checkpoint part header: groups, count, erased, dead_bytes (u64 each), chunk count, zero (u32).
  static constexpr size_t kPartHeaderBytes = 40;
  static constexpr size_t kChunkEntryBytes = 8;  // allocated bytes u32, used bytes u32

  uint64_t CheckpointBytes() const {
    uint64_t n = kPartHeaderBytes + kChunkEntryBytes * arena.chunks() + groups * sizeof(Group);
    for (size_t c = 0; c < arena.chunks(); ++c) n += arena.chunk_used(c);
    return n;
  }

  Status Save(const std::function<Status(std::string_view)>& write) const {
    VARVE_CHECK(!seqs);  // recovery is over
    std::string head;
    PutFixed64(&head, groups);
    PutFixed64(&head, count);
    PutFixed64(&head, erased);
    PutFixed64(&head, dead_bytes);
    PutFixed32(&head, static_cast<uint32_t>(arena.chunks()));
    PutFixed32(&head, 0);
    for (size_t c = 0; c < arena.chunks(); ++c) {
      PutFixed32(&head, arena.chunk_bytes(c));
      PutFixed32(&head, arena.chunk_used(c));
    }
    VARVE_RETURN_IF_ERROR(write(head));
    if (groups != 0) {
      VARVE_RETURN_IF_ERROR(write(
          std::string_view(reinterpret_cast<const char*>(table.get()), groups * sizeof(Group))));
    }
    for (size_t c = 0; c < arena.chunks(); ++c) {
      VARVE_RETURN_IF_ERROR(write(std::string_view(arena.chunk_data(c), arena.chunk_used(c))));
    }
    return Status::Ok();
  }

  // Into an empty shard; left empty on error.
  Status Load(uint64_t bytes, const std::function<Status(char*, size_t)>& read,
              const std::shared_ptr<LoadBlock>& block) {
    Status s = LoadParts(bytes, read, block);
    if (!s.ok()) {
      table.reset();
      groups = count = erased = dead_bytes = 0;
      arena = Arena(heap);
      load_block.reset();
    }
    published_count.store(count, std::memory_order_relaxed);
    prefetch_table.store(table.get(), std::memory_order_relaxed);
    prefetch_groups.store(groups, std::memory_order_relaxed);
    return s;
  }

  Status LoadParts(uint64_t bytes, const std::function<Status(char*, size_t)>& read,
                   const std::shared_ptr<LoadBlock>& block) {
    auto bad = [](const std::string& what) {
      return Status::Corruption("index checkpoint part: " + what);
    };
    if (bytes < kPartHeaderBytes) return bad("shorter than its header");
    char head[kPartHeaderBytes];
    VARVE_RETURN_IF_ERROR(read(head, sizeof(head)));
    uint64_t n_groups = DecodeFixed64(head);
    uint64_t n_count = DecodeFixed64(head + 8);
    uint64_t n_erased = DecodeFixed64(head + 16);
    uint64_t n_dead = DecodeFixed64(head + 24);
    uint32_t n_chunks = DecodeFixed32(head + 32);
    // Every size is checked against bytes (the part's length) before anything is allocated.
    uint64_t left = bytes - kPartHeaderBytes;
    if (n_chunks > Arena::kMaxChunks || uint64_t{n_chunks} * kChunkEntryBytes > left ||
        n_groups > (left - uint64_t{n_chunks} * kChunkEntryBytes) / sizeof(Group)) {
      return bad("sizes beyond its length");
    }
    std::string chunk_table(size_t{n_chunks} * kChunkEntryBytes, '\0');
    VARVE_RETURN_IF_ERROR(read(chunk_table.data(), chunk_table.size()));
    uint64_t arena_bytes = 0;
    for (uint32_t c = 0; c < n_chunks; ++c) {
      uint32_t size = DecodeFixed32(chunk_table.data() + 8 * c);
      uint32_t used = DecodeFixed32(chunk_table.data() + 8 * c + 4);
      if (used > size || (size > Arena::kMaxChunkBytes && used != size)) return bad("chunk size");
      arena_bytes += used;
    }
    if (left != chunk_table.size() + n_groups * sizeof(Group) + arena_bytes) {
      return bad("length does not match its sizes");
    }
    if (n_count + n_erased > n_groups * kGroupSlots) return bad("more items than slots");
    const size_t table_bytes = n_groups * sizeof(Group);
    char* mem = nullptr;
    if (block != nullptr && n_groups != 0) {
      mem = block->Take(table_bytes + arena_bytes + Arena::kTailPad);
    }
    if (mem != nullptr) {
      table = Table(reinterpret_cast<Group*>(mem), TableFree{TableFree::From::kLoadBlock});
      load_block = block;
    } else {
      table = n_groups == 0 ? nullptr : AllocTable(n_groups);
    }
    groups = n_groups;
    if (n_groups != 0) {
      VARVE_RETURN_IF_ERROR(read(reinterpret_cast<char*>(table.get()), n_groups * sizeof(Group)));
    }
    if (n_chunks != 0) arena.ReserveLoad(arena_bytes, mem == nullptr ? nullptr : mem + table_bytes);
    for (uint32_t c = 0; c < n_chunks; ++c) {
      uint32_t used = DecodeFixed32(chunk_table.data() + 8 * c + 4);
      VARVE_RETURN_IF_ERROR(read(arena.AddLoadedChunk(used), used));
    }
    // Every reference must lie in its chunk's written bytes (the checksum, which the caller
    // checks, covers the items themselves).
    uint64_t full = 0, marked_erased = 0;
    for (uint64_t i = 0; i < capacity(); ++i) {
      uint8_t c = Ctrl(i);
      if (c == kErased) ++marked_erased;
      if (c == kEmpty || c == kErased) continue;
      if ((c & 0x80) != 0) return bad("bad control byte");
      uint32_t r = Ref(i) - 1;
      size_t chunk = r >> Arena::kOffsetBits;
      if (Ref(i) == 0 || chunk >= n_chunks ||
          (r & (Arena::kMaxChunkBytes - 1)) + kMinItemBytes > arena.chunk_used(chunk)) {
        return bad("reference out of its arena");
      }
      ++full;
    }
    if (full != n_count || marked_erased != n_erased) return bad("counts do not match its table");
    count = n_count;
    erased = n_erased;
    dead_bytes = n_dead;
    return Status::Ok();
  }

  uint64_t MemoryBytes() const {
    return groups * sizeof(Group) + (seqs ? capacity() * sizeof(uint64_t) : 0) +
           arena.allocated_bytes();
  }
};

class HashIndex final : public Index {
 public:
  HashIndex() : shards_(new Shard[kShards]) {
    for (size_t i = 0; i < kShards; ++i) {
      shards_[i].heap = &heap_;
      shards_[i].table_heap = &table_heap_;
      shards_[i].arena = Arena(&heap_);
    }
  }

  bool Get(std::string_view key, IndexEntry* out) const override {
    uint64_t h = HashKey(key);
    const Shard& s = shards_[ShardOf(h)];
    std::shared_lock lock(s.mu);
    if (s.count == 0) return false;
    bool found;
    uint64_t i = s.Find(key, h, &found);
    if (found) *out = DecodeItem(s.ItemAt(i));
    return found;
  }

  void Reserve(uint64_t keys) override {
    // Shards differ by a few standard deviations of a binomial count at most.
    double mean = static_cast<double>(keys) / kShards;
    uint64_t per_shard = static_cast<uint64_t>(mean + 4 * std::sqrt(mean)) + 16;
    uint64_t want = Shard::SlotsFor(per_shard, kReserveLoad);
    for (size_t i = 0; i < kShards; ++i) {
      Shard& s = shards_[i];
      std::unique_lock lock(s.mu);
      if (s.capacity() < want) s.Rehash(want);
    }
  }

  void Prefetch(std::string_view key) const override { PrefetchHash(HashKey(key)); }

  bool Put(std::string_view key, const IndexEntry& entry, IndexEntry* old) override {
    uint64_t h = HashKey(key);
    Shard& s = shards_[ShardOf(h)];
    ShardsFollowHeap follow{this};  // once the lock is released
    std::unique_lock lock(s.mu);
    return PutLocked(s, key, h, entry, old);
  }

  bool PutIfNewer(std::string_view key, const IndexEntry& entry, uint64_t seq, IndexEntry* old,
                  bool* replaced) override {
    uint64_t h = HashKey(key);
    Shard& s = shards_[ShardOf(h)];
    ShardsFollowHeap follow{this};  // once the lock is released
    std::unique_lock lock(s.mu);
    return PutIfNewerLocked(s, key, h, entry, seq, old, replaced);
  }

  void PutIfNewerBatch(const RecoveredEntry* entries, size_t n, bool in_order,
                       PutResult* out) override {
    // Grouped by shard (a stable counting sort: one key's entries keep their order), each shard
    // locked once: with a lock per entry, loader threads spent 40% of a 10M-key open from hints
    // in the lock's cache line moving between cores.
    thread_local std::vector<uint64_t> hashes;
    thread_local std::vector<uint32_t> order;
    hashes.resize(n);
    order.resize(n);
    uint32_t start[kShards + 1] = {};
    for (size_t i = 0; i < n; ++i) {
      hashes[i] = HashKey(entries[i].key);
      ++start[ShardOf(hashes[i]) + 1];
    }
    for (size_t sh = 0; sh < kShards; ++sh) start[sh + 1] += start[sh];
    uint32_t next[kShards];
    std::copy(start, start + kShards, next);
    for (size_t i = 0; i < n; ++i) order[next[ShardOf(hashes[i])]++] = static_cast<uint32_t>(i);
    // Slots prefetched well ahead, across shards (the lock-free copies): the table is far larger
    // than the caches and these loads are what the load waits on.
    constexpr uint32_t kAhead = 16;
    for (uint32_t j = 0; j < std::min<size_t>(kAhead, n); ++j) PrefetchHash(hashes[order[j]]);
    ShardsFollowHeap follow{this};  // once the lock is released
    std::unique_lock<RWMutex> lock;
    size_t locked = kShards;
    for (uint32_t j = 0; j < n; ++j) {
      if (j + kAhead < n) PrefetchHash(hashes[order[j + kAhead]]);
      const uint32_t i = order[j];
      const size_t sh = ShardOf(hashes[i]);
      if (sh != locked) {
        if (lock.owns_lock()) lock.unlock();
        lock = std::unique_lock<RWMutex>(shards_[sh].mu);
        locked = sh;
      }
      PutResult& r = out[i];
      if (in_order) {
        r.changed = true;
        r.replaced = PutLocked(shards_[sh], entries[i].key, hashes[i], entries[i].entry, &r.old);
        continue;
      }
      r.changed = PutIfNewerLocked(shards_[sh], entries[i].key, hashes[i], entries[i].entry,
                                   entries[i].seq, &r.old, &r.replaced);
    }
  }

  bool Remove(std::string_view key, IndexEntry* old) override {
    uint64_t h = HashKey(key);
    Shard& s = shards_[ShardOf(h)];
    ShardsFollowHeap follow{this};  // once the lock is released
    std::unique_lock lock(s.mu);
    if (s.count == 0) return false;
    bool found;
    uint64_t i = s.Find(key, h, &found);
    if (!found) return false;
    *old = DecodeItem(s.ItemAt(i));
    s.EraseAt(i);
    return true;
  }

  bool ReplaceIf(std::string_view key, const IndexEntry& expected,
                 const IndexEntry& entry) override {
    uint64_t h = HashKey(key);
    Shard& s = shards_[ShardOf(h)];
    ShardsFollowHeap follow{this};  // once the lock is released
    std::unique_lock lock(s.mu);
    if (s.count == 0) return false;
    bool found;
    uint64_t i = s.Find(key, h, &found);
    if (!found || !DecodeItem(s.ItemAt(i)).SameLocation(expected)) return false;
    s.SetEntry(i, entry);
    return true;
  }

  bool RemoveIf(std::string_view key, const IndexEntry& expected) override {
    uint64_t h = HashKey(key);
    Shard& s = shards_[ShardOf(h)];
    ShardsFollowHeap follow{this};  // once the lock is released
    std::unique_lock lock(s.mu);
    if (s.count == 0) return false;
    bool found;
    uint64_t i = s.Find(key, h, &found);
    if (!found || !DecodeItem(s.ItemAt(i)).SameLocation(expected)) return false;
    s.EraseAt(i);
    return true;
  }

  uint64_t Size() const override {
    uint64_t total = 0;
    for (size_t i = 0; i < kShards; ++i) {
      total += shards_[i].published_count.load(std::memory_order_relaxed);
    }
    return total;
  }

  uint64_t MemoryBytes() const override {
    uint64_t total = sizeof(Shard) * kShards + heap_.FreeBytes() + table_heap_.FreeBytes();
    for (size_t i = 0; i < kShards; ++i) {
      const Shard& s = shards_[i];
      std::shared_lock lock(s.mu);
      total += s.MemoryBytes();
    }
    return total;
  }

  bool Ordered() const override { return false; }

  bool Scan(Cursor* cursor, std::string_view, size_t max_entries,
            std::vector<KeyEntry>* out) const override {
    while (cursor->shard < kShards) {
      const Shard& s = shards_[cursor->shard++];
      std::shared_lock lock(s.mu);
      for (uint64_t i = 0; i < s.capacity(); ++i) {
        if (!s.Full(i)) continue;
        const char* p = s.ItemAt(i);
        out->emplace_back(std::string(KeyOf(p)), DecodeItem(p));
      }
      if (out->size() >= max_entries) break;
    }
    return cursor->shard < kShards;
  }

  void ForEach(const std::function<void(std::string_view, const IndexEntry&)>& fn) const override {
    for (size_t n = 0; n < kShards; ++n) {
      const Shard& s = shards_[n];
      std::shared_lock lock(s.mu);
      for (uint64_t i = 0; i < s.capacity(); ++i) {
        if (!s.Full(i)) continue;
        const char* p = s.ItemAt(i);
        fn(KeyOf(p), DecodeItem(p));
      }
    }
  }

  uint64_t CheckpointLayout() const override {
    // "HIX" | version 2 (XXH3-64 seed 0, items as above) | shard bits | group slots | arena
    // offset bits | byte order: any change of these gives another value.
    return (uint64_t{0x484958} << 40) | (uint64_t{2} << 32) | (uint64_t{kShardBits} << 24) |
           (uint64_t{kGroupSlots} << 16) | (uint64_t{Arena::kOffsetBits} << 8) |
           (std::endian::native == std::endian::little ? 1 : 2);
  }
  uint32_t CheckpointParts() const override { return kShards; }

  void PrepareCheckpoint() override {
    for (size_t n = 0; n < kShards; ++n) {
      Shard& s = shards_[n];
      std::unique_lock lock(s.mu);
      if (s.count == 0) {  // nothing to keep (a store with few keys leaves most shards empty)
        s.table.reset();
        s.groups = s.erased = s.dead_bytes = 0;
        s.arena = Arena(&heap_);
        s.load_block.reset();
        s.prefetch_table.store(nullptr, std::memory_order_relaxed);
        s.prefetch_groups.store(0, std::memory_order_relaxed);
        continue;
      }
      if (s.dead_bytes * 16 > s.arena.used_bytes()) s.CompactArena();
      // A table that grew by half in a run sits between 0.58 and 0.875 full; a load from hints
      // sizes it near 0.85.
      // (Only if that shrinks it: a small table can stay under 0.75 at its size.)
      const uint64_t want = Shard::SlotsFor(s.count, kReserveLoad);
      if (s.erased != 0 ||
          (static_cast<double>(s.count) < 0.75 * static_cast<double>(s.capacity()) &&
           (want + kGroupSlots - 1) / kGroupSlots < s.groups)) {
        s.Rehash(want);
      }
    }
  }

  uint64_t CheckpointPartBytes(uint32_t part) const override {
    const Shard& s = shards_[part];
    std::shared_lock lock(s.mu);
    return s.CheckpointBytes();
  }

  Status SaveCheckpointPart(uint32_t part,
                            const std::function<Status(std::string_view)>& write) const override {
    const Shard& s = shards_[part];
    std::shared_lock lock(s.mu);
    return s.Save(write);
  }

  Status LoadCheckpointPart(uint32_t part, uint64_t bytes,
                            const std::function<Status(char*, size_t)>& read) override {
    Shard& s = shards_[part];
    std::unique_lock lock(s.mu);
    VARVE_CHECK(s.count == 0 && s.groups == 0 && s.arena.chunks() == 0 && !s.seqs);
    Status st = s.Load(bytes, read, load_block_);
    // The last part loaded: the shards hold the block from now on.
    if (parts_loaded_.fetch_add(1, std::memory_order_acq_rel) + 1 == kShards) {
      if (load_block_ != nullptr) load_block_->AdviseHuge();
      load_block_.reset();
    }
    return st;
  }

  void StartCheckpointLoad(uint64_t total_part_bytes) override {
    // A part needs at most 26 bytes more than its length (table and arena bytes, the arena's
    // tail pad, rounded to 64; its header and chunk table, at least 40 bytes, are not kept).
    load_block_ = std::make_shared<LoadBlock>(total_part_bytes + 64 * kShards);
    parts_loaded_.store(0, std::memory_order_relaxed);
  }

  void FinishRecovery() override {
    for (size_t n = 0; n < kShards; ++n) {
      Shard& s = shards_[n];
      std::unique_lock lock(s.mu);
      for (uint64_t i = 0; s.has_tombstones && i < s.capacity(); ++i) {
        if (s.Full(i) && DecodeItem(s.ItemAt(i)).tombstone()) {
          s.EraseAt(i);
        }
      }
      s.has_tombstones = false;
      s.seqs.reset();
      s.prefetch_seqs.store(nullptr, std::memory_order_relaxed);
      // Reserve sized for every record the hints listed; overwritten keys left slots unused.
      if (static_cast<double>(s.count) < 0.6 * static_cast<double>(s.capacity())) {
        s.Rehash(Shard::SlotsFor(s.count, kReserveLoad));
      } else if (s.erased != 0) {
        s.Rehash(s.capacity());
      }
    }
  }

 private:
  void PrefetchHash(uint64_t h) const {
    const Shard& s = shards_[ShardOf(h)];
    Group* table = s.prefetch_table.load(std::memory_order_relaxed);
    uint64_t groups = s.prefetch_groups.load(std::memory_order_relaxed);
    if (table != nullptr && groups != 0) {
      uint64_t g = HomeGroup(h, groups);
      __builtin_prefetch(table + g);
      uint64_t* seqs = s.prefetch_seqs.load(std::memory_order_relaxed);
      if (seqs != nullptr) __builtin_prefetch(seqs + g * kGroupSlots);
    }
  }

  bool PutLocked(Shard& s, std::string_view key, uint64_t h, const IndexEntry& entry,
                 IndexEntry* old) {
    s.MakeRoom();
    bool found;
    uint64_t i = s.Find(key, h, &found);
    if (found) {
      *old = DecodeItem(s.ItemAt(i));
      s.SetEntry(i, entry);
      return true;
    }
    s.Insert(i, key, h, entry);
    return false;
  }

  bool PutIfNewerLocked(Shard& s, std::string_view key, uint64_t h, const IndexEntry& entry,
                        uint64_t seq, IndexEntry* old, bool* replaced) {
    s.MakeRoom();
    if (!s.seqs) {
      s.seqs.reset(new uint64_t[s.capacity()]());
      s.prefetch_seqs.store(s.seqs.get(), std::memory_order_relaxed);
    }
    bool found;
    uint64_t i = s.Find(key, h, &found);
    *replaced = false;
    if (found) {
      if (s.seqs[i] >= seq) return false;
      *old = DecodeItem(s.ItemAt(i));
      *replaced = true;
      s.SetEntry(i, entry);
      s.seqs[i] = seq;
      return true;
    }
    s.Insert(i, key, h, entry);
    s.seqs[i] = seq;
    return true;
  }

  // After a write: if the heap switched on or off, every shard moves its memory to or from it
  // (one write pays for the copies, once; the heap switches rarely).
  void MoveShards() {
    while (heap_.TakeSwitched()) {
      for (size_t i = 0; i < kShards; ++i) {
        Shard& s = shards_[i];
        std::unique_lock lock(s.mu);
        s.FollowHeap();
      }
    }
  }
  // Declared before a shard's lock, so that it runs after the lock is released.
  struct ShardsFollowHeap {
    HashIndex* index;
    ~ShardsFollowHeap() { index->MoveShards(); }
  };

  // Before the shards, which give their memory back to them. The tables have regions of their
  // own: a table freed as it grows leaves a hole that chunks, which live long, would pin.
  HugeHeap heap_;
  HugeHeap table_heap_;
  std::unique_ptr<Shard[]> shards_;
  std::shared_ptr<LoadBlock> load_block_;  // while a checkpoint loads
  std::atomic<uint32_t> parts_loaded_{0};
};

}  // namespace

std::unique_ptr<Index> NewHashIndex() { return std::make_unique<HashIndex>(); }

}  // namespace varve
