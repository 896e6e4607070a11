// Hint files built while records are appended (no scan when a segment is sealed or the store
// closes) must be exactly what a scan of the segment writes, and must check clean.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

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

}  // namespace
}  // namespace varve
