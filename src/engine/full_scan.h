// FullScan: the live records of a store read in file order, segment by segment, for a full
// iteration over the hash index (docs/design.md, "Full iteration"). Visiting records in index
// order cost a cache and TLB miss per record; read in file order they stream.
//
// A record is returned if the index points at it when the scan reads it. Keys whose record an
// index change moved away before the scan reached it (an overwrite, a delete, compaction) are
// handed over by name instead: the caller looks them up.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/db_impl.h"

namespace varve {

class FullScan {
 public:
  // Registers with db; usable() is false if the store cannot be scanned (a damaged segment).
  explicit FullScan(DBImpl* db);
  ~FullScan();
  FullScan(const FullScan&) = delete;
  FullScan& operator=(const FullScan&) = delete;

  bool usable() const { return registered_; }

  enum class Step { kRecord, kMovedKey, kEnd, kError };
  // kRecord: *rec is a live record (views valid until the next call). kMovedKey: *key is a key
  // to look up (it may be absent by now). kError: see status().
  Step Next(RecordView* rec, std::string* key);
  const Status& status() const { return status_; }

 private:
  bool ReadChunk();
  void CheckGroup();

  struct Rec {
    RecordView view;
    uint64_t offset;
  };

  DBImpl* db_;
  bool registered_ = false;
  ScanRegion region_;
  std::vector<std::shared_ptr<Segment>> segs_;
  size_t part_ = 0;    // segment being read
  uint64_t next_ = 0;  // its next unread offset
  std::string buf_;    // the chunk read
  std::vector<Rec> recs_;
  uint64_t chunk_end_ = 0;
  uint64_t now_ms_ = 0;
  size_t checked_ = 0;          // recs_ before it are checked against the index
  std::vector<uint32_t> live_;  // indexes into recs_ of the last group's live records
  size_t live_pos_ = 0;
  std::vector<std::string> moved_;
  size_t moved_pos_ = 0;
  Status status_;
};

}  // namespace varve
