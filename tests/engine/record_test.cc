// Tests of the log record, file header and hint file formats (src/engine/record.h,
// src/engine/segment_io.h; docs/format.md).
#include "engine/record.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "engine/record_format.h"
#include "engine/segment_io.h"
#include "testutil/temp_dir.h"
#include "util/coding.h"
#include "util/crc32c.h"
#include "varve/env.h"

namespace varve {
namespace {

using format::kFileHeaderBytes;

struct RecordSpec {
  uint8_t flags;
  uint64_t seq;
  uint64_t expiry_ms;
  std::string key;
  std::string value;
};

std::string Encode(const RecordSpec& r) {
  std::string s;
  AppendRecord(&s, r.flags, r.seq, r.expiry_ms, r.key, r.value);
  return s;
}

std::string Describe(const RecordSpec& r) {
  return "flags " + std::to_string(r.flags) + " seq " + std::to_string(r.seq) + " expiry " +
         std::to_string(r.expiry_ms) + " key_len " + std::to_string(r.key.size()) + " value_len " +
         std::to_string(r.value.size());
}

// The records the round-trip, bit-flip and truncation tests run over.
std::vector<RecordSpec> SampleRecords() {
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  return {
      {format::kTypePut, 1, 0, "key", "value"},
      {format::kTypePut, 42, 1700000000000ull, "expiring", "soon"},
      {format::kTypeTombstone, 7, 0, "gone", ""},
      {format::kTypePut | format::kFlagInBatch, 100, 0, "batch-1", "a"},
      {format::kTypePut | format::kFlagInBatch | format::kFlagBatchCommit, 101, 5, "batch-2", "b"},
      {format::kTypeTombstone | format::kFlagInBatch | format::kFlagBatchCommit, 102, 0, "b3", ""},
      {format::kTypePut, 3, 0, "", "empty key"},
      {format::kTypePut, 4, 0, "empty value", ""},
      {format::kTypePut, 5, 0, "", ""},
      {format::kTypePut, 0xfedcba9876543210ull, std::numeric_limits<uint64_t>::max(), binary,
       binary + binary},
  };
}

void ExpectDecodesTo(const std::string& encoded, const RecordSpec& r) {
  RecordView v;
  std::string why;
  size_t needed = 0;
  ASSERT_EQ(DecodeRecord(encoded.data(), encoded.size(), &v, &why, &needed), DecodeOutcome::kOk)
      << why;
  EXPECT_EQ(needed, encoded.size());
  EXPECT_EQ(v.size, encoded.size());
  EXPECT_EQ(v.seq, r.seq);
  EXPECT_EQ(v.expiry_ms, r.expiry_ms);
  EXPECT_EQ(v.key, r.key);
  EXPECT_EQ(v.value, r.value);
  EXPECT_EQ(v.tombstone(), (r.flags & format::kTypeMask) == format::kTypeTombstone);
  EXPECT_EQ(v.in_batch(), (r.flags & format::kFlagInBatch) != 0);
  EXPECT_EQ(v.batch_commit(), (r.flags & format::kFlagBatchCommit) != 0);
  EXPECT_EQ((v.flags & format::kFlagHasExpiry) != 0, r.expiry_ms != 0);
  EXPECT_EQ(v.flags & ~format::kFlagHasExpiry, r.flags);
}

// ---------------------------------------------------------------------------------------------
// Records

TEST(RecordTest, RoundTrip) {
  for (const RecordSpec& r : SampleRecords()) {
    SCOPED_TRACE(Describe(r));
    std::string s = Encode(r);
    EXPECT_EQ(s.size(), RecordSize(r.key.size(), r.value.size(), r.expiry_ms != 0));
    ExpectDecodesTo(s, r);
  }
}

TEST(RecordTest, ExpiryFlagIsDerivedFromExpiry) {
  // A caller-supplied expiry bit without an expiry time is cleared ...
  std::string s;
  AppendRecord(&s, format::kTypePut | format::kFlagHasExpiry, 1, 0, "k", "v");
  RecordView v;
  std::string why;
  ASSERT_EQ(DecodeRecord(s.data(), s.size(), &v, &why), DecodeOutcome::kOk) << why;
  EXPECT_EQ(v.flags & format::kFlagHasExpiry, 0);
  EXPECT_EQ(v.expiry_ms, 0u);
  EXPECT_EQ(s.size(), RecordSize(1, 1, false));
  // ... and an expiry time sets it.
  s.clear();
  AppendRecord(&s, format::kTypePut, 1, 99, "k", "v");
  ASSERT_EQ(DecodeRecord(s.data(), s.size(), &v, &why), DecodeOutcome::kOk) << why;
  EXPECT_NE(v.flags & format::kFlagHasExpiry, 0);
  EXPECT_EQ(v.expiry_ms, 99u);
  EXPECT_EQ(s.size(), RecordSize(1, 1, true));
}

TEST(RecordTest, LayoutMatchesFormat) {
  // crc u32 | flags u8 | seq u64 | varint key_len | varint value_len | key | value
  std::string s =
      Encode({format::kTypePut | format::kFlagInBatch, 0x0102030405060708ull, 0, "ab", "xyz"});
  ASSERT_EQ(s.size(), 4u + 1 + 8 + 1 + 1 + 2 + 3);
  EXPECT_EQ(static_cast<uint8_t>(s[4]), format::kTypePut | format::kFlagInBatch);
  EXPECT_EQ(DecodeFixed64(s.data() + 5), 0x0102030405060708ull);
  EXPECT_EQ(s[13], 2);
  EXPECT_EQ(s[14], 3);
  EXPECT_EQ(s.substr(15), "abxyz");
  EXPECT_EQ(crc32c::Unmask(DecodeFixed32(s.data())), crc32c::Value(s.data() + 4, s.size() - 4));
}

TEST(RecordTest, OneMebibyteValue) {
  std::string value(1 << 20, '\0');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 131 + (i >> 8));
  RecordSpec r{format::kTypePut, 9, 0, "big", value};
  std::string s = Encode(r);
  ExpectDecodesTo(s, r);
  // A flipped bit in the middle of the value is caught by the checksum.
  s[s.size() / 2] ^= 0x10;
  RecordView v;
  std::string why;
  EXPECT_EQ(DecodeRecord(s.data(), s.size(), &v, &why), DecodeOutcome::kCorrupt);
  EXPECT_EQ(why, "bad checksum");
}

TEST(RecordTest, ConsecutiveRecordsDecodeOneAtATime) {
  std::vector<RecordSpec> records = SampleRecords();
  std::string log;
  for (const RecordSpec& r : records) log += Encode(r);
  size_t pos = 0;
  for (const RecordSpec& r : records) {
    RecordView v;
    std::string why;
    ASSERT_EQ(DecodeRecord(log.data() + pos, log.size() - pos, &v, &why), DecodeOutcome::kOk)
        << why;
    EXPECT_EQ(v.key, r.key);
    EXPECT_EQ(v.value, r.value);
    EXPECT_EQ(v.seq, r.seq);
    pos += v.size;
  }
  EXPECT_EQ(pos, log.size());
}

TEST(RecordTest, EverySingleBitFlipIsDetected) {
  for (const RecordSpec& r : SampleRecords()) {
    SCOPED_TRACE(Describe(r));
    const std::string good = Encode(r);
    for (size_t bit = 0; bit < good.size() * 8; ++bit) {
      std::string bad = good;
      bad[bit / 8] ^= static_cast<char>(1 << (bit % 8));
      RecordView v;
      std::string why;
      DecodeOutcome d = DecodeRecord(bad.data(), bad.size(), &v, &why);
      ASSERT_NE(d, DecodeOutcome::kOk)
          << "flipping bit " << bit % 8 << " of byte " << bit / 8 << " went unnoticed (key_len "
          << v.key.size() << ", value_len " << v.value.size() << ", seq " << v.seq << ")";
      if (d == DecodeOutcome::kCorrupt) {
        EXPECT_FALSE(why.empty());
      }
    }
  }
}

// The read path's decode (value copied first, checksum over the copy) agrees with DecodeRecord
// on every sample and every single-bit flip.
TEST(RecordTest, DecodeCopyingValueAgreesWithDecodeRecord) {
  for (const RecordSpec& r : SampleRecords()) {
    SCOPED_TRACE(Describe(r));
    const std::string good = Encode(r);
    for (size_t bit = 0; bit <= good.size() * 8; ++bit) {
      std::string rec = good;
      if (bit < good.size() * 8) rec[bit / 8] ^= static_cast<char>(1 << (bit % 8));
      RecordView a, b;
      std::string why_a, why_b;
      std::string copy(rec.size(), '\0');
      DecodeOutcome da = DecodeRecord(rec.data(), rec.size(), &a, &why_a);
      DecodeOutcome db = DecodeRecordCopyingValue(rec.data(), rec.size(), copy.data(), &b, &why_b);
      ASSERT_EQ(da, db) << "bit " << bit;
      EXPECT_EQ(why_a, why_b);
      if (da != DecodeOutcome::kOk) continue;
      EXPECT_EQ(b.value.data(), copy.data());
      EXPECT_EQ(a.value, b.value);
      EXPECT_EQ(a.key, b.key);
      EXPECT_EQ(a.seq, b.seq);
      EXPECT_EQ(a.expiry_ms, b.expiry_ms);
      EXPECT_EQ(a.user_flags, b.user_flags);
      EXPECT_EQ(a.flags, b.flags);
      EXPECT_EQ(a.size, b.size);
    }
  }
}

TEST(RecordTest, EveryTruncationIsTruncated) {
  for (const RecordSpec& r : SampleRecords()) {
    SCOPED_TRACE(Describe(r));
    const std::string good = Encode(r);
    const size_t header = good.size() - r.key.size() - r.value.size();
    for (size_t len = 0; len < good.size(); ++len) {
      RecordView v;
      std::string why;
      size_t needed = 0;
      ASSERT_EQ(DecodeRecord(good.data(), len, &v, &why, &needed), DecodeOutcome::kTruncated)
          << "cut to " << len << " of " << good.size() << " bytes: " << why;
      // Once the header is readable the decoder reports the full size.
      if (len >= header) {
        EXPECT_EQ(needed, good.size()) << "cut to " << len;
      }
    }
  }
}

TEST(RecordTest, TruncatedLargeValueReportsNeededSize) {
  std::string value(100000, 'v');
  std::string s = Encode({format::kTypePut, 1, 0, "k", value});
  RecordView v;
  std::string why;
  size_t needed = 0;
  EXPECT_EQ(DecodeRecord(s.data(), 64, &v, &why, &needed), DecodeOutcome::kTruncated);
  EXPECT_EQ(needed, s.size());
}

TEST(RecordTest, TombstoneWithValueIsCorrupt) {
  // AppendRecord writes what it is given, with a valid checksum; the decoder must refuse it.
  std::string s;
  AppendRecord(&s, format::kTypeTombstone, 1, 0, "k", "not empty");
  RecordView v;
  std::string why;
  EXPECT_EQ(DecodeRecord(s.data(), s.size(), &v, &why), DecodeOutcome::kCorrupt);
  EXPECT_EQ(why, "tombstone with a value");
}

TEST(RecordTest, UnknownFlagsAreCorrupt) {
  for (int flags : {0x02, 0x03, 0x40, 0x80, 0x41, 0xff}) {
    std::string s;
    AppendRecord(&s, static_cast<uint8_t>(flags), 1, 0, "k", "");
    RecordView v;
    std::string why;
    EXPECT_EQ(DecodeRecord(s.data(), s.size(), &v, &why), DecodeOutcome::kCorrupt)
        << "flags " << flags;
    EXPECT_EQ(why, "unknown record flags") << "flags " << flags;
  }
}

// A record header with the given raw length bytes and a correct checksum over what follows.
std::string RawRecord(const std::string& lengths, const std::string& tail) {
  std::string s(4, '\0');
  s.push_back(static_cast<char>(format::kTypePut));
  PutFixed64(&s, 1);
  s += lengths;
  s += tail;
  EncodeFixed32(s.data(), crc32c::Mask(crc32c::Value(s.data() + 4, s.size() - 4)));
  return s;
}

TEST(RecordTest, OversizedLengthsAreCorrupt) {
  RecordView v;
  std::string why;
  std::string key_too_long;
  PutVarint64(&key_too_long, format::kMaxKeyBytes + 1);
  PutVarint64(&key_too_long, 0);
  std::string s = RawRecord(key_too_long, "");
  EXPECT_EQ(DecodeRecord(s.data(), s.size(), &v, &why), DecodeOutcome::kCorrupt);

  std::string value_too_long;
  PutVarint64(&value_too_long, 1);
  PutVarint64(&value_too_long, format::kMaxValueBytes + 1);
  s = RawRecord(value_too_long, "k");
  EXPECT_EQ(DecodeRecord(s.data(), s.size(), &v, &why), DecodeOutcome::kCorrupt);

  // An 11-byte key length can never be valid.
  std::string overlong(10, '\xff');
  overlong.push_back('\x01');
  s = RawRecord(overlong, std::string(16, 'x'));
  EXPECT_EQ(DecodeRecord(s.data(), s.size(), &v, &why), DecodeOutcome::kCorrupt);
  EXPECT_EQ(why, "bad key length");

  std::string overlong_value = "\x01" + std::string(10, '\xff') + "\x01";
  s = RawRecord(overlong_value, std::string(16, 'x'));
  EXPECT_EQ(DecodeRecord(s.data(), s.size(), &v, &why), DecodeOutcome::kCorrupt);
  EXPECT_EQ(why, "bad value length");
}

TEST(RecordTest, MaxLengthsAreAcceptedWhenTruncated) {
  // The limits themselves are legal: a header announcing them only asks for more bytes.
  std::string lengths;
  PutVarint64(&lengths, format::kMaxKeyBytes);
  PutVarint64(&lengths, format::kMaxValueBytes);
  std::string s = RawRecord(lengths, "abc");
  RecordView v;
  std::string why;
  size_t needed = 0;
  EXPECT_EQ(DecodeRecord(s.data(), s.size(), &v, &why, &needed), DecodeOutcome::kTruncated);
  EXPECT_EQ(needed, 4 + 1 + 8 + lengths.size() + format::kMaxKeyBytes + format::kMaxValueBytes);
}

// ---------------------------------------------------------------------------------------------
// File header

std::string Header(std::string_view magic, uint32_t flags, uint32_t id, uint64_t base_seq = 0) {
  std::string s(kFileHeaderBytes, '\0');
  EncodeFileHeader(s.data(), FileHeader{magic, flags, id, base_seq});
  return s;
}

void Reseal(std::string* header) {
  EncodeFixed32(header->data() + 28, crc32c::Mask(crc32c::Value(header->data(), 28)));
}

TEST(FileHeaderTest, RoundTrip) {
  for (std::string_view magic : {format::kSegmentMagic, format::kHintMagic}) {
    for (uint32_t id : {0u, 1u, 42u, UINT32_MAX}) {
      std::string h = Header(magic, format::kFileFlagCompactionOutput, id, uint64_t{id} * 977);
      FileHeader out;
      Status s = DecodeFileHeader(h.data(), h.size(), magic, "f", &out);
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(out.magic, magic);
      EXPECT_EQ(out.flags, format::kFileFlagCompactionOutput);
      EXPECT_EQ(out.segment_id, id);
      EXPECT_EQ(out.base_seq, uint64_t{id} * 977);
    }
  }
}

TEST(FileHeaderTest, Layout) {
  std::string h = Header(format::kSegmentMagic, 3, 0x55667788u, 0x0102030405060708ull);
  EXPECT_EQ(h.substr(0, 8), "VARVSEG1");
  EXPECT_EQ(DecodeFixed16(h.data() + 8), format::kMajorVersion);
  EXPECT_EQ(DecodeFixed16(h.data() + 10), format::kMinorVersion);
  EXPECT_EQ(DecodeFixed32(h.data() + 12), 3u);
  EXPECT_EQ(DecodeFixed32(h.data() + 16), 0x55667788u);
  EXPECT_EQ(DecodeFixed64(h.data() + 20), 0x0102030405060708ull);
  EXPECT_EQ(crc32c::Unmask(DecodeFixed32(h.data() + 28)), crc32c::Value(h.data(), 28));
}

TEST(FileHeaderTest, BadMagic) {
  std::string h = Header(format::kSegmentMagic, 0, 1);
  FileHeader out;
  Status s = DecodeFileHeader(h.data(), h.size(), format::kHintMagic, "000001.hint", &out);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("000001.hint"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("magic"), std::string::npos) << s.message();

  std::string junk = h;
  junk[0] = 'X';
  Reseal(&junk);
  s = DecodeFileHeader(junk.data(), junk.size(), format::kSegmentMagic, "f", &out);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST(FileHeaderTest, BadChecksum) {
  const std::string good = Header(format::kSegmentMagic, 0, 5);
  // Every byte after the magic is covered by the checksum (the magic is checked first).
  for (size_t i = 8; i < kFileHeaderBytes; ++i) {
    std::string bad = good;
    bad[i] ^= 0x01;
    FileHeader out;
    Status s = DecodeFileHeader(bad.data(), bad.size(), format::kSegmentMagic, "seg", &out);
    EXPECT_TRUE(s.IsCorruption()) << "byte " << i << ": " << s.ToString();
  }
}

TEST(FileHeaderTest, Truncated) {
  std::string h = Header(format::kSegmentMagic, 0, 5);
  FileHeader out;
  for (size_t n = 0; n < kFileHeaderBytes; ++n) {
    Status s = DecodeFileHeader(h.data(), n, format::kSegmentMagic, "seg", &out);
    EXPECT_TRUE(s.IsCorruption()) << n << ": " << s.ToString();
  }
}

TEST(FileHeaderTest, UnknownMajorVersionIsNotSupported) {
  for (uint16_t major : {uint16_t{0}, uint16_t{format::kMajorVersion + 1}, uint16_t{0xffff}}) {
    std::string h = Header(format::kSegmentMagic, 0, 5);
    EncodeFixed16(h.data() + 8, major);
    Reseal(&h);
    FileHeader out;
    Status s = DecodeFileHeader(h.data(), h.size(), format::kSegmentMagic, "000005.vlog", &out);
    EXPECT_TRUE(s.IsNotSupported()) << major << ": " << s.ToString();
    EXPECT_NE(s.message().find("000005.vlog"), std::string::npos) << s.message();
  }
}

TEST(FileHeaderTest, NewerMinorVersionIsAccepted) {
  std::string h = Header(format::kSegmentMagic, 0, 5);
  EncodeFixed16(h.data() + 10, format::kMinorVersion + 3);
  Reseal(&h);
  FileHeader out;
  Status s = DecodeFileHeader(h.data(), h.size(), format::kSegmentMagic, "seg", &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(out.segment_id, 5u);
}

// ---------------------------------------------------------------------------------------------
// File names

TEST(FileNameTest, Format) {
  EXPECT_EQ(SegmentFileName(42), "0000000042.vlog");
  EXPECT_EQ(HintFileName(42), "0000000042.hint");
  EXPECT_EQ(SegmentFileName(0), "0000000000.vlog");
  EXPECT_EQ(SegmentFileName(UINT32_MAX), "4294967295.vlog");
}

TEST(FileNameTest, RoundTrip) {
  for (uint32_t id : {0u, 1u, 9u, 10u, 42u, 1234567u, 999999999u, 1000000000u, UINT32_MAX}) {
    uint32_t got = 7;
    std::string_view ext;
    std::string seg = SegmentFileName(id);
    ASSERT_TRUE(ParseFileName(seg, &got, &ext)) << seg;
    EXPECT_EQ(got, id);
    EXPECT_EQ(ext, "vlog");
    std::string hint = HintFileName(id);
    ASSERT_TRUE(ParseFileName(hint, &got, &ext)) << hint;
    EXPECT_EQ(got, id);
    EXPECT_EQ(ext, "hint");
  }
}

TEST(FileNameTest, RejectsOtherNames) {
  for (std::string_view name :
       {"", "LOCK", "42.vlog", "000000042.vlog", "00000000042.vlog", "0000000042.log",
        "0000000042.VLOG", "0000000042.txt", "0000000042.hint.tmp", "0000000042.vlog.tmp",
        "0000000042_vlog", "000000004a.vlog", "-000000042.vlog", "+000000042.vlog",
        " 000000042.vlog", "4294967296.vlog", "9999999999.hint", "0000000042.vlo", "0000000042."}) {
    uint32_t id = 0;
    std::string_view ext;
    EXPECT_FALSE(ParseFileName(name, &id, &ext)) << "'" << name << "'";
  }
}

// ---------------------------------------------------------------------------------------------
// Hint files, through the real file system

class HintFileTest : public ::testing::Test {
 protected:
  std::string HintPath(uint32_t id) const { return dir_ + "/" + HintFileName(id); }

  // Writes a hint for segment id holding entries; keys live in keys_.
  void WriteHint(uint32_t id, const std::vector<HintEntry>& entries, uint64_t segment_bytes) {
    Result<std::unique_ptr<HintWriter>> w = HintWriter::Create(env_, dir_, id);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (const HintEntry& e : entries) {
      Status s = (*w)->Add(e);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    Status s = (*w)->Finish(segment_bytes);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  Status Read(uint32_t id, uint64_t segment_bytes, std::vector<HintEntry>* out,
              std::vector<std::string>* keys) {
    return ReadHintFile(env_, HintPath(id), id, segment_bytes, [&](const HintEntry& e) {
      out->push_back(e);
      keys->emplace_back(e.key);
    });
  }

  std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void WriteAll(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  }

  Env* env_ = Env::Default();
  testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

std::vector<HintEntry> SampleHintEntries(std::vector<std::string>* keys) {
  *keys = {"alpha", "", "gamma", std::string(300, 'k'), std::string("\0\xff", 2)};
  std::vector<HintEntry> e;
  e.push_back({format::kTypePut, 1, 0, 32, 20, (*keys)[0]});
  e.push_back({format::kTypePut, 2, 1700000000000ull, 52, 30, (*keys)[1]});
  e.push_back({format::kTypeTombstone, 3, 0, 82, 18, (*keys)[2]});
  e.push_back({format::kTypePut | format::kFlagInBatch, 4, 0, 100, 400, (*keys)[3]});
  e.push_back({format::kTypePut, 0xffffffffffffffull, 9, 500, 100, (*keys)[4]});
  return e;
}

constexpr uint64_t kSegmentBytes = 4096;

TEST_F(HintFileTest, RoundTrip) {
  std::vector<std::string> keys;
  std::vector<HintEntry> entries = SampleHintEntries(&keys);
  WriteHint(7, entries, kSegmentBytes);
  EXPECT_TRUE(env_->FileExists(HintPath(7)));
  EXPECT_FALSE(env_->FileExists(HintPath(7) + ".tmp"));

  std::vector<HintEntry> got;
  std::vector<std::string> got_keys;
  Status s = Read(7, kSegmentBytes, &got, &got_keys);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(got.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got_keys[i], keys[i]);
    EXPECT_EQ(got[i].seq, entries[i].seq);
    EXPECT_EQ(got[i].expiry_ms, entries[i].expiry_ms);
    EXPECT_EQ(got[i].offset, entries[i].offset);
    EXPECT_EQ(got[i].size, entries[i].size);
    EXPECT_EQ(got[i].flags & ~format::kFlagHasExpiry, entries[i].flags);
    EXPECT_EQ((got[i].flags & format::kFlagHasExpiry) != 0, entries[i].expiry_ms != 0);
  }
}

TEST_F(HintFileTest, EmptyHint) {
  WriteHint(3, {}, kFileHeaderBytes);
  std::vector<HintEntry> got;
  std::vector<std::string> keys;
  Status s = Read(3, kFileHeaderBytes, &got, &keys);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(ReadAll(HintPath(3)).size(), kFileHeaderBytes + format::kHintFooterBytes);
}

TEST_F(HintFileTest, LargeHintSpanningSeveralBufferFlushes) {
  // More than 1 MiB of entries: the writer flushes its buffer several times and must chain the
  // checksum across the flushes.
  std::vector<std::string> keys;
  for (int i = 0; i < 30000; ++i) keys.push_back("key-" + std::to_string(i) + std::string(80, 'p'));
  std::vector<HintEntry> entries;
  uint32_t offset = kFileHeaderBytes;
  for (size_t i = 0; i < keys.size(); ++i) {
    entries.push_back({format::kTypePut, i + 1, i % 3 == 0 ? 1000 + i : 0, offset, 150, keys[i]});
    offset += 150;
  }
  WriteHint(11, entries, offset);
  ASSERT_GT(ReadAll(HintPath(11)).size(), 2u << 20);
  std::vector<HintEntry> got;
  std::vector<std::string> got_keys;
  Status s = Read(11, offset, &got, &got_keys);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(got.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    ASSERT_EQ(got_keys[i], keys[i]);
    ASSERT_EQ(got[i].seq, entries[i].seq);
    ASSERT_EQ(got[i].expiry_ms, entries[i].expiry_ms);
    ASSERT_EQ(got[i].offset, entries[i].offset);
  }
}

TEST_F(HintFileTest, EveryFlippedByteIsDetected) {
  std::vector<std::string> keys;
  WriteHint(7, SampleHintEntries(&keys), kSegmentBytes);
  const std::string good = ReadAll(HintPath(7));
  ASSERT_GT(good.size(), kFileHeaderBytes + format::kHintFooterBytes);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x40;
    WriteAll(HintPath(7), bad);
    std::vector<HintEntry> got;
    std::vector<std::string> got_keys;
    Status s = Read(7, kSegmentBytes, &got, &got_keys);
    ASSERT_TRUE(s.IsCorruption()) << "flipped byte " << i << " of " << good.size() << ": "
                                  << s.ToString();
  }
  WriteAll(HintPath(7), good);
  std::vector<HintEntry> got;
  std::vector<std::string> got_keys;
  EXPECT_TRUE(Read(7, kSegmentBytes, &got, &got_keys).ok());
}

TEST_F(HintFileTest, TruncatedHintIsCorrupt) {
  std::vector<std::string> keys;
  WriteHint(7, SampleHintEntries(&keys), kSegmentBytes);
  const std::string good = ReadAll(HintPath(7));
  for (size_t len : {size_t{0}, size_t{10}, kFileHeaderBytes, good.size() - 1,
                     good.size() - format::kHintFooterBytes}) {
    WriteAll(HintPath(7), good.substr(0, len));
    std::vector<HintEntry> got;
    std::vector<std::string> got_keys;
    Status s = Read(7, kSegmentBytes, &got, &got_keys);
    EXPECT_TRUE(s.IsCorruption()) << "cut to " << len << ": " << s.ToString();
  }
}

TEST_F(HintFileTest, SegmentSizeMismatchIsCorrupt) {
  std::vector<std::string> keys;
  WriteHint(7, SampleHintEntries(&keys), kSegmentBytes);
  for (uint64_t size : {kSegmentBytes - 1, kSegmentBytes + 1, uint64_t{0}, kSegmentBytes * 2}) {
    std::vector<HintEntry> got;
    std::vector<std::string> got_keys;
    Status s = Read(7, size, &got, &got_keys);
    EXPECT_TRUE(s.IsCorruption()) << size << ": " << s.ToString();
    EXPECT_TRUE(got.empty()) << "entries delivered from a stale hint";
  }
}

TEST_F(HintFileTest, WrongSegmentIdIsCorrupt) {
  std::vector<std::string> keys;
  WriteHint(7, SampleHintEntries(&keys), kSegmentBytes);
  std::vector<HintEntry> got;
  Status s = ReadHintFile(env_, HintPath(7), 8, kSegmentBytes,
                          [&](const HintEntry& e) { got.push_back(e); });
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_TRUE(got.empty());
}

TEST_F(HintFileTest, EntryOutsideSegmentIsCorrupt) {
  // The record at offset 500 of size 100 ends past a 550-byte segment.
  std::vector<std::string> keys;
  WriteHint(7, SampleHintEntries(&keys), 550);
  std::vector<HintEntry> got;
  std::vector<std::string> got_keys;
  Status s = Read(7, 550, &got, &got_keys);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();

  // Offsets are encoded as gaps after the previous record, so an entry cannot point into the
  // file header or overlap the record before it: the writer refuses such entries.
  Result<std::unique_ptr<HintWriter>> w = HintWriter::Create(env_, dir_, 8);
  ASSERT_TRUE(w.ok());
  std::string k = "x";
  EXPECT_FALSE((*w)->Add(HintEntry{format::kTypePut, 1, 0, 4, 10, k}).ok());
  EXPECT_TRUE((*w)->Add(HintEntry{format::kTypePut, 1, 0, 100, 10, k}).ok());
  EXPECT_FALSE((*w)->Add(HintEntry{format::kTypePut, 2, 0, 105, 10, k}).ok());
  (*w)->Abandon();
}

TEST_F(HintFileTest, EntriesAreDeltaEncoded) {
  // Sequence numbers going down (compaction output) and gaps between records round-trip.
  std::string a = "alpha", b = "b", c = std::string(300, 'c');
  std::vector<HintEntry> entries = {
      HintEntry{format::kTypePut, 1000, 0, 32, 40, a},
      HintEntry{format::kTypeTombstone, 7, 0, 72, 20, b},
      HintEntry{format::kTypePut | format::kFlagHasExpiry, ~uint64_t{0}, 1767225600000, 200, 400,
                c},
      HintEntry{format::kTypePut, 0, 0, 600, 1, a},
  };
  WriteHint(9, entries, 601);
  std::vector<HintEntry> got;
  std::vector<std::string> got_keys;
  ASSERT_TRUE(Read(9, 601, &got, &got_keys).ok());
  ASSERT_EQ(got.size(), entries.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].flags, entries[i].flags) << i;
    EXPECT_EQ(got[i].seq, entries[i].seq) << i;
    EXPECT_EQ(got[i].expiry_ms, entries[i].expiry_ms) << i;
    EXPECT_EQ(got[i].offset, entries[i].offset) << i;
    EXPECT_EQ(got[i].size, entries[i].size) << i;
    EXPECT_EQ(got_keys[i], entries[i].key) << i;
  }
  // The common entry is 6 bytes + key: flags, seq delta, gap, size (2 bytes), key length.
  EXPECT_EQ(ReadAll(HintPath(9)).size(),
            kFileHeaderBytes + (1 + 2 + 1 + 1 + 1 + 5) + (1 + 2 + 1 + 1 + 1 + 1) +
                (1 + 1 + 8 + 1 + 2 + 2 + 300) + (1 + 1 + 1 + 1 + 1 + 5) + format::kHintFooterBytes);
}

TEST_F(HintFileTest, SegmentMagicInHintIsCorrupt) {
  std::vector<std::string> keys;
  WriteHint(7, SampleHintEntries(&keys), kSegmentBytes);
  std::string data = ReadAll(HintPath(7));
  // Replace the header with a valid segment header: the magic check must refuse it.
  std::string seg_header = Header(format::kSegmentMagic, 0, 7);
  data.replace(0, kFileHeaderBytes, seg_header);
  WriteAll(HintPath(7), data);
  std::vector<HintEntry> got;
  std::vector<std::string> got_keys;
  Status s = Read(7, kSegmentBytes, &got, &got_keys);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST_F(HintFileTest, AbandonRemovesTemporaryFile) {
  Result<std::unique_ptr<HintWriter>> w = HintWriter::Create(env_, dir_, 9);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::string k = "key";
  ASSERT_TRUE((*w)->Add(HintEntry{format::kTypePut, 1, 0, 32, 20, k}).ok());
  EXPECT_TRUE(env_->FileExists(HintPath(9) + ".tmp"));
  (*w)->Abandon();
  EXPECT_FALSE(env_->FileExists(HintPath(9) + ".tmp"));
  EXPECT_FALSE(env_->FileExists(HintPath(9)));
}

TEST_F(HintFileTest, MissingHintIsAnError) {
  std::vector<HintEntry> got;
  std::vector<std::string> keys;
  Status s = Read(99, kSegmentBytes, &got, &keys);
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace varve
