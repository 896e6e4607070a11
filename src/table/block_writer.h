// BlockWriter: what happens to a table's data block once the builder has filled it: compression,
// the block trailer and checksum, the write to the table file, the block's sparse-index spill
// entry and its records' hash spill entries (hash, location; the keys are hashed here, not on
// the thread that adds them). With threads > 0 that runs on worker threads while the builder
// fills the next blocks.
// Blocks are handed over in batches (about kBatchBytes of raw blocks each), written in the order
// they were submitted, and at most 2 * threads + 1 batches are in flight, so memory stays
// bounded; a Submit that finds that many in flight encodes and writes a queued batch itself
// rather than wait. The first error (of any batch) is kept and returned by every later Submit and
// Finish.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "table/table_internal.h"

namespace varve::table {

class BlockWriter {
 public:
  // Raw blocks filled by the builder, and (after encoding) their stored form.
  struct Batch {
    // Blocks back to back: a raw block (records, offsets, count) followed by kBlockTrailerSize
    // bytes of room, where a block stored uncompressed gets its trailer in place (so it is
    // written from here, not copied); or a block copied from another table as stored (trailer
    // included), flagged in copied.
    std::string raw;
    std::vector<size_t> raw_ends;  // end of each block (and its trailer room) in raw
    std::vector<bool> copied;
    std::string first_keys;  // first key of each block, back to back
    std::vector<size_t> key_ends;
    // Compressed blocks (trailers included) back to back in the first stored_size bytes; the
    // string only grows, so it is not cleared (zero-filled) again for every batch.
    std::string stored;
    size_t stored_size = 0;
    // Where each block lies as stored (trailer included): in raw or in stored.
    struct Piece {
      bool in_raw;
      size_t begin, end;
    };
    std::vector<Piece> pieces;
    std::vector<TableCompression> used;  // compression of each stored block
    std::vector<uint32_t> records;       // records in each block
    // Hash and offset in its raw block of every record of the copied compressed blocks (their
    // keys are not in raw), in order.
    std::vector<std::pair<uint64_t, uint32_t>> copied_hashes;
    // Hash spill entries of every record (hash u64, location u64), the locations relative to
    // the batch (block 0 at file offset 0) until Write adds where the batch lands.
    std::string spill;
    size_t blocks() const { return raw_ends.size(); }
    void Clear();
  };
  static constexpr size_t kBatchBytes = 256 << 10;

  // out, sparse and hashes are used only by the writer until Finish returns (or the writer is
  // destroyed); they must outlive it. direct_slots: hash locations are file offsets (format 2,
  // compression none), else block number and offset in the raw block.
  BlockWriter(TableCompression compression, int zstd_level, bool direct_slots, BufferedWriter* out,
              BufferedWriter* sparse, BufferedWriter* hashes, int threads);
  // Stops the workers; batches not yet written are dropped.
  ~BlockWriter();
  BlockWriter(const BlockWriter&) = delete;
  BlockWriter& operator=(const BlockWriter&) = delete;

  // The batch the builder fills (never null; replaced by Submit).
  Batch* current() { return current_.get(); }
  // Hands the current batch over if it has blocks (waiting while too many are in flight).
  Status Submit();
  // Submits the current batch and waits until every block is written.
  Status Finish();

 private:
  void Encode(Batch* b) const;
  Status Write(Batch* b);
  void Run();
  // Takes the oldest queued batch, encodes it, waits for its turn and writes it. Requires mu_
  // (held by l; released while encoding and writing).
  void ProcessFront(std::unique_lock<std::mutex>& l);
  std::unique_ptr<Batch> NewBatch();  // a recycled one if any; requires mu_

  const TableCompression compression_;
  const int zstd_level_;
  const bool direct_slots_;
  BufferedWriter* const out_;
  BufferedWriter* const sparse_;
  BufferedWriter* const hashes_;
  uint64_t blocks_written_ = 0;  // by Write (one batch at a time)
  const uint64_t max_in_flight_;
  std::unique_ptr<Batch> current_;

  std::mutex mu_;
  std::condition_variable work_cv_;  // queue_ not empty, or stop_
  std::condition_variable done_cv_;  // next_write_ or in_flight_ changed
  std::deque<std::pair<uint64_t, std::unique_ptr<Batch>>> queue_;  // submitted, not taken
  std::vector<std::unique_ptr<Batch>> free_;                       // written, for reuse
  uint64_t next_seq_ = 0;    // number of the next submitted batch
  uint64_t next_write_ = 0;  // number of the batch whose turn it is to be written
  uint64_t in_flight_ = 0;   // submitted and not yet written
  Status status_;            // the first error
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace varve::table
