// Writes the seed corpora of the fuzz targets: fuzz_make_corpus OUT_DIR creates
// OUT_DIR/record_decoder/* and OUT_DIR/hint_reader/* (the files under fuzz/corpus/). Each seed
// is a small valid input in the layout of fuzz_inputs.h, built with the engine's own encoders.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "engine/record.h"
#include "engine/segment_io.h"
#include "fuzz_inputs.h"
#include "mem_env.h"
#include "util/coding.h"
#include "util/crc32c.h"

namespace varve::fuzz {
namespace {

using format::kFlagBatchCommit;
using format::kFlagInBatch;
using format::kTypePut;
using format::kTypeTombstone;

bool WriteSeed(const std::filesystem::path& dir, const std::string& name,
               const std::string& bytes) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
    return false;
  }
  std::printf("%s (%zu bytes)\n", (dir / name).c_str(), bytes.size());
  return true;
}

std::string RecordInput(uint8_t mode, uint8_t unfixed_mask, uint8_t cut, const std::string& body) {
  std::string in;
  in.push_back(static_cast<char>(mode));
  in.push_back(static_cast<char>(unfixed_mask));
  in.push_back(static_cast<char>(cut));
  return in + body;
}

// The three worked examples of docs/format.md, back to back.
std::string WorkedExamples() {
  std::string body;
  AppendRecord(&body, kTypePut, 7, 0, "k1", "v1");
  AppendRecord(&body, kTypeTombstone, 8, 0, "k1", "");
  AppendRecord(&body, kTypePut | kFlagInBatch | kFlagBatchCommit, 9, 1767225600000, "k2", "v");
  return body;
}

