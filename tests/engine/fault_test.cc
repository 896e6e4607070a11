// Disk faults and power loss through FaultEnv, and random damage to a closed store's files:
// acknowledged writes survive within the durability mode's promise, errors stop writes cleanly,
// and damage never turns into a crash, a hang or a wrong value.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "env/fault_env.h"
#include "testutil/temp_dir.h"
#include "varve/db.h"

namespace varve {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using Model = std::map<std::string, std::string>;

Options FaultOptions(FaultEnv* env) {
  Options o;
  o.env = env;
  o.segment_size_bytes = 1 << 20;
  o.background_compaction = false;
  return o;
}

Model ReadAll(DB* db) {
  Model m;
  auto it = db->NewIterator();
  for (; it->Valid(); it->Next()) m.emplace(it->key(), it->value());
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  for (const auto& [k, v] : m) {
    Result<std::string> r = db->Get(k);
    EXPECT_TRUE(r.ok() && *r == v) << k;
  }
  return m;
}

std::string Val(int op, std::mt19937& rng) {
  std::string v = "op" + std::to_string(op) + ":";
  v.resize(v.size() + rng() % 400, static_cast<char>('a' + op % 26));
  return v;
}

TEST(FaultTest, WriteErrorStopsWritesReadsGoOnAndRestartRecovers) {
  for (int error : {ENOSPC, EIO}) {
    TempDir tmp;
    FaultEnv env(Env::Default());
    {
      auto db = std::move(DB::Open(FaultOptions(&env), tmp.path())).value();
      for (int i = 0; i < 100; ++i) ASSERT_TRUE(db->Put("k" + std::to_string(i), "v").ok());
      env.FailAfter(FaultEnv::Op::kAppend, 0, error, /*sticky=*/true);
      Status s = db->Put("x", std::string(1000, 'x'));
      ASSERT_TRUE(s.IsIOError()) << s.ToString();
      EXPECT_NE(s.message().find(error == ENOSPC ? "No space" : "Input/output"), std::string::npos)
          << s.ToString();
      env.ClearFaults();  // space is back, but the log has a hole: writes stay stopped
      s = db->Put("y", "v");
      ASSERT_TRUE(s.IsIOError());
      EXPECT_NE(s.message().find("writes stopped"), std::string::npos) << s.ToString();
      EXPECT_EQ(*db->Get("k5"), "v");  // reads go on
    }
    auto db = std::move(DB::Open(FaultOptions(&env), tmp.path())).value();
    for (int i = 0; i < 100; ++i) ASSERT_EQ(*db->Get("k" + std::to_string(i)), "v");
    EXPECT_TRUE(db->Get("x").status().IsNotFound());  // the half-written record was cut
    ASSERT_TRUE(db->Put("z", "after").ok());
    EXPECT_EQ(*db->Get("z"), "after");
  }
}

TEST(FaultTest, SyncErrorInSyncModeIsReportedAndStopsWrites) {
  TempDir tmp;
  FaultEnv env(Env::Default());
  Options o = FaultOptions(&env);
  o.durability = Durability::kSync;
  {
    auto db = std::move(DB::Open(o, tmp.path())).value();
    ASSERT_TRUE(db->Put("a", "1").ok());
    env.FailAfter(FaultEnv::Op::kSync, 0, EIO, false);
    EXPECT_TRUE(db->Put("b", "2").IsIOError());
    EXPECT_TRUE(db->Put("c", "3").IsIOError());
    EXPECT_EQ(*db->Get("a"), "1");
  }
  auto db = std::move(DB::Open(o, tmp.path())).value();
  EXPECT_EQ(*db->Get("a"), "1");
  EXPECT_TRUE(db->Get("c").status().IsNotFound());
  ASSERT_TRUE(db->Put("c", "3").ok());
}

// Many writers in sync mode: once an fdatasync fails, no later write succeeds (the kernel reports
// a writeback error once per file description, so a later sync that succeeds proves nothing),
// and every acknowledged write survives power loss.
TEST(FaultTest, FailedSyncAmongConcurrentGroupCommitsLosesNoAcknowledgedWrite) {
  for (int fail_at : {5, 40, 150}) {
    TempDir tmp;
    FaultEnv env(Env::Default());
    Options o = FaultOptions(&env);
    o.durability = Durability::kSync;
    constexpr int kThreads = 8;
    std::vector<std::vector<std::string>> acked(kThreads);
    std::atomic<uint64_t> failed{0};
    {
      auto db = std::move(DB::Open(o, tmp.path())).value();
      env.FailAfter(FaultEnv::Op::kSync, fail_at, EIO, /*sticky=*/false);
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
          bool seen_error = false;
          for (int i = 0; i < 400; ++i) {
            std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
            Status s = db->Put(key, "v" + key);
            if (s.ok()) {
              // Once a sync failed, no write may succeed any more.
              EXPECT_FALSE(seen_error) << key;
              acked[t].push_back(key);
            } else {
              EXPECT_TRUE(s.IsIOError()) << s.ToString();
              seen_error = true;
              failed.fetch_add(1);
            }
          }
        });
      }
      for (auto& th : threads) th.join();
      env.Crash();
    }
    EXPECT_GT(failed.load(), 0u) << "fail_at " << fail_at;
    ASSERT_TRUE(env.DropUnsyncedData().ok());
    env.ClearCrash();
    env.ClearFaults();
    auto db = std::move(DB::Open(o, tmp.path())).value();
    for (int t = 0; t < kThreads; ++t) {
      for (const std::string& key : acked[t]) {
        Result<std::string> r = db->Get(key);
        ASSERT_TRUE(r.ok()) << "fail_at " << fail_at << ": acknowledged " << key << " lost";
        EXPECT_EQ(*r, "v" + key);
      }
    }
  }
}

