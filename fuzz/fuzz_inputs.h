// Layouts of the fuzz targets' inputs, shared by the targets and the corpus generator
// (fuzz/README.md). Every input starts with a few control bytes chosen by the fuzzer, then the
// bytes under test.
#pragma once

#include <cstddef>
#include <cstdint>

namespace varve::fuzz {

// fuzz_record_decoder: mode u8 | unfixed_mask u8 | cut u8 | body (records, as after a segment
// header).
constexpr size_t kRecordControlBytes = 3;
// The harness rewrites the checksum of each record in the body whose other fields decode, so
// that the fuzzer gets past the CRC; record i keeps its own bytes if bit (i % 8) of unfixed_mask
// is set (that record is then damaged and the scanner must resync past it).
constexpr uint8_t kRecordFixChecksums = 0x01;
// Resync as for a writer segment (records after the damage must have a higher sequence number
// than any before); otherwise as for a compaction output (any sequence number).
constexpr uint8_t kRecordWriterSegment = 0x02;
// The segment's reads fail after RecordReadsBeforeError(mode) successful reads.
constexpr uint8_t kRecordInjectIoError = 0x04;
constexpr int RecordReadsBeforeError(uint8_t mode) { return (mode >> 3) & 0x03; }
// Bits 5-7 all set: a valid record of kFillerBytes (sequence number 1) sits between the segment
// header and the body, so that the body straddles the end of the scanner's first 1 MiB read.
constexpr bool IsRecordFillerFirst(uint8_t mode) { return (mode & 0xe0) == 0xe0; }
// Bits 5-7 = 110: such a record (sequence number 2^62) follows the body, so that a resync from
// damage in the body meets a record that ends past the scanner's buffer.
constexpr bool IsRecordFillerLast(uint8_t mode) { return (mode & 0xe0) == 0xc0; }
constexpr size_t kFillerBytes = (size_t{1} << 20) - 64;

// fuzz_hint_reader: mode u8 | segment_id u32 | segment_bytes u64 | count_delta u8 | payload.
constexpr size_t kHintControlBytes = 14;
// Without this bit the payload is the whole hint file. With it the payload is only the entry
// region: the harness adds a valid header (segment_id) and footer (segment_bytes, entry count,
// checksum), so that the fuzzer exercises the entry parser.
constexpr uint8_t kHintSynthesize = 0x01;
// (Synthesized only.) The footer's entry count is the number of entries the reference parser
// found plus count_delta (mod 2^64), instead of exactly that number.
constexpr uint8_t kHintAdjustCount = 0x02;
// Read with ReadHintFileBatched (and check the group sizes) instead of ReadHintFile.
constexpr uint8_t kHintBatched = 0x04;
// Reads of the hint file come back one byte short (0x08) or fail (0x10); both must be refused.
constexpr uint8_t kHintShortRead = 0x08;
constexpr uint8_t kHintReadError = 0x10;

}  // namespace varve::fuzz
