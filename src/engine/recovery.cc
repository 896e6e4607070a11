// Opening a store: lock the directory, load hint files (in parallel), scan segments that have
// none, cut a torn tail, rebuild live-byte counts, and pick the segment to append to.
#include <algorithm>
#include <set>
#include <thread>

#include "engine/db_impl.h"
#include "engine/segment_io.h"
#include "util/clock.h"
#include "util/coding.h"
#include "util/crc32c.h"
#include "util/logging.h"

namespace varve {

using namespace format;

namespace {

IndexEntry EntryFor(uint32_t segment, uint64_t offset, uint32_t size, uint8_t flags,
                    uint64_t expiry_ms, uint64_t now_ms) {
  IndexEntry e;
  e.segment = segment;
  e.offset = static_cast<uint32_t>(offset);
  e.size = size;
  bool tombstone = (flags & kTypeMask) == kTypeTombstone;
  // An expired record still shadows older versions of its key, so it goes in as a tombstone.
  if (tombstone || (expiry_ms != 0 && expiry_ms <= now_ms)) e.flags |= IndexEntry::kTombstone;
  return e;
}

}  // namespace

Status DBImpl::Recover() {
  if (!env_->FileExists(dir_)) {
    if (!options_.create_if_missing) {
      return Status::NotFound(dir_ + ": no store here (create_if_missing is off)");
    }
  }
  VARVE_RETURN_IF_ERROR(env_->CreateDirIfMissing(dir_));
  VARVE_ASSIGN_OR_RETURN(lock_, env_->LockFile(dir_ + "/LOCK"));
  // A deletion the last run did not finish: that run did not close cleanly.
  const bool obsolete_pending = env_->FileExists(dir_ + "/OBSOLETE");
  VARVE_RETURN_IF_ERROR(FinishObsolete());
  VARVE_ASSIGN_OR_RETURN(tables_, TableLayers::Open(env_, dir_));
  tables_generation_at_open_ = tables_->Current()->generation;
  VARVE_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir_));

  std::set<uint32_t> segment_ids = SegmentIdsIn(names);
  // Marks of hints still being built at a crash (the writer's segment, or one sealed just
  // before): read before their temporary files go; the segment is then scanned only after the
  // part a mark covers.
  const std::set<std::string> name_set(names.begin(), names.end());
  for (uint32_t id : segment_ids) {
    if (!name_set.contains(HintMarkFileName(id)) || name_set.contains(HintFileName(id))) continue;
    HintPrefix prefix;
    Status s = ReadHintPrefix(env_, dir_, id, &prefix);
    if (s.ok()) {
      hint_prefixes_[id] = std::move(prefix);
    } else {
      LogWarning(s.ToString() + "; scanning all of " + SegmentFileName(id));
    }
  }
  for (const std::string& name : names) {
    // Unfinished hints (and marks): what they hold is in memory now, or in no finished hint.
    if (name.ends_with(".tmp") || name.ends_with(".hint.mark")) {
      env_->RemoveFile(dir_ + "/" + name).ok();
    }
  }
  for (const std::string& name : names) {
    uint32_t id;
    std::string_view ext;
    if (ParseFileName(name, &id, &ext) && ext == "hint" && segment_ids.count(id) == 0) {
      // Left by a crash while deleting its segment; a later segment may reuse the id.
      VARVE_RETURN_IF_ERROR(env_->RemoveFile(dir_ + "/" + name));
    }
  }
  if (!segment_ids.empty() && options_.error_if_exists) {
    return Status::InvalidArgument(dir_ + ": store exists (error_if_exists is on)");
  }

  // Open every segment and check its header.
  std::vector<std::shared_ptr<Segment>> segs;
  std::map<uint32_t, uint32_t> header_checksums;
  uint64_t base_seq = 0;
  for (uint32_t id : segment_ids) {
    auto seg = std::make_shared<Segment>();
    seg->id = id;
    seg->path = dir_ + "/" + SegmentFileName(id);
    VARVE_ASSIGN_OR_RETURN(seg->reader, env_->NewRandomAccessFile(seg->path));
    VARVE_ASSIGN_OR_RETURN(uint64_t size, seg->reader->Size());
    char header[kFileHeaderBytes];
    VARVE_ASSIGN_OR_RETURN(size_t n, seg->reader->Read(0, kFileHeaderBytes, header));
    FileHeader fh;
    Status hs = DecodeFileHeader(header, n, kSegmentMagic, seg->path, &fh);
    if (!hs.ok() && size <= kFileHeaderBytes) {
      // Created but its header never reached the disk (a segment is used only once its header
      // is synced): nothing was ever written to it. Not always the newest: the writer and
      // compaction create segments concurrently.
      LogWarning(seg->path + ": removing a segment with a torn header (" + hs.ToString() + ")");
      seg->reader.reset();
      VARVE_RETURN_IF_ERROR(env_->RemoveFile(seg->path));
      env_->RemoveFile(dir_ + "/" + HintFileName(id)).ok();
      continue;
    }
    VARVE_RETURN_IF_ERROR(hs);
    if (fh.segment_id != id) {
      return Status::Corruption(seg->path + ": header names segment " +
                                std::to_string(fh.segment_id));
    }
    seg->compaction_output = (fh.flags & kFileFlagCompactionOutput) != 0;
    header_checksums[id] = SegmentHeaderChecksum(header);
    base_seq = std::max(base_seq, fh.base_seq);
    seg->size_bytes = size;
    seg->reader->AdviseRandom();
    segs.push_back(std::move(seg));
  }

  std::shared_ptr<Segment> tail;
  for (const auto& seg : segs) {
    if (!seg->compaction_output) tail = seg;  // the newest segment the writer appended to
  }

  const uint64_t open_start_us = NowSteadyUs();
  const std::string checkpoint = IndexCheckpointPath();
  const bool have_checkpoint = env_->FileExists(checkpoint);
  if (have_checkpoint && options_.index_checkpoint && index_->CheckpointLayout() != 0) {
    std::vector<Replay> replay;
    Status s = obsolete_pending ? Status::Corruption(checkpoint + ": stale (OBSOLETE present)")
                                : LoadIndexCheckpoint(segs, header_checksums, &replay);
    // A replay fails only on a read or write error (damage is handled as in any load), which an
    // open from hints would meet too; and the segments' counters are the checkpoint's by now.
    if (s.ok() && !replay.empty()) VARVE_RETURN_IF_ERROR(ReplayAfterCheckpoint(segs, replay, tail));
    if (s.ok()) {
      index_from_checkpoint_ = true;
      index_replayed_segments_ = replay.size();
      checkpoint_is_base_ = tables_->empty();  // (shadows: see LoadIndexCheckpoint)
    } else {
      LogWarning(s.ToString() + "; ignoring it");
      index_ = Index::Create(options_.index);
    }
  }
  // Loaded, it stays valid while the store only appends (a compaction removes it first); not
  // loaded, it goes before the first write (DropIndexCheckpoint). An open that only reads leaves
  // it (removing it here would cost a directory sync, which on ext4 can wait for the writeback
  // of every dirty page a previous run left).
  checkpoint_on_disk_.store(have_checkpoint);
  if (!index_from_checkpoint_) VARVE_RETURN_IF_ERROR(LoadIndexFromSegments(segs, tail));
  hint_prefixes_.clear();
  const uint64_t load_ms = (NowSteadyUs() - open_start_us) / 1000;
  if (load_ms >= 100) {  // a store large enough for the path to matter
    LogInfo(dir_ + ": index of " + std::to_string(index_->Size()) + " entries loaded from " +
            (index_from_checkpoint_ ? std::string(kIndexFileName)
                                    : std::string("hint files and segment scans")) +
            " in " + std::to_string(load_ms) + " ms");
  }
  uint64_t max_seq = std::max(base_seq, last_seq_.load());
  uint32_t max_id = 0;
  for (const auto& seg : segs) {
    max_seq = std::max(max_seq, seg->max_seq.load());
    max_id = std::max(max_id, seg->id);
    segments_[seg->id] = seg;
  }
  last_seq_ = max_seq;
  durable_seq_ = max_seq;  // what an open finds is on disk
  next_segment_id_ = max_id + 1;

  for (const auto& seg : segs) {
    if (seg != tail) seg->sealed = true;
  }
  if (tail != nullptr && tail->size_bytes.load() < options_.segment_size_bytes &&
      !tail->damaged.load()) {
    // Keep appending to the tail. Its hint (written at close) stays: after a crash it still
    // describes the records before the new ones (see LoadSegment); sealing or the next clean
    // close replaces it with a hint of the whole segment.
    tail->has_hint = false;
    std::unique_ptr<WritableFile> f;
    if (options_.mmap_writes) {
      VARVE_ASSIGN_OR_RETURN(f, env_->NewMappedWritableFile(tail->path, options_.segment_size_bytes,
                                                            false, WriteZerosAhead()));
    } else {
      VARVE_ASSIGN_OR_RETURN(f, env_->NewAppendableFile(tail->path));
    }
    if (f->Size() != tail->size_bytes.load()) {
      return Status::IOError(tail->path + ": size changed while opening");
    }
    active_file_ = std::move(f);
    active_ = tail;
    open_matches_checkpoint_ = index_from_checkpoint_ && index_replayed_segments_ == 0;
    active_for_bg_ = tail;
  } else {
    if (tail != nullptr) tail->sealed = true;
    std::unique_ptr<WritableFile> f;
    VARVE_ASSIGN_OR_RETURN(active_, CreateSegment(next_segment_id_.fetch_add(1), false, &f));
    active_file_ = std::move(f);
    active_for_bg_ = active_;
    segments_[active_->id] = active_;
  }
  {
    std::unique_lock lock(segments_mu_);
    PublishSegments();
  }

  // Every record the segments hold is indexed (or superseded) by now.
  for (const auto& [id, seg] : segments_) seg->indexed_bytes = seg->size_bytes.load();
  if (options_.mmap_reads) {
    // Sizes are final now (torn tails were cut). The writer's segment grows into its mapping.
    for (const auto& [id, seg] : segments_) {
      if (seg->reader == nullptr) continue;
      uint64_t size = seg->size_bytes.load();
      if (seg == active_) size = std::max(size, options_.segment_size_bytes);
      seg->reader->MapForReads(size);
    }
  }
  maintenance_thread_ = std::thread([this] { MaintenanceLoop(); });
  if (options_.durability == Durability::kInterval || options_.durability == Durability::kBatch) {
    sync_thread_ = std::thread([this] { SyncLoop(); });
  }
  return Status::Ok();
}