// The maintenance thread syncs the writer's segment before it marks the segment's hint. A failed
// sync there may have taken the error a writer's sync would have seen, so writes stop.
TEST(FaultTest, FailedSyncBeforeAHintMarkStopsWrites) {
  TempDir tmp;
  FaultEnv env(Env::Default());
  Options o = FaultOptions(&env);
  o.compaction_check_interval_ms = 5;  // a mark every 128 KiB of a 1 MiB segment
  o.durability = Durability::kInterval;
  o.sync_interval_ms = 600000;  // only the mark syncs during the test
  auto db = std::move(DB::Open(o, tmp.path())).value();
  env.FailAfter(FaultEnv::Op::kSync, 0, EIO, true);
  std::string value(1000, 'v');
  Status s;
  for (int i = 0; i < 5000 && s.ok(); ++i) {
    s = db->Put("k" + std::to_string(i), value);
    if (i >= 200) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.ToString().find("writes stopped"), std::string::npos) << s.ToString();
  EXPECT_EQ(*db->Get("k0"), value);
}

TEST(FaultTest, FailedSegmentCreationStopsWritesCleanly) {
  TempDir tmp;
  FaultEnv env(Env::Default());
  auto db = std::move(DB::Open(FaultOptions(&env), tmp.path())).value();
  env.FailAfter(FaultEnv::Op::kCreate, 0, ENOSPC, true);
  Status s;
  int acked = 0;
  for (; acked < 100000; ++acked) {  // runs until the segment must roll
    s = db->Put("k" + std::to_string(acked), std::string(100, 'v'));
    if (!s.ok()) break;
  }
  ASSERT_TRUE(s.IsIOError()) << s.ToString();
  env.ClearFaults();
  db.reset();
  db = std::move(DB::Open(FaultOptions(&env), tmp.path())).value();
  for (int i = 0; i < acked; ++i) ASSERT_TRUE(db->Get("k" + std::to_string(i)).ok()) << i;
}

// One operation of the power-loss workload.
struct Op {
  enum Kind { kPut, kDelete, kBatch } kind;
  std::vector<std::pair<std::string, std::optional<std::string>>> writes;  // nullopt = delete
};

