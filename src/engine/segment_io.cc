#include "engine/segment_io.h"

#include <cstring>

#include "util/coding.h"
#include "util/crc32c.h"

namespace varve {

using namespace format;

SegmentScanner::SegmentScanner(const RandomAccessFile* file, uint64_t file_size, std::string name,
                               uint64_t start)
    : file_(file), file_size_(file_size), name_(std::move(name)), buf_file_offset_(start) {}

bool SegmentScanner::Fill(size_t want) {
  if (len_ - pos_ >= want) return true;
  // Slide the unread bytes to the front, then read more.
  std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
  buf_file_offset_ += pos_;
  len_ -= pos_;
  pos_ = 0;
  uint64_t remaining = file_size_ - (buf_file_offset_ + len_);
  // Up to 1 MiB at a time, but no more than the file holds (small files are common).
  size_t target = std::max<size_t>(
      want, static_cast<size_t>(std::min<uint64_t>(uint64_t{1} << 20, len_ + remaining)));
  if (buf_.size() < target) buf_.resize(target);
  size_t to_read = static_cast<size_t>(std::min<uint64_t>(buf_.size() - len_, remaining));
  if (to_read > 0) {
    Result<size_t> n = file_->Read(buf_file_offset_ + len_, to_read, buf_.data() + len_);
    if (!n.ok()) {
      io_status_ = n.status();
      return false;
    }
    len_ += *n;
  }
  return len_ - pos_ >= want;
}

SegmentScanner::Step SegmentScanner::Next(RecordView* rec, uint64_t* offset, std::string* why) {
  Fill(kRecordMaxHeaderBytes);
  if (!io_status_.ok()) {
    *offset = buf_file_offset_ + pos_;
    *why = io_status_.ToString();
    return Step::kCorrupt;
  }
  *offset = buf_file_offset_ + pos_;
  if (len_ == pos_) return Step::kEnd;
  size_t needed = 0;
  DecodeOutcome d = DecodeRecord(buf_.data() + pos_, len_ - pos_, rec, why, &needed);
  if (d == DecodeOutcome::kTruncated && needed > len_ - pos_) {
    if (*offset + needed > file_size_) return Step::kTruncated;
    Fill(needed);
    if (!io_status_.ok()) {
      *why = io_status_.ToString();
      return Step::kCorrupt;
    }
    d = DecodeRecord(buf_.data() + pos_, len_ - pos_, rec, why, &needed);
  }
  if (d == DecodeOutcome::kTruncated) return Step::kTruncated;
  if (d == DecodeOutcome::kCorrupt) return Step::kCorrupt;
  pos_ += rec->size;
  return Step::kRecord;
}

SegmentScanner::Step SegmentScanner::Resync(uint64_t damage_offset, uint64_t min_seq,
                                            RecordView* rec, uint64_t* offset) {
  // Restart the buffer just after the damaged byte.
  buf_file_offset_ = damage_offset + 1;
  pos_ = 0;
  len_ = 0;
  std::string why;
  while (buf_file_offset_ + pos_ < file_size_) {
    if (!Fill(kRecordMaxHeaderBytes) && !io_status_.ok()) return Step::kCorrupt;
    if (len_ == pos_) break;
    size_t needed = 0;
    DecodeOutcome d = DecodeRecord(buf_.data() + pos_, len_ - pos_, rec, &why, &needed);
    if (d == DecodeOutcome::kTruncated && needed > len_ - pos_ &&
        buf_file_offset_ + pos_ + needed <= file_size_) {
      if (!Fill(needed) && !io_status_.ok()) return Step::kCorrupt;
      d = DecodeRecord(buf_.data() + pos_, len_ - pos_, rec, &why, &needed);
    }
    if (d == DecodeOutcome::kOk && rec->seq > min_seq) {
      *offset = buf_file_offset_ + pos_;
      pos_ += rec->size;
      return Step::kRecord;
    }
    ++pos_;
  }
  return Step::kEnd;
}

bool SegmentScanner::ZerosFrom(uint64_t offset) {
  std::string chunk(std::min<uint64_t>(file_size_ - std::min(offset, file_size_), 1u << 16), '\0');
  while (offset < file_size_) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), file_size_ - offset));
    Result<size_t> n = file_->Read(offset, want, chunk.data());
    if (!n.ok()) {
      io_status_ = n.status();
      return false;
    }
    if (*n == 0) break;  // the file is shorter than it was: nothing more to read
    const char* p = chunk.data();
    if (p[0] != 0 || std::memcmp(p, p + 1, *n - 1) != 0) return false;
    offset += *n;
  }
  return true;
}

