// Options for opening a store and for single operations. Every field documents its default.
#pragma once

#include <cstdint>
#include <string_view>

namespace varve {

class Env;

enum class IndexKind : uint8_t {
  // Open-addressing hash table: the smallest and fastest; iteration is in no particular order and
  // prefix/range scans filter a full pass.
  kHash,
  // Ordered map: iteration in key order; prefix and range scans visit only matching keys.
  kOrdered,
};

// What a write's acknowledgement promises. See docs/design.md for what each mode can lose.
enum class Durability : uint8_t {
  // Copied into the page cache before acknowledging; the OS decides when it reaches the disk.
  // Survives a process crash (kill -9), not a power failure.
  kNone,
  // As kNone, plus a background fdatasync every sync_interval_ms.
  kInterval,
  // As kNone, plus fdatasync once sync_batch_writes writes are unsynced or the oldest unsynced
  // write is sync_interval_ms old, whichever comes first.
  kBatch,
  // A write returns only after it is on disk; concurrent writers share one fdatasync.
  kSync,
};

struct Options {
  // Create the directory and an empty store if missing. Default: true.
  bool create_if_missing = true;
  // Fail if the store already exists. Default: false.
  bool error_if_exists = false;
  // Default: kHash.
  IndexKind index = IndexKind::kHash;
  // Default: kNone.
  Durability durability = Durability::kNone;
  // kInterval / kBatch: the longest a write stays unsynced. Default: 1000 ms.
  uint32_t sync_interval_ms = 1000;
  // kBatch: sync after this many unsynced writes. Default: 1000.
  uint32_t sync_batch_writes = 1000;
  // A segment is sealed once it reaches this size. Range 1 MiB .. 2 GiB. Default: 256 MiB.
  uint64_t segment_size_bytes = 256ull << 20;
  // Segments whose live bytes fall below this fraction of their size are compacted. Range
  // (0, 1). Default: 0.5.
  double compaction_live_ratio = 0.5;
  // Run compaction in a background thread. When false only Compact() compacts. Default: true.
  bool background_compaction = true;
  // How often the background thread looks for work. Default: 1000 ms.
  uint32_t compaction_check_interval_ms = 1000;
  // Drop a Put whose value equals the key's current value (and neither has a TTL). Costs a read
  // per Put. Default: false.
  bool skip_unchanged_writes = false;
  // At a clean Close, write the hash index to an INDEX file (kHash only) that the next open
  // loads with large sequential reads instead of reading every hint file and hashing every key.
  // The open uses it only if it describes the directory, with at most appends since (same
  // segments, sizes and headers but for the tail's growth and newer segments, valid checksums),
  // and replays those appends (an open after a crash). Writes keep it; a compaction or table
  // change removes it first. Default: true.
  bool index_checkpoint = true;
  // Threads that load hint files (or the index checkpoint) at open. 0 = number of CPUs. Default: 0.
  uint32_t open_threads = 0;
  // Read records through shared read-only mappings of the segment files instead of one pread
  // per read (no system call when the pages are cached). Records over 4 KiB (up to 64 KiB; larger
  // ones always use pread) come from the mapping only when all their pages are cached (mincore),
  // else by pread, which asks the disk once where a mapping would fault page by page when data
  // outgrows RAM. A disk error under a mapping raises SIGBUS: the store installs a handler
  // (chaining to the one before it) that turns it into the read's IOError; a program that
  // replaces the SIGBUS handler later should turn this off. Default: true.
  bool mmap_reads = true;
  // Append to the active segment through a shared writable mapping of it instead of one
  // write(2) per write group (appends of 4 KiB or more still use write(2), which takes no page
  // faults): a write is a copy into the page cache, and a process crash loses no acknowledged
  // write either way (durability still comes from fdatasync). The segment is grown in 1 MiB
  // reservations (fallocate; written zeros in kSync mode, see docs/design.md), so a full disk is
  // reported before any copy. The SIGBUS handler of mmap_reads guards these copies too.
  // Default: true.
  bool mmap_writes = true;
  // File system; nullptr = Env::Default(). Not owned; must outlive the DB.
  Env* env = nullptr;
};

struct PutOptions {
  // Time to live in milliseconds; 0 = never expires. Default: 0.
  uint64_t ttl_ms = 0;
  // Opaque client flags stored with the value (memcached's flags); 0 = none. Default: 0.
  uint32_t user_flags = 0;
};

struct ReadOptions {
  // Only keys starting with prefix. Default: all keys.
  std::string_view prefix;
  // Only keys >= start (empty = no lower bound).
  std::string_view start;
  // Only keys < end (empty = no upper bound).
  std::string_view end;
};

}  // namespace varve
