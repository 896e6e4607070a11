// The worked examples of docs/format.md, byte for byte: if this fails, the format changed and the
// document (and the major version, if old files no longer read) must change with it.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "engine/record.h"
#include "engine/segment_io.h"
#include "testutil/temp_dir.h"
#include "varve/db.h"
#include "varve/env.h"

namespace varve {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

TEST(GoldenTest, PutRecord) {
  std::string want = Bytes({0xe1, 0x1c, 0x7c, 0xbe, 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x02,
                            0x6b, 0x31, 0x76, 0x31});
  std::string got;
  AppendRecord(&got, format::kTypePut, 7, 0, "k1", "v1");
  EXPECT_EQ(got, want);
  RecordView rec;
  std::string why;
  ASSERT_EQ(DecodeRecord(want.data(), want.size(), &rec, &why), DecodeOutcome::kOk);
  EXPECT_EQ(rec.seq, 7u);
  EXPECT_EQ(rec.key, "k1");
  EXPECT_EQ(rec.value, "v1");
  EXPECT_FALSE(rec.tombstone());
}

TEST(GoldenTest, TombstoneRecord) {
  std::string want =
      Bytes({0xaf, 0x97, 0x4b, 0x7e, 0x01, 0x08, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x6b, 0x31});
  std::string got;
  AppendRecord(&got, format::kTypeTombstone, 8, 0, "k1", "");
  EXPECT_EQ(got, want);
  RecordView rec;
  std::string why;
  ASSERT_EQ(DecodeRecord(want.data(), want.size(), &rec, &why), DecodeOutcome::kOk);
  EXPECT_TRUE(rec.tombstone());
}

TEST(GoldenTest, BatchRecordWithExpiry) {
  std::string want =
      Bytes({0x7f, 0xc5, 0xad, 0xfb, 0x1c, 0x09, 0,    0,    0,    0,    0,    0,    0,
             0x00, 0xa8, 0xda, 0x76, 0x9b, 0x01, 0x00, 0x00, 0x02, 0x01, 0x6b, 0x32, 0x76});
  std::string got;
  AppendRecord(&got, format::kTypePut | format::kFlagInBatch | format::kFlagBatchCommit, 9,
               1767225600000ull, "k2", "v");
  EXPECT_EQ(got, want);
  RecordView rec;
  std::string why;
  ASSERT_EQ(DecodeRecord(want.data(), want.size(), &rec, &why), DecodeOutcome::kOk);
  EXPECT_EQ(rec.expiry_ms, 1767225600000ull);
  EXPECT_TRUE(rec.in_batch());
  EXPECT_TRUE(rec.batch_commit());
}

TEST(GoldenTest, SegmentHeader) {
  std::string want = "VARVSEG1" + Bytes({1, 0, 0, 0, 0, 0, 0, 0, 1,    0,    0,    0,
                                         0, 0, 0, 0, 0, 0, 0, 0, 0xbc, 0x28, 0xc0, 0x43});
  char got[format::kFileHeaderBytes];
  EncodeFileHeader(got, FileHeader{format::kSegmentMagic, 0, 1});
  EXPECT_EQ(std::string(got, sizeof(got)), want);
  FileHeader h;
  ASSERT_TRUE(DecodeFileHeader(want.data(), want.size(), format::kSegmentMagic, "x", &h).ok());
  EXPECT_EQ(h.segment_id, 1u);
}

TEST(GoldenTest, HintEntries) {
  // The entries of the three records above, between the hint's header and its footer.
  std::string want = Bytes({0x00, 0x0e, 0x00, 0x13, 0x02, 0x6b, 0x31,                    // put
                            0x01, 0x02, 0x00, 0x11, 0x02, 0x6b, 0x31,                    // delete
                            0x1c, 0x02, 0x00, 0xa8, 0xda, 0x76, 0x9b, 0x01, 0x00, 0x00,  // batch
                            0x00, 0x1a, 0x02, 0x6b, 0x32});
  testing::TempDir dir;
  Env* env = Env::Default();
  auto w = HintWriter::Create(env, dir.path(), 1);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE((*w)->Add(HintEntry{format::kTypePut, 7, 0, 32, 19, "k1"}).ok());
  ASSERT_TRUE((*w)->Add(HintEntry{format::kTypeTombstone, 8, 0, 51, 17, "k1"}).ok());
  ASSERT_TRUE(
      (*w)->Add(HintEntry{format::kTypePut | format::kFlagInBatch | format::kFlagBatchCommit, 9,
                          1767225600000ull, 68, 26, "k2"})
          .ok());
  ASSERT_TRUE((*w)->Finish(94).ok());
  std::ifstream in(dir.path() + "/" + HintFileName(1), std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  std::string file = buf.str();
  ASSERT_EQ(file.size(), format::kFileHeaderBytes + want.size() + format::kHintFooterBytes);
  EXPECT_EQ(file.substr(0, 8), "VARVHNT2");
  EXPECT_EQ(file.substr(format::kFileHeaderBytes, want.size()), want);
  EXPECT_EQ(file.substr(file.size() - 4), "HNT2");
}

// The INDEX example: a store holding only "hello" -> "world", closed cleanly.
TEST(GoldenTest, IndexCheckpoint) {
  testing::TempDir tmp;
  {
    Result<std::unique_ptr<DB>> db = DB::Open(Options{}, tmp.path());
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Put("hello", "world").ok());
    ASSERT_TRUE((*db)->Close().ok());
  }
  std::ifstream f(tmp.path() + "/INDEX", std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string got = ss.str();
  ASSERT_EQ(got.size(), 16634u);
  EXPECT_EQ(got.substr(0, 32), Bytes({0x56, 0x41, 0x52, 0x56, 0x49, 0x44, 0x58, 0x31, 0x01, 0,    0,
                                      0,    0,    0,    0,    0,    0,    0,    0,    0,    0x01, 0,
                                      0,    0,    0,    0,    0,    0,    0xa4, 0x07, 0xd3, 0x6f}));
  EXPECT_EQ(got.substr(32, 40), std::string(40, '\0'));
  std::string part =
      Bytes({0x01, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0}) + std::string(16, '\0') +
      Bytes({0x01, 0, 0, 0, 0, 0, 0, 0, 0xfd, 0x0f, 0, 0, 0x0a, 0, 0, 0, 0x2a}) +
      std::string(11, '\x80') + std::string(4, '\xff') + Bytes({0x01}) + std::string(47, '\0') +
      Bytes({0x05}) + "hello" + Bytes({0x00, 0x01, 0x20, 0x19});
  EXPECT_EQ(got.substr(0x1768, 122), part);
  EXPECT_EQ(
      got.substr(0x2872, 48),
      Bytes({0x01, 0x14, 0x0c, 0x08, 0x02, 0x58, 0x49, 0x48, 0x01, 0, 0, 0, 0, 0, 0, 0}) +
          std::string(16, '\0') +
          Bytes({0xc2, 0x94, 0xd3, 0x38, 0x05, 0x80, 0x06, 0x2d, 0x01, 0, 0, 0, 0, 0x01, 0, 0}));
  EXPECT_EQ(got.substr(got.size() - 24),
            Bytes({0x70, 0x18, 0,    0,    0, 0, 0, 0, 0xc8, 0x4a, 0x33, 0x20,
                   0xfe, 0x5d, 0xe7, 0xf3, 0, 0, 0, 0, 0x49, 0x44, 0x58, 0x31}));
}

}  // namespace
}  // namespace varve
