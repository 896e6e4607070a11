// Immutable sorted tables (format: docs/format.md, "Table file"). A table is built once, in key
// order, by a TableBuilder (or by MergeTables from other tables), then only read: point lookups
// through a memory-mapped hash index (one block read per Get), ordered scans through a sparse
// index of the first key of every block.
//
// Thread-safety: a TableReader may be used by many threads at once (Get, NewIterator); each
// TableIterator and TableBuilder is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "varve/result.h"
#include "varve/status.h"

namespace varve {

class Env;

enum class TableCompression : uint8_t {
  kNone = 0,
  kLz4 = 1,
  kZstd = 2,
};

// "none", "lz4", "zstd" <-> TableCompression.
Result<TableCompression> ParseTableCompression(std::string_view name);
const char* TableCompressionName(TableCompression c);

struct TableOptions {
  // Default: kLz4.
  TableCompression compression = TableCompression::kLz4;
  // zstd level (1..19). Default: 3.
  int zstd_level = 3;
  // A data block is closed once its uncompressed records reach this size (and always after 255
  // records). Range 256 B .. 1 MiB. Default: 4096.
  uint32_t block_size_bytes = 4096;
  // Sync the file before Finish returns (it is written to OUT.tmp and renamed). Default: true.
  bool sync = true;
  // Memory for building the hash index; a larger index is built partition by partition through a
  // temporary file beside the output. Default: 64 MiB.
  uint64_t hash_memory_bytes = 64ull << 20;
  // Threads that compress, checksum and write the data blocks while Add fills the next ones, in
  // batches of about 256 KiB written in order (at most 2 * writer_threads + 1 batches in
  // memory); 0 = on the thread calling Add; -1 = one per CPU beyond the caller's, at least 1 and
  // at most 4. Finish builds the hash index on as many threads plus the caller. The file is the
  // same, byte for byte, for any number. Range -1 .. 64. Default: -1.
  int writer_threads = -1;
  // Write the table file with O_DIRECT in aligned 1 MiB chunks where the file system allows it
  // (no copy through the page cache; Env::NewDirectWritableFile). Default: true.
  bool direct_writes = true;
  // File system for writing; nullptr = Env::Default(). Not owned.
  Env* env = nullptr;
};

// Builds one table file. Keys must be added in strictly increasing bytewise order; an
// out-of-order or duplicate key is refused with InvalidArgument (the builder stays usable).
// Memory use is bounded (the blocks in flight to the writer threads plus the hash-index budget)
// whatever the table size.
class TableBuilder {
 public:
  // The file appears at path only when Finish succeeds (written as path + ".tmp", then renamed).
  static Result<std::unique_ptr<TableBuilder>> Create(const std::string& path,
                                                      const TableOptions& options = {});
  virtual ~TableBuilder() = default;  // without Finish: removes the temporary files

  virtual Status Add(std::string_view key, std::string_view value) = 0;
  // A tombstone: the key is deleted (hides the key in older tables and in merges).
  virtual Status AddTombstone(std::string_view key) = 0;
  // Writes the indexes and footer, syncs (per options) and renames the file into place.
  virtual Status Finish() = 0;
  virtual uint64_t NumEntries() const = 0;
};

// Figures from a table's footer (TableReader::properties()).
struct TableProperties {
  uint64_t entries = 0;     // records, tombstones included
  uint64_t tombstones = 0;  // tombstone records
  uint64_t blocks = 0;
  uint64_t key_bytes = 0;  // sum of key lengths
  uint64_t value_bytes = 0;
  uint64_t raw_block_bytes = 0;  // data blocks before compression
  uint64_t data_bytes = 0;       // data blocks as stored (trailers included)
  uint64_t sparse_index_bytes = 0;
  uint64_t hash_index_bytes = 0;
  uint64_t hash_slots = 0;
  uint64_t file_bytes = 0;
  TableCompression compression = TableCompression::kNone;
  std::string min_key;
  std::string max_key;
};

// Walks a table in key order. Constant memory (one decompressed block).
class TableIterator {
 public:
  virtual ~TableIterator() = default;
  virtual bool Valid() const = 0;
  virtual void SeekToFirst() = 0;
  // Positions at the first key >= target.
  virtual void Seek(std::string_view target) = 0;
  virtual void Next() = 0;
  // Preconditions: Valid(). Views stay valid until the iterator moves.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;  // empty for a tombstone
  virtual bool is_tombstone() const = 0;
  // The first error met (Corruption naming file and offset, IOError for a file cut short while
  // open); iteration stops there.
  virtual Status status() const = 0;
};

class TableReader {
 public:
  // Maps the file read-only and checks its header, footer, indexes and their checksums. Reads
  // table formats 1 and 2. A data block's checksum is checked when a read first touches one of
  // its 4 KiB pages, its structure when it is read; damage gives Corruption naming the file and
  // the block's offset, never a wrong value. The file must not change while open (tables are
  // immutable; replace them by renaming a new file into place); one cut short while open (or a
  // disk error under the mapping) makes reads IOError naming the file, never a crash: Open
  // installs a SIGBUS handler (as Options::mmap_reads does) that passes other faults on.
  static Result<std::shared_ptr<TableReader>> Open(const std::string& path);
  // The same over bytes in memory (kept alive by the reader); name is used in messages.
  static Result<std::shared_ptr<TableReader>> OpenFromMemory(std::string name, std::string data);

  virtual ~TableReader() = default;

  // NotFound if the key is absent or its record is a tombstone.
  virtual Status Get(std::string_view key, std::string* value) const = 0;
  // As Get, but tells a tombstone apart: Ok with *tombstone set (and *value empty) for one.
  virtual Status Find(std::string_view key, std::string* value, bool* tombstone) const = 0;
  virtual std::unique_ptr<TableIterator> NewIterator() const = 0;
  // Verifies every block (checksums, structure, key order) and that the hash index finds every
  // key. Reads the whole file.
  virtual Status Check() const = 0;
  virtual const TableProperties& properties() const = 0;
  virtual const std::string& name() const = 0;
};

// The smallest string greater than every string starting with prefix ("" if there is none), for
// prefix scans: Seek(prefix), stop at the first key >= PrefixEnd(prefix).
std::string TablePrefixEnd(std::string_view prefix);

struct MergeOptions {
  TableOptions table;
  // Keep tombstones in the output (the output will be layered over older data); when false they
  // are dropped together with the keys they delete. Default: false.
  bool keep_tombstones = false;
  // Check the inputs' block checksums ahead of the merge on another thread (the merge's reads
  // then find them checked; damage is still reported by the merge, naming file and offset).
  // Off by default: measured, it did not take work off the merge thread (the block copy then
  // takes the cache misses the check took; bench/RESULTS.md, issue 7 run 5). Default: false.
  bool verify_ahead = false;
};

// Merges inputs (each sorted) into one table at output_path in one pass and constant memory:
// for a key present in several inputs, the record of the latest input (highest index) wins.
Status MergeTables(const std::vector<std::shared_ptr<TableReader>>& inputs,
                   const std::string& output_path, const MergeOptions& options = {});

}  // namespace varve
