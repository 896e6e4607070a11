#include "table/block_writer.h"

#include <algorithm>
#include <cstring>

#include "util/check.h"
#include "util/coding.h"

namespace varve::table {

void BlockWriter::Batch::Clear() {
  raw.clear();
  raw_ends.clear();
  copied.clear();
  first_keys.clear();
  key_ends.clear();
  stored_size = 0;
  pieces.clear();
  used.clear();
  records.clear();
  copied_hashes.clear();
  spill.clear();
}

BlockWriter::BlockWriter(TableCompression compression, int zstd_level, bool direct_slots,
                         BufferedWriter* out, BufferedWriter* sparse, BufferedWriter* hashes,
                         int threads)
    : compression_(compression),
      zstd_level_(zstd_level),
      direct_slots_(direct_slots),
      out_(out),
      sparse_(sparse),
      hashes_(hashes),
      max_in_flight_(2 * static_cast<uint64_t>(threads) + 1),
      current_(std::make_unique<Batch>()) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

BlockWriter::~BlockWriter() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    // Batches still queued come after every batch a worker holds, so dropping them cannot
    // leave a worker waiting for its turn.
    queue_.clear();
  }
  work_cv_.notify_all();
  done_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

std::unique_ptr<BlockWriter::Batch> BlockWriter::NewBatch() {
  if (free_.empty()) return std::make_unique<Batch>();
  auto b = std::move(free_.back());
  free_.pop_back();
  return b;
}

void BlockWriter::Encode(Batch* b) const {
  size_t begin = 0;
  uint64_t batch_offset = 0;  // of block i from the batch's start, as stored
  size_t copied_at = 0;       // next entry of copied_hashes
  b->spill.resize(0);
  for (size_t i = 0; i < b->blocks(); ++i) {
    const size_t end = b->raw_ends[i];
    const size_t block_begin = begin;
    begin = end;
    // The records' spill entries: hash, location relative to the batch.
    const uint32_t count = b->records[i];
    const size_t spill_at = b->spill.size();
    b->spill.resize(spill_at + 16ull * count);
    char* e = b->spill.data() + spill_at;
    auto location = [&](uint64_t in_block) {
      return direct_slots_ ? DirectSlotLocation(batch_offset + in_block)
                           : SlotLocation(i, in_block);
    };
    const bool raw_form = !b->copied[i] || b->raw[end - 5] == 0;  // (compression none)
    if (!raw_form) {
      for (uint32_t r = 0; r < count; ++r, e += 16) {
        const auto& [hash, in_block] = b->copied_hashes[copied_at++];
        EncodeFixed64(e, hash);
        EncodeFixed64(e + 8, location(in_block));
      }
    } else {
      // A raw block (the builder's, or a checked copy of another table's, then with its
      // trailer): records, u32 offsets[count], u32 count.
      const char* raw = b->raw.data() + block_begin;
      const char* offsets = b->raw.data() + end - kBlockTrailerSize - 4 - 4ull * count;
      for (uint32_t r = 0; r < count; ++r, e += 16) {
        const uint32_t in_block = DecodeFixed32(offsets + 4ull * r);
        const char* p = raw + in_block;
        uint64_t klen = 0, vword = 0;
        p = DecodeVarint64(p, offsets, &klen);
        if (p != nullptr) p = DecodeVarint64(p, offsets, &vword);
        VARVE_CHECK(p != nullptr && klen <= static_cast<uint64_t>(offsets - p));
        EncodeFixed64(e, HashKey(std::string_view(p, klen)));
        EncodeFixed64(e + 8, location(in_block));
      }
    }
    if (b->copied[i]) {
      b->pieces.push_back({true, block_begin, end});
      b->used.push_back(static_cast<TableCompression>(b->raw[end - 5]));
      batch_offset += end - block_begin;
      continue;
    }
    const std::string_view raw(b->raw.data() + block_begin, end - kBlockTrailerSize - block_begin);
    size_t n = 0;
    if (compression_ != TableCompression::kNone) {
      const size_t start = b->stored_size;
      const size_t room = MaxCompressedSize(compression_, raw.size()) + kBlockTrailerSize;
      if (b->stored.size() < start + room) b->stored.resize(std::max(start + room, 2 * start));
      n = CompressBlockTo(compression_, zstd_level_, raw, b->stored.data() + start);
      if (n > 0) {
        char* p = b->stored.data() + start;
        EncodeFixed32(p + n, static_cast<uint32_t>(raw.size()));
        p[n + 4] = static_cast<char>(compression_);
        EncodeFixed32(p + n + 5, BlockChecksum(p, n + 5));
        b->stored_size = start + n + kBlockTrailerSize;
        b->pieces.push_back({false, start, b->stored_size});
        b->used.push_back(compression_);
        batch_offset += n + kBlockTrailerSize;
        continue;
      }
    }
    // Stored as it is: the trailer goes into the room the builder left after the block.
    char* p = b->raw.data() + block_begin;
    n = raw.size();
    EncodeFixed32(p + n, static_cast<uint32_t>(n));
    p[n + 4] = static_cast<char>(TableCompression::kNone);
    EncodeFixed32(p + n + 5, BlockChecksum(p, n + 5));
    b->pieces.push_back({true, block_begin, end});
    b->used.push_back(TableCompression::kNone);
    batch_offset += end - block_begin;
  }
}

