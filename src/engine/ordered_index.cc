// Ordered index: an absl::btree_map under one reader-writer lock, for ordered, ranged iteration.
//
// Layout. A B-tree keeps several entries per node in one allocation, so a lookup touches a few
// nodes instead of one tree node (and one key buffer) per level as std::map did. Each slot is a
// 24-byte CompactKey (keys up to 20 bytes inline, longer ones in their own heap buffer) and the
// 16-byte IndexEntry: about 45-60 bytes per key with the nodes' slack, against about 130 for a
// std::map node with a std::string key of 16 bytes or more. Inline keys compare without chasing
// a pointer. The sequence numbers PutIfNewer needs live in a side table that FinishRecovery
// frees; recovery itself does not use PutIfNewer (below).
//
// Recovery (BulkRecovery). Loader threads hand their entries to AddRecovered, which appends them
// to one buffer under a short lock; BuildRecovered sorts the buffer by key, newest sequence first
// (one radix pass on an 8-byte key prefix into cache-sized buckets that threads sort; keys that
// share their first bytes take a parallel merge sort), keeps each key's newest entry (tombstones
// included, as PutIfNewer would) and appends them to the tree in key order, which fills its
// nodes. Inserting into a std::map under one lock, a heap allocation per key, took 72 s for 10M
// keys. The buffer costs 56 bytes per loaded record, twice that while the radix pass moves it.
//
// Concurrency: readers share the lock; the writer (the group-commit leader) and compaction take
// it for one B-tree operation. Scans copy a chunk of entries out and resume from the last key.
#include <absl/container/btree_map.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "engine/index.h"
#include "util/rw_mutex.h"

namespace varve {
namespace {

// A key in 24 bytes: up to kInline bytes in place, longer ones in a heap buffer it owns.
class CompactKey {
 public:
  static constexpr size_t kInline = 20;

  CompactKey() = default;
  explicit CompactKey(std::string_view k) : size_(static_cast<uint32_t>(k.size())) {
    if (size_ <= kInline) {
      if (size_ != 0) std::memcpy(buf_, k.data(), size_);
    } else {
      char* p = new char[size_];
      std::memcpy(p, k.data(), size_);
      std::memcpy(buf_, &p, sizeof(p));
    }
  }
  CompactKey(const CompactKey& o) : CompactKey(o.view()) {}
  CompactKey(CompactKey&& o) noexcept : size_(o.size_) {
    std::memcpy(buf_, o.buf_, sizeof(buf_));
    o.size_ = 0;
  }
  CompactKey& operator=(CompactKey&& o) noexcept {
    if (this != &o) {
      Free();
      size_ = o.size_;
      std::memcpy(buf_, o.buf_, sizeof(buf_));
      o.size_ = 0;
    }
    return *this;
  }
  CompactKey& operator=(const CompactKey& o) {
    if (this != &o) *this = CompactKey(o.view());
    return *this;
  }
  ~CompactKey() { Free(); }

  std::string_view view() const { return {size_ > kInline ? Heap() : buf_, size_}; }
  // Bytes outside the slot.
  uint64_t HeapBytes() const { return size_ > kInline ? HeapBytesFor(size_) : 0; }
  static uint64_t HeapBytesFor(size_t size) {
    return size > kInline ? (size + 15) & ~uint64_t{15} : 0;
  }

 private:
  char* Heap() const {
    char* p;
    std::memcpy(&p, buf_, sizeof(p));
    return p;
  }
  void Free() {
    if (size_ > kInline) delete[] Heap();
    size_ = 0;
  }

