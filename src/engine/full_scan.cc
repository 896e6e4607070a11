#include "engine/full_scan.h"

#include <algorithm>

#include "engine/record_format.h"
#include "util/clock.h"

namespace varve {

using namespace format;

namespace {
constexpr size_t kChunkBytes = 1 << 20;
// Records checked against the index per hold of scan_mu_, which index changes wait for while a
// scan is open.
constexpr size_t kGroupRecords = 256;
constexpr size_t kPrefetchAhead = 8;
}  // namespace

bool ScanRegion::Unread(const IndexEntry& e) const {
  auto it = std::lower_bound(parts.begin(), parts.end(), e.segment,
                             [](const Part& p, uint32_t id) { return p.segment < id; });
  if (it == parts.end() || it->segment != e.segment || e.offset >= it->end) return false;
  size_t p = static_cast<size_t>(it - parts.begin());
  return p > part || (p == part && e.offset >= offset);
}

DBImpl::IndexChange::IndexChange(DBImpl* db) : db_(db), section_(db->scan_sections_) {
  // seq_cst after the section's increment: a scan that registers either sees this section in
  // its grace period or is seen here.
  if (db->scans_open_.load(std::memory_order_seq_cst) > 0) {
    lock_ = std::unique_lock<std::mutex>(db->scan_mu_);
  }
}

void DBImpl::NoteLeft(std::string_view key, const IndexEntry& old) {
  for (ScanRegion* r : scans_) {
    if (r->Unread(old)) r->moved.emplace_back(key);
  }
}

bool DBImpl::OpenScan(ScanRegion* region, std::vector<std::shared_ptr<Segment>>* segs) {
  {
    std::lock_guard lock(scan_mu_);
    scans_.push_back(region);
    scans_open_.fetch_add(1, std::memory_order_seq_cst);
  }
  // Index changes that began before the registration took no lock: wait until they are over,
  // so that the bounds read below cover every record the index points at.
  scan_sections_.Wait();
  bool damaged = false;
  {
    std::lock_guard lock(scan_mu_);
    std::shared_lock slock(segments_mu_);
    for (const auto& [id, seg] : segments_) {
      damaged |= seg->damaged.load();
      segs->push_back(seg);
      region->parts.push_back(
          ScanRegion::Part{id, seg->indexed_bytes.load(std::memory_order_acquire)});
    }
  }
  if (!damaged) return true;
  std::vector<std::string> unused;
  CloseScan(region, &unused);
  segs->clear();
  return false;
}

void DBImpl::CloseScan(ScanRegion* region, std::vector<std::string>* moved) {
  std::lock_guard lock(scan_mu_);
  scans_.erase(std::find(scans_.begin(), scans_.end(), region));
  scans_open_.fetch_sub(1, std::memory_order_relaxed);
  for (std::string& k : region->moved) moved->push_back(std::move(k));
  region->moved.clear();
}

FullScan::FullScan(DBImpl* db) : db_(db) {
  registered_ = db_->OpenScan(&region_, &segs_);
  if (!segs_.empty()) next_ = kFileHeaderBytes;
}

FullScan::~FullScan() {
  if (registered_) db_->CloseScan(&region_, &moved_);
}

FullScan::Step FullScan::Next(RecordView* rec, std::string* key) {
  while (true) {
    if (moved_pos_ < moved_.size()) {
      *key = std::move(moved_[moved_pos_++]);
      return Step::kMovedKey;
    }
    moved_.clear();
    moved_pos_ = 0;
    if (live_pos_ < live_.size()) {
      *rec = recs_[live_[live_pos_++]].view;
      return Step::kRecord;
    }
    if (!status_.ok()) return Step::kError;
    if (checked_ < recs_.size()) {
      CheckGroup();
      continue;
    }
    if (!registered_) return Step::kEnd;
    if (!ReadChunk()) {
      if (!status_.ok()) return Step::kError;
      // Every record is read: no change can concern this scan any more.
      db_->CloseScan(&region_, &moved_);
      registered_ = false;
      segs_.clear();
      std::string().swap(buf_);
    }
  }
}

// Reads the next run of whole records of the region into recs_; false at its end or an error.
bool FullScan::ReadChunk() {
  recs_.clear();
  checked_ = 0;
  while (part_ < segs_.size() && next_ >= region_.parts[part_].end) {
    ++part_;
    next_ = kFileHeaderBytes;
  }
  if (part_ == segs_.size()) return false;
  if (db_->closing()) {
    status_ = Status::InvalidArgument("store is closed");
    return false;
  }
  const Segment& seg = *segs_[part_];
  const uint64_t end = region_.parts[part_].end;
  auto where = [&](uint64_t offset) {
    return SegmentFileName(seg.id) + " at offset " + std::to_string(offset);
  };
  size_t want = static_cast<size_t>(std::min<uint64_t>(kChunkBytes, end - next_));
  while (true) {
    if (buf_.size() < want) buf_.resize(want);
    Result<size_t> n = seg.reader->Read(next_, want, buf_.data());
    if (!n.ok()) {
      status_ = n.status();
      return false;
    }
    if (*n != want) {
      status_ = Status::Corruption(where(next_ + *n) + ": segment shorter than its records");
      return false;
    }
    size_t pos = 0;
    while (pos < want) {
      Rec r;
      std::string why;
      size_t needed = 0;
      r.offset = next_ + pos;
      DecodeOutcome d = DecodeRecord(buf_.data() + pos, want - pos, &r.view, &why, &needed);
      if (d == DecodeOutcome::kCorrupt) {
        status_ = Status::Corruption(where(r.offset) + ": " + why);
        return false;
      }
      if (d == DecodeOutcome::kTruncated) {
        if (pos > 0) break;  // the next chunk starts with it
        // A record larger than a chunk: read it whole.
        if (needed <= want || r.offset + needed > end) {
          status_ = Status::Corruption(where(r.offset) + ": record truncated");
          return false;
        }
        want = needed;
        break;
      }
      recs_.push_back(r);
      pos += r.view.size;
    }
    if (pos == 0) continue;  // read again, larger
    chunk_end_ = next_ + pos;
    next_ = chunk_end_;
    now_ms_ = NowUnixMs();
    return true;
  }
}

// Checks the next group of records against the index, and moves the cursor past them.
void FullScan::CheckGroup() {
  live_.clear();
  live_pos_ = 0;
  const size_t end = std::min(checked_ + kGroupRecords, recs_.size());
  const uint64_t group_end = end < recs_.size() ? recs_[end].offset : chunk_end_;
  const uint32_t seg_id = region_.parts[part_].segment;
  Index* index = db_->index();
  auto wanted = [&](const RecordView& r) {
    return !r.tombstone() && (r.expiry_ms == 0 || r.expiry_ms > now_ms_);
  };
  for (size_t i = checked_; i < std::min(checked_ + kPrefetchAhead, end); ++i) {
    index->Prefetch(recs_[i].view.key);
  }
  std::lock_guard lock(db_->scan_mu());
  for (size_t i = checked_; i < end; ++i) {
    if (i + kPrefetchAhead < end) index->Prefetch(recs_[i + kPrefetchAhead].view.key);
    const Rec& r = recs_[i];
    if (!wanted(r.view)) continue;
    IndexEntry e;
    if (index->Get(r.view.key, &e) && !e.tombstone() && e.segment == seg_id &&
        e.offset == r.offset) {
      live_.push_back(static_cast<uint32_t>(i));
    }
  }
  region_.part = part_;
  region_.offset = group_end;
  for (std::string& k : region_.moved) moved_.push_back(std::move(k));
  region_.moved.clear();
  checked_ = end;
}

}  // namespace varve
