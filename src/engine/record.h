// Encoding and decoding of log records, file headers and hint entries (docs/format.md).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine/record_format.h"
#include "varve/status.h"

namespace varve {

struct RecordView {
  uint8_t flags = 0;
  uint64_t seq = 0;
  uint64_t expiry_ms = 0;   // 0 = never
  uint32_t user_flags = 0;  // opaque client flags (memcached); 0 = none stored
  std::string_view key;
  std::string_view value;
  uint32_t size = 0;  // whole record bytes

  bool tombstone() const { return (flags & format::kTypeMask) == format::kTypeTombstone; }
  bool in_batch() const { return (flags & format::kFlagInBatch) != 0; }
  bool batch_commit() const { return (flags & format::kFlagBatchCommit) != 0; }
};

size_t RecordSize(size_t key_len, size_t value_len, bool has_expiry, bool has_user_flags = false);
// Appends one record; flags carry type and batch bits (the expiry and user-flags bits are
// derived from expiry_ms and user_flags being non-zero).
void AppendRecord(std::string* dst, uint8_t flags, uint64_t seq, uint64_t expiry_ms,
                  std::string_view key, std::string_view value, uint32_t user_flags = 0);

enum class DecodeOutcome { kOk, kTruncated, kCorrupt };
// Decodes the record at the start of [data, data + n). kTruncated: the bytes end inside the
// record (*needed, if given, receives the full size when the header was readable). kCorrupt:
// checksum mismatch or impossible fields; *why says which.
DecodeOutcome DecodeRecord(const char* data, size_t n, RecordView* out, std::string* why,
                           size_t* needed = nullptr);
// As DecodeRecord, but copies the value to value_dst (room for n bytes) before checking the
// checksum, which then reads the copy (in the cache) instead of the value where it lies (a
// mapping: one pass over it, not two). out->value points at value_dst; value_dst holds
// garbage unless kOk.
DecodeOutcome DecodeRecordCopyingValue(const char* data, size_t n, char* value_dst, RecordView* out,
                                       std::string* why);

struct FileHeader {
  std::string_view magic;
  uint32_t flags = 0;
  uint32_t segment_id = 0;
  // Segments: the last sequence number handed out when the segment was created. Opening takes
  // the highest of these and of all record sequences, so numbers are never reused even after
  // compaction dropped the records that carried the highest ones.
  uint64_t base_seq = 0;
};
void EncodeFileHeader(char* dst, const FileHeader& h);  // writes kFileHeaderBytes
// Checks magic (must equal expected_magic), version and checksum.
Status DecodeFileHeader(const char* src, size_t n, std::string_view expected_magic,
                        const std::string& file, FileHeader* out);

std::string SegmentFileName(uint32_t id);  // "0000000042.vlog"
std::string HintFileName(uint32_t id);     // "0000000042.hint"
// The checkpoint of a hint still being built ("0000000042.hint.mark", see format.md).
std::string HintMarkFileName(uint32_t id);
// Parses "NNNNNNNNNN.vlog" / ".hint"; returns false for other names.
bool ParseFileName(std::string_view name, uint32_t* id, std::string_view* ext);
// The ids of the segment files (NNNNNNNNNN.vlog) among a directory's names.
std::set<uint32_t> SegmentIdsIn(const std::vector<std::string>& names);

}  // namespace varve