HintWriter::HintWriter(Env* env, std::string tmp, std::string final_path,
                       std::unique_ptr<WritableFile> f)
    : env_(env),
      tmp_path_(std::move(tmp)),
      final_path_(std::move(final_path)),
      file_(std::move(f)),
      prev_end_(kFileHeaderBytes) {}

Result<std::unique_ptr<HintWriter>> HintWriter::Create(Env* env, const std::string& dir,
                                                       uint32_t segment_id) {
  std::string final_path = dir + "/" + HintFileName(segment_id);
  std::string tmp = final_path + ".tmp";
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> f, env->NewWritableFile(tmp));
  std::unique_ptr<HintWriter> w(new HintWriter(env, tmp, final_path, std::move(f)));
  char header[kFileHeaderBytes];
  EncodeFileHeader(header, FileHeader{kHintMagic, 0, segment_id});
  w->buf_.append(header, kFileHeaderBytes);
  return w;
}

Status HintWriter::FlushBuffer() {
  crc_ = crc32c::Extend(crc_, buf_.data(), buf_.size());
  Status s = file_->Append(buf_);
  written_ += buf_.size();
  buf_.clear();
  return s;
}

Status HintWriter::Flush(Progress* progress) {
  if (!buf_.empty()) VARVE_RETURN_IF_ERROR(FlushBuffer());
  progress->file_bytes = written_;
  progress->count = count_;
  progress->crc = crc_;
  progress->segment_bytes = prev_end_;
  return Status::Ok();
}

Status HintWriter::Add(const HintEntry& e) {
  if (e.offset < prev_end_) {
    return Status::InvalidArgument(final_path_ + ": hint entries out of segment order at offset " +
                                   std::to_string(e.offset));
  }
  char head[1 + kMaxVarint64Bytes + 8 + 3 * kMaxVarint64Bytes];
  char* p = head;
  uint8_t flags = e.flags & static_cast<uint8_t>(~kFlagHasExpiry);
  if (e.expiry_ms != 0) flags |= kFlagHasExpiry;
  *p++ = static_cast<char>(flags);
  const int64_t delta = static_cast<int64_t>(e.seq - prev_seq_);
  p = EncodeVarint64(p, ZigZag(delta));
  if (e.expiry_ms != 0) {
    EncodeFixed64(p, e.expiry_ms);
    p += 8;
  }
  p = EncodeVarint64(p, e.offset - prev_end_);
  p = EncodeVarint64(p, e.size);
  p = EncodeVarint64(p, e.key.size());
  buf_.append(head, static_cast<size_t>(p - head));
  buf_.append(e.key);
  prev_seq_ = e.seq;
  prev_end_ = uint64_t{e.offset} + e.size;
  ++count_;
  if (buf_.size() >= (1 << 20)) return FlushBuffer();
  return Status::Ok();
}

Status HintWriter::Finish(uint64_t segment_bytes) {
  char footer[kHintFooterBytes];
  EncodeFixed64(footer, count_);
  EncodeFixed64(footer + 8, segment_bytes);
  buf_.append(footer, 16);
  uint32_t crc = crc32c::Extend(crc_, buf_.data(), buf_.size());
  PutFixed32(&buf_, crc32c::Mask(crc));
  PutFixed32(&buf_, kHintEndMagic);
  VARVE_RETURN_IF_ERROR(file_->Append(buf_));
  buf_.clear();
  VARVE_RETURN_IF_ERROR(file_->Sync());
  VARVE_RETURN_IF_ERROR(file_->Close());
  return env_->RenameFile(tmp_path_, final_path_);
}

