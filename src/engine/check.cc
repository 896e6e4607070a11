// Store checker (see check.h). Each file is read once, front to back; memory is bounded by one
// hint file's entries (ReadHintFile holds the whole hint in memory anyway).
#include "engine/check.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <string_view>
#include <thread>
#include <utility>

#include "engine/record.h"
#include "engine/record_format.h"
#include "engine/segment_io.h"
#include "util/coding.h"
#include "util/crc32c.h"

namespace varve {

using namespace format;

namespace {

// What one hint entry claims about a record of its segment.
struct HintClaim {
  uint64_t hint_offset = 0;  // where the entry sits in the hint file
  uint32_t offset = 0;       // where the record sits in the segment
  uint32_t size = 0;
  uint64_t seq = 0;
  uint64_t expiry_ms = 0;
  uint8_t type = 0;
  size_t key_hash = 0;
};

// A current, intact hint file and its entries in segment order.
struct Hint {
  std::string path;
  uint64_t size = 0;
  // Segment bytes the hint describes: its whole segment, or the records before a tail's reopen
  // (the close-time hint of a tail that took writes again; recovery scans the rest).
  uint64_t end = 0;
  std::vector<HintClaim> claims;
};

struct SegmentFile {
  uint32_t id = 0;
  std::string path;
  std::unique_ptr<RandomAccessFile> file;
  uint64_t size = 0;
  bool header_ok = false;
  bool compaction_output = false;
};

size_t KeyHash(std::string_view key) { return std::hash<std::string_view>{}(key); }

// Encoded size of a hint entry (HintWriter::Add), to know where each entry sits in the file.
uint64_t HintEntryBytes(const HintEntry& e) {
  return 1 + 8 + ((e.flags & kFlagHasExpiry) != 0 ? 8 : 0) + 4 + 4 +
         static_cast<uint64_t>(VarintLength(e.key.size())) + e.key.size();
}

// Engine messages start with the file's path, which Damage already names.
std::string Describe(const Status& s, const std::string& path) {
  const std::string& msg = s.message();
  if (s.IsCorruption() && msg.starts_with(path + ": ")) return msg.substr(path.size() + 2);
  return s.ToString();
}

// The number after the last "offset " in an engine message, or 0 if there is none.
uint64_t OffsetIn(const std::string& msg) {
  size_t at = msg.rfind("offset ");
  if (at == std::string::npos) return 0;
  uint64_t v = 0;
  for (size_t i = at + 7; i < msg.size() && std::isdigit(static_cast<unsigned char>(msg[i])); ++i) {
    v = v * 10 + static_cast<uint64_t>(msg[i] - '0');
  }
  return v;
}

// What becomes of the records after a damaged one, which the scan cannot reach.
std::string LaterRecords(const SegmentFile& seg, uint64_t offset, const Hint* hint) {
  if (hint == nullptr) {
    return " (the next open does not load the " + std::to_string(seg.size - offset) +
           " bytes from here to the end of the segment)";
  }
  auto later = std::count_if(hint->claims.begin(), hint->claims.end(),
                             [&](const HintClaim& c) { return c.offset > offset; });
  return " (the segment's hint lists " + std::to_string(later) + " records after it)";
}

// The segment's size once it grows past seg.size within a short wait, else seg.size. Growth means
// that a process with the store open is writing the segment (the tail, a compaction output, the
// header of a new segment), so an incomplete end was a write in progress.
uint64_t SizeAfterWait(const SegmentFile& seg) {
  for (int i = 0; i < 10; ++i) {
    Result<uint64_t> size = seg.file->Size();
    if (size.ok() && *size > seg.size) return *size;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return seg.size;
}

// True if the bytes at offset change within a short wait: a process with the store open is
// copying a record there (mmap_writes), so what looked incomplete was a write in progress.
bool BytesChangeAfterWait(const SegmentFile& seg, uint64_t offset) {
  char before[512], after[512];
  Result<size_t> n = seg.file->Read(offset, sizeof(before), before);
  if (!n.ok()) return false;
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    Result<size_t> m = seg.file->Read(offset, sizeof(after), after);
    if (!m.ok()) return false;
    if (*m != *n || std::memcmp(before, after, *n) != 0) return true;
  }
  return false;
}

class Checker {
 public:
  Checker(Env* env, std::string dir, CheckReport* report)
      : env_(env), dir_(std::move(dir)), report_(report) {}

