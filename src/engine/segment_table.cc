#include "engine/segment_table.h"

#include <bit>

#include "engine/db_impl.h"

namespace varve {

std::unique_ptr<const SegmentTable::Table> SegmentTable::Build(
    const std::vector<Segment*>& segments) {
  auto t = std::make_unique<Table>();
  size_t capacity = std::bit_ceil(std::max<size_t>(8, 2 * segments.size()));
  t->mask = static_cast<uint32_t>(capacity - 1);
  t->slots.resize(capacity);
  for (Segment* seg : segments) {
    uint32_t i = seg->id & t->mask;
    while (t->slots[i].segment != nullptr) i = (i + 1) & t->mask;
    t->slots[i] = Table::Slot{seg->id, seg};
  }
  return t;
}

SegmentTable::SegmentTable() : current_(Build({}).release()) {}

SegmentTable::~SegmentTable() { delete current_.load(); }

void SegmentTable::Publish(const std::vector<Segment*>& segments) {
  std::unique_ptr<const Table> old(current_.exchange(Build(segments).release()));
  sections_.Wait();
}  // old is freed here: no Reader can hold it any more

}  // namespace varve