void HintWriter::Abandon() {
  file_->Close().ok();
  env_->RemoveFile(tmp_path_).ok();
}

Status ReadHintFile(Env* env, const std::string& path, uint32_t segment_id, uint64_t segment_bytes,
                    const std::function<void(const HintEntry&)>& fn) {
  return ReadHintFileBatched(env, path, segment_id, segment_bytes,
                             [&](const HintEntry* e, size_t n) {
                               for (size_t i = 0; i < n; ++i) fn(e[i]);
                             });
}

namespace {

// The footer field at field_offset, if the footer's end magic is intact; else 0.
uint64_t HintFooterField(Env* env, const std::string& path, size_t field_offset) {
  Result<std::unique_ptr<RandomAccessFile>> f = env->NewRandomAccessFile(path);
  if (!f.ok()) return 0;
  Result<uint64_t> size = (*f)->Size();
  if (!size.ok() || *size < kFileHeaderBytes + kHintFooterBytes) return 0;
  char footer[kHintFooterBytes];
  Result<size_t> n = (*f)->Read(*size - kHintFooterBytes, kHintFooterBytes, footer);
  if (!n.ok() || *n != kHintFooterBytes || DecodeFixed32(footer + 20) != kHintEndMagic) return 0;
  return DecodeFixed64(footer + field_offset);
}

}  // namespace

uint64_t HintEntryCount(Env* env, const std::string& path) { return HintFooterField(env, path, 0); }

uint64_t HintSegmentBytes(Env* env, const std::string& path) {
  return HintFooterField(env, path, 8);
}

Status ReadHintFileBatched(Env* env, const std::string& path, uint32_t segment_id,
                           uint64_t segment_bytes,
                           const std::function<void(const HintEntry*, size_t)>& fn) {
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> f, env->NewRandomAccessFile(path));
  f->AdviseSequential();
  VARVE_ASSIGN_OR_RETURN(uint64_t size, f->Size());
  if (size < kFileHeaderBytes + kHintFooterBytes) {
    return Status::Corruption(path + ": hint file truncated (" + std::to_string(size) + " bytes)");
  }
  // Not zero-filled first: the read writes every byte (a short read is refused).
  std::unique_ptr<char[]> buf(new char[size]);
  VARVE_ASSIGN_OR_RETURN(size_t n, f->Read(0, size, buf.get()));
  if (n != size) return Status::Corruption(path + ": short read");
  return ParseHintBatched(std::string_view(buf.get(), size), path, segment_id, segment_bytes, fn);
}

