// SegmentTable: segments by id for the read path, found without a lock and without writing a
// cache line that other readers write (a locked map of shared_ptrs bounced two such lines per
// Get between every reader thread). See docs/design.md, "Read path".
//
// An immutable open-addressing table of raw pointers is published through an atomic pointer;
// a change builds a new table, swaps it in and waits for the read sections that might still use
// the old one (ReadSections), so a segment removed from the table may be freed once Publish
// returns. The owner (DBImpl) keeps each segment alive while it is in the table.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "util/read_sections.h"

namespace varve {

struct Segment;

class SegmentTable {
  // Open addressing, linear probing from id & mask (ids are handed out in order, so live ones
  // rarely collide); at most half full, so every probe ends at an empty slot.
  struct Table {
    struct Slot {
      uint32_t id = 0;
      Segment* segment = nullptr;
    };
    uint32_t mask = 0;
    std::vector<Slot> slots;
  };

 public:
  SegmentTable();
  ~SegmentTable();
  SegmentTable(const SegmentTable&) = delete;
  SegmentTable& operator=(const SegmentTable&) = delete;

  // While a Reader lives, segments it finds stay valid (not freed, their files open).
  class Reader {
   public:
    explicit Reader(SegmentTable& t) : section_(t.sections_), table_(t.current_.load()) {}
    // nullptr if no segment has this id (deleted by compaction, or the store is closed).
    Segment* Find(uint32_t id) const {
      for (uint32_t i = id & table_->mask;; i = (i + 1) & table_->mask) {
        const Table::Slot& s = table_->slots[i];
        if (s.segment == nullptr || s.id == id) return s.segment;
      }
    }

   private:
    ReadSections::Section section_;
    const Table* table_;
  };

  // Replaces the set of segments; returns once no Reader can still reach a segment left out.
  // Callers serialize Publish calls; never call it while this thread holds a Reader.
  void Publish(const std::vector<Segment*>& segments);

 private:
  static std::unique_ptr<const Table> Build(const std::vector<Segment*>& segments);

  ReadSections sections_;
  std::atomic<const Table*> current_;
};

}  // namespace varve
