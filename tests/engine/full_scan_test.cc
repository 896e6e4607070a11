// Full iteration over the hash index, which reads the segments in file order (FullScan): every
// key once with its value, TTL, attached tables, damage, and the iterator contract under
// concurrent writers and compaction (keys present throughout: exactly once, with a value they
// had during the iteration).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "testutil/options.h"
#include "testutil/store_files.h"
#include "testutil/temp_dir.h"
#include "varve/db.h"
#include "varve/table.h"
#include "varve/write_batch.h"

namespace varve {
namespace {

using testing::SegmentFiles;
using testing::SmallSegmentOptions;
using testing::TempDir;

struct Item {
  std::string value;
  uint64_t expiry_ms = 0;
  uint32_t user_flags = 0;
};
using Model = std::map<std::string, Item>;

std::unique_ptr<DB> OpenOrDie(const Options& opts, const std::string& dir) {
  Result<std::unique_ptr<DB>> db = DB::Open(opts, dir);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(db).value() : nullptr;
}

std::string Key(int i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "key%08d", i);
  return buf;
}

std::string Value(int i, int gen, size_t len) {
  std::string v = Key(i) + "#" + std::to_string(gen) + "#";
  v.resize(std::max(v.size(), len), static_cast<char>('a' + (i + gen) % 26));
  return v;
}

// Iterates all of db; checks each key once and its value, version and metadata against Get.
void ExpectIteration(DB* db, const Model& model) {
  std::map<std::string, Item> seen;
  auto it = db->NewIterator();
  for (; it->Valid(); it->Next()) {
    std::string key(it->key());
    ASSERT_TRUE(
        seen.emplace(key, Item{std::string(it->value()), it->expiry_ms(), it->user_flags()}).second)
        << "twice: " << key;
    Result<DB::VersionedValue> v = db->GetVersioned(key);
    ASSERT_TRUE(v.ok()) << key;
    EXPECT_EQ(v->version, it->version()) << key;
  }
  ASSERT_TRUE(it->status().ok()) << it->status().ToString();
  ASSERT_EQ(seen.size(), model.size());
  for (const auto& [k, item] : model) {
    auto s = seen.find(k);
    ASSERT_NE(s, seen.end()) << "missing " << k;
    EXPECT_EQ(s->second.value, item.value) << k;
    EXPECT_EQ(s->second.user_flags, item.user_flags) << k;
    EXPECT_EQ(s->second.expiry_ms != 0, item.expiry_ms != 0) << k;
  }
}

class FullScanTest : public ::testing::TestWithParam<bool> {
 protected:
  Options Opts() {
    Options o = SmallSegmentOptions();
    o.index = IndexKind::kHash;
    o.mmap_reads = GetParam();
    return o;
  }
  TempDir tmp_;
};

TEST_P(FullScanTest, EveryKeyOnceWithItsValueAcrossWritesCompactionAndReopen) {
  std::mt19937 rng(7);
  Model model;
  auto db = OpenOrDie(Opts(), tmp_.path());
  ExpectIteration(db.get(), model);  // empty store
  for (int round = 0; round < 4; ++round) {
    for (int n = 0; n < 6000; ++n) {
      int i = static_cast<int>(rng() % 5000);
      uint32_t op = rng() % 10;
      if (op == 0) {
        ASSERT_TRUE(db->Delete(Key(i)).ok());
        model.erase(Key(i));
      } else if (op == 1) {
        WriteBatch b;
        int j = static_cast<int>(rng() % 5000);
        b.Put(Key(i), Value(i, n, 50), 0, 3);
        b.Delete(Key(j));
        ASSERT_TRUE(db->Write(b).ok());
        model.erase(Key(j));
        if (i != j) model[Key(i)] = Item{Value(i, n, 50), 0, 3};
      } else {
        // Some values larger than a scan chunk.
        size_t len = rng() % 500 == 0 ? (1 << 20) + 100 : 20 + rng() % 300;
        PutOptions po;
        po.user_flags = op == 2 ? 9 : 0;
        ASSERT_TRUE(db->Put(Key(i), Value(i, n, len), po).ok());
        model[Key(i)] = Item{Value(i, n, len), 0, po.user_flags};
      }
    }
    ExpectIteration(db.get(), model);
    if (round == 1) {
      ASSERT_TRUE(db->Compact().ok());
    }
    if (round == 2) {
      db.reset();
      db = OpenOrDie(Opts(), tmp_.path());
    }
    ExpectIteration(db.get(), model);
  }
}

TEST_P(FullScanTest, ExpiredKeysAreNotReturned) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  Model model;
  for (int i = 0; i < 2000; ++i) {
    PutOptions po;
    if (i % 3 == 0) po.ttl_ms = 1;  // expired by the iteration
    if (i % 3 == 1) po.ttl_ms = 3600 * 1000;
    ASSERT_TRUE(db->Put(Key(i), Value(i, 0, 40), po).ok());
    if (i % 3 != 0) model[Key(i)] = Item{Value(i, 0, 40), po.ttl_ms == 0 ? 0u : 1u, 0};
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ExpectIteration(db.get(), model);
  ASSERT_TRUE(db->Compact().ok());
  ExpectIteration(db.get(), model);
}

TEST_P(FullScanTest, AttachedTablesFollowTheLiveKeys) {
  std::string table = tmp_.path() + "/t.vtb";
  Model model;
  {
    auto b = TableBuilder::Create(table);
    ASSERT_TRUE(b.ok());
    for (int i = 0; i < 3000; ++i) ASSERT_TRUE((*b)->Add(Key(i), "table").ok());
    ASSERT_TRUE((*b)->Finish().ok());
  }
  std::string dir = tmp_.path() + "/db";
  auto db = OpenOrDie(Opts(), dir);
  ASSERT_TRUE(db->AttachTable(table, nullptr).ok());
  for (int i = 0; i < 3000; ++i) model[Key(i)] = Item{"table", 0, 0};
  for (int i = 0; i < 4000; i += 2) {
    ASSERT_TRUE(db->Put(Key(i), Value(i, 1, 30)).ok());
    model[Key(i)] = Item{Value(i, 1, 30), 0, 0};
  }
  for (int i = 0; i < 4000; i += 7) {
    ASSERT_TRUE(db->Delete(Key(i)).ok());  // hides the table's key where it has one
    model.erase(Key(i));
  }
  ExpectIteration(db.get(), model);
  ASSERT_TRUE(db->Compact().ok());
  ExpectIteration(db.get(), model);
}

TEST_P(FullScanTest, DamagedRecordIsAnError) {
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    for (int i = 0; i < 3000; ++i) ASSERT_TRUE(db->Put(Key(i), Value(i, 0, 200)).ok());
  }
  // Flip a byte in the middle of the first segment: one value, behind the open's back (the
  // open trusts its hint and checkpoint).
  std::string seg = SegmentFiles(tmp_.path()).front();
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(300000);
    char c;
    f.read(&c, 1);
    c ^= 0x5a;
    f.seekp(300000);
    f.write(&c, 1);
  }
  auto db = OpenOrDie(Opts(), tmp_.path());
  auto it = db->NewIterator();
  size_t n = 0;
  for (; it->Valid(); it->Next()) ++n;
  EXPECT_TRUE(it->status().IsCorruption()) << it->status().ToString();
  EXPECT_LT(n, 3000u);
}

