// Tests of CRC32C (src/util/crc32c.h): published test vectors (RFC 3720 B.4), incremental
// extension, agreement with a bit-at-a-time reference, and the stored-CRC mask.
#include "util/crc32c.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace varve::crc32c {
namespace {

// Bit-at-a-time CRC32C, the definition the fast paths must agree with.
uint32_t ReferenceCrc(const char* data, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= static_cast<unsigned char>(data[i]);
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
  }
  return ~c;
}

TEST(Crc32cTest, StandardVectors) {
  std::string zeros(32, '\0');
  EXPECT_EQ(Value(zeros.data(), zeros.size()), 0x8a9136aau);

  std::string ones(32, '\xff');
  EXPECT_EQ(Value(ones.data(), ones.size()), 0x62a8ab43u);

  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(Value(ascending.data(), ascending.size()), 0x46dd794eu);

  std::string descending(32, '\0');
  for (int i = 0; i < 32; ++i) descending[i] = static_cast<char>(31 - i);
  EXPECT_EQ(Value(descending.data(), descending.size()), 0x113fdb5cu);

  EXPECT_EQ(Value("123456789"), 0xe3069283u);
}

TEST(Crc32cTest, IscsiReadCommandVector) {
  // RFC 3720 B.4: an iSCSI SCSI Read (10) command PDU.
  const unsigned char pdu[48] = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  };
  EXPECT_EQ(Value(reinterpret_cast<const char*>(pdu), sizeof(pdu)), 0xd9963a56u);
}

TEST(Crc32cTest, EmptyInput) {
  EXPECT_EQ(Value("", 0), 0u);
  EXPECT_EQ(Extend(0x12345678u, "", 0), 0x12345678u);
}

TEST(Crc32cTest, MatchesReferenceAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string buf(300, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t start = 0; start < 16; ++start) {
    for (size_t len = 0; start + len <= buf.size(); len += (len < 80 ? 1 : 37)) {
      ASSERT_EQ(Value(buf.data() + start, len), ReferenceCrc(buf.data() + start, len))
          << "start " << start << " len " << len;
    }
  }
}

// Long buffers take the three-stream paths (blocks of 3 x 1024 and 3 x 128 bytes): every
// boundary between them, at every alignment.
TEST(Crc32cTest, MatchesReferenceOnLongBuffers) {
  std::mt19937 rng(5);
  std::string buf(20100, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t len : {383u, 384u, 385u, 391u, 767u, 768u, 3071u, 3072u, 3073u, 3456u, 3463u, 6144u,
                     6528u, 10000u, 10143u, 20011u}) {
    for (size_t start = 0; start < 8; ++start) {
      ASSERT_EQ(Value(buf.data() + start, len), ReferenceCrc(buf.data() + start, len))
          << "start " << start << " len " << len;
    }
  }
  const uint32_t whole = Value(buf);
  for (size_t split : {1u, 100u, 3072u, 5000u, 20000u}) {
    ASSERT_EQ(Extend(Value(buf.data(), split), buf.data() + split, buf.size() - split), whole)
        << "split at " << split;
  }
}

// From 2048 bytes, CPUs with VPCLMULQDQ fold 256-byte blocks with carry-less multiplication
// and finish with the crc32 instruction: every block boundary, every alignment of the 64-byte
// loads, and a starting crc other than 0 (Extend) folded into the first block.
TEST(Crc32cTest, MatchesReferenceWhereLongBuffersFold) {
  std::mt19937 rng(13);
  std::string buf(6000, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t len : {2047u, 2048u, 2049u, 2055u, 2303u, 2304u, 2305u, 2559u, 2560u, 2561u, 2816u,
                     4095u, 4096u, 4100u, 5000u, 5888u}) {
    for (size_t start = 0; start < 64; ++start) {
      ASSERT_EQ(Value(buf.data() + start, len), ReferenceCrc(buf.data() + start, len))
          << "start " << start << " len " << len;
    }
    const uint32_t whole = ReferenceCrc(buf.data(), 7 + len);
    ASSERT_EQ(Extend(Value(buf.data(), 7), buf.data() + 7, len), whole) << "len " << len;
  }
}

TEST(Crc32cTest, ExtendOverSplitBuffersEqualsWhole) {
  std::mt19937 rng(11);
  std::string data(1000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  const uint32_t whole = Value(data);
  for (size_t split = 0; split <= data.size(); ++split) {
    uint32_t crc = Extend(0, data.data(), split);
    crc = Extend(crc, data.data() + split, data.size() - split);
    ASSERT_EQ(crc, whole) << "split at " << split;
  }
  // Many small pieces of uneven size.
  uint32_t crc = 0;
  size_t pos = 0;
  for (size_t piece = 1; pos < data.size(); piece = piece % 13 + 1) {
    size_t n = std::min(piece, data.size() - pos);
    crc = Extend(crc, data.data() + pos, n);
    pos += n;
  }
  EXPECT_EQ(crc, whole);
}

TEST(Crc32cTest, DifferentDataDifferentCrc) {
  EXPECT_NE(Value("a"), Value("foo"));
  EXPECT_NE(Value("foo"), Value("bar"));
  std::string a(64, 'x');
  std::string b = a;
  b[31] ^= 1;
  EXPECT_NE(Value(a), Value(b));
}

TEST(Crc32cTest, MaskUnmaskRoundTrip) {
  std::vector<uint32_t> values = {0u,         1u,           0x80000000u,       0xffffffffu,
                                  kMaskDelta, Value("foo"), Value("123456789")};
  std::mt19937 rng(3);
  for (int i = 0; i < 10000; ++i) values.push_back(rng());
  for (uint32_t x : values) {
    ASSERT_EQ(Unmask(Mask(x)), x) << x;
    ASSERT_NE(Mask(x), x) << x;
    ASSERT_NE(Mask(Mask(x)), Mask(x)) << x;
    ASSERT_EQ(Unmask(Unmask(Mask(Mask(x)))), x) << x;
  }
}

TEST(Crc32cTest, MaskChangesRealCrcs) {
  uint32_t crc = Value("foo");
  EXPECT_NE(crc, Mask(crc));
  EXPECT_NE(crc, Mask(Mask(crc)));
  EXPECT_EQ(crc, Unmask(Mask(crc)));
}

}  // namespace
}  // namespace varve::crc32c