  uint32_t size_ = 0;
  char buf_[kInline];
};
static_assert(sizeof(CompactKey) == 24);

absl::weak_ordering Order(std::string_view a, std::string_view b) {
  if (std::endian::native == std::endian::little && a.size() >= 8 && b.size() >= 8) {
    // Most comparisons end in the first 8 bytes: decide them without a call to memcmp.
    uint64_t x, y;
    std::memcpy(&x, a.data(), 8);
    std::memcpy(&y, b.data(), 8);
    if (x != y) {
      return __builtin_bswap64(x) < __builtin_bswap64(y) ? absl::weak_ordering::less
                                                         : absl::weak_ordering::greater;
    }
  }
  int c = a.compare(b);
  return c < 0    ? absl::weak_ordering::less
         : c == 0 ? absl::weak_ordering::equivalent
                  : absl::weak_ordering::greater;
}

// Three-way (the B-tree then needs one comparison per probe), transparent (lookups by
// string_view build no key).
struct KeyCompare {
  using is_transparent = void;
  static std::string_view View(const CompactKey& k) { return k.view(); }
  static std::string_view View(std::string_view k) { return k; }
  template <typename A, typename B>
  absl::weak_ordering operator()(const A& a, const B& b) const {
    return Order(View(a), View(b));
  }
};

using Map = absl::btree_map<CompactKey, IndexEntry, KeyCompare>;

// Approximate bytes per entry in the tree's nodes: a slot, plus the slack of nodes about 3/4
// full (random inserts; a bulk load fills them) and the inner nodes' child pointers.
constexpr uint64_t kNodeBytesPerEntry = sizeof(Map::value_type) * 4 / 3 + 4;

// The first 8 bytes of key, big-endian, zero-padded: orders as the keys do, or ties.
uint64_t KeyPrefix(std::string_view key) {
  unsigned char b[8] = {};
  std::memcpy(b, key.data(), std::min<size_t>(8, key.size()));
  uint64_t p = 0;
  for (unsigned char c : b) p = (p << 8) | c;
  return p;
}

struct Recovered {
  uint64_t prefix;  // sorting compares this first, without touching the key
  CompactKey key;
  IndexEntry entry;
  uint64_t seq;
};

// Key ascending, newest first: the first of each key's run wins.
struct RecoveredBefore {
  bool operator()(const Recovered& a, const Recovered& b) const {
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    int c = a.key.view().compare(b.key.view());
    return c < 0 || (c == 0 && a.seq > b.seq);
  }
};

// Runs fn(0) .. fn(n - 1), each in its own thread (fn(0) in this one).
void RunParallel(size_t n, const std::function<void(size_t)>& fn) {
  std::vector<std::thread> pool;
  for (size_t i = 1; i < n; ++i) pool.emplace_back(fn, i);
  if (n > 0) fn(0);
  for (auto& t : pool) t.join();
}

// Sorts v with up to threads threads: parts sorted in parallel, then merged pairwise.
void MergeSort(std::vector<Recovered>* v, unsigned threads) {
  size_t parts = std::clamp<size_t>(threads, 1, std::max<size_t>(1, v->size() / 65536));
  std::vector<size_t> bounds;
  for (size_t i = 0; i <= parts; ++i) bounds.push_back(v->size() * i / parts);
  RunParallel(parts, [&](size_t i) {
    std::sort(v->begin() + bounds[i], v->begin() + bounds[i + 1], RecoveredBefore());
  });
  while (bounds.size() > 2) {
    std::vector<size_t> next;
    for (size_t i = 0; i + 2 < bounds.size(); i += 2) next.push_back(bounds[i]);
    RunParallel((bounds.size() - 1) / 2, [&](size_t p) {
      std::inplace_merge(v->begin() + bounds[2 * p], v->begin() + bounds[2 * p + 1],
                         v->begin() + bounds[2 * p + 2], RecoveredBefore());
    });
    if ((bounds.size() - 1) % 2 == 1) next.push_back(bounds[bounds.size() - 2]);
    next.push_back(bounds.back());
    bounds = std::move(next);
  }
}

// Sorts v: one radix pass on the 16 highest prefix bits in which the keys differ spreads them
// into buckets that fit in the caches, which threads then sort. Keys whose prefixes mostly
// agree (one bucket would hold much of the input) take MergeSort.
void SortRecovered(std::vector<Recovered>* v, unsigned threads) {
  constexpr int kBits = 16;
  if (v->size() < 2) return;
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const Recovered& r : *v) {
    lo = std::min(lo, r.prefix);
    hi = std::max(hi, r.prefix);
  }
  // Bits above the highest one in which lo and hi differ are common to every prefix, so the
  // bucket (the kBits below it) grows with the prefix.
  const int top = lo == hi ? -1 : 63 - __builtin_clzll(lo ^ hi);
  const int shift = std::max(0, top + 1 - kBits);
  auto bucket = [&](const Recovered& r) { return (r.prefix >> shift) & ((1u << kBits) - 1); };
  std::vector<size_t> start(size_t{1} << kBits, 0);
  for (const Recovered& r : *v) ++start[bucket(r)];
  if (top < 0 || *std::max_element(start.begin(), start.end()) > v->size() / 4) {
    MergeSort(v, threads);
    return;
  }
  size_t sum = 0;
  for (size_t& c : start) sum += std::exchange(c, sum);
  std::vector<size_t> bounds = start;
  bounds.push_back(v->size());
  std::vector<Recovered> out(v->size());
  for (Recovered& r : *v) out[start[bucket(r)]++] = std::move(r);
  v->swap(out);
  std::vector<Recovered>().swap(out);
  // Threads take contiguous runs of buckets of about equal size.
  const size_t parts = std::max(1u, threads);
  std::vector<size_t> cut = {0};
  for (size_t b = 1; b < bounds.size() - 1 && cut.size() < parts; ++b) {
    if (bounds[b] >= v->size() * cut.size() / parts) cut.push_back(b);
  }
  cut.push_back(bounds.size() - 1);
  RunParallel(cut.size() - 1, [&](size_t t) {
    for (size_t b = cut[t]; b < cut[t + 1]; ++b) {
      std::sort(v->begin() + bounds[b], v->begin() + bounds[b + 1], RecoveredBefore());
    }
  });
}

class OrderedIndex final : public Index {
 public:
  bool Get(std::string_view key, IndexEntry* out) const override {
    std::shared_lock lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    *out = it->second;
    return true;
  }

