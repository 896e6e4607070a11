// Tests of the little-endian fixed-width integers and LEB128 varints (src/util/coding.h).
#include "util/coding.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace varve {
namespace {

TEST(CodingTest, Fixed32IsLittleEndian) {
  char buf[4];
  EncodeFixed32(buf, 0x04030201u);
  EXPECT_EQ(std::string(buf, 4), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(DecodeFixed32(buf), 0x04030201u);
}

TEST(CodingTest, Fixed64IsLittleEndian) {
  char buf[8];
  EncodeFixed64(buf, 0x0807060504030201ull);
  EXPECT_EQ(std::string(buf, 8), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(DecodeFixed64(buf), 0x0807060504030201ull);
}

TEST(CodingTest, Fixed16RoundTrip) {
  for (uint16_t v : {uint16_t{0}, uint16_t{1}, uint16_t{0x1234}, uint16_t{0xffff}}) {
    char buf[2];
    EncodeFixed16(buf, v);
    EXPECT_EQ(DecodeFixed16(buf), v);
  }
  char buf[2];
  EncodeFixed16(buf, 0x0201);
  EXPECT_EQ(std::string(buf, 2), std::string("\x01\x02", 2));
}

TEST(CodingTest, Fixed32RoundTrip) {
  std::string s;
  std::vector<uint32_t> values;
  for (uint32_t v = 0; v < 100000; v += 7) values.push_back(v);
  for (int shift = 0; shift < 32; ++shift) {
    values.push_back(uint32_t{1} << shift);
    values.push_back((uint32_t{1} << shift) - 1);
  }
  values.push_back(std::numeric_limits<uint32_t>::max());
  for (uint32_t v : values) PutFixed32(&s, v);
  ASSERT_EQ(s.size(), values.size() * 4);
  const char* p = s.data();
  for (uint32_t v : values) {
    EXPECT_EQ(DecodeFixed32(p), v);
    p += 4;
  }
}

TEST(CodingTest, Fixed64RoundTrip) {
  std::string s;
  std::vector<uint64_t> values;
  for (int shift = 0; shift < 64; ++shift) {
    uint64_t v = uint64_t{1} << shift;
    values.push_back(v);
    values.push_back(v - 1);
    values.push_back(v + 1);
  }
  values.push_back(std::numeric_limits<uint64_t>::max());
  for (uint64_t v : values) PutFixed64(&s, v);
  ASSERT_EQ(s.size(), values.size() * 8);
  const char* p = s.data();
  for (uint64_t v : values) {
    EXPECT_EQ(DecodeFixed64(p), v);
    p += 8;
  }
}

// Values at every encoded-length boundary, plus those the task names.
std::vector<uint64_t> VarintBoundaries() {
  std::vector<uint64_t> v = {0,
                             1,
                             127,
                             128,
                             255,
                             256,
                             (uint64_t{1} << 14) - 1,
                             uint64_t{1} << 14,
                             (uint64_t{1} << 14) + 1,
                             uint64_t{1} << 63,
                             (uint64_t{1} << 63) - 1,
                             std::numeric_limits<uint64_t>::max()};
  for (int bits = 7; bits < 64; bits += 7) {
    v.push_back((uint64_t{1} << bits) - 1);
    v.push_back(uint64_t{1} << bits);
  }
  return v;
}

int ExpectedVarintLength(uint64_t v) {
  int n = 1;
  while (v >= 128) {
    v >>= 7;
    ++n;
  }
  return n;
}

TEST(CodingTest, VarintRoundTripAtBoundaries) {
  for (uint64_t v : VarintBoundaries()) {
    SCOPED_TRACE(v);
    std::string s;
    PutVarint64(&s, v);
    EXPECT_EQ(static_cast<int>(s.size()), ExpectedVarintLength(v));
    EXPECT_EQ(VarintLength(v), static_cast<int>(s.size()));
    EXPECT_LE(s.size(), static_cast<size_t>(kMaxVarint64Bytes));
    uint64_t out = ~v;
    const char* end = DecodeVarint64(s.data(), s.data() + s.size(), &out);
    ASSERT_NE(end, nullptr);
    EXPECT_EQ(end, s.data() + s.size());
    EXPECT_EQ(out, v);
  }
}

TEST(CodingTest, VarintKnownEncodings) {
  auto enc = [](uint64_t v) {
    std::string s;
    PutVarint64(&s, v);
    return s;
  };
  EXPECT_EQ(enc(0), std::string("\x00", 1));
  EXPECT_EQ(enc(127), "\x7f");
  EXPECT_EQ(enc(128), "\x80\x01");
  EXPECT_EQ(enc(300), "\xac\x02");
  EXPECT_EQ(enc(uint64_t{1} << 14), "\x80\x80\x01");
  EXPECT_EQ(enc(uint64_t{1} << 63), "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01");
  EXPECT_EQ(enc(std::numeric_limits<uint64_t>::max()), "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01");
}

TEST(CodingTest, EncodeVarint64ReturnsEnd) {
  char buf[kMaxVarint64Bytes];
  for (uint64_t v : VarintBoundaries()) {
    char* end = EncodeVarint64(buf, v);
    EXPECT_EQ(end - buf, VarintLength(v));
  }
}

TEST(CodingTest, VarintSequenceRoundTrip) {
  std::mt19937_64 rng(42);
  std::vector<uint64_t> values = VarintBoundaries();
  for (int i = 0; i < 10000; ++i) values.push_back(rng() >> (rng() % 64));
  std::string s;
  for (uint64_t v : values) PutVarint64(&s, v);
  const char* p = s.data();
  const char* limit = s.data() + s.size();
  for (uint64_t v : values) {
    uint64_t out = 0;
    p = DecodeVarint64(p, limit, &out);
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(out, v);
  }
  EXPECT_EQ(p, limit);
}

TEST(CodingTest, TruncatedVarintReturnsNullptr) {
  for (uint64_t v : VarintBoundaries()) {
    std::string s;
    PutVarint64(&s, v);
    for (size_t len = 0; len < s.size(); ++len) {
      SCOPED_TRACE(testing::Message() << "value " << v << " cut to " << len << " bytes");
      uint64_t out = 0;
      EXPECT_EQ(DecodeVarint64(s.data(), s.data() + len, &out), nullptr);
    }
  }
}

TEST(CodingTest, OverlongVarintRejected) {
  // 11 bytes: ten continuation bytes then a terminator.
  std::string eleven(10, '\x80');
  eleven.push_back('\x00');
  uint64_t out = 0;
  EXPECT_EQ(DecodeVarint64(eleven.data(), eleven.data() + eleven.size(), &out), nullptr);

  std::string eleven_ff(10, '\xff');
  eleven_ff.push_back('\x01');
  EXPECT_EQ(DecodeVarint64(eleven_ff.data(), eleven_ff.data() + eleven_ff.size(), &out), nullptr);

  // Endless continuation bytes.
  std::string many(32, '\xff');
  EXPECT_EQ(DecodeVarint64(many.data(), many.data() + many.size(), &out), nullptr);
}

TEST(CodingTest, TenthByteOverflowRejected) {
  // The tenth byte carries bit 63 only: any value above 1 overflows 64 bits.
  for (int last = 2; last < 256; ++last) {
    std::string s(9, '\xff');
    s.push_back(static_cast<char>(last));
    uint64_t out = 0;
    EXPECT_EQ(DecodeVarint64(s.data(), s.data() + s.size(), &out), nullptr) << "last " << last;
  }
  std::string max(9, '\xff');
  max.push_back('\x01');
  uint64_t out = 0;
  ASSERT_NE(DecodeVarint64(max.data(), max.data() + max.size(), &out), nullptr);
  EXPECT_EQ(out, std::numeric_limits<uint64_t>::max());
}

TEST(CodingTest, DecodeStopsAtTerminatorAndIgnoresTrailingBytes) {
  std::string s;
  PutVarint64(&s, 300);
  s.append("\xff\xff", 2);
  uint64_t out = 0;
  const char* end = DecodeVarint64(s.data(), s.data() + s.size(), &out);
  ASSERT_NE(end, nullptr);
  EXPECT_EQ(end, s.data() + 2);
  EXPECT_EQ(out, 300u);
}

}  // namespace
}  // namespace varve