// A segment the open found damaged (and skipped a record of) is iterated by walking the index,
// which reads only the records it points at: no error, the other keys once each.
TEST_P(FullScanTest, SegmentFoundDamagedAtOpenIsWalkedByTheIndex) {
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(db->Put(Key(i), Value(i, 0, 200)).ok());
  }
  std::string seg = SegmentFiles(tmp_.path()).back();
  std::filesystem::remove(seg.substr(0, seg.size() - 4) + "hint");  // as after a crash
  std::filesystem::remove(tmp_.path() + "/INDEX");
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t at = data.find(Value(50, 0, 200));
    ASSERT_NE(at, std::string::npos);
    f.seekp(static_cast<std::streamoff>(at + 150));
    f.put(static_cast<char>(data[at + 150] ^ 0x01));
  }
  auto db = OpenOrDie(Opts(), tmp_.path());
  Model model;
  for (int i = 0; i < 100; ++i) {
    if (i != 50) model[Key(i)] = Item{Value(i, 0, 200), 0, 0};
  }
  ExpectIteration(db.get(), model);
}

// Writers overwrite, delete and insert while iterators run and compaction rewrites segments
// under them. Stable keys are never deleted: each must come back exactly once, with a value it
// had during the iteration (its generation between the ones before and after). stable_writers
// threads overwrite the stable keys, each its own share of them.
void ExpectContractUnderConcurrentWrites(Options o, const std::string& dir, int stable_writers) {
  constexpr int kStable = 6000;
  constexpr int kVolatile = 2000;
  o.compaction_live_ratio = 0.9;
  auto db = OpenOrDie(o, dir);
  std::vector<std::atomic<int>> gen(kStable);
  for (int i = 0; i < kStable + kVolatile; i += 500) {  // in batches: few syncs in sync mode
    WriteBatch batch;
    for (int j = i; j < i + 500; ++j) batch.Put(Key(j), Value(j, 0, 60));
    ASSERT_TRUE(db->Write(batch).ok());
  }
  for (int i = 0; i < kStable; ++i) gen[i] = 0;
  for (int round = 0; round < 6; ++round) {
    std::atomic<bool> stop{false};
    std::atomic<int> writer_error{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < stable_writers; ++w) {
      threads.emplace_back([&, round, w] {  // overwrites stable keys (one writer per key set)
        std::mt19937 rng(round * 16 + w);
        while (!stop.load()) {
          int i = static_cast<int>(rng() % (kStable / stable_writers)) * stable_writers + w;
          int g = gen[i].load() + 1;
          if (!db->Put(Key(i), Value(i, g, 20 + rng() % 100)).ok()) ++writer_error;
          gen[i].store(g);
        }
      });
    }
    threads.emplace_back([&, round] {  // deletes and inserts volatile keys
      std::mt19937 rng(100 + round);
      for (int n = 0; !stop.load(); ++n) {
        int i = kStable + static_cast<int>(rng() % kVolatile);
        Status s = rng() % 2 ? db->Delete(Key(i)) : db->Put(Key(i), Value(i, n, 60));
        if (!s.ok()) ++writer_error;
      }
    });
    threads.emplace_back([&] {  // compaction, forced
      while (!stop.load()) {
        if (!db->Compact().ok()) ++writer_error;
        std::this_thread::yield();
      }
    });
    // Two iterations at once, slowed so that writes and compactions fall inside them.
    auto iterate = [&](int seed) {
      std::vector<int> before(kStable);
      for (int i = 0; i < kStable; ++i) before[i] = gen[i].load();
      std::vector<int> seen_gen(kStable, -1);
      auto it = db->NewIterator();
      size_t n = 0;
      for (; it->Valid(); it->Next()) {
        std::string key(it->key());
        std::string value(it->value());
        ASSERT_TRUE(value.starts_with(key + "#")) << key;
        int i = std::stoi(key.substr(3));
        if (i < kStable) {
          ASSERT_EQ(seen_gen[i], -1) << "twice: " << key;
          seen_gen[i] = std::stoi(value.substr(key.size() + 1));
        }
        if (++n % (200 + seed) == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      ASSERT_TRUE(it->status().ok()) << it->status().ToString();
      for (int i = 0; i < kStable; ++i) {
        ASSERT_NE(seen_gen[i], -1) << "missing " << Key(i);
        ASSERT_GE(seen_gen[i], before[i]) << Key(i);
        // The writer stores the generation after its Put returns: at most one ahead.
        ASSERT_LE(seen_gen[i], gen[i].load() + 1) << Key(i);
      }
    };
    std::thread second([&] { iterate(1); });
    iterate(0);
    second.join();
    stop = true;
    for (auto& t : threads) t.join();
    ASSERT_EQ(writer_error.load(), 0);
  }
  EXPECT_GT(db->GetStats().compactions, 0u);
}

TEST_P(FullScanTest, ContractHoldsUnderConcurrentWritesAndCompaction) {
  ExpectContractUnderConcurrentWrites(Opts(), tmp_.path(), 1);
}

// Sync mode: groups of several writers sync outside the leader, overlapping, and reach the index
// in append order, each up to its own end of the segment.
TEST_P(FullScanTest, ContractHoldsUnderConcurrentSyncedWrites) {
  Options o = Opts();
  o.durability = Durability::kSync;
  ExpectContractUnderConcurrentWrites(o, tmp_.path(), 4);
}

INSTANTIATE_TEST_SUITE_P(Reads, FullScanTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Mapped" : "Pread"; });

}  // namespace
}  // namespace varve
