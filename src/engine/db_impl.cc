#include "engine/db_impl.h"

#include <algorithm>
#include <cstring>

#include "engine/record_format.h"
#include "util/check.h"
#include "util/clock.h"
#include "util/logging.h"
#include "util/memory.h"

namespace varve {

using namespace format;

// Longest a kSync leader waits for the writers of the last group to queue again: a quarter of
// the recent fdatasync time, at most this, so a writer that does not come back costs little next
// to the sync it would have shared (and nothing is waited for when syncs are nearly free).
constexpr uint64_t kGroupWaitMinUs = 0;
constexpr uint64_t kGroupWaitMaxUs = 250;

uint64_t Segment::data_bytes() const {
  uint64_t s = size_bytes.load(std::memory_order_relaxed);
  return s > kFileHeaderBytes ? s - kFileHeaderBytes : 0;
}

void Segment::NoteTombstone(uint64_t seq, uint64_t bytes) {
  tombstone_bytes.fetch_add(bytes, std::memory_order_relaxed);
  uint64_t cur = max_tombstone_seq.load(std::memory_order_relaxed);
  while (seq > cur && !max_tombstone_seq.compare_exchange_weak(cur, seq)) {
  }
}

void Segment::NoteSeq(uint64_t seq) {
  uint64_t cur = min_seq.load(std::memory_order_relaxed);
  while (seq < cur && !min_seq.compare_exchange_weak(cur, seq)) {
  }
  cur = max_seq.load(std::memory_order_relaxed);
  while (seq > cur && !max_seq.compare_exchange_weak(cur, seq)) {
  }
}

Result<std::unique_ptr<DB>> DB::Open(const Options& options, const std::string& path) {
  if (options.segment_size_bytes < kMinSegmentBytes ||
      options.segment_size_bytes > kMaxSegmentBytes) {
    return Status::InvalidArgument("segment_size_bytes must be between 1 MiB and 2 GiB");
  }
  if (!(options.compaction_live_ratio > 0 && options.compaction_live_ratio < 1)) {
    return Status::InvalidArgument("compaction_live_ratio must be in (0, 1)");
  }
  auto db = std::make_unique<DBImpl>(options, path);
  VARVE_RETURN_IF_ERROR(db->Recover());
  // The loaders' buffers and the index's outgrown tables are freed by now: give their pages
  // back, so that resident memory after an open is the index (~20 MB per million keys less).
  ReleaseFreeMemory();
  return std::unique_ptr<DB>(std::move(db));
}

DBImpl::DBImpl(const Options& options, std::string dir)
    : options_(options),
      dir_(std::move(dir)),
      env_(options.env != nullptr ? options.env : Env::Default()),
      index_(Index::Create(options.index)) {}

DBImpl::~DBImpl() { Close().ok(); }

void DBImpl::PublishSegments() {
  std::vector<Segment*> segs;
  segs.reserve(segments_.size());
  for (const auto& [id, seg] : segments_) segs.push_back(seg.get());
  segment_table_.Publish(segs);
}

void DBImpl::AddSegment(std::shared_ptr<Segment> seg) {
  std::unique_lock lock(segments_mu_);
  segments_[seg->id] = std::move(seg);
  PublishSegments();
}

void DBImpl::NoteDead(uint32_t segment, uint64_t bytes) {
  SegmentTable::Reader segments(segment_table_);
  if (Segment* s = segments.Find(segment)) {
    s->live_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  }
}

// ---------------------------------------------------------------------------------------------
// Reads

namespace {

// Larger records never come from a mapping (Options::mmap_reads): no need to size the caller's
// string for them before the read.
constexpr uint32_t kMaxInPlaceRecordBytes = 64 << 10;

// A record decoded where it lies in a segment's mapping, its value copied straight into the
// caller's string (and the checksum computed over that copy). Runs under the mapping's SIGBUS guard
// (RandomAccessFile::VisitMapped): no allocation here; the error messages come from the plain read
// that follows any failure.
struct InPlaceRead {
  std::string_view key;  // the index's key
  uint32_t size = 0;     // the record's bytes
  char* dst = nullptr;   // room for size bytes
  std::string* why = nullptr;
  bool ok = false;  // decoded, key matches, not a tombstone: value in dst
  RecordView rec;   // its key points into the mapping: do not use it afterwards

