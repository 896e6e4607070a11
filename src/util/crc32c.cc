#include "util/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace varve::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82f63b78u;  // reflected Castagnoli polynomial

struct Table {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Table() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
  }
};
constexpr Table kTable;

uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n) {
  auto* p = reinterpret_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    w ^= c;
    c = kTable.t[7][w & 0xff] ^ kTable.t[6][(w >> 8) & 0xff] ^ kTable.t[5][(w >> 16) & 0xff] ^
        kTable.t[4][(w >> 24) & 0xff] ^ kTable.t[3][(w >> 32) & 0xff] ^
        kTable.t[2][(w >> 40) & 0xff] ^ kTable.t[1][(w >> 48) & 0xff] ^ kTable.t[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) c = kTable.t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

#if defined(__x86_64__)
// The crc32 instruction takes 3 cycles but can start every cycle: three independent streams over
// three adjacent blocks of a long buffer, joined by shifting the earlier streams' states over
// the later blocks, run about three times faster than one stream.

// The register's raw update is linear, so "append len zero bytes" is a 32x32 matrix over GF(2);
// it is applied a byte of the state at a time through four tables.
struct Shift {
  std::array<std::array<uint32_t, 256>, 4> t{};
  uint32_t operator()(uint32_t c) const {
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
  }
};

__attribute__((target("sse4.2"))) Shift MakeShift(size_t len) {
  uint32_t column[32];  // the operator applied to each single-bit state
  for (int i = 0; i < 32; ++i) {
    uint64_t c = uint64_t{1} << i;
    for (size_t k = 0; k < len / 8; ++k) c = _mm_crc32_u64(c, 0);
    column[i] = static_cast<uint32_t>(c);
  }
  Shift s;
  for (int b = 0; b < 4; ++b) {
    for (uint32_t v = 0; v < 256; ++v) {
      uint32_t r = 0;
      for (int i = 0; i < 8; ++i) {
        if ((v >> i) & 1) r ^= column[8 * b + i];
      }
      s.t[b][v] = r;
    }
  }
  return s;
}

constexpr size_t kLongBlock = 1024;  // per stream; multiples of 8
constexpr size_t kShortBlock = 128;

struct Shifts {
  Shift long_block = MakeShift(kLongBlock);
  Shift short_block = MakeShift(kShortBlock);
};

__attribute__((target("sse4.2"))) inline uint64_t Word(const unsigned char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// Runs three streams over blocks of len bytes while at least 3 * len bytes remain.
__attribute__((target("sse4.2"))) void ThreeStreams(uint64_t* c, const unsigned char** p, size_t* n,
                                                    size_t len, const Shift& shift) {
  while (*n >= 3 * len) {
    const unsigned char* a = *p;
    const unsigned char* b = a + len;
    const unsigned char* d = b + len;
    uint64_t ca = *c, cb = 0, cd = 0;
    for (size_t i = 0; i < len; i += 8) {
      ca = _mm_crc32_u64(ca, Word(a + i));
      cb = _mm_crc32_u64(cb, Word(b + i));
      cd = _mm_crc32_u64(cd, Word(d + i));
    }
    uint32_t joined = shift(static_cast<uint32_t>(ca)) ^ static_cast<uint32_t>(cb);
    *c = shift(joined) ^ static_cast<uint32_t>(cd);
    *p += 3 * len;
    *n -= 3 * len;
  }
}

__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const char* data, size_t n) {
  static const Shifts shifts;
  auto* p = reinterpret_cast<const unsigned char*>(data);
  uint64_t c = ~crc;
  ThreeStreams(&c, &p, &n, kLongBlock, shifts.long_block);
  ThreeStreams(&c, &p, &n, kShortBlock, shifts.short_block);
  while (n >= 8) {
    c = _mm_crc32_u64(c, Word(p));
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}
#endif

using ExtendFn = uint32_t (*)(uint32_t, const char*, size_t);
ExtendFn Choose() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) return ExtendSse42;
#endif
  return ExtendPortable;
}
const ExtendFn kExtend = Choose();

}  // namespace

uint32_t Extend(uint32_t crc, const char* data, size_t n) { return kExtend(crc, data, n); }

}  // namespace varve::crc32c
