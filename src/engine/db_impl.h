// DBImpl: the engine behind varve::DB. See docs/design.md for threads and crash consistency.
//
// Threads: callers (reads; writes queue and one of them leads a group commit), one maintenance
// thread (hint files, background compaction), one sync thread (kInterval / kBatch durability).
// Locks, outer to inner: compaction_mu_ > write_mu_ > scan_mu_ > segments_mu_ > index shard locks;
// file_mu_, turn_mu_ and stats are leaves. A group commit's turn (its index updates, in append
// order) is waited for holding no lock. Reads take only an index shard lock: they find segments in
// segment_table_ inside a read section, which publishers of a new table wait for.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/index.h"
#include "engine/record.h"
#include "engine/segment_io.h"
#include "engine/segment_table.h"
#include "engine/table_layers.h"
#include "util/rw_mutex.h"
#include "varve/db.h"
#include "varve/env.h"

namespace varve {

struct Segment {
  uint32_t id = 0;
  std::string path;
  bool compaction_output = false;
  std::unique_ptr<RandomAccessFile> reader;
  std::atomic<uint64_t> size_bytes{0};  // file bytes, header included
  // File bytes whose records have all reached the index (stored after the index changes, under
  // an IndexChange): where a full scan that starts now stops reading this segment.
  std::atomic<uint64_t> indexed_bytes{0};
  std::atomic<uint64_t> live_bytes{0};  // bytes of records the index points at
  // Tombstone records in the segment and the newest one's sequence: they are garbage only once
  // no other segment holds older records (then compaction drops them), so picking counts them
  // as live until then; otherwise a segment of needed tombstones would be rewritten forever.
  std::atomic<uint64_t> tombstone_bytes{0};
  std::atomic<uint64_t> max_tombstone_seq{0};
  void NoteTombstone(uint64_t seq, uint64_t bytes);
  std::atomic<uint64_t> min_seq{UINT64_MAX};
  std::atomic<uint64_t> max_seq{0};
  std::atomic<bool> sealed{false};
  std::atomic<bool> has_hint{false};
  std::atomic<bool> compacting{false};
  std::atomic<bool> damaged{false};  // a record failed its checksum: never compact it away
  // A writer segment created by this process: the hint built as records are appended (by the
  // group-commit leader while the segment is active, then finished by the maintenance thread
  // or at close), so sealing needs no scan of the segment. hint_mu orders the leader's Add with
  // the maintenance thread's marks (.hint.mark files); hint_failed: an Add failed, so the
  // hint is built by a scan instead. Only the maintenance thread (or Close) destroys it.
  std::unique_ptr<HintWriter> hint_writer;
  std::mutex hint_mu;
  std::atomic<bool> hint_failed{false};
  uint64_t hint_marked_bytes = 0;  // segment bytes the last mark covers (maintenance)

  uint64_t data_bytes() const;
  void NoteSeq(uint64_t seq);
};

// Identifies a segment's 32-byte file header in the index checkpoint.
uint32_t SegmentHeaderChecksum(const char* header);

// A full iteration's scan of the segments in progress (full_scan.cc, docs/design.md "Full
// iteration"): what it has yet to read, and the keys that an index change moved away from a
// record there before the scan reached it. Guarded by DBImpl::scan_mu_.
struct ScanRegion {
  struct Part {
    uint32_t segment = 0;
    uint64_t end = 0;  // the segment's indexed_bytes when the scan started
  };
  std::vector<Part> parts;  // in scan order, by segment id
  // The cursor: every record of parts before part, and of parts[part] before offset, is read.
  size_t part = 0;
  uint64_t offset = 0;
  std::vector<std::string> moved;
  // True if the record at e lies in the region and the scan has not read it yet.
  bool Unread(const IndexEntry& e) const;
};

// One operation of a write group.
struct WriteOp {
  uint8_t type = format::kTypePut;
  std::string_view key;
  std::string_view value;
  uint64_t expiry_ms = 0;
  uint32_t user_flags = 0;
};

class DBImpl final : public DB {
 public:
  DBImpl(const Options& options, std::string dir);
  ~DBImpl() override;