bool WriteRecordSeeds(const std::filesystem::path& dir) {
  bool ok = true;
  ok &= WriteSeed(dir, "worked_examples", RecordInput(0, 0, 7, WorkedExamples()));
  {
    std::string body;
    AppendRecord(&body, kTypePut, 7, 0, "k1", "v1");
    ok &= WriteSeed(dir, "single_put", RecordInput(0, 0, 3, body));
  }
  {
    // A writer segment whose second record is damaged: the scan resyncs to the third.
    std::string body;
    for (uint64_t seq = 1; seq <= 4; ++seq) {
      AppendRecord(&body, kTypePut, seq, 0, "key" + std::to_string(seq), "value");
      if (seq == 2) body.back() ^= 0x20;  // last value byte: bad checksum
    }
    ok &= WriteSeed(dir, "damaged_middle_writer", RecordInput(kRecordWriterSegment, 0, 20, body));
  }
  {
    // After the damage, a valid record with an older sequence number (must be skipped in a
    // writer segment), then a newer one.
    std::string body;
    AppendRecord(&body, kTypePut, 10, 0, "a", "1");
    body.append("\x01\x02\x03\x04\x05", 5);
    AppendRecord(&body, kTypePut, 5, 0, "old", "x");
    AppendRecord(&body, kTypePut, 11, 0, "b", "2");
    ok &= WriteSeed(dir, "resync_skips_older_seq", RecordInput(kRecordWriterSegment, 0, 9, body));
  }
  {
    std::string body;
    AppendRecord(&body, kTypePut, 1, 0, "a", "first");
    AppendRecord(&body, kTypePut, 2, 0, "b", "second");
    std::string torn;
    AppendRecord(&torn, kTypePut, 3, 0, "c", "third, torn");
    body.append(torn, 0, torn.size() / 2);
    ok &= WriteSeed(dir, "torn_tail", RecordInput(kRecordWriterSegment, 0, 30, body));
  }
  {
    // An atomic batch of three, then a record with two-byte key and value lengths.
    std::string body;
    AppendRecord(&body, kTypePut | kFlagInBatch, 20, 0, "b1", "x");
    AppendRecord(&body, kTypeTombstone | kFlagInBatch, 21, 0, "b2", "");
    AppendRecord(&body, kTypePut | kFlagInBatch | kFlagBatchCommit, 22, 1767225600000, "b3", "z");
    AppendRecord(&body, kTypePut, 23, 0, std::string(130, 'k'), std::string(300, 'v'));
    ok &= WriteSeed(dir, "batch_and_long_lengths", RecordInput(0, 0, 40, body));
  }
  {
    // Four bytes of user flags (memcached) after the expiry time.
    std::string body;
    AppendRecord(&body, kTypePut, 30, 1767225600000, "k9", "v9", 0xdeadbeef);
    ok &= WriteSeed(dir, "user_flags", RecordInput(0, 0, 22, body));
  }
  {
    // Zeroed checksums: the harness fixes all but the second (bit 1 of the mask).
    std::string body;
    for (uint64_t seq = 1; seq <= 4; ++seq) {
      size_t at = body.size();
      AppendRecord(&body, seq == 3 ? kTypeTombstone : kTypePut, seq, 0, "k" + std::to_string(seq),
                   seq == 3 ? "" : "v");
      EncodeFixed32(body.data() + at, 0);
    }
    ok &= WriteSeed(dir, "fix_checksums",
                    RecordInput(kRecordFixChecksums | kRecordWriterSegment, 0x02, 5, body));
  }
  {
    // A 1 MiB record before the body: the body starts 64 bytes before the end of the scanner's
    // first read.
    std::string body;
    for (uint64_t seq = 2; seq <= 7; ++seq) {
      AppendRecord(&body, kTypePut, seq, 0, "far" + std::to_string(seq), std::string(20, 'v'));
    }
    ok &= WriteSeed(dir, "filler_first_straddles_buffer",
                    RecordInput(0xe0 | kRecordWriterSegment, 0, 11, body));
    // The same with the second read failing.
    ok &= WriteSeed(dir, "filler_first_read_error",
                    RecordInput(0xe0 | kRecordInjectIoError | (1 << 3), 0, 11, body));
  }
  {
    // Damage more than 64 bytes before a 1 MiB record that follows the body: the resync meets a
    // record that ends past its buffer.
    std::string body;
    AppendRecord(&body, kTypePut, 5, 0, "a", "1");
    body.append(100, '\xee');
    ok &=
        WriteSeed(dir, "filler_last_resync", RecordInput(0xc0 | kRecordWriterSegment, 0, 9, body));
    // Without damage: Next reads the 1 MiB record, which the first read does not hold whole
    // once the body is longer than 64 bytes.
    std::string clean = WorkedExamples();
    AppendRecord(&clean, kTypePut, 10, 0, "k3", "v3");
    ok &= WriteSeed(dir, "filler_last_clean", RecordInput(0xc0, 0, 9, clean));
  }
  return ok;
}

std::string HintInput(uint8_t mode, uint32_t segment_id, uint64_t segment_bytes,
                      uint8_t count_delta, const std::string& payload) {
  std::string in;
  in.push_back(static_cast<char>(mode));
  PutFixed32(&in, segment_id);
  PutFixed64(&in, segment_bytes);
  in.push_back(static_cast<char>(count_delta));
  return in + payload;
}

// A hint file written by HintWriter.
std::string MakeHint(uint32_t segment_id, const std::vector<HintEntry>& entries,
                     uint64_t segment_bytes) {
  MemEnv env;
  auto w = HintWriter::Create(&env, "store", segment_id);
  if (!w.ok()) return "";
  for (const HintEntry& e : entries) {
    if (!(*w)->Add(e).ok()) return "";
  }
  if (!(*w)->Finish(segment_bytes).ok()) return "";
  const std::string* file = env.Get("store/" + HintFileName(segment_id));
  return file == nullptr ? "" : *file;
}

// The entries of the segment of the worked examples: put k1, tombstone k1, batch put k2.
std::vector<HintEntry> WorkedEntries() {
  return {
      HintEntry{kTypePut, 7, 0, 32, 19, "k1"},
      HintEntry{kTypeTombstone, 8, 0, 51, 17, "k1"},
      HintEntry{kTypePut | kFlagInBatch | kFlagBatchCommit, 9, 1767225600000, 68, 26, "k2"},
  };
}
constexpr uint64_t kWorkedSegmentBytes = 94;

