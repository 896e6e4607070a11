// Constants of the segment and hint file formats. docs/format.md describes both byte by byte.
#pragma once

#include <cstdint>
#include <string_view>

namespace varve::format {

constexpr uint16_t kMajorVersion = 1;
constexpr uint16_t kMinorVersion = 0;

// File header shared by segment, hint and OBSOLETE files (32 bytes):
//   magic[8] | major u16 | minor u16 | flags u32 | segment_id u32 | base_seq u64 | crc u32
constexpr size_t kFileHeaderBytes = 32;
constexpr std::string_view kSegmentMagic = "VARVSEG1";
constexpr std::string_view kHintMagic = "VARVHNT2";
constexpr std::string_view kObsoleteMagic = "VARVOBS1";
constexpr std::string_view kHintMarkMagic = "VARVHMK1";
constexpr size_t kHintMarkBytes = kFileHeaderBytes + 32;
constexpr uint32_t kFileFlagCompactionOutput = 1;  // segment written by compaction

// Record: crc u32 | flags u8 | seq u64 | [expiry_ms u64] | [user_flags u32] | varint key_len |
//         varint value_len | key | value.  crc = masked CRC32C of every byte after the crc field.
constexpr size_t kRecordMinHeaderBytes = 4 + 1 + 8 + 1 + 1;
constexpr size_t kRecordMaxHeaderBytes = 4 + 1 + 8 + 8 + 4 + 10 + 10;

constexpr uint8_t kTypeMask = 0x03;
constexpr uint8_t kTypePut = 0x00;
constexpr uint8_t kTypeTombstone = 0x01;
constexpr uint8_t kFlagHasExpiry = 0x04;
constexpr uint8_t kFlagInBatch = 0x08;       // part of an atomic batch
constexpr uint8_t kFlagBatchCommit = 0x10;   // last record of an atomic batch
constexpr uint8_t kFlagHasUserFlags = 0x20;  // a u32 of client flags follows (memcached)
constexpr uint8_t kKnownFlags = 0x3f;

// Limits: a record must fit a segment offset and size in 32 bits.
constexpr uint64_t kMaxKeyBytes = 64ull << 20;      // 64 MiB
constexpr uint64_t kMaxValueBytes = 1024ull << 20;  // 1 GiB
constexpr uint64_t kMinSegmentBytes = 1ull << 20;
constexpr uint64_t kMaxSegmentBytes = 2048ull << 20;

// Hint entry (entries in segment order, each relative to the one before):
//   flags u8 | varint zigzag(seq - previous seq) | [expiry_ms u64] |
//   varint (offset - previous record's end) | varint record_size | varint key_len | key
// The first entry's "previous" seq is 0 and its "previous end" is the end of the file header.
// Hint footer (24 bytes): entry_count u64 | segment_bytes u64 | crc u32 | end magic u32
constexpr size_t kHintFooterBytes = 24;
constexpr uint32_t kHintEndMagic = 0x32544e48;  // "HNT2"

// INDEX file (index checkpoint): file header (segment_id 0, base_seq = last sequence) |
// index parts | meta | footer: meta_bytes u64 | meta XXH3-64 u64 | zero u32 | end magic u32.
constexpr std::string_view kIndexFileName = "INDEX";
constexpr std::string_view kIndexMagic = "VARVIDX1";
constexpr size_t kIndexFooterBytes = 24;
constexpr uint32_t kIndexEndMagic = 0x31584449;  // "IDX1"

// OBSOLETE file: file header (segment_id 0) | count u32 | count x segment_id u32 | crc u32
// (masked CRC32C of all bytes before it). Lists compaction inputs being deleted.

}  // namespace varve::format
