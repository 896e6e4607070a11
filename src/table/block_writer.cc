#include "table/block_writer.h"

#include <algorithm>
#include <cstring>

#include "util/coding.h"

namespace varve::table {

void BlockWriter::Batch::Clear() {
  raw.clear();
  raw_ends.clear();
  copied.clear();
  first_keys.clear();
  key_ends.clear();
  stored_size = 0;
  stored_ends.clear();
  used.clear();
}

BlockWriter::BlockWriter(TableCompression compression, int zstd_level, BufferedWriter* out,
                         BufferedWriter* sparse, int threads)
    : compression_(compression),
      zstd_level_(zstd_level),
      out_(out),
      sparse_(sparse),
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
  for (size_t i = 0; i < b->blocks(); ++i) {
    const std::string_view raw(b->raw.data() + begin, b->raw_ends[i] - begin);
    begin = b->raw_ends[i];
    const size_t start = b->stored_size;
    if (b->copied[i]) {
      if (b->stored.size() < start + raw.size()) {
        b->stored.resize(std::max(start + raw.size(), 2 * start));
      }
      std::memcpy(b->stored.data() + start, raw.data(), raw.size());
      b->stored_size = start + raw.size();
      b->stored_ends.push_back(b->stored_size);
      b->used.push_back(static_cast<TableCompression>(raw[raw.size() - 5]));
      continue;
    }
    const size_t room =
        std::max(raw.size(), MaxCompressedSize(compression_, raw.size())) + kBlockTrailerSize;
    if (b->stored.size() < start + room) b->stored.resize(std::max(start + room, 2 * start));
    char* p = b->stored.data() + start;
    size_t n = CompressBlockTo(compression_, zstd_level_, raw, p);
    const TableCompression used = n > 0 ? compression_ : TableCompression::kNone;
    if (n == 0) {
      std::memcpy(p, raw.data(), raw.size());
      n = raw.size();
    }
    EncodeFixed32(p + n, static_cast<uint32_t>(raw.size()));
    p[n + 4] = static_cast<char>(used);
    EncodeFixed32(p + n + 5, BlockChecksum(p, n + 5));
    b->stored_size = start + n + kBlockTrailerSize;
    b->stored_ends.push_back(b->stored_size);
    b->used.push_back(used);
  }
}

Status BlockWriter::Write(const Batch& b) {
  // Sparse spill entry per block: block offset u64 (compression in bits 62..63), key length
  // u32, key.
  const uint64_t base = out_->Size();
  size_t stored_begin = 0, key_begin = 0;
  for (size_t i = 0; i < b.blocks(); ++i) {
    char e[12];
    EncodeFixed64(e, (base + stored_begin) | uint64_t{static_cast<uint8_t>(b.used[i])} << 62);
    EncodeFixed32(e + 8, static_cast<uint32_t>(b.key_ends[i] - key_begin));
    VARVE_RETURN_IF_ERROR(sparse_->Append(std::string_view(e, 12)));
    VARVE_RETURN_IF_ERROR(sparse_->Append(
        std::string_view(b.first_keys.data() + key_begin, b.key_ends[i] - key_begin)));
    stored_begin = b.stored_ends[i];
    key_begin = b.key_ends[i];
  }
  return out_->Append(std::string_view(b.stored.data(), b.stored_size));
}

void BlockWriter::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    work_cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
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
      // Only the batch whose turn it is writes, so out_ and sparse_ need no lock.
      l.unlock();
      Status s = Write(*b);
      l.lock();
      if (status_.ok()) status_ = s;
    }
    ++next_write_;
    --in_flight_;
    b->Clear();
    free_.push_back(std::move(b));
    done_cv_.notify_all();
  }
}

Status BlockWriter::Submit() {
  if (current_->blocks() == 0) {
    std::lock_guard<std::mutex> l(mu_);
    return status_;
  }
  if (threads_.empty()) {
    if (status_.ok()) {
      Encode(current_.get());
      status_ = Write(*current_);
    }
    current_->Clear();
    return status_;
  }
  std::unique_lock<std::mutex> l(mu_);
  done_cv_.wait(l, [&] { return in_flight_ < max_in_flight_; });
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