Status BlockWriter::Write(Batch* batch) {
  const Batch& b = *batch;
  // The hash spill entries, now that the batch's place is known (locations are additive).
  const uint64_t base =
      direct_slots_ ? DirectSlotLocation(out_->Size()) : SlotLocation(blocks_written_, 0);
  if (base != 0) {
    for (size_t at = 8; at < b.spill.size(); at += 16) {
      EncodeFixed64(batch->spill.data() + at, DecodeFixed64(b.spill.data() + at) + base);
    }
  }
  VARVE_RETURN_IF_ERROR(hashes_->Append(b.spill));
  blocks_written_ += b.blocks();
  // Sparse spill entry per block: block offset u64 (compression in bits 62..63), key length
  // u32, key.
  uint64_t offset = out_->Size();
  size_t key_begin = 0;
  for (size_t i = 0; i < b.blocks(); ++i) {
    char e[12];
    EncodeFixed64(e, offset | uint64_t{static_cast<uint8_t>(b.used[i])} << 62);
    EncodeFixed32(e + 8, static_cast<uint32_t>(b.key_ends[i] - key_begin));
    VARVE_RETURN_IF_ERROR(sparse_->Append(std::string_view(e, 12)));
    VARVE_RETURN_IF_ERROR(sparse_->Append(
        std::string_view(b.first_keys.data() + key_begin, b.key_ends[i] - key_begin)));
    offset += b.pieces[i].end - b.pieces[i].begin;
    key_begin = b.key_ends[i];
  }
  // The blocks, with neighbours in the same buffer appended together (a batch of blocks that
  // are all compressed, or all stored raw, is one append).
  size_t i = 0;
  while (i < b.pieces.size()) {
    const Batch::Piece& first = b.pieces[i];
    size_t end = first.end;
    for (++i; i < b.pieces.size() && b.pieces[i].in_raw == first.in_raw && b.pieces[i].begin == end;
         ++i) {
      end = b.pieces[i].end;
    }
    const std::string& buf = first.in_raw ? b.raw : b.stored;
    VARVE_RETURN_IF_ERROR(
        out_->Append(std::string_view(buf.data() + first.begin, end - first.begin)));
  }
  return Status::Ok();
}

void BlockWriter::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    work_cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    ProcessFront(l);
  }
}

void BlockWriter::ProcessFront(std::unique_lock<std::mutex>& l) {
  const uint64_t seq = queue_.front().first;
  std::unique_ptr<Batch> b = std::move(queue_.front().second);
  queue_.pop_front();
  bool ok = status_.ok();
  l.unlock();
  if (ok) Encode(b.get());
  l.lock();
  done_cv_.wait(l, [&] { return stop_ || next_write_ == seq; });
  if (stop_) return;
  if (status_.ok()) {
    // Only the batch whose turn it is writes, so out_, sparse_ and hashes_ need no lock.
    l.unlock();
    Status s = Write(b.get());
    l.lock();
    if (status_.ok()) status_ = s;
  }
  ++next_write_;
  --in_flight_;
  b->Clear();
  free_.push_back(std::move(b));
  done_cv_.notify_all();
}

Status BlockWriter::Submit() {
  if (current_->blocks() == 0) {
    std::lock_guard<std::mutex> l(mu_);
    return status_;
  }
  if (threads_.empty()) {
    if (status_.ok()) {
      Encode(current_.get());
      status_ = Write(current_.get());
    }
    current_->Clear();
    return status_;
  }
  std::unique_lock<std::mutex> l(mu_);
  while (in_flight_ >= max_in_flight_) {
    if (queue_.empty()) {
      done_cv_.wait(l);
    } else {
      // The workers are behind: encode and write the oldest batch none has taken, rather
      // than wait (the file is the same, the caller's core is not left idle).
      ProcessFront(l);
    }
  }
  if (!status_.ok()) return status_;
  queue_.emplace_back(next_seq_++, std::move(current_));
  ++in_flight_;
  current_ = NewBatch();
  l.unlock();
  work_cv_.notify_one();
  return Status::Ok();
}

Status BlockWriter::Finish() {
  VARVE_RETURN_IF_ERROR(Submit());
  std::unique_lock<std::mutex> l(mu_);
  done_cv_.wait(l, [&] { return in_flight_ == 0; });
  return status_;
}

}  // namespace varve::table
