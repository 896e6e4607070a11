// BlockWriter: what happens to a table's data block once the builder has filled it: compression,
// the block trailer and checksum, the write to the table file and the block's sparse-index spill
// entry. With threads > 0 that runs on worker threads while the builder fills the next blocks.
// Blocks are handed over in batches (about kBatchBytes of raw blocks each), written in the order
// they were submitted, and at most 2 * threads + 1 batches are in flight, so memory stays
// bounded. The first error (of any batch) is kept and returned by every later Submit and Finish.
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
    // Raw blocks (records, offsets, count) back to back; a block copied from another table is
    // there as stored (trailer included) and flagged in copied.
    std::string raw;
    std::vector<size_t> raw_ends;  // end of each block in raw
    std::vector<bool> copied;
    std::string first_keys;  // first key of each block, back to back
    std::vector<size_t> key_ends;
    // Stored blocks (trailers included) back to back in the first stored_size bytes; the
    // string only grows, so it is not cleared (zero-filled) again for every batch.
    std::string stored;
    size_t stored_size = 0;
    std::vector<size_t> stored_ends;
    std::vector<TableCompression> used;  // compression of each stored block
    size_t blocks() const { return raw_ends.size(); }
    void Clear();
  };
  static constexpr size_t kBatchBytes = 256 << 10;

  // out and sparse are used only by the writer until Finish returns (or the writer is
  // destroyed); they must outlive it.
  BlockWriter(TableCompression compression, int zstd_level, BufferedWriter* out,
              BufferedWriter* sparse, int threads);
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
  Status Write(const Batch& b);
  void Run();
  std::unique_ptr<Batch> NewBatch();  // a recycled one if any; requires mu_

  const TableCompression compression_;
  const int zstd_level_;
  BufferedWriter* const out_;
  BufferedWriter* const sparse_;
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
