// Tables attached to a store as read-only layers: fall-through reads, live data and deletes
// shadowing table keys (across reopen and compaction), iteration, versions for CompareAndSet,
// and atomic re-attach under concurrent readers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "testutil/temp_dir.h"
#include "varve/db.h"
#include "varve/table.h"

namespace varve {
namespace {

using testing::TempDir;

std::string Key(int i) {
  char b[32];
  std::snprintf(b, sizeof b, "key%06d", i);
  return b;
}

// A table of keys [0, n) with values "<tag>-<i>" (and tombstones for the given keys).
void BuildTable(const std::string& path, int n, const std::string& tag,
                const std::set<int>& tombstones = {}) {
  auto b = TableBuilder::Create(path);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  for (int i = 0; i < n; ++i) {
    Status s = tombstones.count(i) ? (*b)->AddTombstone(Key(i))
                                   : (*b)->Add(Key(i), tag + "-" + std::to_string(i));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  ASSERT_TRUE((*b)->Finish().ok());
}

std::unique_ptr<DB> Open(const std::string& dir) {
  Options o;
  o.background_compaction = false;
  o.segment_size_bytes = 1 << 20;
  auto db = DB::Open(o, dir);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(db).value() : nullptr;
}

std::map<std::string, std::string> Scan(DB* db, const ReadOptions& ro = {}) {
  std::map<std::string, std::string> out;
  auto it = db->NewIterator(ro);
  for (; it->Valid(); it->Next()) {
    EXPECT_TRUE(out.emplace(std::string(it->key()), std::string(it->value())).second)
        << "key returned twice: " << it->key();
  }
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

TEST(TableLayersTest, ReadsFallThroughAndDeletesShadow) {
  TempDir dir;
  BuildTable(dir.Sub("old.vtb"), 100, "old");
  BuildTable(dir.Sub("new.vtb"), 50, "new", {7});
  auto db = Open(dir.Sub("db"));
  ASSERT_NE(db, nullptr);
  std::string name;
  ASSERT_TRUE(db->AttachTable(dir.Sub("old.vtb"), &name).ok());
  EXPECT_EQ(name, "old.vtb");
  ASSERT_TRUE(db->AttachTable(dir.Sub("new.vtb")).ok());
  EXPECT_EQ(*db->Get(Key(3)), "new-3");                // newest table first
  EXPECT_EQ(*db->Get(Key(60)), "old-60");              // only in the older one
  EXPECT_TRUE(db->Get(Key(7)).status().IsNotFound());  // tombstone in the newer table
  EXPECT_TRUE(db->Get(Key(100)).status().IsNotFound());
  std::string value;
  ASSERT_TRUE(db->Get(Key(60), &value).ok());
  EXPECT_EQ(value, "old-60");
  EXPECT_TRUE(db->Get(Key(7), &value).IsNotFound());
  Result<DB::VersionedValue> versioned = db->GetVersioned(Key(60));
  ASSERT_TRUE(versioned.ok());
  EXPECT_EQ(versioned->value, "old-60");
  EXPECT_GT(versioned->version, 0u);

  ASSERT_TRUE(db->Put(Key(3), "live").ok());
  ASSERT_TRUE(db->Delete(Key(60)).ok());
  ASSERT_TRUE(db->Delete(Key(1000)).ok());  // held by no table
  EXPECT_EQ(*db->Get(Key(3)), "live");
  EXPECT_TRUE(db->Get(Key(60)).status().IsNotFound());
  Stats st = db->GetStats();
  EXPECT_EQ(st.tables, 2u);
  EXPECT_EQ(st.table_entries, 150u);

  auto expect_state = [&](DB* d) {
    auto all = Scan(d);
    EXPECT_EQ(all.size(), 98u);  // 100 keys - key 7 - key 60
    EXPECT_EQ(all[Key(3)], "live");
    EXPECT_EQ(all[Key(4)], "new-4");
    EXPECT_EQ(all[Key(99)], "old-99");
    EXPECT_EQ(all.count(Key(7)), 0u);
    EXPECT_EQ(all.count(Key(60)), 0u);
    ReadOptions ro;
    ro.prefix = "key00006";
    auto some = Scan(d, ro);
    EXPECT_EQ(some.size(), 9u);  // 61..69
    EXPECT_TRUE(d->Get(Key(60)).status().IsNotFound());
    EXPECT_EQ(*d->Get(Key(3)), "live");
    // The tombstone kept for key 60 is no key of the live data.
    EXPECT_EQ(d->GetStats().keys, 1u);
  };
  expect_state(db.get());

  // The delete survives a reopen and compaction (its tombstone hides a table's key).
  ASSERT_TRUE(db->Close().ok());
  db = Open(dir.Sub("db"));
  ASSERT_NE(db, nullptr);
  expect_state(db.get());
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(db->Put("filler", std::string(1000, 'x')).ok());
  ASSERT_TRUE(db->Delete("filler").ok());
  ASSERT_TRUE(db->Compact().ok());
  expect_state(db.get());
  ASSERT_TRUE(db->Close().ok());
  db = Open(dir.Sub("db"));
  ASSERT_NE(db, nullptr);
  expect_state(db.get());
  EXPECT_TRUE(db->Get("filler").status().IsNotFound());

  // A put over the deleted key brings it back; detaching removes the layer.
  ASSERT_TRUE(db->Put(Key(60), "again").ok());
  EXPECT_EQ(*db->Get(Key(60)), "again");
  EXPECT_EQ(db->GetStats().keys, 2u);
  ASSERT_TRUE(db->DetachTable("new.vtb").ok());
  EXPECT_EQ(*db->Get(Key(4)), "old-4");
  EXPECT_EQ(*db->Get(Key(7)), "old-7");
  EXPECT_TRUE(db->DetachTable("new.vtb").IsNotFound());
  ASSERT_TRUE(db->Close().ok());
  db = Open(dir.Sub("db"));
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->GetStats().tables, 1u);
  EXPECT_EQ(*db->Get(Key(7)), "old-7");
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.Sub("db/tables"))) (void)e, ++files;
  EXPECT_EQ(files, 1);
}

// A value that expires over a table's key hides that key for good: compaction turns it into a
// kept tombstone, which is not counted as a key.
TEST(TableLayersTest, ExpiredValueOverATableKeyStaysHiddenThroughCompaction) {
  TempDir dir;
  BuildTable(dir.Sub("t.vtb"), 10, "table");
  auto db = Open(dir.Sub("db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->AttachTable(dir.Sub("t.vtb")).ok());
  ASSERT_TRUE(db->Put(Key(2), "short-lived", {.ttl_ms = 1}).ok());
  ASSERT_TRUE(db->Put(Key(3), "live").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // Seal the segment that holds the expired value, then compact it.
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(db->Put("filler", std::string(1000, 'x')).ok());
  ASSERT_TRUE(db->Delete("filler").ok());
  ASSERT_TRUE(db->Compact().ok());
  EXPECT_TRUE(db->Get(Key(2)).status().IsNotFound());
  EXPECT_EQ(*db->Get(Key(4)), "table-4");
  EXPECT_EQ(db->GetStats().keys, 1u);  // Key(3)
  ASSERT_TRUE(db->Close().ok());
  db = Open(dir.Sub("db"));
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(db->Get(Key(2)).status().IsNotFound());
  EXPECT_EQ(db->GetStats().keys, 1u);
}

TEST(TableLayersTest, OrderedIterationMergesLiveDataAndTables) {
  TempDir dir;
  BuildTable(dir.Sub("old.vtb"), 100, "old", {90});
  BuildTable(dir.Sub("new.vtb"), 50, "new", {7});
  Options o;
  o.index = IndexKind::kOrdered;
  o.background_compaction = false;
  auto opened = DB::Open(o, dir.Sub("db"));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<DB> db = std::move(opened).value();
  ASSERT_TRUE(db->AttachTable(dir.Sub("old.vtb")).ok());
  ASSERT_TRUE(db->AttachTable(dir.Sub("new.vtb")).ok());
  std::map<std::string, std::string> model;
  for (int i = 0; i < 100; ++i) model[Key(i)] = (i < 50 ? "new-" : "old-") + std::to_string(i);
  model.erase(Key(7));
  model.erase(Key(90));  // a tombstone in the older table only
  for (int i : {3, 55, 150, 151}) {
    ASSERT_TRUE(db->Put(Key(i), "live-" + std::to_string(i)).ok());
    model[Key(i)] = "live-" + std::to_string(i);
  }
  for (int i : {4, 60, 151}) {
    ASSERT_TRUE(db->Delete(Key(i)).ok());
    model.erase(Key(i));
  }
  ASSERT_TRUE(db->Put("a-first", "live").ok());
  model["a-first"] = "live";

  auto check = [&](const ReadOptions& ro) {
    std::vector<std::pair<std::string, std::string>> got, want;
    for (auto it = db->NewIterator(ro); it->Valid() || !it->status().ok(); it->Next()) {
      ASSERT_TRUE(it->status().ok()) << it->status().ToString();
      got.emplace_back(std::string(it->key()), std::string(it->value()));
    }
    for (const auto& [k, v] : model) {
      if (!ro.prefix.empty() && !k.starts_with(ro.prefix)) continue;
      if (!ro.start.empty() && k < ro.start) continue;
      if (!ro.end.empty() && k >= ro.end) continue;
      want.emplace_back(k, v);
    }
    EXPECT_EQ(got, want) << "prefix '" << ro.prefix << "' start '" << ro.start << "' end '"
                         << ro.end << "'";
  };
  check({});
  ReadOptions ro;
  ro.prefix = "key00005";
  check(ro);
  // ReadOptions holds views: the bounds must outlive the scans.
  const std::string k45 = Key(45), k62 = Key(62), k150 = Key(150);
  ro = {};
  ro.start = k45;
  ro.end = k62;
  check(ro);
  ro = {};
  ro.prefix = "key0001";
  ro.start = k150;
  check(ro);
}

TEST(TableLayersTest, VersionsOfTableValues) {
  TempDir dir;
  BuildTable(dir.Sub("t"), 10, "t");
  auto db = Open(dir.Sub("db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->AttachTable(dir.Sub("t")).ok());
  auto v = db->GetVersioned(Key(1));
  ASSERT_TRUE(v.ok());
  EXPECT_NE(v->version, 0u);
  EXPECT_GE(v->version, 1ull << 63);
  // A table-held key is present: put-if-absent fails, a CAS with its version succeeds.
  EXPECT_TRUE(db->CompareAndSet(Key(1), 0, "x").IsAborted());
  WriteBatch b;
  b.Expect(Key(2), 0);
  b.Put(Key(2), "y");
  EXPECT_TRUE(db->Write(b).IsAborted());
  uint64_t nv = 0;
  ASSERT_TRUE(db->CompareAndSet(Key(1), v->version, "x", {}, &nv).ok());
  EXPECT_EQ(*db->Get(Key(1)), "x");
  EXPECT_LT(nv, 1ull << 63);
  auto v2 = db->GetVersioned(Key(2));
  ASSERT_TRUE(v2.ok());
  ASSERT_TRUE(db->CompareAndDelete(Key(2), v2->version).ok());
  EXPECT_TRUE(db->Get(Key(2)).status().IsNotFound());
  EXPECT_TRUE(db->CompareAndSet(Key(2), 0, "z").ok());  // deleted = absent
  // Re-attaching changes the version of table values.
  auto v3 = db->GetVersioned(Key(3));
  ASSERT_TRUE(db->AttachTable(dir.Sub("t")).ok());
  auto v4 = db->GetVersioned(Key(3));
  EXPECT_NE(v3->version, v4->version);
}

TEST(TableLayersTest, BadTableIsRefused) {
  TempDir dir;
  auto db = Open(dir.Sub("db"));
  ASSERT_NE(db, nullptr);
  {
    std::FILE* f = std::fopen(dir.Sub("junk").c_str(), "w");
    std::fputs("not a table", f);
    std::fclose(f);
  }
  Status s = db->AttachTable(dir.Sub("junk"));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_TRUE(db->AttachTable(dir.Sub("missing")).IsIOError());
  EXPECT_EQ(db->GetStats().tables, 0u);
}

// An attached table's file cut short under the store: reads that reach it give IOError naming
// the file (no SIGBUS crash, no wrong value); keys in the live data still read.
TEST(TableLayersTest, AttachedTableCutShortIsIOError) {
  TempDir dir;
  const int n = 3000;
  BuildTable(dir.Sub("data"), n, "t");
  auto db = Open(dir.Sub("db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->AttachTable(dir.Sub("data")).ok());
  ASSERT_TRUE(db->Put("live", "x").ok());
  for (int i = 0; i < n; ++i) ASSERT_TRUE(db->Get(Key(i)).ok());
  std::string file;
  for (auto& e : std::filesystem::directory_iterator(dir.Sub("db/tables"))) file = e.path();
  ASSERT_FALSE(file.empty());
  std::filesystem::resize_file(file, std::filesystem::file_size(file) / 3 + 5);
  for (int i = 0; i < n; i += 7) {
    auto v = db->Get(Key(i));
    if (v.ok()) {
      EXPECT_EQ(*v, "t-" + std::to_string(i));
    } else {
      ASSERT_TRUE(v.status().IsIOError()) << v.status().ToString();
      EXPECT_NE(v.status().message().find(file), std::string::npos) << v.status().ToString();
    }
  }
  EXPECT_TRUE(db->Get(Key(n / 2)).status().IsIOError());
  auto live = db->Get("live");
  ASSERT_TRUE(live.ok()) << live.status().ToString();
  EXPECT_EQ(*live, "x");
  auto it = db->NewIterator();
  for (; it->Valid(); it->Next()) {
  }
  EXPECT_TRUE(it->status().IsIOError()) << it->status().ToString();
}

// Readers never see a mix of two versions of a table, and the old file stays readable until
// they are done.
TEST(TableLayersTest, AtomicReattachUnderConcurrentReaders) {
  TempDir dir;
  const int n = 2000;
  std::filesystem::create_directories(dir.Sub("a"));
  std::filesystem::create_directories(dir.Sub("b"));
  BuildTable(dir.Sub("a/data"), n, "v0");
  BuildTable(dir.Sub("b/data"), n, "v1");
  auto db = Open(dir.Sub("db"));
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->AttachTable(dir.Sub("a/data")).ok());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, scans{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      uint32_t x = 12345 + t;
      while (!stop.load()) {
        x = x * 1103515245 + 12345;
        int i = (x >> 8) % n;
        auto v = db->Get(Key(i));
        std::string suffix = "-" + std::to_string(i);
        if (!v.ok() || (*v != "v0" + suffix && *v != "v1" + suffix)) ++errors;
        ++reads;
        if (t == 0 && x % 64 == 0) {
          // One iterator sees one version throughout.
          auto it = db->NewIterator();
          std::string tag;
          int count = 0;
          for (; it->Valid(); it->Next(), ++count) {
            std::string val(it->value());
            std::string this_tag = val.substr(0, 2);
            if (tag.empty()) tag = this_tag;
            if (this_tag != tag) ++errors;
          }
          if (!it->status().ok() || count != n) ++errors;
          ++scans;
        }
      }
    });
  }
  for (int round = 0; round < 20; ++round) {
    ASSERT_TRUE(db->AttachTable(dir.Sub(round % 2 ? "a/data" : "b/data")).ok());
  }
  while (scans.load() < 3) std::this_thread::yield();
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(db->GetStats().tables, 1u);
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.Sub("db/tables"))) (void)e, ++files;
  EXPECT_EQ(files, 1);
}

}  // namespace
}  // namespace varve