  Status Recover();

  Status Put(std::string_view key, std::string_view value, const PutOptions& opts) override;
  Result<std::string> Get(std::string_view key) override;
  Status Get(std::string_view key, std::string* value) override;
  Result<VersionedValue> GetVersioned(std::string_view key) override;
  Status Delete(std::string_view key) override;
  Status Write(const WriteBatch& batch) override;
  Status CompareAndSet(std::string_view key, uint64_t expected_version, std::string_view value,
                       const PutOptions& opts, uint64_t* new_version) override;
  Status CompareAndDelete(std::string_view key, uint64_t expected_version) override;
  std::unique_ptr<Iterator> NewIterator(const ReadOptions& opts) override;
  Status Compact() override;
  Status AttachTable(const std::string& path, std::string* name) override;
  Status DetachTable(const std::string& name) override;
  Status Sync() override;
  Stats GetStats() override;
  Status Close() override;

  // For the iterator: reads the record entry points at. *moved is set (and NotFound returned)
  // when the segment is gone because compaction moved the record; look the key up again.
  // The value goes to *value, the rest of the record's metadata to *meta (its value untouched).
  Status ReadEntry(std::string_view key, const IndexEntry& entry, std::string* value,
                   VersionedValue* meta, bool* moved);
  Status ReadEntry(std::string_view key, const IndexEntry& entry, VersionedValue* out,
                   bool* moved) {
    return ReadEntry(key, entry, &out->value, out, moved);
  }
  Index* index() { return index_.get(); }
  TableLayers* tables() { return tables_.get(); }
  bool closing() const { return closing_.load(std::memory_order_acquire); }

  // Full scans (full_scan.cc). OpenScan registers region and fills it and *segs (kept alive by
  // the scan, so that compaction deleting them does not cut it short) with the segments and
  // their bounds; false (nothing registered) if a segment is damaged: the caller then walks the
  // index instead, which reads only the records it points at. CloseScan unregisters, adding the
  // keys still in region->moved to *moved. scan_mu_ guards the region while registered.
  bool OpenScan(ScanRegion* region, std::vector<std::shared_ptr<Segment>>* segs);
  void CloseScan(ScanRegion* region, std::vector<std::string>* moved);
  std::mutex& scan_mu() { return scan_mu_; }

 private:
  // A condition of a write: key must have version expected (0 = absent). The version read
  // before the commit lock is trusted under it while the index still points at the same record
  // (so that the check under the lock rarely reads the disk).
  // Get and GetVersioned: the value into *value, version and metadata into *meta.
  Status Lookup(std::string_view key, std::string* value, VersionedValue* meta);

  struct VersionCheck {
    std::string_view key;
    uint64_t expected = 0;
    bool read = false;
    IndexEntry where;
    uint64_t version = 0;
    uint64_t expiry_ms = 0;
  };
  struct PendingWrite {
    const WriteOp* ops = nullptr;
    size_t count = 0;
    bool atomic = false;             // a WriteBatch: all-or-nothing records
    VersionCheck* checks = nullptr;  // conditions: all must hold or nothing is written
    size_t check_count = 0;
    bool force_sync = false;  // Sync(): make everything durable
    bool roll = false;        // Compact(): seal the active segment if it holds garbage
    uint64_t first_seq = 0;   // out: sequence of the first record written
    Status status;
    // Set by the leader that committed this write (done) or that hands leadership on (lead),
    // under mu: waiting writers never contend for write_mu_ to learn their outcome.
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    bool lead = false;
  };
  struct Applied {
    uint8_t type;
    std::string_view key;
    uint64_t seq;
    uint32_t offset;
    uint32_t size;
    uint8_t flags;  // the record's flags (batch bits included), for its hint entry
    uint64_t expiry_ms;
  };

