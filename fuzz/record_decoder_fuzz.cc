// fuzz_record_decoder: DecodeRecord, and SegmentScanner (Next and Resync) over a segment whose
// records are the fuzzer's bytes. Input layout: fuzz_inputs.h. Invariants (a violation traps):
//   DecodeRecord  a kOk record fits the bytes given, its key and value lie inside it, and
//                 AppendRecord(flags, seq, expiry, key, value) writes exactly its bytes; every
//                 shorter prefix of it is kTruncated; a kTruncated result reports a needed size
//                 beyond the bytes given (if any), and so does every shorter prefix.
//   Next          offsets strictly increase and each record starts where the previous one ended;
//                 each record and each damage verdict agrees with DecodeRecord at that offset on
//                 the whole file; kEnd only at the end of the file; the scan terminates.
//   Resync        returns exactly the first offset after the damage where DecodeRecord finds a
//                 whole record with a sequence number above min_seq (kEnd if there is none).
//   I/O errors    surface as kCorrupt with io_status() set, never as records.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/record.h"
#include "engine/segment_io.h"
#include "fuzz_check.h"
#include "fuzz_inputs.h"
#include "mem_env.h"
#include "util/coding.h"
#include "util/crc32c.h"

namespace varve::fuzz {
namespace {

using format::kFileHeaderBytes;
using format::kRecordMinHeaderBytes;
using Step = SegmentScanner::Step;

// Flag bits that AppendRecord derives from the fields.
constexpr uint8_t kDerivedFlags = format::kFlagHasExpiry | format::kFlagHasUserFlags;

bool SameFields(const RecordView& a, const RecordView& b) {
  return a.flags == b.flags && a.seq == b.seq && a.expiry_ms == b.expiry_ms &&
         a.user_flags == b.user_flags && a.key == b.key && a.value == b.value;
}

// The record decoded from data must be what AppendRecord writes for its fields.
void CheckReencodes(const char* data, const RecordView& rec) {
  std::string again;
  AppendRecord(&again, rec.flags, rec.seq, rec.expiry_ms, rec.key, rec.value, rec.user_flags);
  std::string_view original(data, rec.size);
  if (again == original) return;
  if (Tolerated(kNonCanonical)) {
    // At least the meaning must survive: the re-encoding decodes to the same fields.
    RecordView back;
    std::string why;
    VARVE_FUZZ_CHECK(DecodeRecord(again.data(), again.size(), &back, &why) == DecodeOutcome::kOk);
    RecordView want = rec;
    want.flags &= static_cast<uint8_t>(~kDerivedFlags);
    back.flags &= static_cast<uint8_t>(~kDerivedFlags);
    VARVE_FUZZ_CHECK(SameFields(back, want));
    return;
  }
  PrintHex("decoded record", original);
  PrintHex("AppendRecord of its fields", again);
  FailInvariant(__FILE__, __LINE__, "a decoded record does not re-encode to its own bytes");
}

// Rewrites the checksum of every record in body whose other fields decode, except record i when
// bit (i % 8) of unfixed_mask is set.
void FixChecksums(std::vector<char>* body, uint8_t unfixed_mask) {
  size_t pos = 0;
  int index = 0;
  while (pos < body->size()) {
    char* p = body->data() + pos;
    size_t avail = body->size() - pos;
    RecordView rec;
    std::string why;
    size_t needed = 0;
    DecodeOutcome d = DecodeRecord(p, avail, &rec, &why, &needed);
    if (d == DecodeOutcome::kOk) {
      pos += rec.size;
      ++index;
    } else if (d == DecodeOutcome::kCorrupt && needed != 0 && needed <= avail) {
      // The whole record is there and only its checksum failed.
      if (((unfixed_mask >> (index % 8)) & 1) == 0) {
        EncodeFixed32(p, crc32c::Mask(crc32c::Value(p + 4, needed - 4)));
      }
      pos += needed;
      ++index;
    } else {
      ++pos;
    }
  }
}

void CheckDecode(const char* data, size_t n, uint8_t cut) {
  RecordView rec;
  std::string why;
  size_t needed = 0;
  DecodeOutcome d = DecodeRecord(data, n, &rec, &why, &needed);
  if (d == DecodeOutcome::kCorrupt) {
    VARVE_FUZZ_CHECK(!why.empty());
    return;
  }
  if (d == DecodeOutcome::kTruncated) {
    VARVE_FUZZ_CHECK(needed == 0 || needed > n);
    size_t c = cut % (n + 1);
    needed = 0;
    VARVE_FUZZ_CHECK(DecodeRecord(data, c, &rec, &why, &needed) == DecodeOutcome::kTruncated);
    VARVE_FUZZ_CHECK(needed == 0 || needed > c);
    return;
  }
  VARVE_FUZZ_CHECK(rec.size >= kRecordMinHeaderBytes && rec.size <= n);
  VARVE_FUZZ_CHECK(needed == rec.size);
  VARVE_FUZZ_CHECK(rec.key.data() > data && rec.key.data() + rec.key.size() == rec.value.data());
  VARVE_FUZZ_CHECK(rec.value.data() + rec.value.size() == data + rec.size);
  VARVE_FUZZ_CHECK(!rec.tombstone() || rec.value.empty());
  VARVE_FUZZ_CHECK((rec.flags & ~format::kKnownFlags) == 0);
  VARVE_FUZZ_CHECK(rec.expiry_ms == 0 || (rec.flags & format::kFlagHasExpiry) != 0);
  VARVE_FUZZ_CHECK(rec.user_flags == 0 || (rec.flags & format::kFlagHasUserFlags) != 0);
  CheckReencodes(data, rec);
  // Exactly its own bytes decode to the same record; fewer are a truncated record.
  RecordView exact;
  VARVE_FUZZ_CHECK(DecodeRecord(data, rec.size, &exact, &why) == DecodeOutcome::kOk);
  VARVE_FUZZ_CHECK(SameFields(exact, rec) && exact.size == rec.size);
  for (size_t c : {size_t{rec.size} - 1, size_t{cut} % rec.size, kRecordMinHeaderBytes - 1}) {
    RecordView part;
    size_t part_needed = 0;
    VARVE_FUZZ_CHECK(DecodeRecord(data, c, &part, &why, &part_needed) == DecodeOutcome::kTruncated);
    VARVE_FUZZ_CHECK(part_needed == 0 || part_needed == rec.size);
  }
}

// A valid record of exactly kFillerBytes with sequence number seq.
std::string MakeFiller(uint64_t seq) {
  const std::string_view key = "filler";
  size_t value_len = kFillerBytes - RecordSize(key.size(), 0, false);
  while (RecordSize(key.size(), value_len, false) > kFillerBytes) --value_len;
  std::string rec;
  AppendRecord(&rec, format::kTypePut, seq, 0, key, std::string(value_len, 'f'));
  VARVE_FUZZ_CHECK(rec.size() == kFillerBytes);
  return rec;
}
const std::string& FirstFiller() {
  static const std::string filler = MakeFiller(1);
  return filler;
}
const std::string& LastFiller() {
  static const std::string filler = MakeFiller(uint64_t{1} << 62);
  return filler;
}

// Scans [segment header][filler first?][body][filler last?] as recovery does: Next until
// damage, then Resync past it.
void CheckScan(std::string_view body, uint8_t mode) {
  const bool writer = (mode & kRecordWriterSegment) != 0;
  const bool inject = (mode & kRecordInjectIoError) != 0;
  const bool filler_first = IsRecordFillerFirst(mode);
  const bool filler_last = IsRecordFillerLast(mode);
  char header[kFileHeaderBytes];
  EncodeFileHeader(
      header, FileHeader{format::kSegmentMagic, writer ? 0 : format::kFileFlagCompactionOutput, 1});
  std::vector<std::string_view> pieces = {std::string_view(header, kFileHeaderBytes)};
  if (filler_first) pieces.push_back(FirstFiller());
  const uint64_t body_start = kFileHeaderBytes + (filler_first ? kFillerBytes : 0);
  pieces.push_back(body);
  // The file's bytes from body_start to its end, in one piece.
  std::string body_and_filler;
  std::string_view rest = body;
  if (filler_last) {
    pieces.push_back(LastFiller());
    body_and_filler.reserve(body.size() + kFillerBytes);
    body_and_filler.append(body).append(LastFiller());
    rest = body_and_filler;
  }
  PiecesFile file(pieces, inject ? RecordReadsBeforeError(mode) : -1);
  const uint64_t size = file.size();
  VARVE_FUZZ_CHECK(size == body_start + rest.size());
  SegmentScanner scanner(&file, size, SegmentFileName(1));

  // The file's bytes from offset off (>= body_start) to its end.
  auto at = [&](uint64_t off) {
    VARVE_FUZZ_CHECK(off >= body_start && off <= size);
    return rest.data() + (off - body_start);
  };
  uint64_t expect = kFileHeaderBytes;  // where the next record must start
  bool any = false;
  uint64_t last_offset = 0;
  uint64_t max_seq = 0;
  auto check_record = [&](const RecordView& rec, uint64_t off) {
    VARVE_FUZZ_CHECK(!any || off > last_offset);
    any = true;
    last_offset = off;
    VARVE_FUZZ_CHECK(off >= kFileHeaderBytes && rec.size >= kRecordMinHeaderBytes);
    VARVE_FUZZ_CHECK(off + rec.size <= size);
    if (off < body_start) {
      VARVE_FUZZ_CHECK(filler_first && off == kFileHeaderBytes && rec.size == kFillerBytes);
    } else {
      RecordView direct;
      std::string why;
      VARVE_FUZZ_CHECK(DecodeRecord(at(off), size - off, &direct, &why) == DecodeOutcome::kOk);
      VARVE_FUZZ_CHECK(SameFields(direct, rec) && direct.size == rec.size);
      CheckReencodes(at(off), rec);
    }
    max_seq = std::max(max_seq, rec.seq);
    expect = off + rec.size;
  };
  // The first offset in (damage, size) where a whole valid record with seq > min_seq starts,
  // found the slow way; size if there is none.
  auto naive_resync = [&](uint64_t damage, uint64_t min_seq) {
    for (uint64_t p = damage + 1; p < size; ++p) {
      RecordView rec;
      std::string why;
      if (DecodeRecord(at(p), size - p, &rec, &why) == DecodeOutcome::kOk && rec.seq > min_seq) {
        return p;
      }
    }
    return size;
  };

  // Every step consumes at least one byte, so more steps than bytes means the scan is stuck.
  for (uint64_t steps = 0;; ++steps) {
    VARVE_FUZZ_CHECK(steps <= size);
    RecordView rec;
    uint64_t off = 0;
    std::string why;
    Step step = scanner.Next(&rec, &off, &why);
    if (!scanner.io_status().ok()) {
      VARVE_FUZZ_CHECK(inject && step == Step::kCorrupt && !why.empty());
      return;
    }
    VARVE_FUZZ_CHECK(off == expect);
    if (step == Step::kRecord) {
      check_record(rec, off);
      continue;
    }
    if (step == Step::kEnd) {
      VARVE_FUZZ_CHECK(off == size);
      return;
    }
    // Damage: DecodeRecord on the whole rest of the file agrees.
    VARVE_FUZZ_CHECK(off >= body_start && off < size);
    RecordView direct;
    std::string direct_why;
    DecodeOutcome d = DecodeRecord(at(off), size - off, &direct, &direct_why);
    if (step == Step::kTruncated) {
      VARVE_FUZZ_CHECK(d == DecodeOutcome::kTruncated);
    } else {
      VARVE_FUZZ_CHECK(step == Step::kCorrupt && d == DecodeOutcome::kCorrupt && !why.empty());
    }

    const uint64_t min_seq = writer ? max_seq : 0;
    RecordView next;
    uint64_t next_off = 0;
    Step r = scanner.Resync(off, min_seq, &next, &next_off);
    if (!scanner.io_status().ok()) {
      VARVE_FUZZ_CHECK(inject && r == Step::kCorrupt);
      return;
    }
    uint64_t want = naive_resync(off, min_seq);
    if (r == Step::kEnd) {
      VARVE_FUZZ_CHECK(want == size);
      return;
    }
    VARVE_FUZZ_CHECK(r == Step::kRecord && next_off == want && next.seq > min_seq);
    check_record(next, next_off);
  }
}

}  // namespace
}  // namespace varve::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace varve::fuzz;
  if (size < kRecordControlBytes) return 0;
  const uint8_t mode = data[0];
  const uint8_t unfixed_mask = data[1];
  const uint8_t cut = data[2];
  // An exact-size copy, so that ASan catches a read past its end.
  std::vector<char> body(data + kRecordControlBytes, data + size);
  if (mode & kRecordFixChecksums) FixChecksums(&body, unfixed_mask);
  CheckDecode(body.data(), body.size(), cut);
  CheckScan(std::string_view(body.data(), body.size()), mode);
  return 0;
}