  static void Run(const char* data, void* arg) {
    auto* r = static_cast<InPlaceRead*>(arg);
    // Ask for every line at once: decoding touches the header first, and without this its cache
    // miss (and the value's) came one after the other (~8% more CPU per 10 KB read than a copy).
    for (uint32_t i = 0; i < r->size; i += 64) __builtin_prefetch(data + i);
    if (DecodeRecordCopyingValue(data, r->size, r->dst, &r->rec, r->why) != DecodeOutcome::kOk) {
      return;
    }
    r->ok = r->rec.key == r->key && !r->rec.tombstone();
  }
};

// The record's metadata into *meta; NotFound if it has expired.
Status Found(const RecordView& rec, DB::VersionedValue* meta) {
  if (rec.expiry_ms != 0 && rec.expiry_ms <= NowUnixMs()) return Status::NotFound();
  meta->version = rec.seq;
  meta->expiry_ms = rec.expiry_ms;
  meta->user_flags = rec.user_flags;
  return Status::Ok();
}

}  // namespace

Status DBImpl::ReadEntry(std::string_view key, const IndexEntry& entry, std::string* value,
                         VersionedValue* meta, bool* moved) {
  *moved = false;
  // Holds the segment (and its file and mapping) until the read is over.
  SegmentTable::Reader segments(segment_table_);
  Segment* seg = segments.Find(entry.segment);
  if (seg == nullptr && closing_.load(std::memory_order_acquire)) {
    return Status::InvalidArgument("store is closed");
  }
  if (seg == nullptr) {
    *moved = true;
    return Status::NotFound();
  }
  std::string why;
  // From the mapping: crc and key checked in place, one copy of the value. (The value is
  // shorter than the record; growing *value zero-fills only what it lacks.)
  if (options_.mmap_reads && entry.size <= kMaxInPlaceRecordBytes) {
    if (value->size() < entry.size) value->resize(entry.size);
    InPlaceRead in_place;
    in_place.key = key;
    in_place.size = entry.size;
    in_place.dst = value->data();
    in_place.why = &why;
    if (seg->reader->VisitMapped(entry.offset, entry.size, InPlaceRead::Run, &in_place) &&
        in_place.ok) {
      value->resize(in_place.rec.value.size());
      return Found(in_place.rec, meta);
    }
  }
  thread_local std::string buf;
  if (buf.size() < entry.size) buf.resize(entry.size);
  Result<size_t> n = seg->reader->Read(entry.offset, entry.size, buf.data());
  if (!n.ok()) return n.status();
  RecordView rec;
  auto where = [&] {
    return SegmentFileName(seg->id) + " at offset " + std::to_string(entry.offset);
  };
  if (*n != entry.size) return Status::Corruption(where() + ": record truncated");
  if (DecodeRecord(buf.data(), entry.size, &rec, &why) != DecodeOutcome::kOk) {
    return Status::Corruption(where() + ": " + why);
  }
  if (rec.key != key || rec.tombstone()) {
    return Status::Corruption(where() + ": record does not match the index");
  }
  VARVE_RETURN_IF_ERROR(Found(rec, meta));
  value->assign(rec.value);
  if (buf.size() > (1 << 20)) std::string().swap(buf);  // don't pin a huge buffer per thread
  return Status::Ok();
}

Status DBImpl::Lookup(std::string_view key, std::string* value, VersionedValue* meta) {
  if (closing_.load(std::memory_order_acquire)) return Status::InvalidArgument("store is closed");
  gets_.fetch_add(1, std::memory_order_relaxed);
  for (int attempt = 0;; ++attempt) {
    IndexEntry e;
    if (!index_->Get(key, &e)) {
      if (tables_ != nullptr && !tables_->empty()) {
        // Not in the live data: the tables, newest first.
        std::shared_ptr<const TableLayers::Set> set = tables_->Current();
        Status s = TableLayers::Get(*set, key, value);
        if (s.ok()) {
          // (meta's value may be *value: set the other fields one by one.)
          meta->version = TableLayers::TableVersion(*set);
          meta->expiry_ms = 0;
          meta->user_flags = 0;
          return s;
        }
        if (!s.IsNotFound()) return s;
      }
      break;
    }
    if (e.tombstone()) break;  // a delete shadowing a table's key
    bool moved;
    Status s = ReadEntry(key, e, value, meta, &moved);
    if (moved) {
      VARVE_CHECK(attempt < 1000000);
      continue;
    }
    if (s.ok()) return s;
    if (!s.IsNotFound()) return s;
    break;
  }
  get_misses_.fetch_add(1, std::memory_order_relaxed);
  return Status::NotFound();
}

Result<DB::VersionedValue> DBImpl::GetVersioned(std::string_view key) {
  VersionedValue v;
  VARVE_RETURN_IF_ERROR(Lookup(key, &v.value, &v));
  return v;
}

Result<std::string> DBImpl::Get(std::string_view key) {
  std::string value;
  VersionedValue meta;
  VARVE_RETURN_IF_ERROR(Lookup(key, &value, &meta));
  return value;
}

Status DBImpl::Get(std::string_view key, std::string* value) {
  VersionedValue meta;
  return Lookup(key, value, &meta);
}

// The index keeps no sequence numbers: the version comes from the record (usually cached).
// 0 means absent; a record that cannot be read is an error, never "absent".
Result<uint64_t> DBImpl::CurrentVersion(std::string_view key, IndexEntry* where, bool* present,
                                        uint64_t* expiry_ms) {
  IndexEntry e;
  if (present != nullptr) *present = false;
  while (index_->Get(key, &e)) {
    if (e.tombstone()) return uint64_t{0};  // deleted (shadows a table's key)
    VersionedValue v;
    bool moved;
    Status s = ReadEntry(key, e, &v, &moved);
    if (moved) continue;
    if (where != nullptr) *where = e;
    if (present != nullptr) *present = true;
    if (s.IsNotFound()) return uint64_t{0};  // expired
    if (!s.ok()) return s;
    if (expiry_ms != nullptr) *expiry_ms = v.expiry_ms;
    return v.version;
  }
  if (tables_ != nullptr && !tables_->empty()) {
    std::shared_ptr<const TableLayers::Set> set = tables_->Current();
    std::string value;
    Status s = TableLayers::Get(*set, key, &value);
    if (s.ok()) return TableLayers::TableVersion(*set);
    if (!s.IsNotFound()) return s;
  }
  return uint64_t{0};
}

void DBImpl::ReadVersionAhead(VersionCheck* check) {
  bool present;
  Result<uint64_t> v = CurrentVersion(check->key, &check->where, &present, &check->expiry_ms);
  check->read = v.ok() && present;
  if (check->read) check->version = *v;
}

// ---------------------------------------------------------------------------------------------
// Writes

Status DBImpl::ValidateOp(const WriteOp& op) const {
  if (op.key.size() > kMaxKeyBytes) {
    return Status::InvalidArgument("key of " + std::to_string(op.key.size()) +
                                   " bytes exceeds the limit of " + std::to_string(kMaxKeyBytes));
  }
  if (op.value.size() > kMaxValueBytes) {
    return Status::InvalidArgument("value of " + std::to_string(op.value.size()) +
                                   " bytes exceeds the limit of " + std::to_string(kMaxValueBytes));
  }
  return Status::Ok();
}

static uint64_t ExpiryFromTtl(uint64_t ttl_ms) { return ttl_ms == 0 ? 0 : NowUnixMs() + ttl_ms; }

Status DBImpl::Put(std::string_view key, std::string_view value, const PutOptions& opts) {
  WriteOp op{kTypePut, key, value, ExpiryFromTtl(opts.ttl_ms), opts.user_flags};
  VARVE_RETURN_IF_ERROR(ValidateOp(op));
  if (options_.skip_unchanged_writes && op.expiry_ms == 0) {
    Result<VersionedValue> cur = GetVersioned(key);
    if (cur.ok() && cur->expiry_ms == 0 && cur->value == value &&
        cur->user_flags == opts.user_flags) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return Status::Ok();
    }
  }
  PendingWrite w;
  w.ops = &op;
  w.count = 1;
  return WriteImpl(&w);
}