Status DBImpl::ReplayAfterCheckpoint(const std::vector<std::shared_ptr<Segment>>& segs,
                                     const std::vector<Replay>& replay,
                                     const std::shared_ptr<Segment>& tail) {
  // Every replayed record is newer than the checkpoint's entries, and they come in sequence
  // order (writer segments in id order, each in file order; compaction outputs never: a
  // compaction removes INDEX first), so the last one of a key wins and the index keeps no
  // sequence numbers. A few segments at most: one thread.
  for (const auto& seg : segs) loading_[seg->id] = seg.get();
  replaying_in_order_ = true;
  struct InOrderEnd {
    bool* flag;
    ~InOrderEnd() { *flag = false; }
  } in_order_end{&replaying_in_order_};
  for (const Replay& r : replay) {
    const std::shared_ptr<Segment>& seg = r.segment;
    if (r.from == 0) {
      bool truncated = false;
      VARVE_RETURN_IF_ERROR(LoadSegment(seg, seg == tail, &truncated));
      continue;
    }
    VARVE_RETURN_IF_ERROR(ScanSegmentIntoIndex(seg, seg == tail, r.from, seg->max_seq.load()));
    // Its hint, if any, describes the records the checkpoint held, or all of them if the segment
    // was sealed before the crash.
    const std::string hint_path = dir_ + "/" + HintFileName(seg->id);
    seg->has_hint = !seg->damaged.load() && env_->FileExists(hint_path) &&
                    HintSegmentBytes(env_, hint_path) == seg->size_bytes.load();
  }
  index_->FinishRecovery();
  loading_.clear();
  return Status::Ok();
}

