// Background work: hint files for sealed segments, compaction of segments whose live bytes fell
// below the threshold, and the periodic fdatasync of the kInterval / kBatch durability modes.
#include <algorithm>
#include <set>

#include "engine/db_impl.h"
#include "engine/segment_io.h"
#include "util/clock.h"
#include "util/coding.h"
#include "util/crc32c.h"
#include "util/logging.h"

namespace varve {

using namespace format;

void DBImpl::MaintenanceLoop() {
  std::unique_lock lock(bg_mu_);
  while (!bg_stop_) {
    bg_cv_.wait_for(lock, std::chrono::milliseconds(options_.compaction_check_interval_ms));
    if (bg_stop_) break;
    lock.unlock();
    Status s = MarkActiveHint();
    if (!s.ok()) LogWarning("hint mark: " + s.ToString());
    s = WriteMissingHints();
    if (!s.ok()) LogWarning("writing hint files: " + s.ToString());
    if (options_.background_compaction) {
      s = CompactEligible(false);
      if (!s.ok()) LogWarning("background compaction: " + s.ToString());
    }
    lock.lock();
  }
}

void DBImpl::SyncLoop() {
  const auto interval = std::chrono::milliseconds(std::max<uint32_t>(1, options_.sync_interval_ms));
  // kBatch checks often so that no write waits much longer than the interval.
  const auto tick = options_.durability == Durability::kBatch
                        ? std::max(std::chrono::milliseconds(1), interval / 10)
                        : interval;
  std::unique_lock lock(bg_mu_);
  while (!bg_stop_) {
    bg_cv_.wait_for(lock, tick);
    if (bg_stop_) break;
    if (unsynced_writes_.load(std::memory_order_relaxed) == 0) continue;
    if (options_.durability == Durability::kBatch) {
      uint64_t age_us = NowSteadyUs() - first_unsynced_us_.load(std::memory_order_relaxed);
      if (age_us < static_cast<uint64_t>(options_.sync_interval_ms) * 1000) continue;
    }
    lock.unlock();
    // Read before taking the file: every record up to seq is in it or in a file already synced.
    uint64_t seq = last_seq_.load(std::memory_order_acquire);
    std::shared_ptr<WritableFile> file;
    {
      std::lock_guard flock(file_mu_);
      file = active_file_;
    }
    if (file != nullptr) {
      unsynced_writes_.store(0, std::memory_order_relaxed);
      Status s = file->Sync();
      syncs_.fetch_add(1, std::memory_order_relaxed);
      if (s.ok()) NoteDurable(seq);
      if (!s.ok()) {
        LogWarning("background sync failed, writes stop: " + s.ToString());
        SetWriteError(s);
      }
    }
    lock.lock();
  }
}

Status DBImpl::WriteHintFromScan(const std::shared_ptr<Segment>& seg) {
  // A damaged segment gets no hint: a hint would hide the damage (and the records after it)
  // from every later open, which scans such a segment and warns instead.
  if (seg->damaged.load()) return Status::Ok();
  uint64_t size = seg->size_bytes.load();
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<HintWriter> hint, HintWriter::Create(env_, dir_, seg->id));
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, OpenForScan(*seg));
  SegmentScanner scanner(file.get(), size, seg->path);
  std::vector<HintEntry> batch;
  std::vector<std::string> batch_keys;
  Status s;
  while (s.ok()) {
    RecordView rec;
    uint64_t offset;
    std::string why;
    SegmentScanner::Step step = scanner.Next(&rec, &offset, &why);
    if (step == SegmentScanner::Step::kEnd && batch.empty()) break;
    if (step != SegmentScanner::Step::kRecord) {
      if (!scanner.io_status().ok()) {
        s = scanner.io_status();
      } else {
        seg->damaged = true;
        LogWarning(seg->path + ": damaged record at offset " + std::to_string(offset) + " (" +
                   (step == SegmentScanner::Step::kEnd ? "uncommitted batch" : why) +
                   "); no hint written, later opens will scan it (run `varve check`)");
        hint->Abandon();
        return Status::Ok();
      }
      break;
    }
    HintEntry e{rec.flags, rec.seq, rec.expiry_ms, static_cast<uint32_t>(offset),
                rec.size,  rec.key};
    if (rec.in_batch()) {  // only committed batches go into the hint
      batch.push_back(e);
      batch_keys.emplace_back(rec.key);
      if (rec.batch_commit()) {
        for (size_t i = 0; i < batch.size() && s.ok(); ++i) {
          batch[i].key = batch_keys[i];
          s = hint->Add(batch[i]);
        }
        batch.clear();
        batch_keys.clear();
      }
      continue;
    }
    batch.clear();
    batch_keys.clear();
    s = hint->Add(e);
  }
  if (s.ok()) s = hint->Finish(size);
  if (!s.ok()) {
    hint->Abandon();
    return s;
  }
  VARVE_RETURN_IF_ERROR(env_->SyncDir(dir_));
  seg->has_hint = true;
  return Status::Ok();
}