Status DBImpl::Delete(std::string_view key) {
  WriteOp op{kTypeTombstone, key, {}, 0};
  VARVE_RETURN_IF_ERROR(ValidateOp(op));
  PendingWrite w;
  w.ops = &op;
  w.count = 1;
  return WriteImpl(&w);
}

Status DBImpl::Write(const WriteBatch& batch) {
  std::vector<VersionCheck> checks(batch.conditions().size());
  for (size_t i = 0; i < checks.size(); ++i) {
    checks[i].key = batch.conditions()[i].key;
    checks[i].expected = batch.conditions()[i].version;
    ReadVersionAhead(&checks[i]);
  }
  if (batch.Count() == 0) {  // conditions alone: a check that writes nothing
    for (const VersionCheck& c : checks) VARVE_RETURN_IF_ERROR(CheckVersion(c, {}));
    return Status::Ok();
  }
  std::vector<WriteOp> ops;
  ops.reserve(batch.Count());
  uint64_t now = NowUnixMs();
  uint64_t bytes = 0;
  for (const WriteBatch::Op& o : batch.ops()) {
    WriteOp op{o.type == WriteBatch::OpType::kPut ? kTypePut : kTypeTombstone, o.key, o.value,
               o.ttl_ms == 0 ? 0 : now + o.ttl_ms, o.user_flags};
    VARVE_RETURN_IF_ERROR(ValidateOp(op));
    bytes += RecordSize(op.key.size(), op.value.size(), op.expiry_ms != 0, op.user_flags != 0);
    ops.push_back(op);
  }
  if (bytes > kMaxSegmentBytes) {
    return Status::InvalidArgument("write batch of " + std::to_string(bytes) +
                                   " bytes exceeds the 2 GiB limit of one segment");
  }
  PendingWrite w;
  w.ops = ops.data();
  w.count = ops.size();
  w.atomic = ops.size() > 1;
  w.checks = checks.data();
  w.check_count = checks.size();
  return WriteImpl(&w);
}

// One operation that applies only if the key still has expected_version.
Status DBImpl::WriteIfVersion(const WriteOp& op, uint64_t expected_version, uint64_t* new_version) {
  VARVE_RETURN_IF_ERROR(ValidateOp(op));
  VersionCheck check;
  check.key = op.key;
  check.expected = expected_version;
  ReadVersionAhead(&check);
  PendingWrite w;
  w.ops = &op;
  w.count = 1;
  w.checks = &check;
  w.check_count = 1;
  Status s = WriteImpl(&w);
  if (s.ok() && new_version != nullptr) *new_version = w.first_seq;
  return s;
}

Status DBImpl::CompareAndSet(std::string_view key, uint64_t expected_version,
                             std::string_view value, const PutOptions& opts,
                             uint64_t* new_version) {
  return WriteIfVersion(WriteOp{kTypePut, key, value, ExpiryFromTtl(opts.ttl_ms), opts.user_flags},
                        expected_version, new_version);
}

