#include "engine/record.h"

#include <cstdio>
#include <cstring>

#include "util/coding.h"
#include "util/crc32c.h"

namespace varve {

using namespace format;

size_t RecordSize(size_t key_len, size_t value_len, bool has_expiry, bool has_user_flags) {
  return 4 + 1 + 8 + (has_expiry ? 8 : 0) + (has_user_flags ? 4 : 0) + VarintLength(key_len) +
         VarintLength(value_len) + key_len + value_len;
}

void AppendRecord(std::string* dst, uint8_t flags, uint64_t seq, uint64_t expiry_ms,
                  std::string_view key, std::string_view value, uint32_t user_flags) {
  flags &= static_cast<uint8_t>(~(kFlagHasExpiry | kFlagHasUserFlags));
  if (expiry_ms != 0) flags |= kFlagHasExpiry;
  if (user_flags != 0) flags |= kFlagHasUserFlags;
  size_t start = dst->size();
  char head[kRecordMaxHeaderBytes];
  char* p = head + 4;
  *p++ = static_cast<char>(flags);
  EncodeFixed64(p, seq);
  p += 8;
  if (expiry_ms != 0) {
    EncodeFixed64(p, expiry_ms);
    p += 8;
  }
  if (user_flags != 0) {
    EncodeFixed32(p, user_flags);
    p += 4;
  }
  p = EncodeVarint64(p, key.size());
  p = EncodeVarint64(p, value.size());
  dst->append(head, static_cast<size_t>(p - head));
  dst->append(key);
  dst->append(value);
  char* rec = dst->data() + start;
  uint32_t crc = crc32c::Value(rec + 4, dst->size() - start - 4);
  EncodeFixed32(rec, crc32c::Mask(crc));
}

namespace {

// Checks everything but the checksum; on kOk, *out has every field, key and value pointing into
// data, and out->size is the record's size.
DecodeOutcome DecodeFields(const char* data, size_t n, RecordView* out, std::string* why,
                           size_t* needed) {
  if (n < kRecordMinHeaderBytes) return DecodeOutcome::kTruncated;
  const char* limit = data + n;
  const char* p = data + 4;
  uint8_t flags = static_cast<uint8_t>(*p++);
  if ((flags & ~kKnownFlags) != 0 || (flags & kTypeMask) > kTypeTombstone) {
    *why = "unknown record flags";
    return DecodeOutcome::kCorrupt;
  }
  uint64_t seq = DecodeFixed64(p);
  p += 8;
  uint64_t expiry = 0;
  if (flags & kFlagHasExpiry) {
    if (limit - p < 8) return DecodeOutcome::kTruncated;
    expiry = DecodeFixed64(p);
    p += 8;
    if (expiry == 0) {
      *why = "expiry flag without an expiry time";
      return DecodeOutcome::kCorrupt;
    }
  }
  uint32_t user_flags = 0;
  if (flags & kFlagHasUserFlags) {
    if (limit - p < 4) return DecodeOutcome::kTruncated;
    user_flags = DecodeFixed32(p);
    p += 4;
    if (user_flags == 0) {
      *why = "user-flags flag without user flags";
      return DecodeOutcome::kCorrupt;
    }
  }
  uint64_t key_len = 0, value_len = 0;
  const char* q = DecodeVarint64(p, limit, &key_len);
  if (q == nullptr) {
    if (limit - p >= kMaxVarint64Bytes) {
      *why = "bad key length";
      return DecodeOutcome::kCorrupt;
    }
    return DecodeOutcome::kTruncated;
  }
  if (q - p != VarintLength(key_len)) {
    *why = "non-minimal key length";
    return DecodeOutcome::kCorrupt;
  }
  p = q;
  q = DecodeVarint64(p, limit, &value_len);
  if (q == nullptr) {
    if (limit - p >= kMaxVarint64Bytes) {
      *why = "bad value length";
      return DecodeOutcome::kCorrupt;
    }
    return DecodeOutcome::kTruncated;
  }
  if (q - p != VarintLength(value_len)) {
    *why = "non-minimal value length";
    return DecodeOutcome::kCorrupt;
  }
  p = q;
  if (key_len > kMaxKeyBytes || value_len > kMaxValueBytes) {
    *why = "key or value length out of range";
    return DecodeOutcome::kCorrupt;
  }
  if ((flags & kTypeMask) == kTypeTombstone && value_len != 0) {
    *why = "tombstone with a value";
    return DecodeOutcome::kCorrupt;
  }
  size_t total = static_cast<size_t>(p - data) + key_len + value_len;
  if (needed != nullptr) *needed = total;
  if (total > n) return DecodeOutcome::kTruncated;
  out->flags = flags;
  out->seq = seq;
  out->expiry_ms = expiry;
  out->user_flags = user_flags;
  out->key = std::string_view(p, key_len);
  out->value = std::string_view(p + key_len, value_len);
  out->size = static_cast<uint32_t>(total);
  return DecodeOutcome::kOk;
}

DecodeOutcome BadChecksum(std::string* why) {
  *why = "bad checksum";
  return DecodeOutcome::kCorrupt;
}

}  // namespace

DecodeOutcome DecodeRecord(const char* data, size_t n, RecordView* out, std::string* why,
                           size_t* needed) {
  RecordView rec;
  DecodeOutcome o = DecodeFields(data, n, &rec, why, needed);
  if (o != DecodeOutcome::kOk) return o;
  if (crc32c::Value(data + 4, rec.size - 4) != crc32c::Unmask(DecodeFixed32(data))) {
    return BadChecksum(why);
  }
  *out = rec;
  return DecodeOutcome::kOk;
}

DecodeOutcome DecodeRecordCopyingValue(const char* data, size_t n, char* value_dst, RecordView* out,
                                       std::string* why) {
  RecordView rec;
  DecodeOutcome o = DecodeFields(data, n, &rec, why, nullptr);
  if (o != DecodeOutcome::kOk) return o;
  std::memcpy(value_dst, rec.value.data(), rec.value.size());
  uint32_t crc = crc32c::Value(data + 4, static_cast<size_t>(rec.value.data() - data) - 4);
  crc = crc32c::Extend(crc, value_dst, rec.value.size());
  if (crc != crc32c::Unmask(DecodeFixed32(data))) return BadChecksum(why);
  rec.value = std::string_view(value_dst, rec.value.size());
  *out = rec;
  return DecodeOutcome::kOk;
}

void EncodeFileHeader(char* dst, const FileHeader& h) {
  std::memset(dst, 0, kFileHeaderBytes);
  std::memcpy(dst, h.magic.data(), 8);
  EncodeFixed16(dst + 8, kMajorVersion);
  EncodeFixed16(dst + 10, kMinorVersion);
  EncodeFixed32(dst + 12, h.flags);
  EncodeFixed32(dst + 16, h.segment_id);
  EncodeFixed64(dst + 20, h.base_seq);
  EncodeFixed32(dst + 28, crc32c::Mask(crc32c::Value(dst, 28)));
}

Status DecodeFileHeader(const char* src, size_t n, std::string_view expected_magic,
                        const std::string& file, FileHeader* out) {
  if (n < kFileHeaderBytes) return Status::Corruption(file + ": file header truncated");
  if (std::string_view(src, 8) != expected_magic) {
    return Status::Corruption(file + ": bad magic (not a " + std::string(expected_magic) +
                              " file)");
  }
  if (crc32c::Unmask(DecodeFixed32(src + 28)) != crc32c::Value(src, 28)) {
    return Status::Corruption(file + ": bad file header checksum at offset 0");
  }
  uint16_t major = DecodeFixed16(src + 8);
  if (major != kMajorVersion) {
    return Status::NotSupported(file + ": format major version " + std::to_string(major) +
                                " is not supported (this build reads version " +
                                std::to_string(kMajorVersion) + ")");
  }
  out->magic = expected_magic;
  out->flags = DecodeFixed32(src + 12);
  out->segment_id = DecodeFixed32(src + 16);
  out->base_seq = DecodeFixed64(src + 20);
  return Status::Ok();
}

static std::string NumberedName(uint32_t id, const char* ext) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%010u.%s", id, ext);
  return buf;
}

std::string SegmentFileName(uint32_t id) { return NumberedName(id, "vlog"); }
std::string HintFileName(uint32_t id) { return NumberedName(id, "hint"); }
std::string HintMarkFileName(uint32_t id) { return NumberedName(id, "hint.mark"); }

bool ParseFileName(std::string_view name, uint32_t* id, std::string_view* ext) {
  if (name.size() != 15 || name[10] != '.') return false;
  uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  if (v > UINT32_MAX) return false;
  std::string_view e = name.substr(11);
  if (e != "vlog" && e != "hint") return false;
  *id = static_cast<uint32_t>(v);
  *ext = e;
  return true;
}

std::set<uint32_t> SegmentIdsIn(const std::vector<std::string>& names) {
  std::set<uint32_t> ids;
  for (const std::string& name : names) {
    uint32_t id;
    std::string_view ext;
    if (ParseFileName(name, &id, &ext) && ext == "vlog") ids.insert(id);
  }
  return ids;
}

}  // namespace varve