Status ParseHintBatched(std::string_view data, const std::string& path, uint32_t segment_id,
                        uint64_t segment_bytes,
                        const std::function<void(const HintEntry*, size_t)>& fn) {
  const uint64_t size = data.size(), n = data.size();
  if (size < kFileHeaderBytes + kHintFooterBytes) {
    return Status::Corruption(path + ": hint file truncated (" + std::to_string(size) + " bytes)");
  }
  FileHeader header;
  VARVE_RETURN_IF_ERROR(DecodeFileHeader(data.data(), n, kHintMagic, path, &header));
  if (header.segment_id != segment_id) {
    return Status::Corruption(path + ": hint names segment " + std::to_string(header.segment_id));
  }
  const char* footer = data.data() + size - kHintFooterBytes;
  if (DecodeFixed32(footer + 20) != kHintEndMagic) {
    return Status::Corruption(path + ": bad footer magic at offset " + std::to_string(size - 4));
  }
  uint32_t crc = crc32c::Value(data.data(), size - 8);
  if (crc32c::Unmask(DecodeFixed32(footer + 16)) != crc) {
    return Status::Corruption(path + ": bad hint checksum");
  }
  uint64_t count = DecodeFixed64(footer);
  if (DecodeFixed64(footer + 8) != segment_bytes) {
    return Status::Corruption(path + ": hint describes " +
                              std::to_string(DecodeFixed64(footer + 8)) +
                              " segment bytes, segment has " + std::to_string(segment_bytes));
  }
  const char* p = data.data() + kFileHeaderBytes;
  const char* limit = footer;
  uint64_t seen = 0;
  std::vector<HintEntry> group(kHintBatchEntries);
  size_t in_group = 0;
  auto malformed = [&](const char* at, const char* what) {
    return Status::Corruption(path + ": " + what + " in the entry at offset " +
                              std::to_string(at - data.data()));
  };
  uint64_t prev_seq = 0, prev_end = kFileHeaderBytes;
  // A canonical varint (what the writer produces), or nullptr.
  auto varint = [&](const char* at, uint64_t* v) -> const char* {
    const char* next = DecodeVarint64(at, limit, v);
    return next != nullptr && next - at == VarintLength(*v) ? next : nullptr;
  };
  while (p < limit) {
    HintEntry& e = group[in_group];
    const char* start = p;
    // Everything is checked before the entry is handed over: a hint that passed its checksum
    // but holds anything the writer never produces is refused whole.
    e.flags = static_cast<uint8_t>(*p++);
    if ((e.flags & ~kKnownFlags) != 0 || (e.flags & kTypeMask) > kTypeTombstone) {
      return malformed(start, "unknown flags");
    }
    uint64_t seq_delta, gap, size, key_len;
    if ((p = varint(p, &seq_delta)) == nullptr) return malformed(start, "bad sequence number");
    e.seq = prev_seq + static_cast<uint64_t>(UnZigZag(seq_delta));
    e.expiry_ms = 0;
    if (e.flags & kFlagHasExpiry) {
      if (limit - p < 8) return malformed(start, "truncated entry");
      e.expiry_ms = DecodeFixed64(p);
      p += 8;
      if (e.expiry_ms == 0) return malformed(start, "expiry flag without an expiry time");
    }
    if ((p = varint(p, &gap)) == nullptr || (p = varint(p, &size)) == nullptr ||
        (p = varint(p, &key_len)) == nullptr || key_len > static_cast<uint64_t>(limit - p)) {
      return malformed(start, "truncated entry");
    }
    // prev_end < 2^33, so none of this overflows.
    const uint64_t offset = prev_end + (gap > UINT32_MAX ? uint64_t{UINT32_MAX} + 1 : gap);
    if (offset > UINT32_MAX || size > UINT32_MAX || offset + size > segment_bytes) {
      return malformed(start, "record outside the segment");
    }
    e.offset = static_cast<uint32_t>(offset);
    e.size = static_cast<uint32_t>(size);
    e.key = std::string_view(p, key_len);
    p += key_len;
    prev_seq = e.seq;
    prev_end = offset + size;
    ++seen;
    if (++in_group == kHintBatchEntries) {
      fn(group.data(), in_group);
      in_group = 0;
    }
  }
  if (in_group > 0) fn(group.data(), in_group);
  if (seen != count) {
    return Status::Corruption(path + ": " + std::to_string(seen) + " entries, the footer says " +
                              std::to_string(count));
  }
  return Status::Ok();
}