void Apply(const Op& op, Model* m) {
  for (const auto& [k, v] : op.writes) {
    if (v) {
      (*m)[k] = *v;
    } else {
      m->erase(k);
    }
  }
}

class PowerLossTest : public ::testing::TestWithParam<Durability> {};

TEST_P(PowerLossTest, RecoveredStateIsAPrefixWithinTheModesPromise) {
  const Durability mode = GetParam();
  std::mt19937 rng(static_cast<unsigned>(mode) * 7919 + 1);
  for (int trial = 0; trial < 6; ++trial) {
    TempDir tmp;
    FaultEnv env(Env::Default());
    Options o = FaultOptions(&env);
    o.durability = mode;
    o.sync_interval_ms = 20;
    o.sync_batch_writes = 16;
    o.background_compaction = true;
    o.compaction_check_interval_ms = 5;
    std::vector<Op> ops;
    size_t must_keep = 0;  // ops the mode promises to keep
    {
      auto db = std::move(DB::Open(o, tmp.path())).value();
      int n = 1000 + static_cast<int>(rng() % 2000);
      for (int i = 0; i < n; ++i) {
        Op op;
        std::string key = "key" + std::to_string(rng() % 150);
        int r = static_cast<int>(rng() % 10);
        Status s;
        if (r < 6) {
          op.kind = Op::kPut;
          op.writes.emplace_back(key, Val(i, rng));
          s = db->Put(key, *op.writes[0].second);
        } else if (r < 8) {
          op.kind = Op::kDelete;
          op.writes.emplace_back(key, std::nullopt);
          s = db->Delete(key);
        } else {
          op.kind = Op::kBatch;
          WriteBatch b;
          for (int j = 0; j < 1 + static_cast<int>(rng() % 8); ++j) {
            std::string k = "key" + std::to_string(rng() % 150);
            if (rng() % 4 == 0) {
              op.writes.emplace_back(k, std::nullopt);
              b.Delete(k);
            } else {
              op.writes.emplace_back(k, Val(i * 100 + j, rng));
              b.Put(k, *op.writes.back().second);
            }
          }
          s = db->Write(b);
        }
        ASSERT_TRUE(s.ok()) << s.ToString();
        ops.push_back(std::move(op));
        if (i % 700 == 699) {
          ASSERT_TRUE(db->Compact().ok());
        }
      }
      switch (mode) {
        case Durability::kSync:
          must_keep = ops.size();
          break;
        case Durability::kBatch: {
          // At most sync_batch_writes records are unsynced; count ops back from the end.
          size_t records = 0, i = ops.size();
          while (i > 0 && records + ops[i - 1].writes.size() < o.sync_batch_writes) {
            records += ops[--i].writes.size();
          }
          must_keep = i;
          break;
        }
        case Durability::kInterval:
          // Wait for the background sync: everything so far is durable; what follows may be lost.
          for (int i = 0; i < 1000; ++i) {
            Stats st = db->GetStats();
            if (st.durable_sequence == st.last_sequence) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
          ASSERT_EQ(db->GetStats().durable_sequence, db->GetStats().last_sequence);
          must_keep = ops.size();
          for (int i = 0; i < 20; ++i) {
            Op op{Op::kPut, {{"late" + std::to_string(i), "v"}}};
            ASSERT_TRUE(db->Put(op.writes[0].first, "v").ok());
            ops.push_back(op);
          }
          break;
        case Durability::kNone:
          must_keep = 0;
          break;
      }
      env.Crash();  // power off: nothing more reaches the disk
    }
    ASSERT_TRUE(env.DropUnsyncedData().ok());
    env.ClearCrash();
    auto db = DB::Open(o, tmp.path());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    Model got = ReadAll(db->get());
    // The recovered state must equal the state after some prefix of at least must_keep ops.
    Model m;
    std::optional<size_t> matched;
    for (size_t k = 0; k <= ops.size(); ++k) {
      if (k > 0) Apply(ops[k - 1], &m);
      if (k >= must_keep && m == got) matched = k;
    }
    ASSERT_TRUE(matched.has_value())
        << "trial " << trial << ": recovered " << got.size() << " keys, matching no prefix of "
        << ops.size() << " ops (must keep " << must_keep << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(AllModes, PowerLossTest,
                         ::testing::Values(Durability::kNone, Durability::kInterval,
                                           Durability::kBatch, Durability::kSync),
                         [](const auto& info) {
                           switch (info.param) {
                             case Durability::kNone:
                               return "None";
                             case Durability::kInterval:
                               return "Interval";
                             case Durability::kBatch:
                               return "Batch";
                             case Durability::kSync:
                               return "Sync";
                           }
                           return "Unknown";
                         });

// Random damage to the files of a closed store: opening never crashes or hangs, and no read ever
// returns a value that was not the key's value.
TEST(CorruptionTest, RandomDamageNeverYieldsAWrongValue) {
  TempDir pristine;
  Model model;
  Options o;
  o.segment_size_bytes = 1 << 20;
  o.background_compaction = false;
  std::mt19937 rng(12345);
  {
    auto db = std::move(DB::Open(o, pristine.path())).value();
    for (int i = 0; i < 12000; ++i) {
      std::string k = "k" + std::to_string(rng() % 4000);
      std::string v = Val(i, rng);
      if (rng() % 10 == 0) {
        ASSERT_TRUE(db->Delete(k).ok());
        model.erase(k);
      } else {
        ASSERT_TRUE(db->Put(k, v).ok());
        model[k] = v;
      }
      if (i == 8000) {
        ASSERT_TRUE(db->Compact().ok());
      }
    }
  }
  // Every value ever written per key is acceptable only if it is the current one; an older value
  // would be a resurrection. Missing is acceptable (damaged record); wrong bytes never are.
  int opened = 0, refused = 0;
  for (int trial = 0; trial < 60; ++trial) {
    TempDir tmp;
    fs::copy(pristine.path(), tmp.path(),
             fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    fs::remove(tmp.Sub("LOCK"));
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(tmp.path())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    fs::path victim = files[rng() % files.size()];
    auto size = fs::file_size(victim);
    int kind = static_cast<int>(rng() % 3);
    if (size > 0) {
      if (kind == 0) {  // flip bits
        std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
        for (int j = 0; j < 1 + static_cast<int>(rng() % 4); ++j) {
          auto at = static_cast<std::streamoff>(rng() % size);
          f.seekg(at);
          char c = static_cast<char>(f.get());
          f.seekp(at);
          f.put(static_cast<char>(c ^ (1 << (rng() % 8))));
        }
      } else if (kind == 1) {  // zero a range
        std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
        auto at = rng() % size;
        auto len = std::min<uint64_t>(size - at, 1 + rng() % 5000);
        f.seekp(static_cast<std::streamoff>(at));
        f << std::string(len, '\0');
      } else {  // truncate
        fs::resize_file(victim, rng() % size);
      }
    }
    auto db = DB::Open(o, tmp.path());
    if (!db.ok()) {
      ++refused;  // e.g. a damaged segment header: a clear error, not a crash
      EXPECT_FALSE(db.status().message().empty());
      continue;
    }
    ++opened;
    for (const auto& [k, v] : model) {
      Result<std::string> r = (*db)->Get(k);
      if (r.ok()) {
        ASSERT_EQ(*r, v) << "trial " << trial << " damaged " << victim << " kind " << kind;
      } else {
        ASSERT_TRUE(r.status().IsNotFound() || r.status().IsCorruption()) << r.status().ToString();
      }
    }
    // Keys that were deleted do not come back (older segments still hold their puts).
    size_t extra = 0;
    for (auto it = (*db)->NewIterator(); it->Valid(); it->Next()) {
      if (model.count(std::string(it->key())) == 0) ++extra;
    }
    EXPECT_EQ(extra, 0u) << "trial " << trial << " damaged " << victim;
  }
  EXPECT_GT(opened, 30);
  std::printf("random damage: %d stores opened, %d refused with an error\n", opened, refused);
}

}  // namespace
}  // namespace varve