Status DBImpl::LoadIndexFromSegments(const std::vector<std::shared_ptr<Segment>>& segs,
                                     const std::shared_ptr<Segment>& tail) {
  uint64_t expected_keys = 0;
  for (const auto& seg : segs) {
    loading_[seg->id] = seg.get();
    auto prefix = hint_prefixes_.find(seg->id);
    expected_keys += prefix != hint_prefixes_.end()
                         ? prefix->second.count
                         : HintEntryCount(env_, dir_ + "/" + HintFileName(seg->id));
  }
  index_->Reserve(expected_keys);

  // Load segments in parallel, largest first.
  std::vector<std::shared_ptr<Segment>> order = segs;
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a->size_bytes > b->size_bytes; });
  unsigned threads = options_.open_threads != 0 ? options_.open_threads
                                                : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min<unsigned>(threads, std::max<size_t>(1, order.size()));
  std::atomic<size_t> next{0};
  std::mutex err_mu;
  Status first_error;
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < order.size();) {
      bool truncated = false;
      Status s = LoadSegment(order[i], order[i] == tail, &truncated);
      if (!s.ok()) {
        std::lock_guard lock(err_mu);
        if (first_error.ok()) first_error = s;
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  hint_prefixes_.clear();
  VARVE_RETURN_IF_ERROR(first_error);

  const bool bulk = index_->BulkRecovery();
  if (bulk) index_->BuildRecovered();
  // Deletes of keys that a table holds stay in the index (they hide the table's record).
  std::vector<std::pair<std::string, IndexEntry>> shadows;
  if (bulk || !tables_->empty()) {
    const bool tables = !tables_->empty();
    index_->ForEach([&](std::string_view key, const IndexEntry& e) {
      if (e.tombstone()) {
        if (tables && TablesHold(key)) shadows.emplace_back(std::string(key), e);
      } else if (bulk) {
        // A bulk load counts live bytes here, from each key's newest record.
        loading_.at(e.segment)->live_bytes.fetch_add(e.size, std::memory_order_relaxed);
      }
    });
  }
  index_->FinishRecovery();
  index_tombstones_.store(static_cast<int64_t>(shadows.size()), std::memory_order_relaxed);
  for (auto& [key, e] : shadows) {
    IndexEntry old;
    index_->Put(key, e, &old);
    auto it = loading_.find(e.segment);
    if (it != loading_.end()) it->second->live_bytes.fetch_add(e.size, std::memory_order_relaxed);
  }
  loading_.clear();
  return Status::Ok();
}

// Queues key's record for FlushBulk, which keeps the newest record of each key. Thread-safe
// (loading_ is read-only meanwhile).
void DBImpl::LoadEntry(Segment* seg, std::string_view key, const IndexEntry& e, uint64_t seq,
                       bool is_tombstone_record, std::vector<Index::RecoveredEntry>* bulk) {
  if (is_tombstone_record) seg->NoteTombstone(seq, e.size);
  bulk->push_back(Index::RecoveredEntry{key, e, seq});
}

// Live bytes follow the index as it changes, so no pass over the whole index is needed
// afterwards (an index that loads in bulk: the caller counts them from the built index). The
// entries are all seg's records.
void DBImpl::FlushBulk(Segment* seg, std::vector<Index::RecoveredEntry>* bulk) {
  if (bulk->empty()) return;
  if (index_->BulkRecovery()) {
    index_->AddRecovered(bulk->data(), bulk->size());
    bulk->clear();
    return;
  }
  thread_local std::vector<Index::PutResult> results;
  results.resize(bulk->size());
  index_->PutIfNewerBatch(bulk->data(), bulk->size(), replaying_in_order_, results.data());
  for (size_t i = 0; i < bulk->size(); ++i) {
    const Index::PutResult& r = results[i];
    if (!r.changed) continue;
    const IndexEntry& e = (*bulk)[i].entry;
    if (!e.tombstone()) seg->live_bytes.fetch_add(e.size, std::memory_order_relaxed);
    if (r.replaced && !r.old.tombstone()) {
      loading_.at(r.old.segment)->live_bytes.fetch_sub(r.old.size, std::memory_order_relaxed);
    }
  }
  bulk->clear();
}

Status DBImpl::FinishObsolete() {
  std::string path = dir_ + "/OBSOLETE";
  if (!env_->FileExists(path)) return Status::Ok();
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> f, env_->NewRandomAccessFile(path));
  VARVE_ASSIGN_OR_RETURN(uint64_t size, f->Size());
  std::string data(size, '\0');
  VARVE_ASSIGN_OR_RETURN(size_t n, f->Read(0, size, data.data()));
  FileHeader fh;
  Status s = DecodeFileHeader(data.data(), n, kObsoleteMagic, path, &fh);
  uint32_t count = n >= kFileHeaderBytes + 8 ? DecodeFixed32(data.data() + kFileHeaderBytes) : 0;
  if (s.ok() &&
      (n != kFileHeaderBytes + 8 + uint64_t{count} * 4 ||
       crc32c::Unmask(DecodeFixed32(data.data() + n - 4)) != crc32c::Value(data.data(), n - 4))) {
    s = Status::Corruption(path + ": bad checksum or size");
  }
  if (!s.ok()) {
    // Written whole and renamed into place, so damage here is not a torn write. Deleting on a
    // damaged list could lose data; keeping the segments only keeps duplicates.
    LogWarning(s.ToString() + "; ignoring it");
  } else {
    for (uint32_t i = 0; i < count; ++i) {
      uint32_t id = DecodeFixed32(data.data() + kFileHeaderBytes + 4 + 4 * i);
      for (const std::string& name : {SegmentFileName(id), HintFileName(id)}) {
        if (env_->FileExists(dir_ + "/" + name))
          VARVE_RETURN_IF_ERROR(env_->RemoveFile(dir_ + "/" + name));
      }
    }
    VARVE_RETURN_IF_ERROR(env_->SyncDir(dir_));
  }
  return env_->RemoveFile(path);
}

