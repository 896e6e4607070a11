// Ordered index: a std::map under one reader-writer lock. Costs more memory per key than the
// hash index (a tree node and a string per key) in exchange for ordered, ranged iteration.
#include <atomic>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "engine/index.h"
#include "util/rw_mutex.h"

namespace varve {
namespace {

// Approximate heap bytes of one map node with a std::string key (libstdc++: 32-byte node header,
// 32-byte string, 24-byte node value, rounded to the allocator's 96-byte class) plus a long key's
// separate buffer.
uint64_t NodeBytes(std::string_view key) {
  return 96 + (key.size() > 15 ? ((key.size() + 1 + 15) & ~size_t{15}) : 0);
}

// The sequence number is kept for PutIfNewer (recovery); it fits in the node's size class.
struct Node {
  IndexEntry entry;
  uint64_t seq = 0;
};

class OrderedIndex final : public Index {
 public:
  bool Get(std::string_view key, IndexEntry* out) const override {
    std::shared_lock lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    *out = it->second.entry;
    return true;
  }

  bool Put(std::string_view key, const IndexEntry& entry, IndexEntry* old) override {
    std::unique_lock lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      *old = it->second.entry;
      it->second = Node{entry, 0};
      return true;
    }
    map_.emplace(std::string(key), Node{entry, 0});
    memory_ += NodeBytes(key);
    return false;
  }

  bool PutIfNewer(std::string_view key, const IndexEntry& entry, uint64_t seq, IndexEntry* old,
                  bool* replaced) override {
    std::unique_lock lock(mu_);
    *replaced = false;
    auto it = map_.find(key);
    if (it != map_.end()) {
      if (it->second.seq >= seq) return false;
      *old = it->second.entry;
      *replaced = true;
      it->second = Node{entry, seq};
      return true;
    }
    map_.emplace(std::string(key), Node{entry, seq});
    memory_ += NodeBytes(key);
    return true;
  }

  bool Remove(std::string_view key, IndexEntry* old) override {
    std::unique_lock lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    *old = it->second.entry;
    EraseLocked(it);
    return true;
  }

  bool ReplaceIf(std::string_view key, const IndexEntry& expected,
                 const IndexEntry& entry) override {
    std::unique_lock lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end() || !it->second.entry.SameLocation(expected)) return false;
    it->second.entry = entry;
    return true;
  }

  bool RemoveIf(std::string_view key, const IndexEntry& expected) override {
    std::unique_lock lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end() || !it->second.entry.SameLocation(expected)) return false;
    EraseLocked(it);
    return true;
  }

  uint64_t Size() const override {
    std::shared_lock lock(mu_);
    return map_.size();
  }
  uint64_t MemoryBytes() const override {
    std::shared_lock lock(mu_);
    return memory_;
  }
  bool Ordered() const override { return true; }

  bool Scan(Cursor* cursor, std::string_view start, size_t max_entries,
            std::vector<KeyEntry>* out) const override {
    std::shared_lock lock(mu_);
    auto it = cursor->started ? map_.upper_bound(cursor->last_key) : map_.lower_bound(start);
    cursor->started = true;
    for (size_t n = 0; it != map_.end() && n < max_entries; ++it, ++n) {
      out->emplace_back(it->first, it->second.entry);
      cursor->last_key = it->first;
    }
    return it != map_.end();
  }

  void ForEach(const std::function<void(std::string_view, const IndexEntry&)>& fn) const override {
    std::shared_lock lock(mu_);
    for (const auto& [k, node] : map_) fn(k, node.entry);
  }

  void FinishRecovery() override {
    std::unique_lock lock(mu_);
    for (auto it = map_.begin(); it != map_.end();) {
      if (it->second.entry.tombstone()) {
        memory_ -= NodeBytes(it->first);
        it = map_.erase(it);
      } else {
        ++it;
      }
    }
  }

 private:
  void EraseLocked(std::map<std::string, Node, std::less<>>::iterator it) {
    memory_ -= NodeBytes(it->first);
    map_.erase(it);
  }

  mutable SpinRWMutex mu_;
  std::map<std::string, Node, std::less<>> map_;
  uint64_t memory_ = 0;
};

}  // namespace

std::unique_ptr<Index> NewHashIndex();

std::unique_ptr<Index> Index::Create(IndexKind kind) {
  if (kind == IndexKind::kOrdered) return std::make_unique<OrderedIndex>();
  return NewHashIndex();
}

}  // namespace varve
