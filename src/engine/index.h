// The in-memory index: key -> where the key's newest record lives. Two kinds share one interface
// (and one test suite): a compact hash table (default) and an ordered map (range/prefix scans).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "varve/options.h"

namespace varve {

struct IndexEntry {
  static constexpr uint64_t kSeqMask = (1ull << 56) - 1;
  static constexpr uint64_t kTombstoneBit = 1ull << 63;  // only while recovering
  static constexpr uint64_t kExpiryBit = 1ull << 62;     // the record carries an expiry time

  uint32_t segment = 0;  // segment id
  uint32_t offset = 0;   // record offset in the segment file
  uint32_t size = 0;     // record size in bytes (header + key + value)
  uint64_t seq_flags = 0;

  uint64_t seq() const { return seq_flags & kSeqMask; }
  bool tombstone() const { return (seq_flags & kTombstoneBit) != 0; }
  bool has_expiry() const { return (seq_flags & kExpiryBit) != 0; }
  bool SameLocation(const IndexEntry& o) const {
    return segment == o.segment && offset == o.offset;
  }
};

class Index {
 public:
  virtual ~Index() = default;
  static std::unique_ptr<Index> Create(IndexKind kind);

  // Sizes the index for about this many keys (recovery knows the count from hint files).
  virtual void Reserve(uint64_t keys) {}
  // Starts loading the memory a following operation on key will touch (bulk loads).
  virtual void Prefetch(std::string_view key) const {}

  virtual bool Get(std::string_view key, IndexEntry* out) const = 0;
  // Inserts or replaces; returns true and fills *old if the key was present.
  virtual bool Put(std::string_view key, const IndexEntry& entry, IndexEntry* old) = 0;
  // Inserts, or replaces only an entry with a lower sequence number (recovery). Returns true if
  // the index changed; *old receives a replaced entry when *replaced is set.
  virtual bool PutIfNewer(std::string_view key, const IndexEntry& entry, IndexEntry* old,
                          bool* replaced) = 0;
  // Removes; returns true and fills *old if the key was present.
  virtual bool Remove(std::string_view key, IndexEntry* old) = 0;
  // Replaces the entry only if it still points at expected's location (compaction moving a
  // record). Returns true if replaced.
  virtual bool ReplaceIf(std::string_view key, const IndexEntry& expected,
                         const IndexEntry& entry) = 0;
  // Removes the entry only if it still points at expected's location.
  virtual bool RemoveIf(std::string_view key, const IndexEntry& expected) = 0;

  virtual uint64_t Size() const = 0;
  virtual uint64_t MemoryBytes() const = 0;
  virtual bool Ordered() const = 0;

  // Iteration in chunks so that no lock is held while values are read. Start with a default
  // cursor; each call appends up to about max_entries entries and advances the cursor; returns
  // false when the index is exhausted. Ordered indexes honor start (inclusive) and return keys in
  // order; the hash index ignores start.
  struct Cursor {
    uint64_t shard = 0;
    std::string last_key;
    bool started = false;
  };
  using KeyEntry = std::pair<std::string, IndexEntry>;
  virtual bool Scan(Cursor* cursor, std::string_view start, size_t max_entries,
                    std::vector<KeyEntry>* out) const = 0;

  // Visits every entry; fn may not touch the index. Holds locks while running.
  virtual void ForEach(const std::function<void(std::string_view, const IndexEntry&)>& fn)
      const = 0;
  // Removes all entries marked tombstone (end of recovery).
  virtual void DropTombstones() = 0;
};

}  // namespace varve
