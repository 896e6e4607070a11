// Sequential reading of segment files and writing/reading of hint files.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "engine/record.h"
#include "varve/env.h"

namespace varve {

// Reads the records of a segment file in order, starting after its header.
class SegmentScanner {
 public:
  enum class Step { kRecord, kEnd, kTruncated, kCorrupt };

  // Starts at start: the end of the header, or a record boundary known from a hint.
  SegmentScanner(const RandomAccessFile* file, uint64_t file_size, std::string name,
                 uint64_t start = format::kFileHeaderBytes);
  // kRecord: *rec and *offset describe the next record (views valid until the next call).
  // kEnd: clean end of file. kTruncated: the file ends inside a record at *offset.
  // kCorrupt: the record at *offset is damaged; *why says how (the scan cannot continue).
  Step Next(RecordView* rec, uint64_t* offset, std::string* why);
  // After kCorrupt or kTruncated at damage_offset: looks for the next offset after it where a
  // whole record with a valid checksum and a sequence number above min_seq starts. Returns
  // kRecord (that record; the scan goes on from it) or kEnd if none follows (a torn tail).
  Step Resync(uint64_t damage_offset, uint64_t min_seq, RecordView* rec, uint64_t* offset);
  // An I/O error met by Next (reported as kCorrupt with why naming it).
  const Status& io_status() const { return io_status_; }
  // True if every byte from offset to the end of the file is zero: the space a mapped writer
  // reserves ahead of its data (Env::NewMappedWritableFile), which a crash leaves uncut. False
  // (and io_status set) on a read error.
  bool ZerosFrom(uint64_t offset);
  // True if step (not kEnd) at offset is the end of a writer segment's records: only the zeros
  // a mapped writer reserved follow (compaction output is never reserved).
  bool AtReservedEnd(Step step, uint64_t offset, bool writer_segment) {
    return step != Step::kEnd && writer_segment && io_status_.ok() && ZerosFrom(offset);
  }

 private:
  bool Fill(size_t want);

  const RandomAccessFile* file_;
  uint64_t file_size_;
  std::string name_;
  std::string buf_;
  uint64_t buf_file_offset_;  // file offset of buf_[0]
  size_t pos_ = 0;
  size_t len_ = 0;
  Status io_status_;
};

struct HintEntry {
  uint8_t flags = 0;
  uint64_t seq = 0;
  uint64_t expiry_ms = 0;
  uint32_t offset = 0;
  uint32_t size = 0;
  std::string_view key;
};

// Writes NNNNNNNNNN.hint.tmp, then Finish syncs it and renames it into place.
class HintWriter {
 public:
  static Result<std::unique_ptr<HintWriter>> Create(Env* env, const std::string& dir,
                                                    uint32_t segment_id);
  Status Add(const HintEntry& e);
  // segment_bytes: size of the segment file the hint describes (a mismatch at open means stale).
  Status Finish(uint64_t segment_bytes);
  // Removes the temporary file of an unfinished hint.
  void Abandon();

  // What the temporary file holds after Flush: its first file_bytes bytes (crc32c crc) hold
  // count entries describing the first segment_bytes bytes of the segment.
  struct Progress {
    uint64_t file_bytes = 0;
    uint64_t count = 0;
    uint32_t crc = 0;
    uint64_t segment_bytes = 0;
  };
  // Writes the buffered entries to the temporary file (not synced).
  Status Flush(Progress* progress);
  // Makes what Flush wrote durable; may run while another thread calls Add.
  Status SyncFile() { return file_->Sync(); }

 private:
  HintWriter(Env* env, std::string tmp, std::string final_path, std::unique_ptr<WritableFile> f);
  Status FlushBuffer();

  Env* env_;
  std::string tmp_path_;
  std::string final_path_;
  std::unique_ptr<WritableFile> file_;
  std::string buf_;
  uint32_t crc_ = 0;
  uint64_t written_ = 0;  // bytes in the file
  uint64_t count_ = 0;
  uint64_t prev_seq_ = 0;
  uint64_t prev_end_;  // end of the previous entry's record
};

// Reads a whole hint file, checking header, footer and checksum, and calls fn for each entry.
// Corruption if anything is off (the caller then rebuilds the hint from the segment).
Status ReadHintFile(Env* env, const std::string& path, uint32_t segment_id, uint64_t segment_bytes,
                    const std::function<void(const HintEntry&)>& fn);
// Entries per group of ReadHintFileBatched and ParseHintBatched (the last one may hold fewer):
// large, so that the index takes each group with one lock per shard.
constexpr size_t kHintBatchEntries = 2048;
// As ReadHintFile, handing entries over in groups (of up to kHintBatchEntries).
Status ReadHintFileBatched(Env* env, const std::string& path, uint32_t segment_id,
                           uint64_t segment_bytes,
                           const std::function<void(const HintEntry*, size_t)>& fn);
// As ReadHintFileBatched, on a hint file's bytes already in memory.
Status ParseHintBatched(std::string_view data, const std::string& path, uint32_t segment_id,
                        uint64_t segment_bytes,
                        const std::function<void(const HintEntry*, size_t)>& fn);

// A hint being built, as its last mark (the .hint.mark file) describes it: the checked
// bytes of its temporary file, completed with a footer into a hint of the segment's first
// segment_bytes bytes (durable in the segment before the mark was written).
struct HintPrefix {
  std::string image;  // a whole hint file: header, entries, footer
  uint64_t segment_bytes = 0;
  uint64_t count = 0;  // entries
};
// Replaces the file at path with data in one step: path.tmp is written and synced, then renamed
// over path (the rename made durable by a directory sync if sync_dir names the directory).
// Readers see the old file or the new one, never a part.
Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data,
                           const std::string& sync_dir);

// Writes dir/NNNNNNNNNN.hint.mark for progress (temporary file, sync, rename).
Status WriteHintMark(Env* env, const std::string& dir, uint32_t segment_id,
                     const HintWriter::Progress& progress);
// Reads the mark and the temporary hint file of segment_id; Corruption or NotFound if either is
// missing, damaged or disagrees with the other.
Status ReadHintPrefix(Env* env, const std::string& dir, uint32_t segment_id, HintPrefix* prefix);

// The entry count / segment size in a hint file's footer, or 0 if it cannot be read.
uint64_t HintEntryCount(Env* env, const std::string& path);
uint64_t HintSegmentBytes(Env* env, const std::string& path);

}  // namespace varve
