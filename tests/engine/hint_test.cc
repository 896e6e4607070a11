// Hint files built while records are appended (no scan when a segment is sealed or the store
// closes) must be exactly what a scan of the segment writes, and must check clean.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "engine/check.h"
#include "testutil/temp_dir.h"
#include "varve/db.h"
#include "varve/write_batch.h"

namespace varve {
namespace {

namespace fs = std::filesystem;

std::map<std::string, std::string> HintFiles(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".hint") continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    out[e.path().filename().string()] = ss.str();
  }
  return out;
}

size_t Segments(const std::string& dir) {
  return static_cast<size_t>(
      std::count_if(fs::directory_iterator(dir), fs::directory_iterator(),
                    [](const auto& e) { return e.path().extension() == ".vlog"; }));
}

TEST(HintTest, HintsBuiltDuringAppendsEqualScannedHints) {
  for (bool mmap_writes : {true, false}) {
    SCOPED_TRACE(mmap_writes ? "mmap_writes" : "write(2)");
    testing::TempDir tmp;
    Options o;
    o.segment_size_bytes = 1 << 20;
    o.background_compaction = false;
    o.mmap_writes = mmap_writes;
    {
      auto db = std::move(DB::Open(o, tmp.path())).value();
      for (int i = 0; i < 30000; ++i) {
        std::string k = "key-" + std::to_string(i % 9000);
        switch (i % 7) {
          case 0:
            ASSERT_TRUE(db->Delete(k).ok());
            break;
          case 1: {
            WriteBatch b;
            b.Put(k, "batch-" + std::to_string(i), 0, 7);
            b.Delete("key-" + std::to_string((i + 1) % 9000));
            b.Put("other-" + std::to_string(i), std::string(i % 300, 'b'), 3600 * 1000);
            ASSERT_TRUE(db->Write(b).ok());
            break;
          }
          case 2:
            ASSERT_TRUE(db->Put(k, std::string(5000 + i % 100, 'L')).ok());  // a large record
            break;
          default: {
            PutOptions po;
            po.ttl_ms = i % 3 == 0 ? 3600 * 1000 : 0;
            po.user_flags = static_cast<uint32_t>(i % 5);
            ASSERT_TRUE(db->Put(k, "v" + std::to_string(i), po).ok());
          }
        }
      }
      ASSERT_TRUE(db->Close().ok());
    }
    size_t segments = Segments(tmp.path());
    ASSERT_GT(segments, 3u);
    std::map<std::string, std::string> built = HintFiles(tmp.path());
    EXPECT_EQ(built.size(), segments);
    CheckReport report;
    ASSERT_TRUE(CheckStore(Env::Default(), tmp.path(), &report).ok());
    EXPECT_TRUE(report.damage.empty()) << report.damage.front().what;
    EXPECT_EQ(report.hint_files, segments);

    // Without hints the open scans every segment; closing writes every hint from a scan.
    for (const auto& [name, bytes] : built) fs::remove(tmp.path() + "/" + name);
    {
      auto db = std::move(DB::Open(o, tmp.path())).value();
      ASSERT_TRUE(db->Close().ok());
    }
    std::map<std::string, std::string> scanned = HintFiles(tmp.path());
    ASSERT_EQ(scanned.size(), built.size());
    for (const auto& [name, bytes] : built) {
      EXPECT_TRUE(scanned[name] == bytes) << name << " differs from the hint a scan writes";
    }
  }
}

// A copy of the store's files taken while it runs, as a crash would leave them.
void CopyFiles(const std::string& from, const std::string& to) {
  for (const auto& e : fs::directory_iterator(from)) {
    if (e.path().filename() == "LOCK") continue;
    fs::copy_file(e.path(), to + "/" + e.path().filename().string());
  }
}

void FlipByte(const std::string& file, uint64_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x40));
}

