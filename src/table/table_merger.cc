// MergeTables: a k-way merge over one iterator per input (one block each in memory) into a
// TableBuilder (bounded memory), so the whole merge runs in constant memory and one pass. Where
// the input with the smallest key is at the start of a block whose keys all lie below every other
// input's current key, the block is copied as stored (no re-compression, no per-record heap
// work); the builder still indexes each of its keys.
#include <vector>

#include "table/table_internal.h"

namespace varve {

Status MergeTables(const std::vector<std::shared_ptr<TableReader>>& inputs,
                   const std::string& output_path, const MergeOptions& options) {
  struct Cursor {
    std::unique_ptr<TableIterator> it;
    table::BlockIterator* blocks;  // it, if it can hand out whole blocks (else null)
    size_t input;
  };
  std::vector<Cursor> cursors;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] == nullptr) return Status::InvalidArgument("MergeTables: null input");
    Cursor c{inputs[i]->NewIterator(), nullptr, i};
    c.blocks = dynamic_cast<table::BlockIterator*>(c.it.get());
    c.it->SeekToFirst();
    VARVE_RETURN_IF_ERROR(c.it->status());
    if (c.it->Valid()) cursors.push_back(std::move(c));
  }
  // Min-heap of cursor indexes on key; for equal keys the latest input comes first. The top is
  // replaced in place and sifted down when its cursor advances (one pass down the heap instead
  // of a pop and a push).
  auto before = [&](size_t a, size_t b) {
    int c = cursors[a].it->key().compare(cursors[b].it->key());
    if (c != 0) return c < 0;
    return cursors[a].input > cursors[b].input;
  };
  std::vector<size_t> heap;
  auto sift_down = [&](size_t i) {
    const size_t n = heap.size();
    const size_t x = heap[i];
    while (true) {
      size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(heap[child + 1], heap[child])) ++child;
      if (!before(heap[child], x)) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = x;
  };
  for (size_t i = 0; i < cursors.size(); ++i) heap.push_back(i);
  for (size_t i = heap.size() / 2; i-- > 0;) sift_down(i);

  VARVE_ASSIGN_OR_RETURN(auto builder, TableBuilder::Create(output_path, options.table));
  auto* blocks_out = dynamic_cast<table::TableBuilderInternal*>(builder.get());
  // The smallest current key of the inputs other than the top one (the top's children).
  auto others_min = [&]() -> const TableIterator* {
    const TableIterator* m = nullptr;
    for (size_t child = 1; child <= 2 && child < heap.size(); ++child) {
      const TableIterator* c = cursors[heap[child]].it.get();
      if (m == nullptr || c->key() < m->key()) m = c;
    }
    return m;
  };
  std::string key;
  while (!heap.empty()) {
    Cursor& top_cursor = cursors[heap[0]];
    if (blocks_out != nullptr && top_cursor.blocks != nullptr &&
        top_cursor.blocks->AtBlockStart()) {
      const table::BlockView& block = top_cursor.blocks->Block();
      table::RecordView last;
      const TableIterator* next = others_min();
      if (block.Record(block.count - 1, &last) && (next == nullptr || last.key < next->key())) {
        VARVE_ASSIGN_OR_RETURN(
            bool copied,
            blocks_out->AddBlock(block, top_cursor.blocks->StoredBlock(), options.keep_tombstones));
        if (copied) {
          top_cursor.blocks->NextBlock();
          if (!top_cursor.it->Valid()) {
            VARVE_RETURN_IF_ERROR(top_cursor.it->status());
            heap[0] = heap.back();
            heap.pop_back();
          }
          if (!heap.empty()) sift_down(0);
          continue;
        }
      }
    }
    TableIterator* it = top_cursor.it.get();
    key.assign(it->key());
    if (!it->is_tombstone()) {
      VARVE_RETURN_IF_ERROR(builder->Add(key, it->value()));
    } else if (options.keep_tombstones) {
      VARVE_RETURN_IF_ERROR(builder->AddTombstone(key));
    }
    // Advance every input positioned on this key (each is at the top in turn).
    do {
      TableIterator* top = cursors[heap[0]].it.get();
      top->Next();
      if (!top->Valid()) {
        VARVE_RETURN_IF_ERROR(top->status());
        heap[0] = heap.back();
        heap.pop_back();
        if (heap.empty()) break;
      }
      sift_down(0);
    } while (cursors[heap[0]].it->key() == key);
  }
  return builder->Finish();
}

}  // namespace varve