Status DBImpl::WriteHint(const std::shared_ptr<Segment>& seg) {
  std::unique_ptr<HintWriter> hint = std::move(seg->hint_writer);
  // The finished hint (or the scan) replaces the mark.
  std::string mark = dir_ + "/" + HintMarkFileName(seg->id);
  if (env_->FileExists(mark)) env_->RemoveFile(mark).ok();
  if (hint != nullptr && (seg->damaged.load() || seg->hint_failed.load())) {
    hint->Abandon();
    hint.reset();
  }
  if (hint == nullptr) return WriteHintFromScan(seg);
  // Every record appended has its entry; the size is final (the segment is sealed or closed,
  // and cut back to its data).
  Status s = hint->Finish(seg->size_bytes.load());
  if (!s.ok()) {
    hint->Abandon();
    LogWarning("hint of " + seg->path + ": " + s.ToString() + "; building it by a scan");
    return WriteHintFromScan(seg);
  }
  VARVE_RETURN_IF_ERROR(env_->SyncDir(dir_));
  seg->has_hint = true;
  return Status::Ok();
}

Status DBImpl::MarkActiveHint() {
  // A mark needs the segment synced up to what it vouches for. Durability none promises no syncs,
  // and one every 32 MiB made ext4 commit its journal under the writer's page faults (the
  // mapped fill lost a third of its speed): after a crash such a store scans its whole tail.
  if (options_.durability == Durability::kNone) return Status::Ok();
  // Every eighth of a segment (32 MiB by default): after a crash, at most that much of the
  // segment is scanned, and each mark costs two syncs.
  const uint64_t step = std::max<uint64_t>(options_.segment_size_bytes / 8, 64 << 10);
  {
    // The usual case (not enough appended since the last mark) takes no lock but file_mu_.
    std::lock_guard flock(file_mu_);
    const Segment* s = active_for_bg_.get();
    if (s == nullptr || s->size_bytes.load() < s->hint_marked_bytes + step) return Status::Ok();
  }
  std::lock_guard lock(compaction_mu_);  // against Compact() deleting a just-sealed segment
  std::shared_ptr<Segment> seg;
  std::shared_ptr<WritableFile> file;
  {
    std::lock_guard flock(file_mu_);
    seg = active_for_bg_;
    file = active_file_;
  }
  if (seg == nullptr || file == nullptr || seg->hint_writer == nullptr || seg->hint_failed.load() ||
      seg->size_bytes.load() < seg->hint_marked_bytes + step) {
    return Status::Ok();
  }
  HintWriter::Progress progress;
  {
    std::lock_guard hlock(seg->hint_mu);
    VARVE_RETURN_IF_ERROR(seg->hint_writer->Flush(&progress));
  }
  // The records the entries describe reach the disk before the mark that vouches for them.
  Status synced = file->Sync();
  if (!synced.ok()) {
    // This sync may have taken the error a writer's own sync would have seen (the kernel reports
    // a failed writeback once per file description): stop writes, as the sync thread does.
    LogWarning("sync for the hint mark failed, writes stop: " + synced.ToString());
    SetWriteError(synced);
    return synced;
  }
  VARVE_RETURN_IF_ERROR(seg->hint_writer->SyncFile());
  VARVE_RETURN_IF_ERROR(WriteHintMark(env_, dir_, seg->id, progress));
  seg->hint_marked_bytes = progress.segment_bytes;
  return Status::Ok();
}