Status DBImpl::CompareAndDelete(std::string_view key, uint64_t expected_version) {
  return WriteIfVersion(WriteOp{kTypeTombstone, key, {}, 0}, expected_version, nullptr);
}

Status DBImpl::Sync() {
  PendingWrite w;
  w.force_sync = true;
  return WriteImpl(&w);
}

void DBImpl::SetWriteError(const Status& s) {
  std::lock_guard lock(write_mu_);
  if (write_error_.ok()) write_error_ = s;
}

Status DBImpl::WriteImpl(PendingWrite* w) {
  if (!checkpoint_is_base_) VARVE_RETURN_IF_ERROR(DropIndexCheckpoint());
  if (!written_since_open_.load(std::memory_order_relaxed)) {
    written_since_open_.store(true, std::memory_order_relaxed);
  }
  std::unique_lock lock(write_mu_);
  if (closed_) return Status::InvalidArgument("store is closed");
  if (!write_error_.ok()) {
    return Status::IOError("writes stopped after an earlier error: " + write_error_.ToString());
  }
  writers_.push_back(w);
  if (leader_waiting_ && writers_.size() >= expected_writers_) group_cv_.notify_one();
  if (writers_.front() != w) {
    lock.unlock();
    {
      std::unique_lock wait(w->mu);
      w->cv.wait(wait, [w] { return w->done || w->lead; });
      if (w->done) return w->status;
    }
    lock.lock();
  }

  if (options_.durability == Durability::kSync) {
    // A sync slot first: the groups in flight hold their writers until their fdatasync ends.
    if (syncs_in_flight_ >= kMaxSyncsInFlight) {
      leader_waiting_ = true;
      group_cv_.wait(lock, [this] { return syncs_in_flight_ < kMaxSyncsInFlight; });
      leader_waiting_ = false;
    }
    // The writers woken by the last commit are on their way back; without waiting for them,
    // groups alternate between those writers and the ones that queued during the sync, and
    // each fdatasync serves about half of the writers. (With syncs in flight, the next
    // group's writers are those that queue meanwhile.)
    if (syncs_in_flight_ == 0 && writers_.size() < expected_writers_) {
      uint64_t wait_us = std::clamp<uint64_t>(sync_us_.load(std::memory_order_relaxed) / 4,
                                              kGroupWaitMinUs, kGroupWaitMaxUs);
      leader_waiting_ = true;
      group_cv_.wait_for(lock, std::chrono::microseconds(wait_us),
                         [this] { return writers_.size() >= expected_writers_; });
      leader_waiting_ = false;
    }
  }
  // Leader: take every queued writer up to a size bound, then commit them with one append.
  std::vector<PendingWrite*> group;
  size_t bytes = 0;
  for (PendingWrite* p : writers_) {
    size_t b = 0;
    for (size_t i = 0; i < p->count; ++i) b += p->ops[i].key.size() + p->ops[i].value.size();
    if (!group.empty() && bytes + b > (4u << 20)) break;
    bytes += b;
    group.push_back(p);
    if (p->roll) break;  // sealing happens at a group boundary
  }
  GroupCommit c;
  c.ticket = ++next_ticket_;
  if (free_buffers_.empty()) free_buffers_.push_back(std::make_unique<GroupBuffers>());
  std::unique_ptr<GroupBuffers> buf = std::move(free_buffers_.back());
  free_buffers_.pop_back();
  c.buf = buf.get();
  lock.unlock();
  Status s = CommitGroup(group, &c);
  if (!c.sync_pending) EndTurn(&c);
  lock.lock();
  writers_.erase(writers_.begin(), writers_.begin() + static_cast<ptrdiff_t>(group.size()));
  expected_writers_ = group.size() + writers_.size();
  if (c.sync_pending) {
    ++syncs_in_flight_;
  } else {
    free_buffers_.push_back(std::move(buf));
  }
  if (!s.ok() && write_error_.ok()) write_error_ = s;
  PendingWrite* next = writers_.empty() ? nullptr : writers_.front();
  lock.unlock();
  // The next leader first, so that its group commits while this one's writers wake up (or,
  // with the sync pending, while this one syncs). Each is notified under its own mutex: once it
  // sees done it may return and free its PendingWrite.
  if (next != nullptr) {
    std::lock_guard g(next->mu);
    next->lead = true;
    next->cv.notify_one();
  }
  if (c.sync_pending) {
    s = SyncFile(c.file.get());
    WaitTurn(&c);
    {
      // An earlier group's failed fdatasync may have taken the error this one would have seen
      // (the kernel reports a writeback error once per file description): fail with it. A
      // failure is recorded before the turn passes, for the groups after this one.
      std::lock_guard l(write_mu_);
      if (!s.ok() && write_error_.ok()) write_error_ = s;
      if (s.ok() && !write_error_.ok()) {
        s = Status::IOError("writes stopped after an earlier error: " + write_error_.ToString());
      }
    }
    if (s.ok()) ApplyToIndex(c.buf->applied, c.segment.get());
    EndTurn(&c);
    c.file.reset();
    c.segment.reset();
    c.buf->applied.clear();
    lock.lock();
    --syncs_in_flight_;
    free_buffers_.push_back(std::move(buf));
    if (leader_waiting_) group_cv_.notify_one();
    lock.unlock();
  }
  for (PendingWrite* p : group) {
    if (p == w) continue;
    std::lock_guard g(p->mu);
    if (!s.ok()) p->status = s;
    p->done = true;
    p->cv.notify_one();
  }
  if (!s.ok()) w->status = s;
  return w->status;
}