  // A group's records while it is built, appended, synced and applied.
  struct GroupBuffers {
    std::string write_buf;  // the records to append
    std::string scratch;    // one writer's records
    std::vector<Applied> applied;
  };
  // One group commit. Groups reach the index in the order they were appended (their tickets);
  // a group holding the turn is the only one applying, and every earlier group has applied.
  struct GroupCommit {
    uint64_t ticket = 0;
    GroupBuffers* buf = nullptr;
    bool have_turn = false;
    // Set by CommitGroup when the group is appended and its fdatasync and index updates are
    // left to run after leadership is handed on (kSync): on file, for segment.
    bool sync_pending = false;
    std::shared_ptr<WritableFile> file;
    std::shared_ptr<Segment> segment;
  };

  Status ValidateOp(const WriteOp& op) const;
  Status WriteImpl(PendingWrite* w);
  Status CommitGroup(const std::vector<PendingWrite*>& group, GroupCommit* c);
  void WaitTurn(GroupCommit* c);
  void EndTurn(GroupCommit* c);
  Status AppendBuffer(GroupBuffers* b);
  void ApplyToIndex(const std::vector<Applied>& applied, Segment* seg);
  Status RollSegment();
  Status SyncActive() { return SyncFile(active_file_.get()); }
  Status SyncFile(WritableFile* file);
  // The writer's segment reserves space with written zeros when every write waits for an
  // fdatasync: on ext4, a sync after appends into unwritten (fallocated) blocks also commits the
  // journal to convert them, which halves the syncs per second. (Other modes sync seldom; the
  // zeros would double what a bulk load writes.)
  bool WriteZerosAhead() const { return options_.durability == Durability::kSync; }
  Result<std::shared_ptr<Segment>> CreateSegment(uint32_t id, bool compaction_output,
                                                 std::unique_ptr<WritableFile>* file);
  Status CheckVersion(const VersionCheck& check,
                      const std::map<std::string, uint64_t, std::less<>>& overlay);
  // 0 if absent; *where and *expiry_ms describe the record read (if *present).
  Result<uint64_t> CurrentVersion(std::string_view key, IndexEntry* where = nullptr,
                                  bool* present = nullptr, uint64_t* expiry_ms = nullptr);
  void ReadVersionAhead(VersionCheck* check);
  Status WriteIfVersion(const WriteOp& op, uint64_t expected_version, uint64_t* new_version);
  void SetWriteError(const Status& s);
  // A second handle on a segment with readahead, for reading it start to end.
  Result<std::unique_ptr<RandomAccessFile>> OpenForScan(const Segment& seg);

  // Wraps every index change that moves a key's entry away from a record (writes, compaction),
  // so that the scans in progress learn of keys whose record they have yet to read. With no scan
  // open it costs a read section and one load; otherwise it holds scan_mu_ (a scan checks its
  // records against the index under it too, so each change falls wholly before or after).
  class IndexChange {
   public:
    explicit IndexChange(DBImpl* db);
    // key's entry, which was old, changed (the change already made).
    void Left(std::string_view key, const IndexEntry& old) {
      if (lock_.owns_lock()) db_->NoteLeft(key, old);
    }

   private:
    DBImpl* db_;
    ReadSections::Section section_;
    std::unique_lock<std::mutex> lock_;
  };
  void NoteLeft(std::string_view key, const IndexEntry& old);

  void AddSegment(std::shared_ptr<Segment> seg);
  // Makes segments_ what readers see; segments_mu_ held exclusively.
  void PublishSegments();
  void NoteDead(uint32_t segment, uint64_t bytes);

  // Recovery (recovery.cc).
  // The index from hint files (segment scans where there are none), in parallel.
  Status LoadIndexFromSegments(const std::vector<std::shared_ptr<Segment>>& segs,
                               const std::shared_ptr<Segment>& tail);
  Status LoadSegment(const std::shared_ptr<Segment>& seg, bool is_tail, bool* truncated);
  // From start (a record boundary), after max_seq records already loaded from a hint prefix.
  Status ScanSegmentIntoIndex(const std::shared_ptr<Segment>& seg, bool is_tail,
                              uint64_t start = format::kFileHeaderBytes, uint64_t max_seq = 0);
  void LoadEntry(Segment* seg, std::string_view key, const IndexEntry& e, uint64_t seq,
                 bool is_tombstone_record, std::vector<Index::RecoveredEntry>* bulk);
  // Puts the entries LoadEntry gathered (all seg's) into the index.
  void FlushBulk(Segment* seg, std::vector<Index::RecoveredEntry>* bulk);
  std::unordered_map<uint32_t, Segment*> loading_;  // segments by id while recovering

