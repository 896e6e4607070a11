// fuzz_hint_reader: ReadHintFile, ReadHintFileBatched and HintEntryCount over a hint file made
// by the fuzzer (raw), or over a fuzzer-made entry region that the harness wraps in a valid
// header and footer (synthesized, to get past the checksum). Input layout: fuzz_inputs.h.
// Invariants (a violation traps):
//   - no crash or hang; every entry delivered has offset >= 32 and offset + size <= the segment's
//     size; groups hold 1 to kHintBatchEntries entries;
//   - the verdict agrees with a reference reader written from docs/format.md: Ok exactly when
//     the reference accepts the file, and then with exactly its entries; on a failure, the
//     entries delivered (if any) are a prefix of those the reference parsed before it stopped;
//   - an accepted file is what HintWriter writes for its entries (re-encoding gives the same
//     bytes);
//   - a hint file that cannot be read whole (short read, I/O error) is refused, no entries given;
//   - HintEntryCount and HintSegmentBytes are the footer's fields when its end magic is there,
//     else 0.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
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
using format::kHintFooterBytes;

constexpr char kDir[] = "store";

struct Entry {
  uint8_t flags = 0;
  uint64_t seq = 0;
  uint64_t expiry_ms = 0;
  uint32_t offset = 0;
  uint32_t size = 0;
  std::string key;

  bool operator==(const Entry&) const = default;
};

Entry Copy(const HintEntry& e) {
  return Entry{e.flags, e.seq, e.expiry_ms, e.offset, e.size, std::string(e.key)};
}

// The reference reader: docs/format.md, "Hint file", written independently of segment_io.cc
// (only the fixed-width and CRC helpers are shared).
uint64_t ReadLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// A varint: 7 bits a byte, low groups first, at most 10 bytes, no bits beyond 64, shortest form.
bool RefVarint(const char** p, const char* limit, uint64_t* v) {
  *v = 0;
  for (int i = 0;; ++i) {
    if (i == 10 || *p == limit) return false;
    uint64_t byte = static_cast<unsigned char>(*(*p)++);
    if (i == 9 && byte > 1) return false;
    if (i > 0 && byte == 0) return false;  // a non-minimal encoding
    *v |= (byte & 0x7f) << (7 * i);
    if (byte < 0x80) return true;
  }
}

// Parses the entries in [p, limit) into *out until the region ends (true) or an entry is cut
// short, is not in its shortest form or points outside the segment (false).
bool RefParseEntries(const char* p, const char* limit, uint64_t segment_bytes,
                     std::vector<Entry>* out) {
  uint64_t prev_seq = 0, prev_end = kFileHeaderBytes;
  while (p != limit) {
    Entry e;
    e.flags = static_cast<uint8_t>(*p++);
    // Flags: type 0 or 1, bits 2-5 known, 6-7 reserved (docs/format.md).
    if ((e.flags & 0xc0) != 0 || (e.flags & 0x03) > 1) return false;
    uint64_t zz;
    if (!RefVarint(&p, limit, &zz)) return false;
    // zigzag: even = non-negative delta zz/2, odd = negative -(zz+1)/2, mod 2^64.
    uint64_t delta = (zz & 1) ? ~(zz >> 1) : (zz >> 1);
    e.seq = prev_seq + delta;
    if (e.flags & format::kFlagHasExpiry) {
      if (limit - p < 8) return false;
      e.expiry_ms = ReadLe(p, 8);
      p += 8;
      if (e.expiry_ms == 0) return false;  // writers set the bit only with a time
    }
    uint64_t gap, size, key_len;
    if (!RefVarint(&p, limit, &gap) || !RefVarint(&p, limit, &size) ||
        !RefVarint(&p, limit, &key_len)) {
      return false;
    }
    if (key_len > static_cast<uint64_t>(limit - p)) return false;
    if (gap > 0xffffffffu || size > 0xffffffffu) return false;
    uint64_t offset = prev_end + gap;
    if (offset > 0xffffffffu || offset + size > segment_bytes) return false;
    e.offset = static_cast<uint32_t>(offset);
    e.size = static_cast<uint32_t>(size);
    e.key.assign(p, key_len);
    p += key_len;
    prev_seq = e.seq;
    prev_end = offset + size;
    out->push_back(std::move(e));
  }
  return true;
}

struct RefResult {
  bool ok = false;
  std::vector<Entry> entries;  // parsed before the verdict (all of them if ok)
};

RefResult RefReadHint(std::string_view file, uint32_t segment_id, uint64_t segment_bytes) {
  RefResult r;
  if (file.size() < kFileHeaderBytes + kHintFooterBytes) return r;
  const char* h = file.data();
  if (file.substr(0, 8) != "VARVHNT2" || ReadLe(h + 8, 2) != 1 ||
      crc32c::Unmask(static_cast<uint32_t>(ReadLe(h + 28, 4))) != crc32c::Value(h, 28) ||
      ReadLe(h + 16, 4) != segment_id) {
    return r;
  }
  const char* footer = h + file.size() - kHintFooterBytes;
  if (ReadLe(footer + 20, 4) != 0x32544e48 ||
      crc32c::Unmask(static_cast<uint32_t>(ReadLe(footer + 16, 4))) !=
          crc32c::Value(h, file.size() - 8) ||
      ReadLe(footer + 8, 8) != segment_bytes) {
    return r;
  }
  bool parsed = RefParseEntries(h + kFileHeaderBytes, footer, segment_bytes, &r.entries);
  r.ok = parsed && r.entries.size() == ReadLe(footer, 8);
  return r;
}

bool IsPrefix(const std::vector<Entry>& a, const std::vector<Entry>& b) {
  if (a.size() > b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i] == b[i])) return false;
  }
  return true;
}