void DBImpl::WaitTurn(GroupCommit* c) {
  if (c->have_turn) return;
  // Outside kSync every earlier group has applied before the next leader starts: no lock.
  if (turn_done_.load() + 1 != c->ticket) {
    std::unique_lock lock(turn_mu_);
    turn_waiters_.fetch_add(1);
    turn_cv_.wait(lock, [&] { return turn_done_.load() + 1 == c->ticket; });
    turn_waiters_.fetch_sub(1);
  }
  c->have_turn = true;
}

void DBImpl::EndTurn(GroupCommit* c) {
  WaitTurn(c);  // a group that failed early still ends its turn in order
  turn_done_.store(c->ticket);
  // Sequentially consistent with WaitTurn: a waiter either sees the new turn or is counted.
  if (turn_waiters_.load() > 0) {
    { std::lock_guard lock(turn_mu_); }
    turn_cv_.notify_all();
  }
}

Status DBImpl::CheckVersion(const VersionCheck& check,
                            const std::map<std::string, uint64_t, std::less<>>& overlay) {
  auto it = overlay.find(check.key);
  uint64_t current;
  IndexEntry e;
  if (it != overlay.end()) {
    current = it->second;
  } else if (!index_->Get(check.key, &e) || e.tombstone()) {
    VARVE_ASSIGN_OR_RETURN(current, CurrentVersion(check.key));  // 0, or a table's version
  } else if (check.read && e.SameLocation(check.where)) {
    // The record read before the lock is still the key's newest (unless it expired since).
    bool expired = check.expiry_ms != 0 && check.expiry_ms <= NowUnixMs();
    current = expired ? 0 : check.version;
  } else {
    VARVE_ASSIGN_OR_RETURN(current, CurrentVersion(check.key));
  }
  return current == check.expected
             ? Status::Ok()
             : Status::Aborted("version mismatch for key '" + std::string(check.key) + "'");
}

Status DBImpl::CommitGroup(const std::vector<PendingWrite*>& group, GroupCommit* c) {
  GroupBuffers& b = *c->buf;
  b.applied.clear();
  b.write_buf.clear();
  std::map<std::string, uint64_t, std::less<>> overlay;  // versions set earlier in this group
  bool any_conditional = std::any_of(group.begin(), group.end(),
                                     [](const PendingWrite* w) { return w->check_count != 0; });
  bool roll =
      std::any_of(group.begin(), group.end(), [](const PendingWrite* w) { return w->roll; });
  // Only plain kSync groups leave their sync for after the hand-off. Conditions read the index,
  // and a roll seals the file: both wait until every earlier group has applied.
  bool pipeline = options_.durability == Durability::kSync && !any_conditional && !roll;
  if (!pipeline) WaitTurn(c);
  uint64_t next_seq = last_seq_.load(std::memory_order_relaxed) + 1;
  bool want_sync = options_.durability == Durability::kSync;
  uint64_t user_bytes = 0, records = 0;
  for (PendingWrite* w : group) {
    want_sync |= w->force_sync;
    if (w->count == 0) continue;
    Status check;
    for (size_t i = 0; i < w->check_count && check.ok(); ++i) {
      check = CheckVersion(w->checks[i], overlay);
    }
    if (!check.ok()) {
      w->status = check;
      continue;
    }
    b.scratch.clear();
    size_t first_applied = b.applied.size();
    for (size_t i = 0; i < w->count; ++i) {
      const WriteOp& op = w->ops[i];
      uint8_t flags = op.type;
      if (w->atomic) {
        flags |= kFlagInBatch;
        if (i + 1 == w->count) flags |= kFlagBatchCommit;
      }
      uint64_t seq = next_seq++;
      ++records;
      size_t before = b.scratch.size();
      AppendRecord(&b.scratch, flags, seq, op.type == kTypePut ? op.expiry_ms : 0, op.key, op.value,
                   op.type == kTypePut ? op.user_flags : 0);
      b.applied.push_back(Applied{op.type, op.key, seq, static_cast<uint32_t>(before),
                                  static_cast<uint32_t>(b.scratch.size() - before),
                                  static_cast<uint8_t>(b.scratch[before + 4]),  // as encoded
                                  op.type == kTypePut ? op.expiry_ms : 0});
      user_bytes += op.key.size() + op.value.size();
      if (any_conditional) overlay[std::string(op.key)] = op.type == kTypePut ? seq : 0;
    }
    w->first_seq = b.applied[first_applied].seq;
    // Roll first if these records would overflow the active segment (a writer's records, and
    // so a batch, never span segments).
    uint64_t seg_size = active_->size_bytes.load(std::memory_order_relaxed);
    if (seg_size + b.write_buf.size() + b.scratch.size() > options_.segment_size_bytes &&
        seg_size + b.write_buf.size() > kFileHeaderBytes) {
      // The records before the roll reach the index before their segment is sealed, so that
      // compaction never sees a sealed segment whose live records are not yet indexed; the
      // groups before this one first.
      WaitTurn(c);
      pipeline = false;
      std::vector<Applied> tail(b.applied.begin() + static_cast<ptrdiff_t>(first_applied),
                                b.applied.end());
      b.applied.resize(first_applied);
      VARVE_RETURN_IF_ERROR(AppendBuffer(&b));
      VARVE_RETURN_IF_ERROR(SyncActive());
      ApplyToIndex(b.applied, active_.get());
      VARVE_RETURN_IF_ERROR(RollSegment());
      b.applied = std::move(tail);
    }
    // Offsets so far are relative to scratch; make them relative to write_buf.
    for (size_t i = b.applied.size() - w->count; i < b.applied.size(); ++i) {
      b.applied[i].offset += static_cast<uint32_t>(b.write_buf.size());
    }
    b.write_buf.append(b.scratch);
  }
  VARVE_RETURN_IF_ERROR(AppendBuffer(&b));
  if (records > 0) {
    user_bytes_.fetch_add(user_bytes, std::memory_order_relaxed);
  }
  groups_.fetch_add(1, std::memory_order_relaxed);
  if (pipeline) {
    c->sync_pending = true;
    c->file = active_file_;
    c->segment = active_;
    return Status::Ok();
  }
  if (options_.durability == Durability::kBatch && !want_sync &&
      unsynced_writes_.load(std::memory_order_relaxed) >= options_.sync_batch_writes) {
    want_sync = true;
  }
  if (want_sync) VARVE_RETURN_IF_ERROR(SyncActive());
  ApplyToIndex(b.applied, active_.get());
  b.applied.clear();
  if (roll && active_->data_bytes() > active_->live_bytes.load()) {
    VARVE_RETURN_IF_ERROR(RollSegment());
  }
  return Status::Ok();
}