  // Index checkpoint (index_checkpoint.cc, docs/format.md "INDEX file").
  std::string IndexCheckpointPath() const;
  // At a clean close, after every segment is synced, cut and has its hint.
  Status WriteIndexCheckpoint();
  // What an open through INDEX still has to load: the records of segment from offset on (0: the
  // whole segment, hint or scan).
  struct Replay {
    std::shared_ptr<Segment> segment;
    uint64_t from = 0;
  };
  // Loads the index and the segments' counters if INDEX describes segs (in id order, headers
  // checksummed by SegmentHeaderChecksum) as they were, with at most appends since (*replay
  // lists them); any error leaves a partly loaded index.
  Status LoadIndexCheckpoint(const std::vector<std::shared_ptr<Segment>>& segs,
                             const std::map<uint32_t, uint32_t>& header_checksums,
                             std::vector<Replay>* replay);
  // Loads the records written after the checkpoint into the index LoadIndexCheckpoint loaded.
  Status ReplayAfterCheckpoint(const std::vector<std::shared_ptr<Segment>>& segs,
                               const std::vector<Replay>& replay,
                               const std::shared_ptr<Segment>& tail);
  bool index_from_checkpoint_ = false;
  uint64_t index_replayed_segments_ = 0;  // segments (or their ends) replayed over INDEX
  bool replaying_in_order_ = false;       // ReplayAfterCheckpoint is loading
  // The open loaded INDEX, replayed nothing and appends to the tail it describes: until the
  // first write or until INDEX is dropped, the directory is exactly what INDEX describes and a
  // close rewrites neither the tail's hint nor INDEX.
  bool open_matches_checkpoint_ = false;
  // Attaching or detaching a table changes which deletes an open keeps as shadows (recovery
  // decides by the tables of its time): a close after one writes no checkpoint.
  uint64_t tables_generation_at_open_ = 0;
  // The INDEX found at open is still on disk: the store's first change it does not describe
  // removes it (durably) before it happens, so that a crash after it can never be served by a
  // stale checkpoint.
  std::atomic<bool> checkpoint_on_disk_{false};
  // The INDEX on disk was loaded (and replayed onto): writes, which only append, leave it valid
  // as the base of the next open; compactions and tables still remove it.
  bool checkpoint_is_base_ = false;
  // A write since the open: the close rewrites INDEX.
  std::atomic<bool> written_since_open_{false};
  std::mutex checkpoint_mu_;  // a leaf
  Status DropIndexCheckpoint();

  // Hints and compaction (compaction.cc).
  void MaintenanceLoop();
  void SyncLoop();
  Status WriteHintFromScan(const std::shared_ptr<Segment>& seg);
  // Finishes the hint built during appends (seg->hint_writer), or writes one from a scan.
  Status WriteHint(const std::shared_ptr<Segment>& seg);
  // Adds the hint entries of records just appended to the active segment.
  void AddHintEntries(const std::vector<Applied>& applied);
  // Maintenance: marks the active segment's hint (MarkActiveHint) once enough was appended since
  // the last one, so that an open after a crash scans only the segment's end.
  Status MarkActiveHint();
  // Recovery: loads the entries read hands over (ReadHintFileBatched or ParseHintBatched) into
  // the index; *max_seq: the newest sequence among them (0 if none).
  using HintBatchFn = std::function<void(const HintEntry*, size_t)>;
  Status LoadHintEntries(Segment* seg, const std::function<Status(const HintBatchFn&)>& read,
                         uint64_t* max_seq);
  Status WriteMissingHints();
  Status CompactEligible(bool force);
  Status CompactSegments(const std::vector<std::shared_ptr<Segment>>& inputs);
  void DeleteSegmentFiles(const std::shared_ptr<Segment>& seg);
  Status DeleteObsolete(const std::vector<std::shared_ptr<Segment>>& segs);
  Status WriteObsoleteFile(const std::string& ids);
  Status FinishObsolete();  // recovery: finish deletions a crash interrupted