Status DBImpl::LoadHintEntries(Segment* seg, const std::function<Status(const HintBatchFn&)>& read,
                               uint64_t* max_seq) {
  uint64_t now = NowUnixMs();
  uint64_t min_seq = UINT64_MAX;
  *max_seq = 0;
  std::vector<Index::RecoveredEntry> bulk;
  Status s = read([&](const HintEntry* h, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      min_seq = std::min(min_seq, h[i].seq);
      *max_seq = std::max(*max_seq, h[i].seq);
      LoadEntry(seg, h[i].key,
                EntryFor(seg->id, h[i].offset, h[i].size, h[i].flags, h[i].expiry_ms, now),
                h[i].seq, (h[i].flags & kTypeMask) == kTypeTombstone, &bulk);
    }
    FlushBulk(seg, &bulk);  // the keys point into the batch
  });
  if (*max_seq != 0) {
    seg->NoteSeq(min_seq);
    seg->NoteSeq(*max_seq);
  }
  return s;
}

Status DBImpl::LoadSegment(const std::shared_ptr<Segment>& seg, bool is_tail, bool* truncated) {
  *truncated = false;
  std::string hint_path = dir_ + "/" + HintFileName(seg->id);
  if (!env_->FileExists(hint_path)) {
    auto it = hint_prefixes_.find(seg->id);  // each segment is loaded by one thread
    if (it == hint_prefixes_.end() || seg->compaction_output ||
        it->second.segment_bytes > seg->size_bytes.load()) {
      return ScanSegmentIntoIndex(seg, is_tail);
    }
    const HintPrefix& prefix = it->second;
    uint64_t max_seq = 0;
    Status s = LoadHintEntries(
        seg.get(),
        [&](const HintBatchFn& fn) {
          return ParseHintBatched(prefix.image, dir_ + "/" + HintFileName(seg->id) + ".tmp",
                                  seg->id, prefix.segment_bytes, fn);
        },
        &max_seq);
    if (s.ok()) return ScanSegmentIntoIndex(seg, is_tail, prefix.segment_bytes, max_seq);
    LogWarning(s.ToString() + "; scanning all of " + SegmentFileName(seg->id));
    return ScanSegmentIntoIndex(seg, is_tail);
  }
  uint64_t max_seq = 0;
  auto load = [&](uint64_t segment_bytes) {
    return LoadHintEntries(
        seg.get(),
        [&](const HintBatchFn& fn) {
          return ReadHintFileBatched(env_, hint_path, seg->id, segment_bytes, fn);
        },
        &max_seq);
  };
  uint64_t size = seg->size_bytes.load();
  uint64_t described = HintSegmentBytes(env_, hint_path);
  if (described >= kFileHeaderBytes && described < size && !seg->compaction_output) {
    // Zeros after the described end: space a mapped writer reserved (mmap_writes) whose cut at
    // close did not reach the disk. Cut it again, so that appends go right after the records.
    SegmentScanner tail_scan(seg->reader.get(), size, seg->path);
    if (tail_scan.ZerosFrom(described)) {
      VARVE_RETURN_IF_ERROR(env_->Truncate(seg->path, described));
      seg->size_bytes = size = described;
    } else if (!tail_scan.io_status().ok()) {
      return tail_scan.io_status();
    } else {
      // Records after the described end: a tail reopened after a clean close keeps its hint,
      // which still describes the segment's first bytes (synced before the hint was written,
      // and never rewritten). Load it and scan only what was appended since.
      Status s = load(described);
      if (s.ok()) return ScanSegmentIntoIndex(seg, is_tail, described, max_seq);
      LogWarning(s.ToString() + "; scanning all of " + SegmentFileName(seg->id));
      env_->RemoveFile(hint_path).ok();
      return ScanSegmentIntoIndex(seg, is_tail);
    }
  }
  Status s = load(size);
  if (!s.ok() && described > size) {
    // Segments never shrink: the file lost its end after its hint was written. Trust the hint,
    // so that the lost records stay the newest versions of their keys and reads of them fail
    // with a corruption error (instead of older versions coming back).
    Status all = load(described);
    if (all.ok()) {
      seg->damaged = true;
      LogWarning(seg->path + ": " + std::to_string(described - size) +
                 " bytes missing at the end (the hint describes " + std::to_string(described) +
                 " bytes); reads of records past offset " + std::to_string(size) +
                 " fail (run `varve check`)");
      s = all;
    }
  }
  if (s.ok()) {
    seg->has_hint = !seg->damaged.load();
    return s;
  }
  LogWarning(s.ToString() + "; rebuilding the index of " + SegmentFileName(seg->id) +
             " from its records");
  env_->RemoveFile(hint_path).ok();
  return ScanSegmentIntoIndex(seg, is_tail);
}

