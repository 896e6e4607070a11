// Tests of the log record, file header and hint file formats (src/engine/record.h,
// src/engine/segment_io.h; docs/format.md).
#include "engine/record.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/record_format.h"
#include "engine/segment_io.h"
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

// The records every round-trip, bit-flip and truncation test runs over.
std::vector<RecordSpec> SampleRecords() {
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  return {
      {format::kTypePut, 1, 0, "key", "value"},
      {format::kTypePut, 42, 1700000000000ull, "expiring", "soon"},
      {format::kTypeTombstone, 7, 0, "gone", ""},
      {format::kTypePut | format::kFlagInBatch, 100, 0, "batch-1", "a"},
      {format::kTypePut | format::kFlagInBatch | format::kFlagBatchCommit, 101, 5, "batch-2", "b"},
      {format::kTypeTombstone | format::kFlagInBatch | format::kFlagBatchCommit, 102, 0, "b3",
       ""},
      {format::kTypePut, 3, 0, "", "empty key"},
      {format::kTypePut, 4, 0, "empty value", ""},
      {format::kTypePut, 5, 0, "", ""},
      {format::kTypePut, IndexEntry_kSeqMaxForTest(), 0, binary, binary + binary},
  };
}

}  // namespace
}  // namespace varve
