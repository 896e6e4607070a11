// Hash index: 256 shards, each an open-addressing table (linear probing, backward-shift delete)
// of 8-byte slots pointing into an arena that holds [entry (20 bytes)][varint key length][key].
// Per key: 8 / load factor bytes of slot + 21 bytes of entry + the key.
#define XXH_INLINE_ALL  // the hash is on every lookup: inline it
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "engine/index.h"
#include "util/check.h"
#include "util/coding.h"
#include "util/rw_mutex.h"

namespace varve {
namespace {

constexpr int kShardBits = 8;
constexpr size_t kShards = size_t{1} << kShardBits;
constexpr size_t kEntryFixedBytes = 20;

inline uint64_t HashKey(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

// Bump allocator with chunks growing from 4 KiB to 1 MiB; a larger item gets a chunk of its own.
// A reference is ((chunk << 20) | offset) + 1, so 0 means none.
class Arena {
 public:
  static constexpr size_t kOffsetBits = 20;
  static constexpr size_t kMaxChunkBytes = size_t{1} << kOffsetBits;
  static constexpr size_t kMaxChunks = 4094;

  uint32_t Allocate(size_t n, char** out) {
    if (n > kMaxChunkBytes) {
      NewChunk(n);
      used_in_last_ = n;
      used_bytes_ += n;
      *out = chunks_.back().get();
      return Ref(chunks_.size() - 1, 0);
    }
    if (chunks_.empty() || used_in_last_ + n > last_chunk_bytes_) {
      // Grow by a quarter of what is held, so that at most ~20% sits unused in the last chunk.
      size_t size = std::max(n, std::clamp(allocated_bytes_ / 4, size_t{4096}, kMaxChunkBytes));
      NewChunk(size);
    }
    size_t off = used_in_last_;
    used_in_last_ += n;
    used_bytes_ += n;
    *out = chunks_.back().get() + off;
    return Ref(chunks_.size() - 1, off);
  }

  char* At(uint32_t ref) const {
    uint32_t r = ref - 1;
    return chunks_[r >> kOffsetBits].get() + (r & (kMaxChunkBytes - 1));
  }

  size_t allocated_bytes() const { return allocated_bytes_; }
  size_t used_bytes() const { return used_bytes_; }

 private:
  void NewChunk(size_t size) {
    VARVE_CHECK(chunks_.size() < kMaxChunks);
    chunks_.emplace_back(new char[size]);
    last_chunk_bytes_ = size;
    used_in_last_ = 0;
    allocated_bytes_ += size;
  }
  static uint32_t Ref(size_t chunk, size_t off) {
    return static_cast<uint32_t>((chunk << kOffsetBits) | off) + 1;
  }

  std::vector<std::unique_ptr<char[]>> chunks_;
  size_t last_chunk_bytes_ = 0;
  size_t used_in_last_ = 0;
  size_t allocated_bytes_ = 0;
  size_t used_bytes_ = 0;
};

void EncodeEntry(char* p, const IndexEntry& e) {
  EncodeFixed32(p, e.segment);
  EncodeFixed32(p + 4, e.offset);
  EncodeFixed32(p + 8, e.size);
  EncodeFixed64(p + 12, e.seq_flags);
}

IndexEntry DecodeEntry(const char* p) {
  IndexEntry e;
  e.segment = DecodeFixed32(p);
  e.offset = DecodeFixed32(p + 4);
  e.size = DecodeFixed32(p + 8);
  e.seq_flags = DecodeFixed64(p + 12);
  return e;
}

std::string_view KeyOf(const char* p) {
  uint64_t len = 0;
  const char* k =
      DecodeVarint64(p + kEntryFixedBytes, p + kEntryFixedBytes + kMaxVarint64Bytes, &len);
  return {k, static_cast<size_t>(len)};
}

size_t ItemBytes(const char* p) {
  std::string_view k = KeyOf(p);
  return static_cast<size_t>(k.data() + k.size() - p);
}

struct alignas(64) Shard {
  mutable RWMutex mu;
  std::unique_ptr<uint64_t[]> slots;  // (tag << 32) | arena ref; 0 = empty
  uint64_t mask = 0;                  // capacity - 1 (0 while unallocated)
  uint64_t count = 0;
  uint64_t dead_bytes = 0;  // arena bytes of removed items
  Arena arena;
  // Lock-free copies for Prefetch only: a stale value just prefetches a useless line.
  std::atomic<uint64_t*> prefetch_slots{nullptr};
  std::atomic<uint64_t> prefetch_mask{0};

  static uint32_t TagOf(uint64_t slot) { return static_cast<uint32_t>(slot >> 32); }
  static uint32_t RefOf(uint64_t slot) { return static_cast<uint32_t>(slot); }

  // Returns the slot holding key, or the empty slot where it would go (*found = false).
  uint64_t Find(std::string_view key, uint32_t tag, bool* found) const {
    uint64_t i = tag & mask;
    while (true) {
      uint64_t s = slots[i];
      if (s == 0) {
        *found = false;
        return i;
      }
      if (TagOf(s) == tag && KeyOf(arena.At(RefOf(s))) == key) {
        *found = true;
        return i;
      }
      i = (i + 1) & mask;
    }
  }

  char* ItemAt(uint64_t i) const { return arena.At(RefOf(slots[i])); }

  void Grow(uint64_t min_cap = 0) {
    uint64_t new_cap = mask == 0 ? 16 : (mask + 1) * 2;
    while (new_cap < min_cap) new_cap *= 2;
    std::unique_ptr<uint64_t[]> fresh(new uint64_t[new_cap]());
    uint64_t new_mask = new_cap - 1;
    for (uint64_t i = 0; mask != 0 && i <= mask; ++i) {
      uint64_t s = slots[i];
      if (s == 0) continue;
      uint64_t j = TagOf(s) & new_mask;
      while (fresh[j] != 0) j = (j + 1) & new_mask;
      fresh[j] = s;
    }
    slots = std::move(fresh);
    mask = new_mask;
    prefetch_slots.store(slots.get(), std::memory_order_relaxed);
    prefetch_mask.store(mask, std::memory_order_relaxed);
  }

  void Insert(uint64_t pos, std::string_view key, uint32_t tag, const IndexEntry& e) {
    char* p;
    size_t n = kEntryFixedBytes + VarintLength(key.size()) + key.size();
    uint32_t ref = arena.Allocate(n, &p);
    EncodeEntry(p, e);
    char* k = EncodeVarint64(p + kEntryFixedBytes, key.size());
    std::memcpy(k, key.data(), key.size());
    slots[pos] = (static_cast<uint64_t>(tag) << 32) | ref;
    ++count;
  }

  // Ensures room for one more item; may move slots, so call before Find for an insert.
  void Reserve() {
    if (mask == 0 || (count + 1) * 5 > (mask + 1) * 4) Grow();
  }

  void EraseAt(uint64_t i) {
    dead_bytes += ItemBytes(ItemAt(i));
    --count;
    uint64_t j = i;
    while (true) {
      slots[i] = 0;
      while (true) {
        j = (j + 1) & mask;
        if (slots[j] == 0) {
          MaybeCompactArena();
          return;
        }
        uint64_t home = TagOf(slots[j]) & mask;
        bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) break;
      }
      slots[i] = slots[j];
      i = j;
    }
  }

  void MaybeCompactArena() {
    if (dead_bytes < 64 * 1024 || dead_bytes * 2 < arena.used_bytes()) return;
    Arena fresh;
    for (uint64_t i = 0; i <= mask; ++i) {
      if (slots[i] == 0) continue;
      const char* old = ItemAt(i);
      size_t n = ItemBytes(old);
      char* p;
      uint32_t ref = fresh.Allocate(n, &p);
      std::memcpy(p, old, n);
      slots[i] = (slots[i] & ~uint64_t{0xffffffff}) | ref;
    }
    arena = std::move(fresh);
    dead_bytes = 0;
  }
};

class HashIndex final : public Index {
 public:
  HashIndex() : shards_(new Shard[kShards]) {}

