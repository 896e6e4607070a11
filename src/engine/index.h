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
#include "varve/status.h"

namespace varve {

// Where a key's newest record is. The sequence number is not kept: reads find it in the record,
// and recovery, which needs it to pick the newest record, passes it alongside (PutIfNewer).
struct IndexEntry {
  static constexpr uint8_t kTombstone = 1;  // only while recovering

  uint32_t segment = 0;  // segment id
  uint32_t offset = 0;   // record offset in the segment file
  uint32_t size = 0;     // record size in bytes (header + key + value)
  uint8_t flags = 0;

  bool tombstone() const { return (flags & kTombstone) != 0; }
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
  // Recovery only, before FinishRecovery: inserts, or replaces an entry loaded with a lower
  // sequence number. Returns true if the index changed; *old receives a replaced entry when
  // *replaced is set.
  virtual bool PutIfNewer(std::string_view key, const IndexEntry& entry, uint64_t seq,
                          IndexEntry* old, bool* replaced) = 0;
  // Bulk recovery, for an index that builds faster from sorted input than by inserting (the
  // ordered index): loaders hand entries to AddRecovered (thread-safe; copies the keys) instead
  // of calling PutIfNewer, and BuildRecovered then puts each key's entry with the highest
  // sequence number into the index (tombstones too, as PutIfNewer would). Live-byte counts are
  // the caller's, from the built index. After BuildRecovered, until FinishRecovery: no
  // PutIfNewer (the built entries keep no sequence number).
  struct RecoveredEntry {
    std::string_view key;
    IndexEntry entry;
    uint64_t seq = 0;
  };
  // PutIfNewer for each of n entries (recovery, before FinishRecovery), in order for entries of
  // one key; out[i] tells what entries[i] did. The hash index locks each shard once per batch
  // instead of once per entry. in_order: every entry is newer than all the index holds and
  // than the entries before it (a replay in sequence order), so Put does, and no sequence
  // numbers are kept.
  struct PutResult {
    bool changed = false;   // PutIfNewer's result
    bool replaced = false;  // old holds the replaced entry
    IndexEntry old;
  };
  virtual void PutIfNewerBatch(const RecoveredEntry* entries, size_t n, bool in_order,
                               PutResult* out) {
    for (size_t i = 0; i < n; ++i) {
      if (in_order) {
        out[i].changed = true;
        out[i].replaced = Put(entries[i].key, entries[i].entry, &out[i].old);
        continue;
      }
      out[i].changed = PutIfNewer(entries[i].key, entries[i].entry, entries[i].seq, &out[i].old,
                                  &out[i].replaced);
    }
  }
  virtual bool BulkRecovery() const { return false; }
  virtual void AddRecovered(const RecoveredEntry* entries, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      IndexEntry old;
      bool replaced;
      PutIfNewer(entries[i].key, entries[i].entry, entries[i].seq, &old, &replaced);
    }
  }
  virtual void BuildRecovered() {}

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
  virtual void ForEach(
      const std::function<void(std::string_view, const IndexEntry&)>& fn) const = 0;
  // Ends recovery: builds what AddRecovered buffered, removes the entries marked tombstone and
  // frees what PutIfNewer kept.
  virtual void FinishRecovery() = 0;

  // Checkpoint (the INDEX file, docs/format.md): the index as it lies in memory, in parts that
  // load with large sequential reads and no hashing. Only the hash index supports it; none of
  // these may run concurrently with any other use of the index.
  //
  // Names the in-memory layout (shard count, group and item format, hash function, byte order):
  // a checkpoint of another layout cannot be loaded. 0 = no checkpoint support.
  virtual uint64_t CheckpointLayout() const { return 0; }
  virtual uint32_t CheckpointParts() const { return 0; }
  // Drops the slack a long run leaves (erased slots, removed items, a sparse table) so that the
  // checkpoint, and the index it loads into, are no larger than a fresh load from hints.
  virtual void PrepareCheckpoint() {}
  // Bytes SaveCheckpointPart hands over for part.
  virtual uint64_t CheckpointPartBytes(uint32_t part) const { return 0; }
  // Hands part's bytes to write in order, in pieces.
  virtual Status SaveCheckpointPart(uint32_t part,
                                    const std::function<Status(std::string_view)>& write) const {
    return Status::NotSupported("index checkpoint");
  }
  // Before the parts load (possibly in parallel): the sum of their bytes, so that the index can
  // place them all in one allocation.
  virtual void StartCheckpointLoad(uint64_t total_part_bytes) {}
  // Replaces part (which must be empty) with the bytes bytes that read(dst, n) hands over in
  // order. Corruption if they do not describe a part (the caller checks their checksum too);
  // the part is then left empty.
  virtual Status LoadCheckpointPart(uint32_t part, uint64_t bytes,
                                    const std::function<Status(char*, size_t)>& read) {
    return Status::NotSupported("index checkpoint");
  }
};

}  // namespace varve