  bool Put(std::string_view key, const IndexEntry& entry, IndexEntry* old) override {
    std::unique_lock lock(mu_);
    tombstones_ |= entry.tombstone();
    auto it = map_.lower_bound(key);
    if (it != map_.end() && it->first.view() == key) {
      *old = it->second;
      it->second = entry;
      if (!seqs_.empty()) seqs_.erase(std::string(key));
      return true;
    }
    map_.emplace_hint(it, CompactKey(key), entry);
    key_heap_bytes_ += CompactKey::HeapBytesFor(key.size());
    return false;
  }

  bool PutIfNewer(std::string_view key, const IndexEntry& entry, uint64_t seq, IndexEntry* old,
                  bool* replaced) override {
    std::unique_lock lock(mu_);
    return PutIfNewerLocked(key, entry, seq, old, replaced);
  }

  bool BulkRecovery() const override { return true; }

  void Reserve(uint64_t keys) override {
    // The count comes from hint footers, which no checksum covers: a damaged one must not
    // reserve without bound (past the cap the buffer grows as it fills).
    std::lock_guard lock(recovered_mu_);
    recovered_.reserve(std::min<uint64_t>(keys, uint64_t{1} << 25));
  }

  void AddRecovered(const RecoveredEntry* entries, size_t n) override {
    std::lock_guard lock(recovered_mu_);
    for (size_t i = 0; i < n; ++i) {
      const RecoveredEntry& r = entries[i];
      recovered_.push_back(Recovered{KeyPrefix(r.key), CompactKey(r.key), r.entry, r.seq});
    }
  }

  void BuildRecovered() override {
    std::vector<Recovered> all;
    {
      std::lock_guard lock(recovered_mu_);
      all.swap(recovered_);
    }
    if (all.empty()) return;
    SortRecovered(&all, std::max(1u, std::thread::hardware_concurrency()));
    std::unique_lock lock(mu_);
    const bool empty = map_.empty();
    for (size_t i = 0; i < all.size(); ++i) {
      Recovered& r = all[i];
      if (i > 0 && r.key.view() == all[i - 1].key.view()) continue;  // an older version
      if (!empty) {
        IndexEntry old;
        bool replaced;
        PutIfNewerLocked(r.key.view(), r.entry, r.seq, &old, &replaced);
        continue;
      }
      key_heap_bytes_ += r.key.HeapBytes();
      tombstones_ |= r.entry.tombstone();
      // In key order: each insert lands at the end, and full nodes split unevenly (to the
      // left), so the tree comes out dense.
      map_.emplace_hint(map_.end(), std::move(r.key), r.entry);
    }
  }

