// MergeTables: a k-way merge over one iterator per input (one block each in memory) into a
// TableBuilder (bounded memory), so the whole merge runs in constant memory and one pass.
#include <queue>
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
  // Min-heap on key; for equal keys the latest input comes first.
  auto later = [&](size_t a, size_t b) {
    int c = cursors[a].it->key().compare(cursors[b].it->key());
    if (c != 0) return c > 0;
    return cursors[a].input < cursors[b].input;
  };
  std::priority_queue<size_t, std::vector<size_t>, decltype(later)> heap(later);
  for (size_t i = 0; i < cursors.size(); ++i) heap.push(i);

  VARVE_ASSIGN_OR_RETURN(auto builder, TableBuilder::Create(output_path, options.table));
  std::string key;
  while (!heap.empty()) {
    size_t top = heap.top();
    TableIterator* it = cursors[top].it.get();
    key.assign(it->key());
    if (!it->is_tombstone()) {
      VARVE_RETURN_IF_ERROR(builder->Add(key, it->value()));
    } else if (options.keep_tombstones) {
      VARVE_RETURN_IF_ERROR(builder->AddTombstone(key));
    }
    // Advance every input positioned on this key.
    while (!heap.empty() && cursors[heap.top()].it->key() == key) {
      size_t i = heap.top();
      heap.pop();
      cursors[i].it->Next();
      if (cursors[i].it->Valid()) {
        heap.push(i);
      } else {
        VARVE_RETURN_IF_ERROR(cursors[i].it->status());
      }
    }
  }
  return builder->Finish();
}

}  // namespace varve