class HintMarkTest : public ::testing::Test {
 protected:
  // Fills most of the first segment, waits for a mark of its hint, and leaves a copy of
  // the files in crashed_ while the store is still open (no close-time hint).
  void SetUp() override {
    Options o = Opts();
    db_ = std::move(DB::Open(o, live_.path())).value();
    for (int i = 0; i < 6000; ++i) {
      std::string k = "key-" + std::to_string(i);
      std::string v = "value-" + std::to_string(i) + std::string(100, 'v');
      ASSERT_TRUE(db_->Put(k, v).ok());
      model_[k] = v;
    }
    std::string mark = live_.path() + "/0000000001.hint.mark";
    for (int i = 0; i < 500 && !fs::exists(mark); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(fs::exists(mark));
    // Records after the mark, which only a scan finds.
    for (int i = 0; i < 100; ++i) {
      std::string k = "late-" + std::to_string(i);
      ASSERT_TRUE(db_->Put(k, "late").ok());
      model_[k] = "late";
    }
    ASSERT_TRUE(db_->Sync().ok());
    // The mark may move on while the files are copied; wait for it to be quiet.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CopyFiles(live_.path(), crashed_.path());
    ASSERT_TRUE(fs::exists(crashed_.path() + "/0000000001.hint.tmp"));
  }
  void TearDown() override {
    if (db_) db_->Close().ok();
  }
  static Options Opts() {
    Options o;
    o.segment_size_bytes = 1 << 20;  // a mark every 128 KiB
    o.background_compaction = false;
    o.compaction_check_interval_ms = 5;
    o.durability = Durability::kInterval;  // with none the hint is never marked
    return o;
  }
  void ExpectModel(DB* db) {
    for (const auto& [k, v] : model_) {
      Result<std::string> got = db->Get(k);
      ASSERT_TRUE(got.ok()) << k << ": " << got.status().ToString();
      EXPECT_EQ(*got, v) << k;
    }
  }
  testing::TempDir live_, crashed_;
  std::unique_ptr<DB> db_;
  std::map<std::string, std::string> model_;
};

TEST_F(HintMarkTest, OpenAfterACrashLoadsTheMarkedEntriesAndScansTheRest) {
  // A flipped byte in the first record's value: a scan would drop that record, while a read
  // through the marked hint entry finds it and fails its checksum. So this tells the two apart.
  FlipByte(crashed_.path() + "/0000000001.vlog", 32 + 40);
  auto db = std::move(DB::Open(Opts(), crashed_.path())).value();
  EXPECT_TRUE(db->Get("key-0").status().IsCorruption()) << db->Get("key-0").status().ToString();
  model_.erase("key-0");
  ExpectModel(db.get());
  EXPECT_EQ(db->GetStats().keys, model_.size() + 1);
  // Neither the mark nor the unfinished hint outlives the open.
  EXPECT_FALSE(fs::exists(crashed_.path() + "/0000000001.hint.mark"));
  EXPECT_FALSE(fs::exists(crashed_.path() + "/0000000001.hint.tmp"));
  ASSERT_TRUE(db->Put("after", "x").ok());
  ASSERT_TRUE(db->Close().ok());
}

TEST(HintMarkNoneTest, DurabilityNoneWritesNoMarks) {
  testing::TempDir tmp;
  Options o;
  o.segment_size_bytes = 1 << 20;
  o.background_compaction = false;
  o.compaction_check_interval_ms = 5;
  auto db = std::move(DB::Open(o, tmp.path())).value();
  for (int i = 0; i < 6000; ++i) {
    ASSERT_TRUE(db->Put("key-" + std::to_string(i), std::string(100, 'v')).ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(fs::exists(tmp.path() + "/0000000001.hint.mark"));
  ASSERT_TRUE(db->Close().ok());
}

TEST_F(HintMarkTest, DamagedMarkMeansAFullScan) {
  FlipByte(crashed_.path() + "/0000000001.hint.tmp", 40);  // an entry the mark's crc covers
  auto db = std::move(DB::Open(Opts(), crashed_.path())).value();
  ExpectModel(db.get());
  EXPECT_EQ(db->GetStats().keys, model_.size());
}

TEST_F(HintMarkTest, MarkBeyondTheSegmentMeansAFullScan) {
  // The segment lost its end after the mark was written (the mark is then not trusted).
  std::string seg = crashed_.path() + "/0000000001.vlog";
  fs::resize_file(seg, 20000);
  auto db = std::move(DB::Open(Opts(), crashed_.path())).value();
  uint64_t found = 0;
  for (const auto& [k, v] : model_) {
    Result<std::string> got = db->Get(k);
    if (got.ok()) {
      EXPECT_EQ(*got, v);
      ++found;
    } else {
      EXPECT_TRUE(got.status().IsNotFound()) << got.status().ToString();
    }
  }
  EXPECT_GT(found, 0u);
  EXPECT_LT(found, model_.size());
  EXPECT_EQ(db->GetStats().keys, found);
}

// A tail reopened after a clean close keeps its close-time hint. After a crash (durability none:
// no marks), the open loads that hint for the records before the reopen and scans only the
// records appended since.
TEST(ReopenedTailTest, OpenAfterACrashLoadsTheCloseTimeHintAndScansTheRest) {
  testing::TempDir live, crashed;
  Options o;
  o.segment_size_bytes = 1 << 20;
  o.background_compaction = false;
  std::map<std::string, std::string> model;
  {
    auto db = std::move(DB::Open(o, live.path())).value();
    for (int i = 0; i < 3000; ++i) {
      std::string k = "key-" + std::to_string(i);
      model[k] = "value-" + std::to_string(i) + std::string(100, 'v');
      ASSERT_TRUE(db->Put(k, model[k]).ok());
    }
    ASSERT_TRUE(db->Close().ok());
  }
  ASSERT_TRUE(fs::exists(live.path() + "/0000000001.hint"));
  auto db = std::move(DB::Open(o, live.path())).value();
  ASSERT_EQ(Segments(live.path()), 1u);  // the tail takes the new writes
  for (int i = 0; i < 100; ++i) {
    std::string k = "late-" + std::to_string(i);
    model[k] = "late";
    ASSERT_TRUE(db->Put(k, "late").ok());
  }
  model["key-5"] = "rewritten";
  ASSERT_TRUE(db->Put("key-5", "rewritten").ok());
  model.erase("key-7");
  ASSERT_TRUE(db->Delete("key-7").ok());
  CopyFiles(live.path(), crashed.path());
  ASSERT_TRUE(db->Close().ok());
  // The close-time hint, now describing the records before the reopen, is not damage.
  CheckReport report;
  ASSERT_TRUE(CheckStore(Env::Default(), crashed.path(), &report).ok());
  for (const Damage& d : report.damage) ADD_FAILURE() << d.file << ": " << d.what;
  EXPECT_EQ(report.hint_files, 1u);

  // A flipped byte in the first record's value: the hint's entry still finds the record (and
  // its checksum fails), where a scan would drop it. So this shows the hint was used.
  FlipByte(crashed.path() + "/0000000001.vlog", 32 + 40);
  auto reopened = std::move(DB::Open(o, crashed.path())).value();
  EXPECT_TRUE(reopened->Get("key-0").status().IsCorruption());
  model.erase("key-0");
  for (const auto& [k, v] : model) {
    Result<std::string> got = reopened->Get(k);
    ASSERT_TRUE(got.ok()) << k << ": " << got.status().ToString();
    EXPECT_EQ(*got, v) << k;
  }
  EXPECT_TRUE(reopened->Get("key-7").status().IsNotFound());
  EXPECT_EQ(reopened->GetStats().keys, model.size() + 1);
}

}  // namespace
}  // namespace varve