  bool Remove(std::string_view key, IndexEntry* old) override {
    std::unique_lock lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    *old = it->second;
    EraseLocked(it);
    return true;
  }

  bool ReplaceIf(std::string_view key, const IndexEntry& expected,
                 const IndexEntry& entry) override {
    std::unique_lock lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end() || !it->second.SameLocation(expected)) return false;
    it->second = entry;
    tombstones_ |= entry.tombstone();
    return true;
  }

  bool RemoveIf(std::string_view key, const IndexEntry& expected) override {
    std::unique_lock lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end() || !it->second.SameLocation(expected)) return false;
    EraseLocked(it);
    return true;
  }

  uint64_t Size() const override {
    std::shared_lock lock(mu_);
    return map_.size();
  }
  uint64_t MemoryBytes() const override {
    std::shared_lock lock(mu_);
    return map_.size() * kNodeBytesPerEntry + key_heap_bytes_;
  }
  bool Ordered() const override { return true; }

  bool Scan(Cursor* cursor, std::string_view start, size_t max_entries,
            std::vector<KeyEntry>* out) const override {
    std::shared_lock lock(mu_);
    auto it = cursor->started ? map_.upper_bound(std::string_view(cursor->last_key))
                              : map_.lower_bound(start);
    cursor->started = true;
    size_t n = 0;
    for (; it != map_.end() && n < max_entries; ++it, ++n) {
      out->emplace_back(std::string(it->first.view()), it->second);
    }
    if (n != 0) cursor->last_key = out->back().first;
    return it != map_.end();
  }

  void ForEach(const std::function<void(std::string_view, const IndexEntry&)>& fn) const override {
    std::shared_lock lock(mu_);
    for (const auto& [k, e] : map_) fn(k.view(), e);
  }

  void FinishRecovery() override {
    BuildRecovered();
    std::unique_lock lock(mu_);
    std::unordered_map<std::string, uint64_t>().swap(seqs_);
    if (!tombstones_) return;  // spares a pass over a large index
    tombstones_ = false;
    for (auto it = map_.begin(); it != map_.end();) {
      if (it->second.tombstone()) {
        key_heap_bytes_ -= it->first.HeapBytes();
        it = map_.erase(it);
      } else {
        ++it;
      }
    }
  }

 private:
  bool PutIfNewerLocked(std::string_view key, const IndexEntry& entry, uint64_t seq,
                        IndexEntry* old, bool* replaced) {
    *replaced = false;
    tombstones_ |= entry.tombstone();
    auto it = map_.lower_bound(key);
    if (it != map_.end() && it->first.view() == key) {
      uint64_t& stored = seqs_[std::string(key)];
      if (stored >= seq) return false;
      *old = it->second;
      *replaced = true;
      it->second = entry;
      stored = seq;
      return true;
    }
    map_.emplace_hint(it, CompactKey(key), entry);
    key_heap_bytes_ += CompactKey::HeapBytesFor(key.size());
    seqs_[std::string(key)] = seq;
    return true;
  }

  void EraseLocked(Map::iterator it) {
    key_heap_bytes_ -= it->first.HeapBytes();
    if (!seqs_.empty()) seqs_.erase(std::string(it->first.view()));
    map_.erase(it);
  }

  mutable SpinRWMutex mu_;
  Map map_;
  uint64_t key_heap_bytes_ = 0;
  bool tombstones_ = false;  // an entry marked tombstone may be present
  // PutIfNewer's sequence numbers, until FinishRecovery (a key without one has 0).
  std::unordered_map<std::string, uint64_t> seqs_;

  std::mutex recovered_mu_;
  std::vector<Recovered> recovered_;  // AddRecovered's entries, until BuildRecovered
};

}  // namespace

std::unique_ptr<Index> NewHashIndex();

std::unique_ptr<Index> Index::Create(IndexKind kind) {
  if (kind == IndexKind::kOrdered) return std::make_unique<OrderedIndex>();
  return NewHashIndex();
}

}  // namespace varve