  Status Run();

 private:
  // The segment ids that a valid OBSOLETE file lists (the next open deletes them).
  std::set<uint32_t> ReadObsolete();
  void AddDamage(const std::string& file, uint64_t offset, std::string what) {
    report_->damage.push_back(Damage{file, offset, std::move(what)});
  }
  // False if the file vanished (compaction deleted it after the listing) or cannot be read.
  bool OpenSegment(uint32_t id, bool newest, SegmentFile* seg);
  // True if the segment has a hint file that is current and intact; its entries go in *hint.
  // A segment growing meanwhile gets its new size.
  bool LoadHint(SegmentFile* seg, Hint* hint);
  void ScanSegment(const SegmentFile& seg, bool is_tail, Hint* hint);

  Env* const env_;
  const std::string dir_;
  CheckReport* const report_;
};

Status Checker::Run() {
  VARVE_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir_));
  // Compaction inputs whose deletion was interrupted are gone after the next open: not checked.
  const std::set<uint32_t> obsolete = ReadObsolete();
  std::set<uint32_t> segment_ids, hint_ids;
  for (const std::string& name : names) {
    uint32_t id;
    std::string_view ext;
    if (!ParseFileName(name, &id, &ext) || obsolete.contains(id)) continue;
    (ext == "vlog" ? segment_ids : hint_ids).insert(id);
  }

  std::vector<SegmentFile> segs;
  for (uint32_t id : segment_ids) {
    SegmentFile seg;
    if (!OpenSegment(id, id == *segment_ids.rbegin(), &seg)) continue;
    seg.file.reset();  // one open segment at a time, however many the store has
    segs.push_back(std::move(seg));
  }
  // The segment the writer appended to last, as recovery picks it: only its end can be torn.
  const SegmentFile* tail = nullptr;
  for (const SegmentFile& seg : segs) {
    if (seg.header_ok && !seg.compaction_output) tail = &seg;
  }
  for (SegmentFile& seg : segs) {
    Result<std::unique_ptr<RandomAccessFile>> file = env_->NewRandomAccessFile(seg.path);
    if (!file.ok()) {
      if (env_->FileExists(seg.path)) AddDamage(seg.path, 0, file.status().ToString());
      continue;  // else compaction deleted it meanwhile
    }
    seg.file = std::move(file).value();
    seg.file->AdviseSequential();
    Hint hint;
    bool have_hint = hint_ids.contains(seg.id) && LoadHint(&seg, &hint);
    if (seg.header_ok) ScanSegment(seg, &seg == tail, have_hint ? &hint : nullptr);
    seg.file.reset();
  }