Status DBImpl::WriteMissingHints() {
  std::lock_guard lock(compaction_mu_);
  std::vector<std::shared_ptr<Segment>> todo;
  {
    std::shared_lock slock(segments_mu_);
    for (const auto& [id, seg] : segments_) {
      if (seg->sealed.load() && !seg->has_hint.load() && !seg->damaged.load()) {
        todo.push_back(seg);
      }
    }
  }
  for (const auto& seg : todo) {
    if (bg_stop_) break;
    VARVE_RETURN_IF_ERROR(WriteHint(seg));
  }
  return Status::Ok();
}

Status DBImpl::Compact() {
  PendingWrite w;
  w.roll = true;  // seal the active segment if it holds dead records
  VARVE_RETURN_IF_ERROR(WriteImpl(&w));
  return CompactEligible(true);
}

Status DBImpl::CompactEligible(bool force) {
  std::lock_guard lock(compaction_mu_);
  std::vector<std::pair<double, std::shared_ptr<Segment>>> picked;
  {
    std::shared_lock slock(segments_mu_);
    // A segment's tombstones are garbage once every other segment holds only newer records
    // (the rule compaction drops them by): the two smallest min_seq values tell.
    uint64_t min1 = UINT64_MAX, min2 = UINT64_MAX;
    uint32_t min1_id = 0;
    for (const auto& [id, seg] : segments_) {
      uint64_t m = seg->min_seq.load();
      if (m < min1) {
        min2 = min1;
        min1 = m;
        min1_id = id;
      } else if (m < min2) {
        min2 = m;
      }
    }
    for (const auto& [id, seg] : segments_) {
      if (!seg->sealed.load() || seg->compacting.load() || seg->damaged.load()) continue;
      uint64_t data = seg->data_bytes();
      uint64_t others_min = id == min1_id ? min2 : min1;
      uint64_t needed_tombstones =
          seg->max_tombstone_seq.load() < others_min ? 0 : seg->tombstone_bytes.load();
      uint64_t kept = seg->live_bytes.load() + needed_tombstones;
      double ratio = data == 0 ? 0.0 : static_cast<double>(kept) / static_cast<double>(data);
      if (force ? kept < data || data == 0 : ratio < options_.compaction_live_ratio) {
        picked.emplace_back(ratio, seg);
      }
    }
  }
  if (picked.empty()) return Status::Ok();
  std::sort(picked.begin(), picked.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::shared_ptr<Segment>> inputs;
  for (auto& [ratio, seg] : picked) inputs.push_back(std::move(seg));
  return CompactSegments(inputs);
}

void DBImpl::DeleteSegmentFiles(const std::shared_ptr<Segment>& seg) {
  {
    // The caller's reference keeps the segment alive until the reads that found it are over
    // (PublishSegments waits for them); reads that look later retry with the new index entry.
    std::unique_lock lock(segments_mu_);
    segments_.erase(seg->id);
    PublishSegments();
  }
  // The hint goes first, so that no hint outlives its segment.
  std::string hint = dir_ + "/" + HintFileName(seg->id);
  if (env_->FileExists(hint)) env_->RemoveFile(hint).ok();
  if (seg->hint_writer != nullptr) seg->hint_writer->Abandon();
  std::string mark = dir_ + "/" + HintMarkFileName(seg->id);
  if (env_->FileExists(mark)) env_->RemoveFile(mark).ok();
  Status s = env_->RemoveFile(seg->path);
  if (!s.ok()) LogWarning("compaction: " + s.ToString());
}

namespace {

struct Copied {
  std::string key;
  IndexEntry old;    // where the record was (valid for puts)
  IndexEntry moved;  // where it goes; offset relative to the output buffer until flushed
  bool tombstone;
  bool shadow;  // a tombstone the index keeps (it hides a table's key): moves like a live record
  uint8_t flags;
  uint64_t seq;
  uint64_t expiry_ms;
};

}  // namespace

Status DBImpl::CompactSegments(const std::vector<std::shared_ptr<Segment>>& inputs) {
  VARVE_RETURN_IF_ERROR(DropIndexCheckpoint());
  for (const auto& in : inputs) in->compacting = true;
  // A tombstone (or an expired record) may be dropped only if no segment that outlives this
  // compaction can hold an older record of its key: every segment that is not an input must
  // hold only newer records. The inputs all go together (see the OBSOLETE file below).
  uint64_t min_seq_outside = UINT64_MAX;
  {
    std::shared_lock lock(segments_mu_);
    for (const auto& [id, seg] : segments_) {
      if (!seg->compacting.load()) min_seq_outside = std::min(min_seq_outside, seg->min_seq.load());
    }
  }
  auto droppable = [&](uint32_t, uint64_t seq) { return seq < min_seq_outside; };
  (void)droppable;

  std::shared_ptr<Segment> out;
  std::unique_ptr<WritableFile> out_file;
  std::string out_buf;
  std::vector<Copied> pending;      // in out_buf, not yet in the file
  std::vector<Copied> out_records;  // in the current output file (for its hint)
  std::vector<std::shared_ptr<Segment>> outputs;

  auto flush = [&]() -> Status {
    if (out_buf.empty()) return Status::Ok();
    uint64_t base = out->size_bytes.load();
    VARVE_RETURN_IF_ERROR(out_file->Append(out_buf));
    out->size_bytes = base + out_buf.size();
    compaction_written_.fetch_add(out_buf.size(), std::memory_order_relaxed);
    out_buf.clear();
    IndexChange change(this);
    for (Copied& c : pending) {
      c.moved.offset += static_cast<uint32_t>(base);
      out->NoteSeq(c.seq);
      if (c.tombstone) {
        out->NoteTombstone(c.seq, c.moved.size);
        IndexEntry m = c.moved;
        m.flags = IndexEntry::kTombstone;
        if (c.shadow && index_->ReplaceIf(c.key, c.old, m)) {
          change.Left(c.key, c.old);
          // An expired value turned into a tombstone that hides a table's key.
          if (!c.old.tombstone()) index_tombstones_.fetch_add(1, std::memory_order_relaxed);
          out->live_bytes.fetch_add(c.moved.size, std::memory_order_relaxed);
          NoteDead(c.old.segment, c.old.size);
        }
      } else if (index_->ReplaceIf(c.key, c.old, c.moved)) {
        change.Left(c.key, c.old);
        out->live_bytes.fetch_add(c.moved.size, std::memory_order_relaxed);
        NoteDead(c.old.segment, c.old.size);
      }
      out_records.push_back(std::move(c));
    }
    out->indexed_bytes.store(out->size_bytes.load(), std::memory_order_release);
    pending.clear();
    return Status::Ok();
  };
  auto seal = [&]() -> Status {
    if (out == nullptr) return Status::Ok();
    VARVE_RETURN_IF_ERROR(flush());
    VARVE_RETURN_IF_ERROR(out_file->Sync());
    VARVE_RETURN_IF_ERROR(out_file->Close());
    VARVE_ASSIGN_OR_RETURN(std::unique_ptr<HintWriter> hint,
                           HintWriter::Create(env_, dir_, out->id));
    for (const Copied& c : out_records) {
      VARVE_RETURN_IF_ERROR(
          hint->Add(HintEntry{c.flags, c.seq, c.expiry_ms, c.moved.offset, c.moved.size, c.key}));
    }
    VARVE_RETURN_IF_ERROR(hint->Finish(out->size_bytes.load()));
    out->has_hint = true;
    out->sealed = true;
    out->compacting = false;
    outputs.push_back(out);
    out.reset();
    out_file.reset();
    out_records.clear();
    return Status::Ok();
  };
  auto copy = [&](const RecordView& rec, uint8_t type, const IndexEntry& old,
                  bool shadow = false) -> Status {
    size_t size =
        RecordSize(rec.key.size(), type == kTypePut ? rec.value.size() : 0,
                   type == kTypePut && rec.expiry_ms != 0, type == kTypePut && rec.user_flags != 0);
    if (out != nullptr &&
        out->size_bytes.load() + out_buf.size() + size > options_.segment_size_bytes) {
      VARVE_RETURN_IF_ERROR(seal());
    }
    if (out == nullptr) {
      VARVE_ASSIGN_OR_RETURN(out, CreateSegment(next_segment_id_.fetch_add(1), true, &out_file));
      out->compacting = true;
      AddSegment(out);
    }
    Copied c;
    c.key.assign(rec.key);
    c.old = old;
    c.tombstone = type == kTypeTombstone;
    c.shadow = shadow;
    c.expiry_ms = type == kTypePut ? rec.expiry_ms : 0;
    c.flags = type;
    c.moved.segment = out->id;
    c.moved.offset = static_cast<uint32_t>(out_buf.size());
    c.moved.size = static_cast<uint32_t>(size);
    c.seq = rec.seq;
    // Batch flags go: the batch committed long ago, and its records now live apart.
    AppendRecord(&out_buf, type, rec.seq, c.expiry_ms, rec.key,
                 type == kTypePut ? rec.value : std::string_view(),
                 type == kTypePut ? rec.user_flags : 0);
    pending.push_back(std::move(c));
    if (out_buf.size() >= (1 << 20)) return flush();
    return Status::Ok();
  };

  Status status;
  bool all_clean = true;
  uint64_t now = NowUnixMs();
  // Each (key, sequence) tombstone is kept once, however many inputs hold a copy (copies
  // appear when a crash interrupted an earlier compaction between writing and deleting).
  std::set<std::pair<std::string, uint64_t>> kept_tombstones;
  auto keep_tombstone = [&](const RecordView& rec, uint32_t segment, uint64_t offset) -> Status {
    IndexEntry cur;
    bool indexed = index_->Get(rec.key, &cur);
    if (indexed && cur.tombstone() && cur.segment == segment && cur.offset == offset) {
      return copy(rec, kTypeTombstone, cur, /*shadow=*/true);  // hides a table's key
    }
    if (droppable(0, rec.seq)) return Status::Ok();
    // A live version of the key is newer than any tombstone of it (a delete removes the key
    // from the index, or replaces it with a newer tombstone) and shadows older records as well
    // as the tombstone does.
    if (indexed) return Status::Ok();
    if (!kept_tombstones.emplace(std::string(rec.key), rec.seq).second) return Status::Ok();
    return copy(rec, kTypeTombstone, IndexEntry{});
  };
  // Once started, a compaction finishes (Close waits): stopping between inputs would leave
  // outputs and inputs side by side.
  if (bg_stop_) {
    for (const auto& in : inputs) in->compacting = false;
    return Status::Ok();
  }
  for (const auto& in : inputs) {
    Result<std::unique_ptr<RandomAccessFile>> file = OpenForScan(*in);
    if (!file.ok()) {
      status = file.status();
      break;
    }
    SegmentScanner scanner(file->get(), in->size_bytes.load(), in->path);
    while (status.ok()) {
      RecordView rec;
      uint64_t offset;
      std::string why;
      SegmentScanner::Step step = scanner.Next(&rec, &offset, &why);
      if (step == SegmentScanner::Step::kEnd) break;
      if (step != SegmentScanner::Step::kRecord) {
        LogWarning("compaction: " + in->path + ": damaged record at offset " +
                   std::to_string(offset) + " (" + why + "); no input is deleted this time");
        in->damaged = true;
        all_clean = false;
        break;
      }
      if (rec.tombstone()) {
        status = keep_tombstone(rec, in->id, offset);
        continue;
      }
      IndexEntry cur;
      bool indexed = index_->Get(rec.key, &cur) && cur.segment == in->id && cur.offset == offset;
      if (rec.expiry_ms != 0 && rec.expiry_ms <= now) {
        // An expired record still shadows older versions of its key, whether or not the index
        // still points at it (an open drops expired keys from the index): it becomes a
        // tombstone unless nothing older can exist.
        if (indexed && TablesHold(rec.key)) {
          status = copy(rec, kTypeTombstone, cur, /*shadow=*/true);  // keeps hiding the table's key
          continue;
        }
        if (indexed) {
          IndexChange change(this);
          if (index_->RemoveIf(rec.key, cur)) {
            change.Left(rec.key, cur);
            NoteDead(in->id, cur.size);
          }
        }
        status = keep_tombstone(rec, in->id, offset);
        continue;
      }
      if (!indexed) continue;
      status = copy(rec, kTypePut, cur);
    }
    if (!status.ok()) break;
  }
  if (status.ok()) status = seal();
  if (status.ok()) status = env_->SyncDir(dir_);
  // Deleting an input drops old versions whose newer records may still sit unsynced in the
  // active segment; sync it first so that a power loss cannot lose both. (Directly, not through
  // the write queue, which refuses work once Close has begun.)
  if (status.ok()) {
    uint64_t seq = last_seq_.load(std::memory_order_acquire);
    std::shared_ptr<WritableFile> file;
    {
      std::lock_guard flock(file_mu_);
      file = active_file_;
    }
    if (file != nullptr) {
      status = file->Sync();
      syncs_.fetch_add(1, std::memory_order_relaxed);
      if (status.ok()) NoteDurable(seq);
    }
  }
  // Dropped tombstones are safe only if every input goes; a damaged input stays, so all stay.
  if (status.ok() && all_clean) status = DeleteObsolete(inputs);
  for (const auto& in : inputs) in->compacting = false;
  if (!status.ok() && out != nullptr) {  // an unfinished output stays; valid up to its size
    out->compacting = false;
    out->sealed = true;
  }
  return status;
}

// Deletes compaction inputs as one step: their ids go into the OBSOLETE file first, so that a
// crash in the middle of the unlinks finishes them at the next open instead of leaving some.
Status DBImpl::DeleteObsolete(const std::vector<std::shared_ptr<Segment>>& segs) {
  std::string manifest;
  for (const auto& seg : segs) PutFixed32(&manifest, seg->id);
  VARVE_RETURN_IF_ERROR(WriteObsoleteFile(manifest));
  for (const auto& seg : segs) {
    compaction_reclaimed_.fetch_add(seg->size_bytes.load(), std::memory_order_relaxed);
    compactions_.fetch_add(1, std::memory_order_relaxed);
    DeleteSegmentFiles(seg);
  }
  VARVE_RETURN_IF_ERROR(env_->SyncDir(dir_));
  VARVE_RETURN_IF_ERROR(env_->RemoveFile(dir_ + "/OBSOLETE"));
  return env_->SyncDir(dir_);
}

Status DBImpl::WriteObsoleteFile(const std::string& ids) {
  std::string data(kFileHeaderBytes, '\0');
  EncodeFileHeader(data.data(), FileHeader{kObsoleteMagic, 0, 0});
  PutFixed32(&data, static_cast<uint32_t>(ids.size() / 4));
  data += ids;
  PutFixed32(&data, crc32c::Mask(crc32c::Value(data)));
  return WriteFileAtomically(env_, dir_ + "/OBSOLETE", data, dir_);
}

}  // namespace varve
