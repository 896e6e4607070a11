// RepairStore: damaged segments are rewritten with their intact records; the store then checks
// clean, opens, and serves every intact record.
#include "engine/repair.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "engine/check.h"
#include "testutil/temp_dir.h"
#include "varve/db.h"

namespace varve {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

class RepairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o = Opts();
    auto db = std::move(DB::Open(o, tmp_.path())).value();
    for (int i = 0; i < 20000; ++i) {
      std::string k = "k" + std::to_string(i);
      std::string v = "value-" + std::to_string(i) + std::string(80, 'x');
      ASSERT_TRUE(db->Put(k, v).ok());
      model_[k] = v;
    }
  }
  static Options Opts() {
    Options o;
    o.segment_size_bytes = 1 << 20;
    o.background_compaction = false;
    return o;
  }
  std::string Segment(int n) const {
    std::vector<std::string> segs;
    for (const auto& e : fs::directory_iterator(tmp_.path())) {
      if (e.path().extension() == ".vlog") segs.push_back(e.path().string());
    }
    std::sort(segs.begin(), segs.end());
    return segs.at(n);
  }
  static void Overwrite(const std::string& file, uint64_t offset, const std::string& bytes) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f << bytes;
  }
  // Repairs, then checks: clean, opens, every readable value right, at most max_lost keys lost.
  void RepairAndVerify(size_t max_lost, bool expect_rewrite = true) {
    RepairReport report;
    Status s = RepairStore(Env::Default(), tmp_.path(), &report);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(report.segments_rewritten > 0, expect_rewrite);
    EXPECT_EQ(report.notes.empty(), !expect_rewrite);
    CheckReport check;
    ASSERT_TRUE(CheckStore(Env::Default(), tmp_.path(), &check).ok());
    for (const Damage& d : check.damage)
      ADD_FAILURE() << d.file << " " << d.offset << " " << d.what;
    auto db = DB::Open(Opts(), tmp_.path());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    size_t lost = 0;
    for (const auto& [k, v] : model_) {
      Result<std::string> r = (*db)->Get(k);
      if (r.ok()) {
        EXPECT_EQ(*r, v);
      } else {
        EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
        ++lost;
      }
    }
    EXPECT_LE(lost, max_lost);
    EXPECT_TRUE(fs::exists(tmp_.Sub("lost+found")));
  }

  TempDir tmp_;
  std::map<std::string, std::string> model_;
};

TEST_F(RepairTest, FlippedBytesInASealedSegment) {
  Overwrite(Segment(0), 50000, "garbage!");
  RepairAndVerify(2);
}

TEST_F(RepairTest, ZeroedRangeInTheTail) {
  std::string tail = Segment(2);
  Overwrite(tail, 20000, std::string(3000, '\0'));
  RepairAndVerify(40);
}

TEST_F(RepairTest, BadHeaderMakesOpenFailUntilRepaired) {
  Overwrite(Segment(1), 3, "X");
  EXPECT_FALSE(DB::Open(Opts(), tmp_.path()).ok());
  RepairAndVerify(0);
}

TEST_F(RepairTest, SegmentShorterThanItsHint) {
  std::string seg = Segment(0);
  fs::resize_file(seg, fs::file_size(seg) - 10000);
  {
    // Before repair, reads of the lost records fail instead of returning something else.
    auto db = std::move(DB::Open(Opts(), tmp_.path())).value();
    size_t corrupt = 0;
    for (const auto& [k, v] : model_) {
      Result<std::string> r = db->Get(k);
      if (r.ok()) {
        EXPECT_EQ(*r, v);
      } else {
        EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
        ++corrupt;
      }
    }
    EXPECT_GT(corrupt, 50u);
  }
  RepairAndVerify(120);
}

TEST_F(RepairTest, InterruptedRepairIsFinished) {
  std::string seg = Segment(0);
  Overwrite(seg, 50000, "garbage!");
  // Simulate a crash between moving the original away and moving the copy in.
  fs::copy_file(seg, seg + ".repair");
  fs::remove(seg);
  RepairReport report;
  ASSERT_TRUE(RepairStore(Env::Default(), tmp_.path(), &report).ok());
  EXPECT_TRUE(fs::exists(seg));
  EXPECT_FALSE(fs::exists(seg + ".repair"));
  EXPECT_EQ(report.segments_rewritten, 1u);      // the finished copy was still damaged
  RepairAndVerify(2, /*expect_rewrite=*/false);  // a second run finds nothing to do
}

TEST_F(RepairTest, RefusesAnOpenStore) {
  auto db = std::move(DB::Open(Opts(), tmp_.path())).value();
  RepairReport report;
  EXPECT_TRUE(RepairStore(Env::Default(), tmp_.path(), &report).IsBusy());
}

}  // namespace
}  // namespace varve
