// CRC32C (Castagnoli), hardware-accelerated with SSE4.2 where the CPU has it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace varve::crc32c {

// Extends crc with data. Start from 0.
uint32_t Extend(uint32_t crc, const char* data, size_t n);
inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

// Stored CRCs are masked so that a CRC over data that itself holds CRCs stays strong.
constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace varve::crc32c
