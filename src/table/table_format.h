// Constants of the table file format. The layout is documented byte by byte in docs/format.md
// ("Table file"); tests/table/table_golden_test.cc decodes the worked example shown there.
#pragma once

#include <cstdint>
#include <string_view>

namespace varve::table {

// File header: magic (8), major u16, minor u16, flags u32 (0). The builder writes format 2;
// readers also read format 1 (the footer's major version decides, and must match the header's).
constexpr std::string_view kHeaderMagic = "VARVTBL1";
constexpr uint16_t kMajorVersion = 2;
constexpr uint16_t kMinorVersion = 0;
constexpr uint16_t kMajorVersion1 = 1;
constexpr uint64_t kHeaderSize = 16;

// Block trailer after the (possibly compressed) block bytes: raw size u32, compression u8,
// checksum u32 (low 32 bits of XXH3-64 over the block bytes, raw size and compression byte).
constexpr uint64_t kBlockTrailerSize = 9;
// A block holds at most this many records.
constexpr uint32_t kMaxRecordsPerBlock = 255;
// Hash slots address blocks with 24 bits.
constexpr uint64_t kMaxBlocks = 1ull << 24;
constexpr uint32_t kMinBlockSize = 256;
constexpr uint32_t kMaxBlockSize = 1u << 20;
// Largest raw block accepted by a reader (a single huge record makes a big block).
constexpr uint64_t kMaxRawBlockSize = 1ull << 31;

// Hash index: home slots = ceil(entries * 8 / 7) (load 7/8), 8-byte slots (u64): bits 0..19
// fingerprint (0 = empty slot), then the record's location, one of:
//   block slots (format 1; format 2 with compressed blocks): bits 20..39 the record's offset in
//     its raw block, bits 40..63 the block number;
//   direct slots (format 2 with compression none, footer flag kFlagDirectSlots): bits 20..63 the
//     record's offset in the file.
constexpr uint64_t kSlotSize = 8;
constexpr uint64_t kFingerprintMask = (1ull << 20) - 1;
inline uint64_t SlotLocation(uint64_t block, uint64_t offset) { return block << 40 | offset << 20; }
inline uint64_t SlotBlock(uint64_t slot) { return slot >> 40; }
inline uint64_t SlotOffset(uint64_t slot) { return (slot >> 20) & ((1ull << 20) - 1); }
inline uint64_t DirectSlotLocation(uint64_t file_offset) { return file_offset << 20; }
inline uint64_t DirectSlotOffset(uint64_t slot) { return slot >> 20; }
// Largest file offset a direct slot holds (44 bits).
constexpr uint64_t kMaxDirectOffset = (1ull << 44) - 1;
// Readers remember which data pages had every block overlapping them checksum-verified.
constexpr uint64_t kVerifyPageShift = 12;  // 4 KiB
// Sparse index block offsets: bits 0..61 the file offset, bits 62..63 the block's compression.
constexpr uint64_t kBlockOffsetMask = (1ull << 62) - 1;
inline uint64_t HomeSlotsFor(uint64_t entries) {
  uint64_t n = (entries * 8 + 6) / 7;
  return n == 0 ? 1 : n;
}

// Footer: the last 128 bytes of the file.
constexpr uint64_t kFooterSize = 128;
constexpr std::string_view kFooterMagic = "VARVTBLE";
namespace footer {
constexpr int kEntries = 0;
constexpr int kTombstones = 8;
constexpr int kBlocks = 16;
constexpr int kKeyBytes = 24;
constexpr int kValueBytes = 32;
constexpr int kRawBlockBytes = 40;
constexpr int kSparseOffset = 48;
constexpr int kSparseBytes = 56;
constexpr int kHashOffset = 64;
constexpr int kHomeSlots = 72;
constexpr int kPhysicalSlots = 80;
constexpr int kSparseChecksum = 88;
constexpr int kHashChecksum = 96;
constexpr int kFlags = 104;  // low 8 bits: compression of the blocks; bit 8 kFlagDirectSlots
constexpr int kMajor = 108;
constexpr int kMinor = 110;
constexpr int kFooterChecksum = 112;  // XXH3-64 of footer bytes 0..111
constexpr int kEndMagic = 120;
}  // namespace footer
// Footer flag (format 2): every block is uncompressed and hash slots are direct slots.
constexpr uint32_t kFlagDirectSlots = 1u << 8;

// Record inside a raw block: varint key length, varint (value length << 1 | tombstone), key,
// value. After the records: u32 offset of each record, then u32 record count.

}  // namespace varve::table