Status DBImpl::ScanSegmentIntoIndex(const std::shared_ptr<Segment>& seg, bool is_tail,
                                    uint64_t start, uint64_t max_seq) {
  uint64_t file_size = seg->size_bytes.load();
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, OpenForScan(*seg));
  SegmentScanner scanner(file.get(), file_size, seg->path, start);
  struct Pending {
    std::string key;
    IndexEntry entry;
    uint64_t seq;
    bool tombstone_record;
  };
  std::vector<Pending> batch;  // records of an uncommitted batch
  uint64_t last_good = start;
  bool skip_batch = false;  // after damage: drop a batch whose start may have been lost
  uint64_t now = NowUnixMs();
  // Records go to the index in groups (one lock per shard and group, slots prefetched); the
  // order within a segment does not matter (PutIfNewer).
  std::vector<Pending> ready(2048);
  size_t ready_n = 0;
  std::vector<Index::RecoveredEntry> bulk;
  auto flush_ready = [&] {
    for (size_t i = 0; i < ready_n; ++i) {
      const Pending& p = ready[i];
      seg->NoteSeq(p.seq);
      LoadEntry(seg.get(), p.key, p.entry, p.seq, p.tombstone_record, &bulk);
    }
    FlushBulk(seg.get(), &bulk);  // the keys point into ready
    ready_n = 0;
  };
  auto load = [&](std::string_view key, const IndexEntry& e, uint64_t seq, bool tombstone) {
    Pending& p = ready[ready_n++];
    p.key.assign(key);  // keeps the string's buffer from earlier rounds
    p.entry = e;
    p.seq = seq;
    p.tombstone_record = tombstone;
    if (ready_n == ready.size()) flush_ready();
  };
  auto handle = [&](const RecordView& rec, uint64_t offset) {
    max_seq = std::max(max_seq, rec.seq);
    IndexEntry e = EntryFor(seg->id, offset, rec.size, rec.flags, rec.expiry_ms, now);
    if (skip_batch) {
      if (rec.in_batch() && !rec.batch_commit()) return;
      skip_batch = false;
      if (rec.in_batch()) return;  // the commit of the dropped batch
    }
    if (rec.in_batch()) {
      batch.push_back(Pending{std::string(rec.key), e, rec.seq, rec.tombstone()});
      if (!rec.batch_commit()) return;
      for (const Pending& p : batch) load(p.key, p.entry, p.seq, p.tombstone_record);
      batch.clear();
    } else {
      batch.clear();  // a batch without its commit record never happened
      load(rec.key, e, rec.seq, rec.tombstone());
    }
    last_good = offset + rec.size;
  };
  while (true) {
    RecordView rec;
    uint64_t offset;
    std::string why;
    SegmentScanner::Step step = scanner.Next(&rec, &offset, &why);
    if (step == SegmentScanner::Step::kRecord) {
      handle(rec, offset);
      continue;
    }
    flush_ready();
    if (step == SegmentScanner::Step::kEnd && batch.empty()) break;
    if (!scanner.io_status().ok()) return scanner.io_status();
    if (scanner.AtReservedEnd(step, offset, !seg->compaction_output)) {
      // Space the writer reserved ahead of its data (mmap_writes), left by a crash: the end.
      if (!batch.empty()) {
        LogWarning(seg->path + ": cutting an uncommitted batch at offset " +
                   std::to_string(last_good));
      }
      VARVE_RETURN_IF_ERROR(env_->Truncate(seg->path, last_good));
      seg->size_bytes = last_good;
      break;
    }
    if (!scanner.io_status().ok()) return scanner.io_status();
    std::string what = step == SegmentScanner::Step::kEnd ? "an uncommitted batch"
                       : step == SegmentScanner::Step::kTruncated
                           ? "a truncated record"
                           : "a damaged record (" + why + ")";
    if (step != SegmentScanner::Step::kEnd) {
      // Valid records after the damage mean a damaged record, not a torn write: skip it and
      // load the rest. (Writer segments hold increasing sequence numbers, which rules out
      // mistaking bytes inside a value for a record.)
      RecordView next;
      uint64_t next_offset;
      SegmentScanner::Step r =
          scanner.Resync(offset, seg->compaction_output ? 0 : max_seq, &next, &next_offset);
      if (!scanner.io_status().ok()) return scanner.io_status();
      if (r == SegmentScanner::Step::kRecord) {
        seg->damaged = true;
        LogWarning(seg->path + ": " + what + " at offset " + std::to_string(offset) + "; " +
                   std::to_string(next_offset - offset) +
                   " bytes skipped up to the next good record (run `varve check`)");
        skip_batch = !batch.empty() || next.in_batch();
        batch.clear();
        handle(next, next_offset);
        continue;
      }
    }
    // The writer's tail and an unfinished compaction output (its inputs still exist) end in a
    // torn write after a crash: cut it.
    if (is_tail || seg->compaction_output) {
      LogWarning(seg->path + ": cutting the torn tail at offset " + std::to_string(last_good) +
                 " (" + what + " at offset " + std::to_string(offset) + ", " +
                 std::to_string(file_size - last_good) + " bytes dropped)");
      VARVE_RETURN_IF_ERROR(env_->Truncate(seg->path, last_good));
      seg->size_bytes = last_good;
    } else {
      seg->damaged = true;
      LogWarning(seg->path + ": " + what + " at offset " + std::to_string(offset) +
                 " and no good record after it (run `varve check`)");
    }
    break;
  }
  return Status::Ok();
}

}  // namespace varve