  const Options options_;
  const std::string dir_;
  Env* const env_;
  std::unique_ptr<Index> index_;
  // Attached tables; set by Recover before any segment is loaded.
  std::unique_ptr<TableLayers> tables_;
  bool TablesHold(std::string_view key) const;
  std::unique_ptr<FileLock> lock_;

  // Segments by id: the map owns them (and iterators, compactions, etc. may share them); reads
  // find them in segment_table_, a copy of the map's raw pointers published after each change.
  RWMutex segments_mu_;
  std::map<uint32_t, std::shared_ptr<Segment>> segments_;
  SegmentTable segment_table_;

  // Full scans in progress. A scan registers (scans_open_ then a grace period of scan_sections_,
  // so that every index change made without scan_mu_ is over) before it reads the bounds.
  std::mutex scan_mu_;  // after write_mu_ and compaction_mu_, before segments_mu_ and the index
  std::vector<ScanRegion*> scans_;  // guarded by scan_mu_
  std::atomic<uint32_t> scans_open_{0};
  ReadSections scan_sections_;

  // Write path.
  std::mutex write_mu_;
  std::deque<PendingWrite*> writers_;
  // kSync: a new leader waits briefly until as many writers queue as were active at the last
  // commit (its group and the writers queued behind it), so that one fdatasync keeps serving all
  // of them (their wake-up races the next leader).
  size_t expected_writers_ = 0;
  std::atomic<uint64_t> sync_us_{0};  // recent fdatasync time of the log, moving average
  bool leader_waiting_ = false;
  std::condition_variable group_cv_;  // the leader waits for writers or a sync slot
  // kSync: a leader hands leadership on once its group is appended and syncs outside it, so
  // up to this many groups' fdatasyncs overlap (the device serves concurrent flushes together).
  static constexpr size_t kMaxSyncsInFlight = 2;
  size_t syncs_in_flight_ = 0;  // groups appended, not yet applied (write_mu_)
  uint64_t next_ticket_ = 0;    // write_mu_
  std::vector<std::unique_ptr<GroupBuffers>> free_buffers_;  // write_mu_
  std::mutex turn_mu_;                                       // a leaf
  std::condition_variable turn_cv_;
  std::atomic<uint64_t> turn_done_{0};  // the last ticket whose group applied (or failed)
  std::atomic<int> turn_waiters_{0};
  Status write_error_;  // set once a write or sync fails: writes stop, reads go on
  bool closed_ = false;
  std::atomic<bool> closing_{false};  // segments released: reads fail
  // Owned by the group-commit leader.
  std::shared_ptr<Segment> active_;
  std::shared_ptr<Segment> active_for_bg_;        // active_, for the maintenance thread (file_mu_)
  std::map<uint32_t, HintPrefix> hint_prefixes_;  // recovery: marked parts of unfinished hints
  std::atomic<uint64_t> last_seq_{0};
  std::atomic<uint32_t> next_segment_id_{1};

  // The active file, shared with the sync thread.
  std::mutex file_mu_;
  std::shared_ptr<WritableFile> active_file_;
  std::atomic<uint64_t> unsynced_writes_{0};
  std::atomic<uint64_t> durable_seq_{0};
  void NoteDurable(uint64_t seq);
  std::atomic<uint64_t> first_unsynced_us_{0};

  // Background threads.
  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  std::atomic<bool> bg_stop_{false};
  std::thread maintenance_thread_;
  std::thread sync_thread_;
  std::mutex compaction_mu_;

  // Counters.
  std::atomic<uint64_t> puts_{0}, deletes_{0}, gets_{0}, get_misses_{0}, skipped_{0};
  // Index entries that are tombstones kept to hide a table's key: not keys (Stats::keys).
  std::atomic<int64_t> index_tombstones_{0};
  std::atomic<uint64_t> user_bytes_{0}, log_bytes_{0}, syncs_{0}, groups_{0};
  std::atomic<uint64_t> compactions_{0}, compaction_written_{0}, compaction_reclaimed_{0};
};

}  // namespace varve