bool WriteHintSeeds(const std::filesystem::path& dir) {
  bool ok = true;
  const std::string worked = MakeHint(1, WorkedEntries(), kWorkedSegmentBytes);
  ok &= WriteSeed(dir, "raw_worked_examples", HintInput(0, 1, kWorkedSegmentBytes, 0, worked));
  ok &= WriteSeed(dir, "raw_empty", HintInput(0, 7, 32, 0, MakeHint(7, {}, 32)));
  {
    // More entries than one group of ReadHintFileBatched.
    std::vector<std::string> keys;
    std::vector<HintEntry> entries;
    for (uint32_t i = 0; i < 70; ++i) keys.push_back("k" + std::to_string(i));
    uint32_t offset = 32;
    for (uint32_t i = 0; i < 70; ++i) {
      entries.push_back(HintEntry{kTypePut, 100 + i, 0, offset, 20, keys[i]});
      offset += 20;
    }
    ok &= WriteSeed(dir, "raw_batched_70",
                    HintInput(kHintBatched, 3, offset, 0, MakeHint(3, entries, offset)));
  }
  {
    // An entry that ends past the segment (its checksum is valid).
    std::vector<HintEntry> entries = WorkedEntries();
    entries[2].size = 27;
    ok &= WriteSeed(
        dir, "raw_entry_outside_segment",
        HintInput(0, 1, kWorkedSegmentBytes, 0, MakeHint(1, entries, kWorkedSegmentBytes)));
  }
  ok &= WriteSeed(dir, "raw_short_read",
                  HintInput(kHintShortRead, 1, kWorkedSegmentBytes, 0, worked));
  ok &= WriteSeed(dir, "raw_read_error",
                  HintInput(kHintReadError, 1, kWorkedSegmentBytes, 0, worked));
  {
    // Major version 2, with valid checksums: refused as not supported.
    std::string v2 = worked;
    EncodeFixed16(v2.data() + 8, 2);
    EncodeFixed32(v2.data() + 28, crc32c::Mask(crc32c::Value(v2.data(), 28)));
    EncodeFixed32(v2.data() + v2.size() - 8, crc32c::Mask(crc32c::Value(v2.data(), v2.size() - 8)));
    ok &= WriteSeed(dir, "raw_major_version_2", HintInput(0, 1, kWorkedSegmentBytes, 0, v2));
  }
  // The footer describes another segment size than the caller's.
  ok &= WriteSeed(dir, "raw_stale_segment_bytes",
                  HintInput(0, 1, kWorkedSegmentBytes + 5, 0, worked));
  {
    // Synthesized: only the entry region; the harness adds header and footer.
    std::string entries =
        worked.substr(format::kFileHeaderBytes,
                      worked.size() - format::kFileHeaderBytes - format::kHintFooterBytes);
    ok &= WriteSeed(dir, "synth_worked_entries",
                    HintInput(kHintSynthesize, 1, kWorkedSegmentBytes, 0, entries));
    ok &= WriteSeed(dir, "synth_count_off_by_one",
                    HintInput(kHintSynthesize | kHintAdjustCount | kHintBatched, 1,
                              kWorkedSegmentBytes, 1, entries));
    ok &= WriteSeed(dir, "synth_entry_cut_short",
                    HintInput(kHintSynthesize, 1, kWorkedSegmentBytes, 0,
                              entries.substr(0, entries.size() - 3)));
  }
  return ok;
}

}  // namespace
}  // namespace varve::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr,
                 "usage: %s OUT_DIR   (writes OUT_DIR/record_decoder, OUT_DIR/hint_reader)\n",
                 argv[0]);
    return 2;
  }
  std::filesystem::path out(argv[1]);
  bool ok = varve::fuzz::WriteRecordSeeds(out / "record_decoder");
  ok &= varve::fuzz::WriteHintSeeds(out / "hint_reader");
  return ok ? 0 : 1;
}