Status WriteHintMark(Env* env, const std::string& dir, uint32_t segment_id,
                     const HintWriter::Progress& progress) {
  std::string mark(kHintMarkBytes, '\0');
  EncodeFileHeader(mark.data(), FileHeader{kHintMarkMagic, 0, segment_id});
  char* p = mark.data() + kFileHeaderBytes;
  EncodeFixed64(p, progress.file_bytes);
  EncodeFixed64(p + 8, progress.count);
  EncodeFixed64(p + 16, progress.segment_bytes);
  EncodeFixed32(p + 24, crc32c::Mask(progress.crc));
  EncodeFixed32(p + 28, crc32c::Mask(crc32c::Value(mark.data(), kHintMarkBytes - 4)));
  // No directory sync: a power failure that loses the rename leaves the previous mark, which
  // still describes a prefix of the same two files.
  return WriteFileAtomically(env, dir + "/" + HintMarkFileName(segment_id), mark, "");
}

Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data,
                           const std::string& sync_dir) {
  const std::string tmp = path + ".tmp";
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> f, env->NewWritableFile(tmp));
  Status s = f->Append(data);
  if (s.ok()) s = f->Sync();
  Status c = f->Close();
  if (s.ok()) s = c;
  if (s.ok()) s = env->RenameFile(tmp, path);
  if (!s.ok()) {
    env->RemoveFile(tmp).ok();
    return s;
  }
  return sync_dir.empty() ? Status::Ok() : env->SyncDir(sync_dir);
}

Status ReadHintPrefix(Env* env, const std::string& dir, uint32_t segment_id, HintPrefix* prefix) {
  std::string mark_path = dir + "/" + HintMarkFileName(segment_id);
  std::string tmp_path = dir + "/" + HintFileName(segment_id) + ".tmp";
  if (!env->FileExists(mark_path) || !env->FileExists(tmp_path)) {
    return Status::NotFound(mark_path + ": no hint mark");
  }
  char mark[kHintMarkBytes];
  {
    VARVE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> f,
                           env->NewRandomAccessFile(mark_path));
    VARVE_ASSIGN_OR_RETURN(size_t n, f->Read(0, kHintMarkBytes, mark));
    FileHeader fh;
    VARVE_RETURN_IF_ERROR(DecodeFileHeader(mark, n, kHintMarkMagic, mark_path, &fh));
    if (n != kHintMarkBytes || crc32c::Unmask(DecodeFixed32(mark + kHintMarkBytes - 4)) !=
                                   crc32c::Value(mark, kHintMarkBytes - 4)) {
      return Status::Corruption(mark_path + ": bad size or checksum");
    }
    if (fh.segment_id != segment_id) {
      return Status::Corruption(mark_path + ": names segment " + std::to_string(fh.segment_id));
    }
  }
  const char* p = mark + kFileHeaderBytes;
  uint64_t file_bytes = DecodeFixed64(p), count = DecodeFixed64(p + 8);
  prefix->count = count;
  prefix->segment_bytes = DecodeFixed64(p + 16);
  uint32_t crc = crc32c::Unmask(DecodeFixed32(p + 24));
  VARVE_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> f, env->NewRandomAccessFile(tmp_path));
  VARVE_ASSIGN_OR_RETURN(uint64_t tmp_size, f->Size());
  if (file_bytes < kFileHeaderBytes || file_bytes > tmp_size) {
    return Status::Corruption(tmp_path + ": shorter than its mark says (" +
                              std::to_string(tmp_size) + " of " + std::to_string(file_bytes) +
                              " bytes)");
  }
  // The footer the finished hint would have, over the entries so far (ParseHintBatched then
  // checks the bytes against the mark's crc through the footer's).
  prefix->image.resize(file_bytes + kHintFooterBytes);
  VARVE_ASSIGN_OR_RETURN(size_t n, f->Read(0, file_bytes, prefix->image.data()));
  if (n != file_bytes) return Status::Corruption(tmp_path + ": short read");
  char* footer = prefix->image.data() + file_bytes;
  EncodeFixed64(footer, count);
  EncodeFixed64(footer + 8, prefix->segment_bytes);
  EncodeFixed32(footer + 16, crc32c::Mask(crc32c::Extend(crc, footer, 16)));
  EncodeFixed32(footer + 20, kHintEndMagic);
  return Status::Ok();
}

}  // namespace varve
