// MergeTables: a k-way merge over one iterator per input (one block each in memory) into a
// TableBuilder (bounded memory), so the whole merge runs in constant memory and one pass. Where
// the input with the smallest key is at the start of a block whose keys all lie below every other
// input's current key, the block is copied as stored (no re-compression, no per-record heap
// work); the builder still indexes each of its keys.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <thread>
#include <vector>

#include "table/table_internal.h"

namespace varve {
namespace {

struct Cursor {
  std::unique_ptr<TableIterator> it;
  table::BlockIterator* blocks;  // it, if it can hand out whole blocks (else null)
  size_t input;
  // While it is valid: its key, and the key's first 8 bytes big-endian (zero-padded), which
  // decide most comparisons without a memcmp.
  std::string_view key;
  uint64_t prefix = 0;

  // After every move of it; false at its end.
  bool Refresh() {
    if (!it->Valid()) return false;
    key = it->key();
    uint64_t v = 0;
    std::memcpy(&v, key.data(), std::min<size_t>(8, key.size()));
    // Big-endian, so that it compares as the bytes do.
    prefix = std::endian::native == std::endian::little ? __builtin_bswap64(v) : v;
    return true;
  }
};

// For equal keys the latest input comes first.
bool Before(const Cursor& a, const Cursor& b) {
  if (a.prefix != b.prefix) return a.prefix < b.prefix;
  int c = a.key.compare(b.key);
  if (c != 0) return c < 0;
  return a.input > b.input;
}

// Checks the inputs' block checksums on its own thread, a step of each input in turn, ahead of
// the merge, which then finds most blocks checked (and their pages mapped). An input whose check
// fails is left alone: the merge meets the damage itself and reports it.
class VerifyAhead {
 public:
  explicit VerifyAhead(const std::vector<std::shared_ptr<TableReader>>& inputs)
      : inputs_(inputs), thread_([this] { Run(); }) {}
  ~VerifyAhead() {
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
  }
  VerifyAhead(const VerifyAhead&) = delete;
  VerifyAhead& operator=(const VerifyAhead&) = delete;

 private:
  static constexpr uint64_t kStepBlocks = 16;

  void Run() {
    std::vector<uint64_t> next(inputs_.size(), 0);
    bool more = true;
    while (more && !stop_.load(std::memory_order_relaxed)) {
      more = false;
      for (size_t i = 0; i < inputs_.size() && !stop_.load(std::memory_order_relaxed); ++i) {
        const uint64_t blocks = inputs_[i]->properties().blocks;
        if (next[i] >= blocks) continue;
        if (!table::VerifyTableBlocks(*inputs_[i], next[i], kStepBlocks).ok()) {
          next[i] = blocks;
          continue;
        }
        next[i] += kStepBlocks;
        more = true;
      }
    }
  }

  const std::vector<std::shared_ptr<TableReader>>& inputs_;
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts once the rest is set up
};

}  // namespace

Status MergeTables(const std::vector<std::shared_ptr<TableReader>>& inputs,
                   const std::string& output_path, const MergeOptions& options) {
  for (const auto& input : inputs) {
    if (input == nullptr) return Status::InvalidArgument("MergeTables: null input");
  }
  std::unique_ptr<VerifyAhead> verify_ahead;
  if (options.verify_ahead && !inputs.empty()) verify_ahead = std::make_unique<VerifyAhead>(inputs);
  std::vector<Cursor> cursors;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Cursor c{inputs[i]->NewIterator(), nullptr, i, {}, 0};
    c.blocks = dynamic_cast<table::BlockIterator*>(c.it.get());
    c.it->SeekToFirst();
    VARVE_RETURN_IF_ERROR(c.it->status());
    if (c.Refresh()) cursors.push_back(std::move(c));
  }
  // Min-heap of cursor indexes. The top is replaced in place and sifted down when its cursor
  // advances (one pass down the heap instead of a pop and a push).
  std::vector<size_t> heap;
  auto sift_down = [&](size_t i) {
    const size_t n = heap.size();
    const size_t x = heap[i];
    while (true) {
      size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && Before(cursors[heap[child + 1]], cursors[heap[child]])) ++child;
      if (!Before(cursors[heap[child]], cursors[x])) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = x;
  };
  // After the top's cursor moved: re-sorts it, or drops it at its end.
  auto top_moved = [&]() -> Status {
    Cursor& top = cursors[heap[0]];
    if (!top.Refresh()) {
      VARVE_RETURN_IF_ERROR(top.it->status());
      heap[0] = heap.back();
      heap.pop_back();
    }
    if (!heap.empty()) sift_down(0);
    return Status::Ok();
  };
  for (size_t i = 0; i < cursors.size(); ++i) heap.push_back(i);
  for (size_t i = heap.size() / 2; i-- > 0;) sift_down(i);

  VARVE_ASSIGN_OR_RETURN(auto builder, TableBuilder::Create(output_path, options.table));
  auto* blocks_out = dynamic_cast<table::TableBuilderInternal*>(builder.get());
  // The least current key of the inputs other than the top one (the top's children); null if
  // the top is the only input left.
  auto others_min = [&]() -> const Cursor* {
    const Cursor* m = nullptr;
    for (size_t child = 1; child <= 2 && child < heap.size(); ++child) {
      const Cursor* c = &cursors[heap[child]];
      if (m == nullptr || c->key < m->key) m = c;
    }
    return m;
  };
  std::string key;
  while (!heap.empty()) {
    Cursor& top = cursors[heap[0]];
    if (blocks_out != nullptr && top.blocks != nullptr && top.blocks->AtBlockStart()) {
      const table::BlockView& block = top.blocks->Block();
      table::RecordView last;
      const Cursor* next = others_min();
      if (block.Record(block.count - 1, &last) && (next == nullptr || last.key < next->key)) {
        VARVE_ASSIGN_OR_RETURN(bool copied,
                               blocks_out->AddBlock(top.blocks, options.keep_tombstones));
        if (copied) {
          top.blocks->NextBlock();
          VARVE_RETURN_IF_ERROR(top_moved());
          continue;
        }
      }
    }
    key.assign(top.key);
    const uint64_t prefix = top.prefix;
    if (!top.it->is_tombstone()) {
      VARVE_RETURN_IF_ERROR(builder->Add(key, top.it->value()));
    } else if (options.keep_tombstones) {
      VARVE_RETURN_IF_ERROR(builder->AddTombstone(key));
    }
    // Advance every input positioned on this key (each is at the top in turn).
    do {
      cursors[heap[0]].it->Next();
      VARVE_RETURN_IF_ERROR(top_moved());
    } while (!heap.empty() && cursors[heap[0]].prefix == prefix && cursors[heap[0]].key == key);
  }
  return builder->Finish();
}

}  // namespace varve
