#include "util/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
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

// Long buffers on CPUs with VPCLMULQDQ: carry-less multiplication folds 16 chunks of 16 bytes
// 256 bytes forward per step, about four times the crc32 instruction's 8 bytes per cycle.
//
// Folding uses the raw register's linearity: F(c, M) = F(0, M with c xored into its first 4
// bytes), and a 16-byte chunk is moved D bytes forward (same F(0, .) of the message) by the
// carry-less products of its low 64 bits with reflect32(x^(8D+32) mod P) << 1 and of its high
// 64 bits with reflect32(x^(8D-32) mod P) << 1 (the constants of Intel's "Fast CRC computation
// for generic polynomials using PCLMULQDQ", in the bit-reflected domain of this CRC).
uint32_t XPowMod(uint32_t n) {  // x^n mod P, P = 0x1edc6f41 (unreflected)
  uint32_t r = 1;
  for (uint32_t i = 0; i < n; ++i) r = (r << 1) ^ ((r >> 31) != 0 ? 0x1edc6f41u : 0u);
  return r;
}

uint32_t Reflect32(uint32_t v) {
  uint32_t r = 0;
  for (int i = 0; i < 32; ++i) r |= ((v >> i) & 1u) << (31 - i);
  return r;
}

constexpr size_t kFoldBlock = 256;
constexpr size_t kMinFoldBytes = 2048;

struct FoldConstants {
  uint64_t low = uint64_t{Reflect32(XPowMod(8 * kFoldBlock + 32))} << 1;
  uint64_t high = uint64_t{Reflect32(XPowMod(8 * kFoldBlock - 32))} << 1;
};

__attribute__((target("avx512f,vpclmulqdq"))) inline __m512i FoldInto(__m512i acc, __m512i k,
                                                                      const unsigned char* p) {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(acc, k, 0x00),
                                   _mm512_clmulepi64_epi128(acc, k, 0x11), _mm512_loadu_si512(p),
                                   0x96);
}

// Consumes whole 256-byte blocks of *p (at least 2) and returns the raw register after them.
__attribute__((target("avx512f,vpclmulqdq,sse4.2"))) uint64_t Fold(uint64_t c,
                                                                   const unsigned char** p,
                                                                   size_t* n) {
  static const FoldConstants fold;
  const __m512i k =
      _mm512_set_epi64(static_cast<long long>(fold.high), static_cast<long long>(fold.low),
                       static_cast<long long>(fold.high), static_cast<long long>(fold.low),
                       static_cast<long long>(fold.high), static_cast<long long>(fold.low),
                       static_cast<long long>(fold.high), static_cast<long long>(fold.low));
  const unsigned char* q = *p;
  __m512i a0 = _mm512_xor_si512(_mm512_loadu_si512(q),
                                _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, static_cast<long long>(c)));
  __m512i a1 = _mm512_loadu_si512(q + 64);
  __m512i a2 = _mm512_loadu_si512(q + 128);
  __m512i a3 = _mm512_loadu_si512(q + 192);
  q += kFoldBlock;
  size_t left = *n - kFoldBlock;
  for (; left >= kFoldBlock; left -= kFoldBlock, q += kFoldBlock) {
    a0 = FoldInto(a0, k, q);
    a1 = FoldInto(a1, k, q + 64);
    a2 = FoldInto(a2, k, q + 128);
    a3 = FoldInto(a3, k, q + 192);
  }
  alignas(64) unsigned char state[kFoldBlock];
  _mm512_store_si512(state, a0);
  _mm512_store_si512(state + 64, a1);
  _mm512_store_si512(state + 128, a2);
  _mm512_store_si512(state + 192, a3);
  uint64_t r = 0;
  for (size_t i = 0; i < kFoldBlock; i += 8) r = _mm_crc32_u64(r, Word(state + i));
  *p = q;
  *n = left;
  return r;
}

bool CanFold() { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq"); }

__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc, const char* data, size_t n) {
  static const Shifts shifts;
  static const bool can_fold = CanFold();
  auto* p = reinterpret_cast<const unsigned char*>(data);
  uint64_t c = ~crc;
  if (n >= kMinFoldBytes && can_fold) c = Fold(c, &p, &n);
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
