// The index checkpoint (INDEX, docs/format.md): written at a clean close, loaded by the next open
// instead of the hint files when it describes the directory exactly, removed before the store
// accepts a write.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "engine/db_impl.h"
#include "util/coding.h"
#include "util/logging.h"

namespace varve {

using namespace format;

namespace {

// Gathers small pieces so that the file sees few large writes; hashes everything it passes on.
class HashingWriter {
 public:
  explicit HashingWriter(WritableFile* f) : f_(f) { XXH3_64bits_reset(&state_); }
  Status Write(std::string_view data) {
    XXH3_64bits_update(&state_, data.data(), data.size());
    written_ += data.size();
    if (buf_.size() + data.size() <= kBufferBytes) {
      buf_.append(data);
      return Status::Ok();
    }
    VARVE_RETURN_IF_ERROR(Flush());
    if (data.size() < kBufferBytes) {
      buf_.append(data);
      return Status::Ok();
    }
    return f_->Append(data);
  }
  Status Flush() {
    Status s = buf_.empty() ? Status::Ok() : f_->Append(buf_);
    buf_.clear();
    return s;
  }
  // The hash of what was written since the last call.
  uint64_t TakeHash() {
    uint64_t h = XXH3_64bits_digest(&state_);
    XXH3_64bits_reset(&state_);
    return h;
  }
  uint64_t written() const { return written_; }