// An accepted hint must be what HintWriter writes for its entries, from the end of the header
// to the checksum (header fields that readers ignore, like the minor version, may differ).
void CheckRewrites(uint32_t segment_id, uint64_t segment_bytes, const std::vector<Entry>& entries,
                   const std::string& original) {
  MemEnv env;
  Result<std::unique_ptr<HintWriter>> w = HintWriter::Create(&env, kDir, segment_id);
  VARVE_FUZZ_CHECK(w.ok());
  for (const Entry& e : entries) {
    VARVE_FUZZ_CHECK(
        (*w)->Add(HintEntry{e.flags, e.seq, e.expiry_ms, e.offset, e.size, e.key}).ok());
  }
  VARVE_FUZZ_CHECK((*w)->Finish(segment_bytes).ok());
  const std::string* again = env.Get(std::string(kDir) + "/" + HintFileName(segment_id));
  VARVE_FUZZ_CHECK(again != nullptr);
  auto body = [](const std::string& f) {
    return std::string_view(f).substr(kFileHeaderBytes, f.size() - kFileHeaderBytes - 8);
  };
  if (body(*again) == body(original)) return;
  if (Tolerated(kNonCanonical)) return;  // the reference reader already checked the fields
  PrintHex("accepted hint file", original);
  PrintHex("HintWriter of its entries", *again);
  FailInvariant(__FILE__, __LINE__, "an accepted hint file does not re-encode to its own bytes");
}

}  // namespace
}  // namespace varve::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace varve;
  using namespace varve::fuzz;
  if (size < kHintControlBytes) return 0;
  const char* in = reinterpret_cast<const char*>(data);
  const uint8_t mode = data[0];
  const uint32_t segment_id = DecodeFixed32(in + 1);
  const uint64_t segment_bytes = DecodeFixed64(in + 5);
  const uint8_t count_delta = data[13];
  std::string_view payload(in + kHintControlBytes, size - kHintControlBytes);

  std::string file;
  if (mode & kHintSynthesize) {
    char header[kFileHeaderBytes];
    EncodeFileHeader(header, FileHeader{format::kHintMagic, 0, segment_id});
    file.append(header, kFileHeaderBytes);
    file.append(payload);
    std::vector<Entry> parsed;
    RefParseEntries(payload.data(), payload.data() + payload.size(), segment_bytes, &parsed);
    uint64_t count = parsed.size() + ((mode & kHintAdjustCount) ? count_delta : 0);
    PutFixed64(&file, count);
    PutFixed64(&file, segment_bytes);
    PutFixed32(&file, crc32c::Mask(crc32c::Value(file)));
    PutFixed32(&file, format::kHintEndMagic);
  } else {
    file.assign(payload);
  }

  MemEnv env;
  const std::string path = std::string(kDir) + "/" + HintFileName(segment_id);
  env.Put(path, file);
  // A file that cannot be read whole must be refused, whatever it holds.
  const bool faulty = (mode & (kHintShortRead | kHintReadError)) != 0;
  if (mode & kHintReadError) {
    env.SetReadFault(MemEnv::ReadFault::kIOError);
  } else if (mode & kHintShortRead) {
    env.SetReadFault(MemEnv::ReadFault::kShortRead);
  }
  const RefResult want = faulty ? RefResult{} : RefReadHint(file, segment_id, segment_bytes);

  std::vector<Entry> got;
  auto deliver = [&](const HintEntry& e) {
    VARVE_FUZZ_CHECK(e.offset >= kFileHeaderBytes);
    VARVE_FUZZ_CHECK(uint64_t{e.offset} + e.size <= segment_bytes);
    got.push_back(Copy(e));
  };
  Status s;
  if (mode & kHintBatched) {
    s = ReadHintFileBatched(&env, path, segment_id, segment_bytes,
                            [&](const HintEntry* group, size_t n) {
                              VARVE_FUZZ_CHECK(n >= 1 && n <= kHintBatchEntries);
                              for (size_t i = 0; i < n; ++i) deliver(group[i]);
                            });
  } else {
    s = ReadHintFile(&env, path, segment_id, segment_bytes, deliver);
  }
  if (s.ok() != want.ok) {
    std::fprintf(stderr, "ReadHintFile: %s (%zu entries); reference: %s (%zu entries)\n",
                 s.ToString().c_str(), got.size(), want.ok ? "ok" : "rejected",
                 want.entries.size());
    PrintHex("hint file", file);
    FailInvariant(__FILE__, __LINE__, "ReadHintFile and the reference reader disagree");
  }
  if (s.ok()) {
    VARVE_FUZZ_CHECK(got == want.entries);
    CheckRewrites(segment_id, segment_bytes, got, file);
  } else {
    VARVE_FUZZ_CHECK(s.IsCorruption() || s.IsNotSupported() || (faulty && s.IsIOError()));
    VARVE_FUZZ_CHECK(!s.message().empty());
    VARVE_FUZZ_CHECK(IsPrefix(got, want.entries));
  }

  uint64_t footer_count = 0, footer_segment_bytes = 0;
  if (!faulty && file.size() >= kFileHeaderBytes + kHintFooterBytes &&
      DecodeFixed32(file.data() + file.size() - 4) == format::kHintEndMagic) {
    footer_count = DecodeFixed64(file.data() + file.size() - kHintFooterBytes);
    footer_segment_bytes = DecodeFixed64(file.data() + file.size() - kHintFooterBytes + 8);
  }
  VARVE_FUZZ_CHECK(HintEntryCount(&env, path) == footer_count);
  VARVE_FUZZ_CHECK(HintSegmentBytes(&env, path) == footer_segment_bytes);
  return 0;
}
