// MergeTables: a k-way merge over one iterator per input (one block each in memory) into a
// TableBuilder (bounded memory), so the whole merge runs in constant memory and one pass.
#include <vector>

#include "table/table_internal.h"

namespace varve {

Status MergeTables(const std::vector<std::shared_ptr<TableReader>>& inputs,
                   const std::string& output_path, const MergeOptions& options) {
  struct Cursor {
    std::unique_ptr<TableIterator> it;
    size_t input;
  };
  std::vector<Cursor> cursors;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] == nullptr) return Status::InvalidArgument("MergeTables: null input");
    Cursor c{inputs[i]->NewIterator(), i};
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
  std::string key;
  while (!heap.empty()) {
    TableIterator* it = cursors[heap[0]].it.get();
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