 private:
  static constexpr size_t kBufferBytes = 1 << 20;
  WritableFile* f_;
  std::string buf_;
  XXH3_state_t state_;
  uint64_t written_ = 0;
};

uint64_t TablesFingerprint(const TableLayers::Set& set) {
  std::string all;
  for (const auto& l : set.layers) {
    PutFixed32(&all, static_cast<uint32_t>(l.name.size()));
    all += l.name;
    PutFixed32(&all, static_cast<uint32_t>(l.file.size()));
    all += l.file;
  }
  return XXH3_64bits(all.data(), all.size());
}

}  // namespace

uint32_t SegmentHeaderChecksum(const char* header) {
  return static_cast<uint32_t>(XXH3_64bits(header, kFileHeaderBytes));
}

std::string DBImpl::IndexCheckpointPath() const { return dir_ + "/" + std::string(kIndexFileName); }

Status DBImpl::DropIndexCheckpoint() {
  if (!checkpoint_on_disk_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard lock(checkpoint_mu_);
  if (!checkpoint_on_disk_.load(std::memory_order_relaxed)) return Status::Ok();
  const std::string path = IndexCheckpointPath();
  if (env_->FileExists(path)) VARVE_RETURN_IF_ERROR(env_->RemoveFile(path));
  VARVE_RETURN_IF_ERROR(env_->SyncDir(dir_));
  checkpoint_on_disk_.store(false, std::memory_order_release);
  return Status::Ok();
}

Status DBImpl::WriteIndexCheckpoint() {
  if (index_->CheckpointLayout() == 0) return Status::Ok();
  // The index's shadows follow the tables of the open, not the ones attached since: an open
  // from hints would keep other deletes.
  if (tables_->Current()->generation != tables_generation_at_open_) return Status::Ok();
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock(segments_mu_);
    for (const auto& [id, seg] : segments_) segs.push_back(seg);
  }
  // The directory description: what each segment must still be for the checkpoint to hold.
  std::string meta;
  PutFixed64(&meta, index_->CheckpointLayout());
  PutFixed64(&meta, last_seq_.load());
  PutFixed64(&meta, static_cast<uint64_t>(index_tombstones_.load()));
  std::shared_ptr<const TableLayers::Set> tables = tables_->Current();
  PutFixed64(&meta, tables->generation);
  PutFixed64(&meta, TablesFingerprint(*tables));
  PutFixed32(&meta, static_cast<uint32_t>(segs.size()));
  const uint32_t parts = index_->CheckpointParts();
  PutFixed32(&meta, parts);
  for (const auto& seg : segs) {
    if (seg->damaged.load() || !seg->has_hint.load()) {
      return Status::NotSupported(seg->path + " is damaged or has no hint");
    }
    VARVE_ASSIGN_OR_RETURN(uint64_t file_size, seg->reader->Size());
    if (file_size != seg->size_bytes.load()) {
      return Status::Corruption(seg->path + ": " + std::to_string(file_size) + " bytes on disk, " +
                                std::to_string(seg->size_bytes.load()) + " expected");
    }
    char header[kFileHeaderBytes];
    VARVE_ASSIGN_OR_RETURN(size_t n, seg->reader->Read(0, kFileHeaderBytes, header));
    if (n != kFileHeaderBytes) return Status::Corruption(seg->path + ": short header");
    PutFixed32(&meta, seg->id);
    PutFixed32(&meta, seg->compaction_output ? kFileFlagCompactionOutput : 0);
    PutFixed64(&meta, file_size);
    PutFixed32(&meta, SegmentHeaderChecksum(header));
    PutFixed32(&meta, 0);
    PutFixed64(&meta, seg->live_bytes.load());
    PutFixed64(&meta, seg->tombstone_bytes.load());
    PutFixed64(&meta, seg->max_tombstone_seq.load());
    PutFixed64(&meta, seg->min_seq.load());
    PutFixed64(&meta, seg->max_seq.load());
  }

  index_->PrepareCheckpoint();
  const std::string path = IndexCheckpointPath();
  const std::string tmp = path + ".tmp";
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> f, env_->NewWritableFile(tmp));
  auto write_all = [&]() -> Status {
    HashingWriter w(f.get());
    std::string header(kFileHeaderBytes, '\0');
    EncodeFileHeader(header.data(), FileHeader{kIndexMagic, 0, 0, last_seq_.load()});
    VARVE_RETURN_IF_ERROR(w.Write(header));
    w.TakeHash();
    for (uint32_t p = 0; p < parts; ++p) {
      uint64_t offset = w.written();
      uint64_t expected = index_->CheckpointPartBytes(p);
      VARVE_RETURN_IF_ERROR(
          index_->SaveCheckpointPart(p, [&](std::string_view d) { return w.Write(d); }));
      VARVE_CHECK(w.written() - offset == expected);
      PutFixed64(&meta, offset);
      PutFixed64(&meta, expected);
      PutFixed64(&meta, w.TakeHash());
    }
    VARVE_RETURN_IF_ERROR(w.Write(meta));
    std::string footer;
    PutFixed64(&footer, meta.size());
    PutFixed64(&footer, w.TakeHash());
    PutFixed32(&footer, 0);
    PutFixed32(&footer, kIndexEndMagic);
    VARVE_RETURN_IF_ERROR(w.Write(footer));
    VARVE_RETURN_IF_ERROR(w.Flush());
    VARVE_RETURN_IF_ERROR(f->Sync());
    return f->Close();
  };
  Status s = write_all();
  if (!s.ok()) {
    f.reset();
    env_->RemoveFile(tmp).ok();
    return s;
  }
  VARVE_RETURN_IF_ERROR(env_->RenameFile(tmp, path));
  return env_->SyncDir(dir_);
}