  bool Get(std::string_view key, IndexEntry* out) const override {
    uint64_t h = HashKey(key);
    const Shard& s = shards_[h >> (64 - kShardBits)];
    std::shared_lock lock(s.mu);
    if (s.count == 0) return false;
    bool found;
    uint64_t i = s.Find(key, Tag(h), &found);
    if (found) *out = DecodeEntry(s.ItemAt(i));
    return found;
  }

  void Reserve(uint64_t keys) override {
    uint64_t per_shard = keys / kShards + keys / kShards / 8 + 16;
    for (size_t i = 0; i < kShards; ++i) {
      Shard& s = shards_[i];
      std::unique_lock lock(s.mu);
      uint64_t want = per_shard * 5 / 4;
      if (s.mask == 0 || s.mask + 1 < want) s.Grow(want);
    }
  }

  void Prefetch(std::string_view key) const override {
    uint64_t h = HashKey(key);
    const Shard& s = shards_[h >> (64 - kShardBits)];
    uint64_t* slots = s.prefetch_slots.load(std::memory_order_relaxed);
    if (slots != nullptr) {
      __builtin_prefetch(slots + (Tag(h) & s.prefetch_mask.load(std::memory_order_relaxed)));
    }
  }

  bool Put(std::string_view key, const IndexEntry& entry, IndexEntry* old) override {
    uint64_t h = HashKey(key);
    Shard& s = shards_[h >> (64 - kShardBits)];
    std::unique_lock lock(s.mu);
    s.Reserve();
    bool found;
    uint64_t i = s.Find(key, Tag(h), &found);
    if (found) {
      char* p = s.ItemAt(i);
      *old = DecodeEntry(p);
      EncodeEntry(p, entry);
      return true;
    }
    s.Insert(i, key, Tag(h), entry);
    size_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }

  bool PutIfNewer(std::string_view key, const IndexEntry& entry, IndexEntry* old,
                  bool* replaced) override {
    uint64_t h = HashKey(key);
    Shard& s = shards_[h >> (64 - kShardBits)];
    std::unique_lock lock(s.mu);
    s.Reserve();
    bool found;
    uint64_t i = s.Find(key, Tag(h), &found);
    *replaced = false;
    if (found) {
      char* p = s.ItemAt(i);
      IndexEntry cur = DecodeEntry(p);
      if (cur.seq() >= entry.seq()) return false;
      *old = cur;
      *replaced = true;
      EncodeEntry(p, entry);
      return true;
    }
    s.Insert(i, key, Tag(h), entry);
    size_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  bool Remove(std::string_view key, IndexEntry* old) override {
    uint64_t h = HashKey(key);
    Shard& s = shards_[h >> (64 - kShardBits)];
    std::unique_lock lock(s.mu);
    if (s.count == 0) return false;
    bool found;
    uint64_t i = s.Find(key, Tag(h), &found);
    if (!found) return false;
    *old = DecodeEntry(s.ItemAt(i));
    s.EraseAt(i);
    size_.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }

  bool ReplaceIf(std::string_view key, const IndexEntry& expected,
                 const IndexEntry& entry) override {
    uint64_t h = HashKey(key);
    Shard& s = shards_[h >> (64 - kShardBits)];
    std::unique_lock lock(s.mu);
    if (s.count == 0) return false;
    bool found;
    uint64_t i = s.Find(key, Tag(h), &found);
    if (!found) return false;
    char* p = s.ItemAt(i);
    if (!DecodeEntry(p).SameLocation(expected)) return false;
    EncodeEntry(p, entry);
    return true;
  }

  bool RemoveIf(std::string_view key, const IndexEntry& expected) override {
    uint64_t h = HashKey(key);
    Shard& s = shards_[h >> (64 - kShardBits)];
    std::unique_lock lock(s.mu);
    if (s.count == 0) return false;
    bool found;
    uint64_t i = s.Find(key, Tag(h), &found);
    if (!found || !DecodeEntry(s.ItemAt(i)).SameLocation(expected)) return false;
    s.EraseAt(i);
    size_.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }

  uint64_t Size() const override { return size_.load(std::memory_order_relaxed); }

  uint64_t MemoryBytes() const override {
    uint64_t total = sizeof(Shard) * kShards;
    for (size_t i = 0; i < kShards; ++i) {
      const Shard& s = shards_[i];
      std::shared_lock lock(s.mu);
      total += (s.mask == 0 ? 0 : (s.mask + 1) * sizeof(uint64_t)) + s.arena.allocated_bytes();
    }
    return total;
  }

  bool Ordered() const override { return false; }

  bool Scan(Cursor* cursor, std::string_view, size_t max_entries,
            std::vector<KeyEntry>* out) const override {
    while (cursor->shard < kShards) {
      const Shard& s = shards_[cursor->shard++];
      std::shared_lock lock(s.mu);
      for (uint64_t i = 0; s.mask != 0 && i <= s.mask; ++i) {
        if (s.slots[i] == 0) continue;
        const char* p = s.ItemAt(i);
        out->emplace_back(std::string(KeyOf(p)), DecodeEntry(p));
      }
      if (out->size() >= max_entries) break;
    }
    return cursor->shard < kShards;
  }

  void ForEach(const std::function<void(std::string_view, const IndexEntry&)>& fn) const override {
    for (size_t n = 0; n < kShards; ++n) {
      const Shard& s = shards_[n];
      std::shared_lock lock(s.mu);
      for (uint64_t i = 0; s.mask != 0 && i <= s.mask; ++i) {
        if (s.slots[i] == 0) continue;
        const char* p = s.ItemAt(i);
        fn(KeyOf(p), DecodeEntry(p));
      }
    }
  }

  void DropTombstones() override {
    for (size_t n = 0; n < kShards; ++n) {
      Shard& s = shards_[n];
      std::unique_lock lock(s.mu);
      for (uint64_t i = 0; s.mask != 0 && i <= s.mask;) {
        if (s.slots[i] != 0 && DecodeEntry(s.ItemAt(i)).tombstone()) {
          s.EraseAt(i);  // pulls a later item into i: look at i again
          size_.fetch_sub(1, std::memory_order_relaxed);
        } else {
          ++i;
        }
      }
    }
  }

 private:
  static uint32_t Tag(uint64_t h) { return static_cast<uint32_t>(h); }

  std::unique_ptr<Shard[]> shards_;
  std::atomic<uint64_t> size_{0};
};

}  // namespace

std::unique_ptr<Index> NewHashIndex() { return std::make_unique<HashIndex>(); }

}  // namespace varve