// Appends b's records to the active segment; their offsets become segment offsets.
Status DBImpl::AppendBuffer(GroupBuffers* b) {
  if (b->write_buf.empty()) return Status::Ok();
  uint64_t base = active_->size_bytes.load(std::memory_order_relaxed);
  Status s = active_file_->Append(b->write_buf);
  if (!s.ok()) return s;
  for (Applied& a : b->applied) {
    a.offset += static_cast<uint32_t>(base);
    active_->NoteSeq(a.seq);
    last_seq_.store(std::max(last_seq_.load(std::memory_order_relaxed), a.seq),
                    std::memory_order_release);
  }
  active_->size_bytes.store(base + b->write_buf.size(), std::memory_order_release);
  log_bytes_.fetch_add(b->write_buf.size(), std::memory_order_relaxed);
  AddHintEntries(b->applied);
  if (unsynced_writes_.fetch_add(b->applied.size(), std::memory_order_relaxed) == 0) {
    first_unsynced_us_.store(NowSteadyUs(), std::memory_order_relaxed);
  }
  b->write_buf.clear();
  return Status::Ok();
}

void DBImpl::AddHintEntries(const std::vector<Applied>& applied) {
  HintWriter* hint = active_->hint_writer.get();
  if (hint == nullptr || active_->hint_failed.load(std::memory_order_relaxed)) return;
  Status s;
  {
    std::lock_guard lock(active_->hint_mu);
    for (const Applied& a : applied) {
      s = hint->Add(HintEntry{a.flags, a.seq, a.expiry_ms, a.offset, a.size, a.key});
      if (!s.ok()) break;
    }
  }
  if (!s.ok()) {
    // Hints only speed up opening: the segment is scanned for its hint once sealed instead.
    LogWarning("hint of " + active_->path + ": " + s.ToString() + "; it will be built by a scan");
    active_->hint_failed = true;
  }
}

