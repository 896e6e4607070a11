// DB: a Varve store — an append-only log of segment files with an in-memory index of every key.
//
// Thread-safety: every method may be called from many threads at once. Writers from all threads
// are merged into one log with group commit; readers never wait for writers' I/O.
// Ownership: the caller owns the DB; destroying it closes the store (flushes and syncs the log,
// writes pending hint files, releases the directory lock).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "varve/iterator.h"
#include "varve/options.h"
#include "varve/result.h"
#include "varve/status.h"
#include "varve/write_batch.h"

namespace varve {

struct Stats {
  uint64_t keys = 0;        // live keys in the index (expired ones until noticed)
  uint64_t live_bytes = 0;  // bytes of records the index points at
  uint64_t dead_bytes = 0;  // bytes of overwritten, deleted or tombstone records
  uint64_t segments = 0;    // segment files, the active one included
  uint64_t sealed_segments = 0;
  uint64_t disk_bytes = 0;   // segment bytes on disk
  uint64_t compactions = 0;  // segments compacted
  uint64_t compaction_bytes_written = 0;
  uint64_t compaction_bytes_reclaimed = 0;
  uint64_t user_bytes_written = 0;  // key and value bytes handed to Put/Write
  uint64_t log_bytes_written = 0;   // record bytes appended by writes (headers included)
  uint64_t puts = 0;
  uint64_t deletes = 0;
  uint64_t gets = 0;
  uint64_t get_misses = 0;
  uint64_t skipped_unchanged_writes = 0;
  uint64_t syncs = 0;               // fdatasync calls on the log
  uint64_t write_groups = 0;        // group commits (one append per group)
  uint64_t index_memory_bytes = 0;  // memory held by the index, keys included
  uint64_t last_sequence = 0;
  uint64_t tables = 0;         // attached tables (AttachTable)
  uint64_t table_entries = 0;  // records in them, tombstones included
  // Every write with a sequence number up to this one is on disk (fdatasync'ed).
  uint64_t durable_sequence = 0;
  // 1 if this open loaded the index from the INDEX checkpoint; 0 if from hints and scans.
  uint64_t index_from_checkpoint = 0;
  // Of such an open (after a crash): segments, or ends of segments, written after the checkpoint
  // and loaded on top of it.
  uint64_t index_replayed_segments = 0;
  // (log + compaction bytes written) / user bytes written.
  double write_amplification = 0;
};

class DB {
 public:
  // Opens (or creates) the store in directory path. Only one process may hold a directory open;
  // a second Open fails with Busy naming the holder.
  static Result<std::unique_ptr<DB>> Open(const Options& options, const std::string& path);

  virtual ~DB() = default;

  virtual Status Put(std::string_view key, std::string_view value, const PutOptions& opts = {}) = 0;
  // NotFound if the key is absent or expired.
  virtual Result<std::string> Get(std::string_view key) = 0;
  // As Get, into *value (its buffer is reused: a loop of reads allocates nothing once it has
  // held the largest value). *value is unspecified unless the result is OK.
  virtual Status Get(std::string_view key, std::string* value) = 0;
  // As Get, also returning the record's version for CompareAndSet.
  struct VersionedValue {
    std::string value;
    uint64_t version = 0;
    uint64_t expiry_ms = 0;   // absolute, ms since the Unix epoch; 0 = never
    uint32_t user_flags = 0;  // as given in PutOptions
  };
  virtual Result<VersionedValue> GetVersioned(std::string_view key) = 0;
  // Deleting an absent key is not an error.
  virtual Status Delete(std::string_view key) = 0;
  // Atomic: all operations become visible and durable together, or none do. If the batch has
  // conditions (WriteBatch::Expect) and one fails, nothing is written and the result is Aborted.
  virtual Status Write(const WriteBatch& batch) = 0;
  // Writes value only if the key's current version is expected_version (0 = the key must be
  // absent). Returns Aborted if the version differs. On success *new_version (if given) is set.
  virtual Status CompareAndSet(std::string_view key, uint64_t expected_version,
                               std::string_view value, const PutOptions& opts = {},
                               uint64_t* new_version = nullptr) = 0;
  // Deletes the key only if its current version is expected_version.
  virtual Status CompareAndDelete(std::string_view key, uint64_t expected_version) = 0;

  virtual std::unique_ptr<Iterator> NewIterator(const ReadOptions& opts = {}) = 0;

  // Seals the active segment if it holds dead records and compacts every segment with dead
  // bytes, then returns. Runs alongside reads and writes.
  virtual Status Compact() = 0;
  // Attaches the immutable table at path (include/varve/table.h) as a read-only layer under the
  // live data: a key the live data does not hold is looked up in the tables, newest first (a
  // table tombstone hides the key in older tables). The file is copied into DIR/tables and
  // listed in DIR/TABLES, so it stays attached across restarts. Attaching a file whose base name
  // is already attached replaces that layer atomically: each read sees the old table or the new
  // one, never a mix; the old file is released when its last reader is done. *name (if given)
  // receives the layer's name (the base name). Deleting a key held by a table writes a tombstone
  // that the store keeps as long as it shadows the key. Table values report version
  // 2^63 + (a counter bumped by every attach and detach) to GetVersioned and CompareAndSet.
  virtual Status AttachTable(const std::string& path, std::string* name = nullptr) = 0;
  // Removes the layer of that name; NotFound if there is none.
  virtual Status DetachTable(const std::string& name) = 0;

  // Makes every acknowledged write durable now.
  virtual Status Sync() = 0;
  virtual Stats GetStats() = 0;
  // Closes the store, returning the first error met while doing so. Further calls fail.
  virtual Status Close() = 0;
};

}  // namespace varve