  // Checked last, and confirmed after a pause, so that a compaction that was deleting a segment
  // and then its hint has finished.
  std::vector<uint32_t> orphans;
  for (uint32_t id : hint_ids) {
    if (!segment_ids.contains(id)) orphans.push_back(id);
  }
  if (!orphans.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (uint32_t id : orphans) {
    std::string path = dir_ + "/" + HintFileName(id);
    if (!env_->FileExists(path) || env_->FileExists(dir_ + "/" + SegmentFileName(id))) continue;
    ++report_->hint_files;
    AddDamage(
        path, 0,
        "hint file without its segment " + SegmentFileName(id) + " (the next open ignores it)");
  }
  return Status::Ok();
}

std::set<uint32_t> Checker::ReadObsolete() {
  const std::string path = dir_ + "/OBSOLETE";
  Result<std::unique_ptr<RandomAccessFile>> file = env_->NewRandomAccessFile(path);
  if (!file.ok()) {
    if (env_->FileExists(path)) AddDamage(path, 0, file.status().ToString());
    return {};
  }
  Result<uint64_t> size = (*file)->Size();
  if (!size.ok()) {
    AddDamage(path, 0, size.status().ToString());
    return {};
  }
  report_->bytes += *size;
  const std::string consequence = " (the next open ignores it and deletes no segment)";
  // It lists the inputs of one compaction: far fewer than this many.
  constexpr uint64_t kMaxIds = 1 << 24;
  if (*size > kFileHeaderBytes + 8 + 4 * kMaxIds) {
    AddDamage(path, 0, "impossible size " + std::to_string(*size) + consequence);
    return {};
  }
  std::string data(*size, '\0');
  Result<size_t> n = (*file)->Read(0, data.size(), data.data());
  if (!n.ok()) {
    AddDamage(path, 0, n.status().ToString());
    return {};
  }
  data.resize(*n);
  FileHeader fh;
  Status s = DecodeFileHeader(data.data(), data.size(), kObsoleteMagic, path, &fh);
  if (!s.ok()) {
    AddDamage(path, 0, Describe(s, path) + consequence);
    return {};
  }
  uint64_t count =
      data.size() >= kFileHeaderBytes + 8 ? DecodeFixed32(data.data() + kFileHeaderBytes) : 0;
  if (data.size() != kFileHeaderBytes + 8 + count * 4) {
    AddDamage(path, kFileHeaderBytes,
              "lists " + std::to_string(count) + " segments in a file of " +
                  std::to_string(data.size()) + " bytes" + consequence);
    return {};
  }
  if (crc32c::Unmask(DecodeFixed32(data.data() + data.size() - 4)) !=
      crc32c::Value(data.data(), data.size() - 4)) {
    AddDamage(path, data.size() - 4, "bad checksum" + consequence);
    return {};
  }
  std::set<uint32_t> ids;
  for (uint64_t i = 0; i < count; ++i) {
    ids.insert(DecodeFixed32(data.data() + kFileHeaderBytes + 4 + 4 * i));
  }
  return ids;
}

bool Checker::OpenSegment(uint32_t id, bool newest, SegmentFile* seg) {
  seg->id = id;
  seg->path = dir_ + "/" + SegmentFileName(id);
  Result<std::unique_ptr<RandomAccessFile>> file = env_->NewRandomAccessFile(seg->path);
  if (!file.ok()) {
    if (env_->FileExists(seg->path)) AddDamage(seg->path, 0, file.status().ToString());
    return false;
  }
  seg->file = std::move(file).value();
  Result<uint64_t> size = seg->file->Size();
  if (!size.ok()) {
    AddDamage(seg->path, 0, size.status().ToString());
    return false;
  }
  seg->size = *size;
  ++report_->segments;
  report_->bytes += seg->size;

  char header[kFileHeaderBytes];
  Result<size_t> n = seg->file->Read(0, kFileHeaderBytes, header);
  if (!n.ok()) {
    AddDamage(seg->path, 0, n.status().ToString());
    return true;
  }
  FileHeader fh;
  Status s = DecodeFileHeader(header, *n, kSegmentMagic, seg->path, &fh);
  if (!s.ok() && newest && seg->size <= kFileHeaderBytes) {
    uint64_t size = SizeAfterWait(*seg);
    if (size > seg->size) {
      // A process that has the store open was creating the segment: read what it wrote.
      report_->bytes += size - seg->size;
      seg->size = size;
      n = seg->file->Read(0, kFileHeaderBytes, header);
      s = n.ok() ? DecodeFileHeader(header, *n, kSegmentMagic, seg->path, &fh) : n.status();
    }
  }
  if (!s.ok()) {
    // Mirrors recovery: a segment with no more than a torn header never held anything.
    if (seg->size <= kFileHeaderBytes) {
      AddDamage(seg->path, 0,
                "torn header (the segment is removed at next open): " + Describe(s, seg->path));
    } else {
      AddDamage(seg->path, 0, Describe(s, seg->path) + " (the store will not open)");
    }
    return true;
  }
  if (fh.segment_id != id) {
    AddDamage(
        seg->path, 16,
        "header names segment " + std::to_string(fh.segment_id) + " (the store will not open)");
    return true;
  }
  seg->header_ok = true;
  seg->compaction_output = (fh.flags & kFileFlagCompactionOutput) != 0;
  return true;
}

bool Checker::LoadHint(SegmentFile* segp, Hint* hint) {
  SegmentFile& seg = *segp;
  hint->path = dir_ + "/" + HintFileName(seg.id);
  {
    Result<std::unique_ptr<RandomAccessFile>> file = env_->NewRandomAccessFile(hint->path);
    if (!file.ok()) {
      if (env_->FileExists(hint->path)) AddDamage(hint->path, 0, file.status().ToString());
      return false;
    }
    Result<uint64_t> size = (*file)->Size();
    if (!size.ok()) {
      AddDamage(hint->path, 0, size.status().ToString());
      return false;
    }
    hint->size = *size;
    ++report_->hint_files;
    report_->bytes += hint->size;
    // An intact footer describing another segment size: stale rather than damaged.
    if (hint->size >= kFileHeaderBytes + kHintFooterBytes) {
      char footer[kHintFooterBytes];
      Result<size_t> n = (*file)->Read(hint->size - kHintFooterBytes, kHintFooterBytes, footer);
      uint64_t described =
          n.ok() && *n == kHintFooterBytes && DecodeFixed32(footer + 20) == kHintEndMagic
              ? DecodeFixed64(footer + 8)
              : seg.size;
      if (described > seg.size) {
        // A compaction output finished after its size was taken: its hint comes last.
        Result<uint64_t> now = seg.file->Size();
        if (now.ok() && *now == described) {
          report_->bytes += described - seg.size;
          seg.size = described;
        }
      }
      if (described > seg.size) {
        // Segments never shrink: recovery trusts the hint and fails reads of the lost records.
        AddDamage(seg.path, seg.size,
                  std::to_string(described - seg.size) +
                      " bytes missing at the end (its hint describes " + std::to_string(described) +
                      "); reads of records past this offset fail");
        return false;
      }
      if (described < seg.size && described >= kFileHeaderBytes && !seg.compaction_output) {
        hint->end = described;  // a reopened tail's close-time hint: checked for its records
      } else if (described != seg.size) {
        AddDamage(hint->path, hint->size - kHintFooterBytes + 8,
                  "stale hint: describes " + std::to_string(described) + " segment bytes, " +
                      SegmentFileName(seg.id) + " has " + std::to_string(seg.size) +
                      " (the next open ignores it and scans the segment)");
        return false;
      }
    }
  }
  if (hint->end == 0) hint->end = seg.size;
  uint64_t pos = kFileHeaderBytes;
  Status s = ReadHintFile(env_, hint->path, seg.id, hint->end, [&](const HintEntry& e) {
    hint->claims.push_back(HintClaim{pos, e.offset, e.size, e.seq, e.expiry_ms,
                                     static_cast<uint8_t>(e.flags & kTypeMask), KeyHash(e.key)});
    pos += HintEntryBytes(e);
  });
  if (!s.ok()) {
    if (!env_->FileExists(hint->path)) return false;  // deleted with its segment meanwhile
    AddDamage(hint->path, OffsetIn(s.message()),
              Describe(s, hint->path) + " (the next open ignores it and scans the segment)");
    return false;
  }
  std::stable_sort(hint->claims.begin(), hint->claims.end(),
                   [](const HintClaim& a, const HintClaim& b) { return a.offset < b.offset; });
  return true;
}

void Checker::ScanSegment(const SegmentFile& seg, bool is_tail, Hint* hint) {
  // Recovery scans (and so cuts) the tail only when no current hint describes it.
  const bool cut_at_open =
      (is_tail || seg.compaction_output) && (hint == nullptr || hint->end < seg.size);
  SegmentScanner scanner(seg.file.get(), seg.size, seg.path);

  // Hint entries are matched against records as the scan passes them; one report per hint
  // file is enough to tell the user that the next open must not trust it.
  size_t next_claim = 0;
  bool hint_damaged = false;
  auto hint_mismatch = [&](uint64_t hint_offset, const std::string& what) {
    if (hint_damaged) return;
    hint_damaged = true;
    AddDamage(hint->path, hint_offset, what + " (the next open trusts this hint)");
  };
  auto where_next_claim = [&] {
    return next_claim < hint->claims.size() ? hint->claims[next_claim].hint_offset
                                            : hint->size - kHintFooterBytes;
  };
  // The hint's entry for the record at offset (checked against it), or nullptr if none.
  auto match_claim = [&](const RecordView& rec, uint64_t offset) -> const HintClaim* {
    if (hint == nullptr) return nullptr;
    while (next_claim < hint->claims.size() && hint->claims[next_claim].offset < offset) {
      hint_mismatch(hint->claims[next_claim].hint_offset,
                    "entry points at segment offset " +
                        std::to_string(hint->claims[next_claim].offset) +
                        ", which is not the start of a record");
      ++next_claim;
    }
    if (next_claim == hint->claims.size() || hint->claims[next_claim].offset != offset) {
      return nullptr;
    }
    const HintClaim& c = hint->claims[next_claim++];
    const char* differs = c.key_hash != KeyHash(rec.key)      ? "key"
                          : c.seq != rec.seq                  ? "sequence"
                          : c.size != rec.size                ? "size"
                          : c.type != (rec.flags & kTypeMask) ? "type"
                          : c.expiry_ms != rec.expiry_ms      ? "expiry"
                                                              : nullptr;
    if (differs != nullptr) {
      hint_mismatch(c.hint_offset, "entry for segment offset " + std::to_string(offset) +
                                       " differs from the record there (" + differs + ")");
    }
    return &c;
  };
  auto missing_claim = [&](uint64_t offset) {
    hint_mismatch(where_next_claim(),
                  "no entry for the record at segment offset " + std::to_string(offset));
  };

  // Records of a batch whose commit record has not been seen yet.
  struct BatchRecord {
    uint64_t offset;
    const HintClaim* claim;
  };
  std::vector<BatchRecord> batch;
  uint64_t last_good = kFileHeaderBytes;  // end of the last committed record
  auto uncommitted_batch = [&](bool at_end) {
    uint64_t first = batch.front().offset;
    for (const BatchRecord& r : batch) {
      if (r.claim != nullptr) {
        hint_mismatch(r.claim->hint_offset, "entry for the record at segment offset " +
                                                std::to_string(r.offset) +
                                                ", which belongs to an uncommitted batch");
      }
    }
    std::string records = std::to_string(batch.size()) + " records";
    if (at_end && cut_at_open) {
      AddDamage(seg.path, first,
                "torn tail (cut at next open): uncommitted batch of " + records + ", " +
                    std::to_string(seg.size - last_good) + " bytes dropped");
    } else {
      AddDamage(seg.path, first, "uncommitted batch of " + records + " (ignored at open)");
    }
  };

  uint64_t max_seq = 0;
  bool resynced = false;  // rec and offset already hold the record found after damage
  RecordView rec;
  uint64_t offset = 0;
  while (true) {
    std::string why;
    SegmentScanner::Step step = SegmentScanner::Step::kRecord;
    if (!resynced) step = scanner.Next(&rec, &offset, &why);
    resynced = false;
    if (step == SegmentScanner::Step::kRecord) {
      ++report_->records;
      max_seq = std::max(max_seq, rec.seq);
      const HintClaim* claim = match_claim(rec, offset);
      if (rec.in_batch()) {
        batch.push_back(BatchRecord{offset, claim});
        if (rec.batch_commit()) {
          for (const BatchRecord& r : batch) {
            if (r.claim == nullptr && hint != nullptr && r.offset < hint->end) {
              missing_claim(r.offset);
            }
          }
          batch.clear();
          last_good = offset + rec.size;
        }
        continue;
      }
      if (!batch.empty()) {
        uncommitted_batch(false);
        batch.clear();
      }
      if (claim == nullptr && hint != nullptr && offset < hint->end) missing_claim(offset);
      last_good = offset + rec.size;
      continue;
    }

    // Zeros from here to the end are space a mapped writer reserved ahead of its data (a store
    // that is open, or one a crash left uncut; recovery cuts it): the end of the records.
    bool reserved_end = scanner.AtReservedEnd(step, offset, !seg.compaction_output);
    if (step == SegmentScanner::Step::kEnd || reserved_end) {
      if (!batch.empty() && SizeAfterWait(seg) == seg.size &&
          !(is_tail && BytesChangeAfterWait(seg, batch.back().offset))) {
        uncommitted_batch(true);
      }
      if (hint != nullptr && next_claim < hint->claims.size()) {
        hint_mismatch(hint->claims[next_claim].hint_offset,
                      "entry points at segment offset " +
                          std::to_string(hint->claims[next_claim].offset) +
                          ", past the last record");
      }
      return;
    }

    if (is_tail && scanner.io_status().ok() && BytesChangeAfterWait(seg, offset)) return;
    // Like recovery: if a good record follows the damage, skip to it and go on.
    if (scanner.io_status().ok() &&
        (step == SegmentScanner::Step::kCorrupt || SizeAfterWait(seg) == seg.size)) {
      uint64_t damage_at = offset;
      if (scanner.Resync(damage_at, seg.compaction_output ? 0 : max_seq, &rec, &offset) ==
          SegmentScanner::Step::kRecord) {
        std::string what =
            step == SegmentScanner::Step::kCorrupt ? why : "record length past the end";
        AddDamage(seg.path, damage_at,
                  what + "; " + std::to_string(offset - damage_at) +
                      " bytes skipped up to the next good record at offset " +
                      std::to_string(offset) +
                      (batch.empty() ? "" : ", with the batch it interrupts"));
        batch.clear();
        // Entries pointing into the skipped bytes were reported with the damage.
        while (hint != nullptr && next_claim < hint->claims.size() &&
               hint->claims[next_claim].offset < offset) {
          ++next_claim;
        }
        resynced = true;
        continue;
      }
    }
    // No good record after the damage: the rest of the segment is lost.
    std::string cut = std::to_string(seg.size - last_good) + " bytes from offset " +
                      std::to_string(last_good) + " dropped";
    if (!batch.empty()) {
      cut += ", among them the " + std::to_string(batch.size()) +
             " earlier records of the batch it belongs to";
    }
    if (step == SegmentScanner::Step::kTruncated) {
      if (SizeAfterWait(seg) > seg.size) return;
      AddDamage(seg.path, offset,
                cut_at_open ? "torn tail (cut at next open): incomplete record; " + cut
                            : "incomplete record at the end of the segment");
    } else if (!scanner.io_status().ok()) {
      AddDamage(seg.path, offset, scanner.io_status().ToString());
    } else {
      AddDamage(seg.path, offset,
                cut_at_open
                    ? why + " (newest segment: cut here at next open as a torn tail; " + cut + ")"
                    : why + LaterRecords(seg, offset, hint));
    }
    return;
  }
}

}  // namespace

Status CheckStore(Env* env, const std::string& dir, CheckReport* report) {
  return Checker(env, dir, report).Run();
}

}  // namespace varve