Status DBImpl::LoadIndexCheckpoint(const std::vector<std::shared_ptr<Segment>>& segs,
                                   const std::map<uint32_t, uint32_t>& header_checksums,
                                   std::vector<Replay>* replay) {
  replay->clear();
  const std::string path = IndexCheckpointPath();
  auto bad = [&](const std::string& what) { return Status::Corruption(path + ": " + what); };
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, env_->NewRandomAccessFile(path));
  file->AdviseSequential();
  VARVE_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size < kFileHeaderBytes + kIndexFooterBytes) return bad("too short");
  auto read_at = [&](uint64_t offset, size_t n, char* dst) -> Status {
    VARVE_ASSIGN_OR_RETURN(size_t got, file->Read(offset, n, dst));
    if (got != n) return bad("short read at offset " + std::to_string(offset));
    return Status::Ok();
  };
  char header[kFileHeaderBytes];
  VARVE_RETURN_IF_ERROR(read_at(0, kFileHeaderBytes, header));
  FileHeader fh;
  VARVE_RETURN_IF_ERROR(DecodeFileHeader(header, kFileHeaderBytes, kIndexMagic, path, &fh));
  char footer[kIndexFooterBytes];
  VARVE_RETURN_IF_ERROR(read_at(size - kIndexFooterBytes, kIndexFooterBytes, footer));
  uint64_t meta_bytes = DecodeFixed64(footer);
  if (DecodeFixed32(footer + 20) != kIndexEndMagic) return bad("bad end magic");
  if (meta_bytes > size - kFileHeaderBytes - kIndexFooterBytes) return bad("bad meta length");
  const uint64_t meta_offset = size - kIndexFooterBytes - meta_bytes;
  std::string meta(meta_bytes, '\0');
  VARVE_RETURN_IF_ERROR(read_at(meta_offset, meta_bytes, meta.data()));
  if (XXH3_64bits(meta.data(), meta.size()) != DecodeFixed64(footer + 8)) {
    return bad("bad meta checksum");
  }
  constexpr size_t kFixedMeta = 48, kSegmentBytes = 64, kPartBytes = 24;
  if (meta.size() < kFixedMeta) return bad("meta too short");
  const char* m = meta.data();
  if (DecodeFixed64(m) != index_->CheckpointLayout()) return bad("another index layout");
  uint64_t last_seq = DecodeFixed64(m + 8);
  uint64_t tombstones = DecodeFixed64(m + 16);
  std::shared_ptr<const TableLayers::Set> tables = tables_->Current();
  if (DecodeFixed64(m + 24) != tables->generation ||
      DecodeFixed64(m + 32) != TablesFingerprint(*tables)) {
    return bad("stale (the attached tables changed)");
  }
  uint32_t n_segs = DecodeFixed32(m + 40);
  uint32_t parts = DecodeFixed32(m + 44);
  if (parts != index_->CheckpointParts() ||
      meta.size() != kFixedMeta + uint64_t{n_segs} * kSegmentBytes + uint64_t{parts} * kPartBytes) {
    return bad("meta length does not match its counts");
  }
  // Writes since the checkpoint only append: to the segment that was its tail (the newest one
  // not written by compaction) and to new segments. Those records all have higher sequence
  // numbers than any the checkpoint holds, so the open loads it and replays them on top. Anything
  // else (a compaction or repair removed or rewrote a segment; tables attached, whose shadows
  // only a load from hints rebuilds) makes it stale.
  const bool replayable = tables->layers.empty();
  if (n_segs > segs.size() || (!replayable && n_segs != segs.size())) {
    return bad("stale (the segment set changed)");
  }
  uint32_t checkpoint_tail = UINT32_MAX;  // index in segs
  for (uint32_t i = 0; i < n_segs; ++i) {
    if ((DecodeFixed32(m + kFixedMeta + i * kSegmentBytes + 4) & kFileFlagCompactionOutput) == 0) {
      checkpoint_tail = i;
    }
  }
  // segs is in id order, as the checkpoint lists them.
  for (uint32_t i = 0; i < n_segs; ++i) {
    const char* e = m + kFixedMeta + i * kSegmentBytes;
    Segment& seg = *segs[i];
    uint32_t flags = seg.compaction_output ? kFileFlagCompactionOutput : 0;
    auto hc = header_checksums.find(seg.id);
    const uint64_t size = DecodeFixed64(e + 8);
    const bool grown = replayable && i == checkpoint_tail && size < seg.size_bytes.load();
    if (DecodeFixed32(e) != seg.id || DecodeFixed32(e + 4) != flags ||
        (size != seg.size_bytes.load() && !grown) || hc == header_checksums.end() ||
        DecodeFixed32(e + 16) != hc->second) {
      return bad("stale (" + SegmentFileName(seg.id) + " differs)");
    }
    if (grown) replay->push_back(Replay{segs[i], size});
    // A close writes the checkpoint only once every segment has its hint: a missing one means
    // the directory was changed since.
    if (!env_->FileExists(dir_ + "/" + HintFileName(seg.id))) {
      return bad("stale (" + HintFileName(seg.id) + " is missing)");
    }
  }
  for (size_t i = n_segs; i < segs.size(); ++i) {
    // A compaction output would mean a compaction ran, which removes INDEX before it starts.
    if (segs[i]->compaction_output || (n_segs != 0 && segs[i]->id <= segs[n_segs - 1]->id)) {
      return bad("stale (" + SegmentFileName(segs[i]->id) + " is not a newer segment)");
    }
    replay->push_back(Replay{segs[i], 0});
  }
  const char* part_table = m + kFixedMeta + uint64_t{n_segs} * kSegmentBytes;
  uint64_t expected_offset = kFileHeaderBytes;
  for (uint32_t p = 0; p < parts; ++p) {
    const char* e = part_table + p * kPartBytes;
    if (DecodeFixed64(e) != expected_offset ||
        DecodeFixed64(e + 8) > meta_offset - expected_offset) {
      return bad("part " + std::to_string(p) + " out of place");
    }
    expected_offset += DecodeFixed64(e + 8);
  }
  if (expected_offset != meta_offset) return bad("parts do not fill the file");

  // Parts in parallel, each read start to end into the memory it will occupy. With a cold cache
  // the loaders' reads alone keep few requests in flight: the kernel reads the whole range at
  // once instead.
  file->AdviseWillNeed(kFileHeaderBytes, meta_offset - kFileHeaderBytes);
  index_->StartCheckpointLoad(meta_offset - kFileHeaderBytes);
  unsigned threads = options_.open_threads != 0 ? options_.open_threads
                                                : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min<unsigned>(threads, std::max<uint32_t>(1, parts));
  std::atomic<uint32_t> next{0};
  std::mutex err_mu;
  Status first_error;
  auto worker = [&] {
    for (uint32_t p; (p = next.fetch_add(1)) < parts;) {
      const char* e = part_table + p * kPartBytes;
      uint64_t pos = DecodeFixed64(e);
      XXH3_state_t state;
      XXH3_64bits_reset(&state);
      Status s = index_->LoadCheckpointPart(p, DecodeFixed64(e + 8), [&](char* dst, size_t n) {
        VARVE_RETURN_IF_ERROR(read_at(pos, n, dst));
        XXH3_64bits_update(&state, dst, n);
        pos += n;
        return Status::Ok();
      });
      if (s.ok() && XXH3_64bits_digest(&state) != DecodeFixed64(e + 16)) {
        s = bad("part " + std::to_string(p) + ": bad checksum");
      }
      if (!s.ok()) {
        std::lock_guard lock(err_mu);
        if (first_error.ok()) first_error = s;
        next.store(parts);  // stop the others early
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  VARVE_RETURN_IF_ERROR(first_error);

  for (uint32_t i = 0; i < n_segs; ++i) {
    const char* e = m + kFixedMeta + i * kSegmentBytes;
    Segment& seg = *segs[i];
    seg.live_bytes = DecodeFixed64(e + 24);
    seg.tombstone_bytes = DecodeFixed64(e + 32);
    seg.max_tombstone_seq = DecodeFixed64(e + 40);
    seg.min_seq = DecodeFixed64(e + 48);
    seg.max_seq = DecodeFixed64(e + 56);
    seg.has_hint = true;
  }
  last_seq_ = last_seq;
  index_tombstones_.store(static_cast<int64_t>(tombstones), std::memory_order_relaxed);
  return Status::Ok();
}

}  // namespace varve