void DBImpl::ApplyToIndex(const std::vector<Applied>& applied, Segment* seg) {
  IndexChange change(this);
  for (const Applied& a : applied) {
    IndexEntry old;
    bool had_old;
    if (a.type == kTypePut) {
      IndexEntry e;
      e.segment = seg->id;
      e.offset = a.offset;
      e.size = a.size;
      had_old = index_->Put(a.key, e, &old);
      seg->live_bytes.fetch_add(a.size, std::memory_order_relaxed);
      puts_.fetch_add(1, std::memory_order_relaxed);
    } else if (TablesHold(a.key)) {
      // The tombstone stays in the index (and is kept by compaction) while it hides the key.
      IndexEntry e;
      e.segment = seg->id;
      e.offset = a.offset;
      e.size = a.size;
      e.flags = IndexEntry::kTombstone;
      had_old = index_->Put(a.key, e, &old);
      index_tombstones_.fetch_add(1, std::memory_order_relaxed);
      seg->live_bytes.fetch_add(a.size, std::memory_order_relaxed);
      seg->NoteTombstone(a.seq, a.size);
      deletes_.fetch_add(1, std::memory_order_relaxed);
    } else {
      had_old = index_->Remove(a.key, &old);
      seg->NoteTombstone(a.seq, a.size);
      deletes_.fetch_add(1, std::memory_order_relaxed);
    }
    if (had_old) {
      change.Left(a.key, old);
      NoteDead(old.segment, old.size);
      if (old.tombstone()) index_tombstones_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  // Groups apply in append order, and a later group may be appended already: this group's end.
  if (!applied.empty()) {
    seg->indexed_bytes.store(uint64_t{applied.back().offset} + applied.back().size,
                             std::memory_order_release);
  }
}

bool DBImpl::TablesHold(std::string_view key) const {
  if (tables_ == nullptr || tables_->empty()) return false;
  return TableLayers::Holds(*tables_->Current(), key);
}

Status DBImpl::AttachTable(const std::string& path, std::string* name) {
  if (closing_.load(std::memory_order_acquire)) return Status::InvalidArgument("store is closed");
  VARVE_RETURN_IF_ERROR(DropIndexCheckpoint());
  return tables_->Attach(path, name);
}

Status DBImpl::DetachTable(const std::string& name) {
  if (closing_.load(std::memory_order_acquire)) return Status::InvalidArgument("store is closed");
  VARVE_RETURN_IF_ERROR(DropIndexCheckpoint());
  return tables_->Detach(name);
}

Status DBImpl::SyncFile(WritableFile* file) {
  uint64_t seq = last_seq_.load(std::memory_order_acquire);
  unsynced_writes_.store(0, std::memory_order_relaxed);
  uint64_t start_us = NowSteadyUs();
  Status s = file->Sync();
  // A moving average (1/8 weight) of the sync time, for the group-commit wait.
  uint64_t took = NowSteadyUs() - start_us, avg = sync_us_.load(std::memory_order_relaxed);
  sync_us_.store(avg == 0 ? took : avg - avg / 8 + took / 8, std::memory_order_relaxed);
  syncs_.fetch_add(1, std::memory_order_relaxed);
  if (s.ok()) NoteDurable(seq);
  return s;
}

void DBImpl::NoteDurable(uint64_t seq) {
  uint64_t cur = durable_seq_.load(std::memory_order_relaxed);
  while (seq > cur && !durable_seq_.compare_exchange_weak(cur, seq)) {
  }
}

Result<std::shared_ptr<Segment>> DBImpl::CreateSegment(uint32_t id, bool compaction_output,
                                                       std::unique_ptr<WritableFile>* file) {
  auto seg = std::make_shared<Segment>();
  seg->id = id;
  seg->path = dir_ + "/" + SegmentFileName(id);
  seg->compaction_output = compaction_output;
  VARVE_ASSIGN_OR_RETURN(*file, env_->NewWritableFile(seg->path));
  char header[kFileHeaderBytes];
  EncodeFileHeader(header,
                   FileHeader{kSegmentMagic, compaction_output ? kFileFlagCompactionOutput : 0u, id,
                              last_seq_.load(std::memory_order_acquire)});
  VARVE_RETURN_IF_ERROR((*file)->Append(std::string_view(header, kFileHeaderBytes)));
  VARVE_RETURN_IF_ERROR((*file)->Sync());
  VARVE_RETURN_IF_ERROR(env_->SyncDir(dir_));
  // The writer's segment is then appended through a mapping (compaction writes its output in
  // large appends). The header is durable first: a crash never leaves a reserved file without it.
  if (options_.mmap_writes && !compaction_output) {
    VARVE_RETURN_IF_ERROR((*file)->Close());
    VARVE_ASSIGN_OR_RETURN(
        *file, env_->NewMappedWritableFile(seg->path, options_.segment_size_bytes, false,
                                           WriteZerosAhead()));
  }
  if (!compaction_output) {
    Result<std::unique_ptr<HintWriter>> hint = HintWriter::Create(env_, dir_, id);
    if (hint.ok()) {
      seg->hint_writer = std::move(*hint);
    } else {
      LogWarning("hint of " + seg->path + ": " + hint.status().ToString() +
                 "; it will be built by a scan");
    }
  }
  VARVE_ASSIGN_OR_RETURN(seg->reader, env_->NewRandomAccessFile(seg->path));
  seg->reader->AdviseRandom();
  // The segment grows into its mapping; reads only ask for records already written.
  if (options_.mmap_reads) seg->reader->MapForReads(options_.segment_size_bytes);
  seg->size_bytes = kFileHeaderBytes;
  seg->indexed_bytes = kFileHeaderBytes;
  return seg;
}

Result<std::unique_ptr<RandomAccessFile>> DBImpl::OpenForScan(const Segment& seg) {
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> f, env_->NewRandomAccessFile(seg.path));
  f->AdviseSequential();
  return f;
}

Status DBImpl::RollSegment() {
  VARVE_RETURN_IF_ERROR(SyncActive());
  std::unique_ptr<WritableFile> file;
  VARVE_ASSIGN_OR_RETURN(std::shared_ptr<Segment> seg,
                         CreateSegment(next_segment_id_.fetch_add(1), false, &file));
  std::shared_ptr<WritableFile> old_file;
  {
    std::lock_guard lock(file_mu_);
    old_file = std::move(active_file_);
    active_file_ = std::move(file);
    active_for_bg_ = seg;
  }
  // old_file closes when the sync thread is done with it too; it was synced above.
  old_file.reset();
  active_->sealed.store(true);
  AddSegment(seg);
  active_ = std::move(seg);
  {
    std::lock_guard lock(bg_mu_);
    bg_cv_.notify_all();  // the maintenance thread writes the sealed segment's hint
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Stats and close

Stats DBImpl::GetStats() {
  Stats st;
  int64_t tombstones = index_tombstones_.load(std::memory_order_relaxed);
  uint64_t entries = index_->Size();
  st.keys = entries - std::min<uint64_t>(entries, tombstones > 0 ? tombstones : 0);
  if (tables_ != nullptr) {
    std::shared_ptr<const TableLayers::Set> set = tables_->Current();
    st.tables = set->layers.size();
    for (const auto& l : set->layers) st.table_entries += l.reader->properties().entries;
  }
  {
    std::shared_lock lock(segments_mu_);
    for (const auto& [id, seg] : segments_) {
      uint64_t live = seg->live_bytes.load(std::memory_order_relaxed);
      uint64_t data = seg->data_bytes();
      st.live_bytes += live;
      st.dead_bytes += data > live ? data - live : 0;
      st.disk_bytes += seg->size_bytes.load(std::memory_order_relaxed);
      ++st.segments;
      if (seg->sealed.load()) ++st.sealed_segments;
    }
  }
  st.compactions = compactions_.load();
  st.compaction_bytes_written = compaction_written_.load();
  st.compaction_bytes_reclaimed = compaction_reclaimed_.load();
  st.user_bytes_written = user_bytes_.load();
  st.log_bytes_written = log_bytes_.load();
  st.puts = puts_.load();
  st.deletes = deletes_.load();
  st.gets = gets_.load();
  st.get_misses = get_misses_.load();
  st.skipped_unchanged_writes = skipped_.load();
  st.syncs = syncs_.load();
  st.write_groups = groups_.load();
  st.index_memory_bytes = index_->MemoryBytes();
  st.last_sequence = last_seq_.load();
  st.durable_sequence = durable_seq_.load();
  st.index_from_checkpoint = index_from_checkpoint_ ? 1 : 0;
  st.index_replayed_segments = index_replayed_segments_;
  if (st.user_bytes_written > 0) {
    st.write_amplification =
        static_cast<double>(st.log_bytes_written + st.compaction_bytes_written) /
        static_cast<double>(st.user_bytes_written);
  }
  return st;
}

Status DBImpl::Close() {
  {
    std::unique_lock lock(write_mu_);
    if (closed_) return Status::Ok();
    closed_ = true;
  }
  {
    std::lock_guard lock(bg_mu_);
    bg_stop_ = true;
    bg_cv_.notify_all();
  }
  if (maintenance_thread_.joinable()) maintenance_thread_.join();
  if (sync_thread_.joinable()) sync_thread_.join();
  if (lock_ == nullptr) return Status::Ok();  // never opened
  // Wait for queued writers (they were admitted before closed_ was set).
  {
    std::unique_lock lock(write_mu_);
    while (!writers_.empty() || syncs_in_flight_ > 0) {
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
    }
  }
  // No change can start any more (writers drained, maintenance stopped): a call after the close
  // must not touch a directory another process may hold by then.
  const bool unchanged = open_matches_checkpoint_ && !written_since_open_.load() &&
                         checkpoint_on_disk_.exchange(false);
  Status result;
  std::lock_guard compaction_lock(compaction_mu_);
  if (active_file_ != nullptr) {
    Status s = SyncActive();
    if (result.ok()) result = s;
    s = active_file_->Close();
    if (result.ok()) result = s;
  }
  if (result.ok() && !unchanged) {
    // A hint for the tail too, so that the next open reads no segment data at all.
    std::vector<std::shared_ptr<Segment>> segs;
    {
      std::shared_lock lock(segments_mu_);
      for (const auto& [id, seg] : segments_) segs.push_back(seg);
    }
    for (const auto& seg : segs) {
      if (seg->has_hint.load()) continue;
      Status s = WriteHint(seg);
      if (!s.ok() && result.ok()) result = s;
    }
    Status s = env_->SyncDir(dir_);
    if (result.ok()) result = s;
  }
  bool write_failed;
  {
    std::lock_guard lock(write_mu_);
    write_failed = !write_error_.ok();
  }
  if (result.ok() && !write_failed && options_.index_checkpoint && !unchanged) {
    // An optimization of the next open: failing to write it does not fail the close.
    Status s = WriteIndexCheckpoint();
    if (!s.ok()) LogWarning(s.ToString() + "; no index checkpoint written");
  }
  {
    std::lock_guard lock(file_mu_);
    active_file_.reset();
    active_for_bg_.reset();
  }
  active_.reset();
  closing_.store(true, std::memory_order_release);
  std::map<uint32_t, std::shared_ptr<Segment>> released;
  {
    std::unique_lock lock(segments_mu_);
    released.swap(segments_);
    PublishSegments();  // returns once no read can still use a segment
  }
  released.clear();
  lock_.reset();
  return result;
}

}  // namespace varve
