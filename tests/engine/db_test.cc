// Behaviour of the DB through its public API: reads and writes, reopen, crash recovery of the
// tail, atomic batches, compaction, TTL, compare-and-set, durability modes and locking.
#include "varve/db.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "engine/record.h"
#include "testutil/store_files.h"
#include "testutil/temp_dir.h"
#include "util/clock.h"

namespace varve {
namespace {

namespace fs = std::filesystem;
using testing::SegmentFiles;
using testing::TempDir;

std::unique_ptr<DB> OpenOrDie(const Options& opts, const std::string& dir) {
  Result<std::unique_ptr<DB>> db = DB::Open(opts, dir);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(db).value() : nullptr;
}

Options SmallSegments() {
  Options o;
  o.segment_size_bytes = 1 << 20;
  o.background_compaction = false;
  return o;
}

std::string ValueFor(int i, size_t len = 100) {
  std::string v = "value-" + std::to_string(i) + "-";
  while (v.size() < len) v += static_cast<char>('a' + (v.size() + i) % 26);
  return v;
}

class DBTest : public ::testing::TestWithParam<IndexKind> {
 protected:
  Options Opts() {
    Options o = SmallSegments();
    o.index = GetParam();
    return o;
  }
  TempDir tmp_;
};

TEST_P(DBTest, PutGetDeleteAndMissing) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  ASSERT_TRUE(db->Put("a", "1").ok());
  ASSERT_TRUE(db->Put("b", "").ok());
  ASSERT_TRUE(db->Put("", "empty key").ok());
  EXPECT_EQ(*db->Get("a"), "1");
  EXPECT_EQ(*db->Get("b"), "");
  EXPECT_EQ(*db->Get(""), "empty key");
  EXPECT_TRUE(db->Get("c").status().IsNotFound());
  ASSERT_TRUE(db->Put("a", "2").ok());
  EXPECT_EQ(*db->Get("a"), "2");
  ASSERT_TRUE(db->Delete("a").ok());
  EXPECT_TRUE(db->Get("a").status().IsNotFound());
  ASSERT_TRUE(db->Delete("never-there").ok());
  EXPECT_EQ(db->GetStats().keys, 2u);
}

TEST_P(DBTest, GetIntoACallersStringReusesIt) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  ASSERT_TRUE(db->Put("big", std::string(20000, 'b')).ok());
  ASSERT_TRUE(db->Put("small", "s").ok());
  ASSERT_TRUE(db->Put("empty", "").ok());
  std::string value = "left over";
  ASSERT_TRUE(db->Get("big", &value).ok());
  EXPECT_EQ(value, std::string(20000, 'b'));
  const char* buffer = value.data();
  ASSERT_TRUE(db->Get("small", &value).ok());
  EXPECT_EQ(value, "s");
  ASSERT_TRUE(db->Get("big", &value).ok());
  EXPECT_EQ(value, std::string(20000, 'b'));
  EXPECT_EQ(value.data(), buffer);  // no new allocation once it held the largest value
  ASSERT_TRUE(db->Get("empty", &value).ok());
  EXPECT_EQ(value, "");
  EXPECT_TRUE(db->Get("absent", &value).IsNotFound());
  ASSERT_TRUE(db->Delete("small").ok());
  EXPECT_TRUE(db->Get("small", &value).IsNotFound());
}

TEST_P(DBTest, BinaryKeysAndValuesAndLargeValue) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  std::string key("k\0\xff\n\t", 5);
  std::string value(256, '\0');
  for (int i = 0; i < 256; ++i) value[i] = static_cast<char>(i);
  ASSERT_TRUE(db->Put(key, value).ok());
  std::string big(3 << 20, 'x');  // larger than a 1 MiB segment
  big[12345] = 'y';
  ASSERT_TRUE(db->Put("big", big).ok());
  std::string long_key(100000, 'k');  // no small key limit
  ASSERT_TRUE(db->Put(long_key, "lk").ok());
  db.reset();
  db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(*db->Get(key), value);
  EXPECT_EQ(*db->Get("big"), big);
  EXPECT_EQ(*db->Get(long_key), "lk");
}

TEST_P(DBTest, ReopenSeesEverythingAndUsesHints) {
  std::map<std::string, std::string> model;
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    for (int i = 0; i < 30000; ++i) {
      std::string k = "key" + std::to_string(i % 20000);
      std::string v = ValueFor(i);
      ASSERT_TRUE(db->Put(k, v).ok());
      model[k] = v;
      if (i % 7 == 0) {
        ASSERT_TRUE(db->Delete(k).ok());
        model.erase(k);
      }
    }
    EXPECT_GT(db->GetStats().segments, 3u);
  }
  // Closing wrote a hint for every segment.
  for (const std::string& seg : SegmentFiles(tmp_.path())) {
    std::string hint = seg.substr(0, seg.size() - 4) + "hint";
    EXPECT_TRUE(fs::exists(hint)) << hint;
  }
  auto db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(db->GetStats().keys, model.size());
  for (const auto& [k, v] : model) ASSERT_EQ(*db->Get(k), v) << k;
  // Tail hint is gone once reopened: the tail is appended to again.
  ASSERT_TRUE(db->Put("after", "reopen").ok());
  db.reset();
  db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(*db->Get("after"), "reopen");
  EXPECT_EQ(db->GetStats().keys, model.size() + 1);
}

TEST_P(DBTest, CorruptHintIsRebuiltFromSegment) {
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    for (int i = 0; i < 20000; ++i) ASSERT_TRUE(db->Put("k" + std::to_string(i), ValueFor(i)).ok());
  }
  std::vector<std::string> segs = SegmentFiles(tmp_.path());
  ASSERT_GE(segs.size(), 2u);
  std::string hint = segs[0].substr(0, segs[0].size() - 4) + "hint";
  {
    std::fstream f(hint, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  auto db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(db->GetStats().keys, 20000u);
  for (int i = 0; i < 20000; i += 97) EXPECT_EQ(*db->Get("k" + std::to_string(i)), ValueFor(i));
}

TEST_P(DBTest, TornTailIsCutAtLastGoodRecord) {
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(db->Put("k" + std::to_string(i), ValueFor(i)).ok());
  }
  std::string seg = SegmentFiles(tmp_.path()).back();
  fs::remove(seg.substr(0, seg.size() - 4) + "hint");  // as after a crash: no tail hint
  // Cut the last record in half.
  auto size = fs::file_size(seg);
  fs::resize_file(seg, size - 50);
  auto db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(db->GetStats().keys, 99u);
  EXPECT_TRUE(db->Get("k99").status().IsNotFound());
  EXPECT_EQ(*db->Get("k98"), ValueFor(98));
  ASSERT_TRUE(db->Put("k99", "again").ok());
  db.reset();
  db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(*db->Get("k99"), "again");
}

TEST_P(DBTest, GarbageAfterTailIsCut) {
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    ASSERT_TRUE(db->Put("a", "1").ok());
  }
  std::string seg = SegmentFiles(tmp_.path()).back();
  fs::remove(seg.substr(0, seg.size() - 4) + "hint");
  {
    std::ofstream f(seg, std::ios::app | std::ios::binary);
    f << std::string(4096, '\0') << "garbage";
  }
  auto db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(*db->Get("a"), "1");
  ASSERT_TRUE(db->Put("b", "2").ok());
  db.reset();
  db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(*db->Get("a"), "1");
  EXPECT_EQ(*db->Get("b"), "2");
}

// Flips one byte of the first occurrence of needle in file; returns its offset.
size_t FlipByteOf(const std::string& file, const std::string& needle) {
  std::string data;
  {
    std::ifstream in(file, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), {});
  }
  size_t at = data.find(needle);
  EXPECT_NE(at, std::string::npos);
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(at));
  f.put(static_cast<char>(data[at] ^ 0x01));
  return at;
}

TEST_P(DBTest, DamageInTheMiddleOfTheTailLosesOnlyThatRecord) {
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(db->Put("k" + std::to_string(i), ValueFor(i)).ok());
  }
  std::string seg = SegmentFiles(tmp_.path()).back();
  fs::remove(seg.substr(0, seg.size() - 4) + "hint");  // as after a crash
  FlipByteOf(seg, ValueFor(50));
  for (int round = 0; round < 2; ++round) {
    auto db = OpenOrDie(Opts(), tmp_.path());
    EXPECT_EQ(db->GetStats().keys, 99u + round);
    EXPECT_TRUE(db->Get("k50").status().IsNotFound());
    for (int i = 0; i < 100; ++i) {
      if (i != 50) {
        ASSERT_EQ(*db->Get("k" + std::to_string(i)), ValueFor(i)) << i;
      }
    }
    ASSERT_TRUE(db->Put("new" + std::to_string(round), "v").ok());
  }
  EXPECT_EQ(SegmentFiles(tmp_.path()).size(), 2u);  // the damaged tail is not appended to
}

TEST_P(DBTest, DamagedRecordIsACorruptionErrorNeverAValue) {
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    for (int i = 0; i < 20000; ++i) ASSERT_TRUE(db->Put("k" + std::to_string(i), ValueFor(i)).ok());
  }
  std::string first = SegmentFiles(tmp_.path()).front();
  size_t at = FlipByteOf(first, ValueFor(100));
  auto db = OpenOrDie(Opts(), tmp_.path());  // loads the index from the hint
  Result<std::string> r = db->Get("k100");
  ASSERT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(fs::path(first).filename().string()), std::string::npos);
  EXPECT_NE(r.status().message().find("offset"), std::string::npos) << at;
  EXPECT_EQ(*db->Get("k99"), ValueFor(99));
  EXPECT_EQ(*db->Get("k101"), ValueFor(101));
  EXPECT_EQ(*db->Get("k19999"), ValueFor(19999));
}

TEST_P(DBTest, SegmentCutShortUnderAnOpenStoreIsAnErrorNotACrash) {
  // Reads go through file mappings: a page past the file's end raises SIGBUS, which must come
  // back as the read's error. Once while the store that wrote the segment is open, once after
  // a reopen (which maps the file at its new size).
  auto db = OpenOrDie(Opts(), tmp_.path());
  for (int i = 0; i < 20000; ++i) ASSERT_TRUE(db->Put("k" + std::to_string(i), ValueFor(i)).ok());
  std::string first = SegmentFiles(tmp_.path()).front();
  fs::resize_file(first, 8192);
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      db.reset();
      db = OpenOrDie(Opts(), tmp_.path());
    }
    int ok = 0, corrupt = 0;
    for (int i = 0; i < 20000; ++i) {
      Result<std::string> r = db->Get("k" + std::to_string(i));
      if (r.ok()) {
        ASSERT_EQ(*r, ValueFor(i)) << "round " << round;
        ++ok;
      } else {
        ASSERT_TRUE(r.status().IsCorruption() || r.status().IsIOError())
            << "round " << round << ": " << r.status().ToString();
        ++corrupt;
      }
    }
    EXPECT_GT(corrupt, 0) << "round " << round;
    EXPECT_GT(ok, 10000) << "round " << round;  // the other segments
    EXPECT_EQ(*db->Get("k0"), ValueFor(0));     // in the part that is left
  }
}

TEST_P(DBTest, SegmentOfLargeValuesCutShortUnderCachedReadsIsAnErrorNotACrash) {
  // Values larger than a page come from the mapping without a residency check once a thread's
  // checks keep finding them cached (ResidencyGuess): reads past a cut must still fail cleanly.
  auto db = OpenOrDie(Opts(), tmp_.path());
  constexpr int kKeys = 300;
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(db->Put("k" + std::to_string(i), ValueFor(i, 10000)).ok());
  }
  std::string value;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kKeys; ++i) {
      ASSERT_TRUE(db->Get("k" + std::to_string(i), &value).ok());
      ASSERT_EQ(value, ValueFor(i, 10000));
    }
  }
  std::string first = SegmentFiles(tmp_.path()).front();
  fs::resize_file(first, 8192 * 4);
  int ok = 0, failed = 0;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < kKeys; ++i) {
      Status s = db->Get("k" + std::to_string(i), &value);
      if (s.ok()) {
        ASSERT_EQ(value, ValueFor(i, 10000)) << "round " << round;
        ++ok;
      } else {
        ASSERT_TRUE(s.IsCorruption() || s.IsIOError()) << s.ToString();
        ++failed;
      }
    }
  }
  EXPECT_GT(failed, 0);
  EXPECT_GT(ok, 5 * kKeys / 2);             // the other segments
  ASSERT_TRUE(db->Get("k0", &value).ok());  // in the part that is left
  EXPECT_EQ(value, ValueFor(0, 10000));
}

TEST_P(DBTest, BatchIsAllOrNothingAcrossACrash) {
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    ASSERT_TRUE(db->Put("x", "old").ok());
    WriteBatch b;
    for (int i = 0; i < 10; ++i) b.Put("batch" + std::to_string(i), ValueFor(i));
    b.Delete("x");
    ASSERT_TRUE(db->Write(b).ok());
  }
  std::string seg = SegmentFiles(tmp_.path()).back();
  fs::remove(seg.substr(0, seg.size() - 4) + "hint");
  // Lose the batch's commit record (the delete of x, 15 bytes + key) and a bit more.
  fs::resize_file(seg, fs::file_size(seg) - 20);
  auto db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(*db->Get("x"), "old");
  for (int i = 0; i < 10; ++i)
    EXPECT_TRUE(db->Get("batch" + std::to_string(i)).status().IsNotFound());
  EXPECT_EQ(db->GetStats().keys, 1u);

  WriteBatch b;
  b.Put("p", "1");
  b.Put("q", "2");
  b.Delete("x");
  ASSERT_TRUE(db->Write(b).ok());
  EXPECT_EQ(*db->Get("p"), "1");
  EXPECT_TRUE(db->Get("x").status().IsNotFound());
}

TEST_P(DBTest, LaterOpInBatchWins) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  WriteBatch b;
  b.Put("k", "1");
  b.Delete("k");
  b.Put("k", "3");
  b.Put("j", "1");
  b.Delete("j");
  ASSERT_TRUE(db->Write(b).ok());
  EXPECT_EQ(*db->Get("k"), "3");
  EXPECT_TRUE(db->Get("j").status().IsNotFound());
  db.reset();
  db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(*db->Get("k"), "3");
  EXPECT_TRUE(db->Get("j").status().IsNotFound());
}

TEST_P(DBTest, CompactionReclaimsSpaceAndKeepsData) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  std::map<std::string, std::string> model;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 5000; ++i) {
      std::string k = "k" + std::to_string(i);
      model[k] = ValueFor(i + round);
      ASSERT_TRUE(db->Put(k, model[k]).ok());
    }
  }
  for (int i = 0; i < 5000; i += 2) {
    ASSERT_TRUE(db->Delete("k" + std::to_string(i)).ok());
    model.erase("k" + std::to_string(i));
  }
  Stats before = db->GetStats();
  ASSERT_TRUE(db->Compact().ok());
  Stats after = db->GetStats();
  EXPECT_LT(after.disk_bytes, before.disk_bytes / 4);
  EXPECT_GT(after.compactions, 0u);
  EXPECT_GT(after.compaction_bytes_written, 0u);
  EXPECT_EQ(after.dead_bytes, 0u);
  for (const auto& [k, v] : model) ASSERT_EQ(*db->Get(k), v);
  db.reset();
  db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(db->GetStats().keys, model.size());
  for (int i = 0; i < 5000; ++i) {
    std::string k = "k" + std::to_string(i);
    auto it = model.find(k);
    Result<std::string> r = db->Get(k);
    if (it == model.end()) {
      EXPECT_TRUE(r.status().IsNotFound()) << k;  // no deleted key comes back
    } else {
      EXPECT_EQ(*r, it->second);
    }
  }
}

TEST_P(DBTest, BackgroundCompactionRunsAlongsideWrites) {
  Options o = Opts();
  o.background_compaction = true;
  o.compaction_check_interval_ms = 10;
  auto db = OpenOrDie(o, tmp_.path());
  std::atomic<bool> stop{false};
  std::atomic<int> read_errors{0};
  std::thread reader([&] {
    while (!stop) {
      for (int i = 0; i < 200; ++i) {
        Result<std::string> r = db->Get("k" + std::to_string(i));
        if (!r.ok() && !r.status().IsNotFound()) ++read_errors;
        if (r.ok() && r->rfind("value-", 0) != 0) ++read_errors;
      }
    }
  });
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 1000; ++i)
      ASSERT_TRUE(db->Put("k" + std::to_string(i), ValueFor(round * 1000 + i, 200)).ok());
  }
  // Background compaction may take several passes to get below half; wait
  // for the outcome rather than the first pass (slow CI machines).
  const uint64_t half = 40u * 1000 * 230 / 2;
  for (int i = 0; i < 1000; ++i) {
    Stats s = db->GetStats();
    if (s.compactions > 0 && s.disk_bytes < half) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(read_errors.load(), 0);
  Stats st = db->GetStats();
  EXPECT_GT(st.compactions, 0u);
  EXPECT_LT(st.disk_bytes, half);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(*db->Get("k" + std::to_string(i)), ValueFor(39000 + i, 200));
}

TEST_P(DBTest, TtlExpires) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  const uint64_t deadline = NowUnixMs() + 50;
  ASSERT_TRUE(db->Put("short", "v", PutOptions{50}).ok());
  ASSERT_TRUE(db->Put("long", "v", PutOptions{3600 * 1000}).ok());
  ASSERT_TRUE(db->Put("old", "v1").ok());
  Result<std::string> short_now = db->Get("short");
  // A stalled machine may pass the deadline before the read; only then may it be gone.
  if (NowUnixMs() < deadline) {
    EXPECT_EQ(short_now.ok() ? *short_now : "(gone)", "v");
  }
  auto v = db->GetVersioned("long");
  ASSERT_TRUE(v.ok());
  EXPECT_GT(v->expiry_ms, 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_TRUE(db->Get("short").status().IsNotFound());
  EXPECT_EQ(*db->Get("long"), "v");
  // An expired newer version hides the older one, also after compaction and reopen.
  ASSERT_TRUE(db->Put("old", "v2", PutOptions{20}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  EXPECT_TRUE(db->Get("old").status().IsNotFound());
  ASSERT_TRUE(db->Compact().ok());
  db.reset();
  db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_TRUE(db->Get("old").status().IsNotFound());
  EXPECT_TRUE(db->Get("short").status().IsNotFound());
  EXPECT_EQ(*db->Get("long"), "v");
  int seen = 0;
  for (auto it = db->NewIterator(); it->Valid(); it->Next()) ++seen;
  EXPECT_EQ(seen, 1);
}

TEST_P(DBTest, UserFlagsRoundTripThroughCompactionAndReopen) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  PutOptions po;
  po.user_flags = 0xdeadbeef;
  ASSERT_TRUE(db->Put("f", "v", po).ok());
  ASSERT_TRUE(db->Put("g", "plain").ok());
  WriteBatch b;
  b.Put("h", "batched", 0, 7);
  ASSERT_TRUE(db->Write(b).ok());
  EXPECT_EQ(db->GetVersioned("f")->user_flags, 0xdeadbeefu);
  ASSERT_TRUE(db->Put("g", "x").ok());  // garbage, so Compact rewrites
  ASSERT_TRUE(db->Compact().ok());
  db.reset();
  db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(db->GetVersioned("f")->user_flags, 0xdeadbeefu);
  EXPECT_EQ(db->GetVersioned("g")->user_flags, 0u);
  EXPECT_EQ(db->GetVersioned("h")->user_flags, 7u);
  std::map<std::string, uint32_t> seen;
  for (auto it = db->NewIterator(); it->Valid(); it->Next())
    seen[std::string(it->key())] = it->user_flags();
  EXPECT_EQ(seen, (std::map<std::string, uint32_t>{{"f", 0xdeadbeef}, {"g", 0}, {"h", 7}}));
}

// Found by the crash torture: an open drops expired keys from the index; compaction must still
// keep an expired record's place (as a tombstone) while older versions exist elsewhere.
TEST_P(DBTest, ExpiredValueKeepsHidingOlderVersionAcrossReopenAndCompaction) {
  std::string filler(1000, 'f');
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    ASSERT_TRUE(db->Put("k", "old").ok());
    for (int i = 0; i < 1100; ++i) ASSERT_TRUE(db->Put("live" + std::to_string(i), filler).ok());
    ASSERT_TRUE(db->Put("k", "new", PutOptions{50}).ok());
    for (int i = 0; i < 1100; ++i) ASSERT_TRUE(db->Put("garbage", filler).ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  for (int round = 0; round < 3; ++round) {
    auto db = OpenOrDie(Opts(), tmp_.path());
    EXPECT_TRUE(db->Get("k").status().IsNotFound()) << "round " << round;
    ASSERT_TRUE(db->Put("garbage", "x").ok());
    ASSERT_TRUE(db->Compact().ok());
    EXPECT_TRUE(db->Get("k").status().IsNotFound()) << "round " << round;
  }
}

// Found by the crash torture: tombstones compaction must keep were rewritten at every open and
// copies multiplied; the store must not grow when nothing is written.
TEST_P(DBTest, StoreDoesNotGrowAcrossOpenAndClose) {
  {
    auto db = OpenOrDie(Opts(), tmp_.path());
    for (int i = 0; i < 1100; ++i)
      ASSERT_TRUE(db->Put("old" + std::to_string(i), std::string(900, 'o')).ok());
    for (int i = 0; i < 20000; ++i) ASSERT_TRUE(db->Put("k" + std::to_string(i), "v").ok());
    for (int i = 0; i < 20000; ++i) ASSERT_TRUE(db->Delete("k" + std::to_string(i)).ok());
    ASSERT_TRUE(db->Compact().ok());
  }
  Options o = Opts();
  o.background_compaction = true;
  o.compaction_check_interval_ms = 5;
  uint64_t first = 0;
  for (int round = 0; round < 6; ++round) {
    auto db = OpenOrDie(o, tmp_.path());
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ASSERT_TRUE(db->Compact().ok());
    uint64_t disk = db->GetStats().disk_bytes;
    if (round == 0) first = disk;
    EXPECT_LE(disk, first + first / 10) << "round " << round;
    EXPECT_EQ(db->GetStats().keys, 1100u);
  }
}

TEST_P(DBTest, CompareAndSet) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  uint64_t v1 = 0;
  ASSERT_TRUE(db->CompareAndSet("k", 0, "first", {}, &v1).ok());  // 0: must be absent
  EXPECT_GT(v1, 0u);
  EXPECT_TRUE(db->CompareAndSet("k", 0, "again").IsAborted());
  EXPECT_TRUE(db->CompareAndSet("k", v1 + 100, "x").IsAborted());
  uint64_t v2 = 0;
  ASSERT_TRUE(db->CompareAndSet("k", v1, "second", {}, &v2).ok());
  EXPECT_GT(v2, v1);
  EXPECT_EQ(db->GetVersioned("k")->version, v2);
  EXPECT_EQ(*db->Get("k"), "second");
  EXPECT_TRUE(db->CompareAndDelete("k", v1).IsAborted());
  ASSERT_TRUE(db->CompareAndDelete("k", v2).ok());
  EXPECT_TRUE(db->Get("k").status().IsNotFound());
  // Versions survive reopen and compaction (records keep their sequence numbers).
  ASSERT_TRUE(db->Put("m", "1").ok());
  uint64_t vm = db->GetVersioned("m")->version;
  ASSERT_TRUE(db->Compact().ok());
  db.reset();
  db = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(db->GetVersioned("m")->version, vm);
  ASSERT_TRUE(db->CompareAndSet("m", vm, "2").ok());
}

TEST_P(DBTest, ConcurrentCompareAndSetCountsExactly) {
  Options o = Opts();
  o.durability = Durability::kSync;
  auto db = OpenOrDie(o, tmp_.path());
  ASSERT_TRUE(db->Put("counter", "0").ok());
  constexpr int kThreads = 4, kIncrements = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kIncrements;) {
        auto cur = db->GetVersioned("counter");
        ASSERT_TRUE(cur.ok());
        std::string next = std::to_string(std::stoi(cur->value) + 1);
        Status s = db->CompareAndSet("counter", cur->version, next);
        if (s.ok()) {
          ++done;
        } else {
          ASSERT_TRUE(s.IsAborted()) << s.ToString();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(*db->Get("counter"), std::to_string(kThreads * kIncrements));
}

TEST_P(DBTest, ConditionalBatchAppliesOnlyIfEveryVersionMatches) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  ASSERT_TRUE(db->Put("a", "1").ok());
  uint64_t va = db->GetVersioned("a")->version;
  // All conditions hold: the batch applies.
  WriteBatch b;
  b.Expect("a", va);
  b.Expect("absent", 0);
  b.Put("a", "2");
  b.Put("b", "x");
  ASSERT_TRUE(db->Write(b).ok());
  EXPECT_EQ(*db->Get("a"), "2");
  EXPECT_EQ(*db->Get("b"), "x");
  // One stale condition: nothing is written.
  WriteBatch stale;
  stale.Expect("b", db->GetVersioned("b")->version);
  stale.Expect("a", va);  // a changed since
  stale.Put("b", "y");
  stale.Delete("a");
  Status s = db->Write(stale);
  EXPECT_TRUE(s.IsAborted()) << s.ToString();
  EXPECT_EQ(*db->Get("a"), "2");
  EXPECT_EQ(*db->Get("b"), "x");
  // A key that must be absent but exists; an expired key counts as absent.
  ASSERT_TRUE(db->Put("short", "v", PutOptions{1}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  WriteBatch nx;
  nx.Expect("short", 0);
  nx.Expect("b", 0);
  nx.Put("short", "w");
  EXPECT_TRUE(db->Write(nx).IsAborted());
  WriteBatch nx2;
  nx2.Expect("short", 0);
  nx2.Put("short", "w");
  ASSERT_TRUE(db->Write(nx2).ok());
  EXPECT_EQ(*db->Get("short"), "w");
  // Conditions without operations: a check.
  WriteBatch check;
  check.Expect("a", db->GetVersioned("a")->version);
  EXPECT_TRUE(db->Write(check).ok());
  check.Expect("b", 12345);
  EXPECT_TRUE(db->Write(check).IsAborted());
}

TEST_P(DBTest, RacingPutIfAbsentBatchesHaveOneWinner) {
  // MSETNX from several clients over overlapping keys: for each key exactly one batch wins, and
  // a batch is all or nothing.
  Options o = Opts();
  o.durability = Durability::kSync;  // group commit puts racing batches in one group
  auto db = OpenOrDie(o, tmp_.path());
  constexpr int kThreads = 4, kRounds = 60;
  std::vector<std::vector<int>> won(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        WriteBatch b;
        for (std::string k : {"r" + std::to_string(r) + "a", "r" + std::to_string(r) + "b"}) {
          b.Expect(k, 0);
          b.Put(k, std::to_string(t));
        }
        Status s = db->Write(b);
        if (s.ok()) {
          won[t].push_back(r);
        } else {
          EXPECT_TRUE(s.IsAborted()) << s.ToString();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int r = 0; r < kRounds; ++r) {
    int winners = 0, winner = -1;
    for (int t = 0; t < kThreads; ++t) {
      if (std::count(won[t].begin(), won[t].end(), r) != 0) {
        ++winners;
        winner = t;
      }
    }
    ASSERT_EQ(winners, 1) << "round " << r;
    EXPECT_EQ(*db->Get("r" + std::to_string(r) + "a"), std::to_string(winner));
    EXPECT_EQ(*db->Get("r" + std::to_string(r) + "b"), std::to_string(winner));
  }
}

TEST_P(DBTest, SkipUnchangedWrites) {
  Options o = Opts();
  o.skip_unchanged_writes = true;
  auto db = OpenOrDie(o, tmp_.path());
  ASSERT_TRUE(db->Put("k", "same").ok());
  uint64_t v = db->GetVersioned("k")->version;
  uint64_t log = db->GetStats().log_bytes_written;
  ASSERT_TRUE(db->Put("k", "same").ok());
  EXPECT_EQ(db->GetVersioned("k")->version, v);
  EXPECT_EQ(db->GetStats().log_bytes_written, log);
  EXPECT_EQ(db->GetStats().skipped_unchanged_writes, 1u);
  ASSERT_TRUE(db->Put("k", "different").ok());
  EXPECT_GT(db->GetVersioned("k")->version, v);
}

TEST_P(DBTest, ConcurrentWritersAllDurableWithGroupCommit) {
  Options o = Opts();
  o.durability = Durability::kSync;
  constexpr int kThreads = 8, kPerThread = 300;
  {
    auto db = OpenOrDie(o, tmp_.path());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          ASSERT_TRUE(db->Put("t" + std::to_string(t) + "-" + std::to_string(i), ValueFor(i)).ok());
        }
      });
    }
    for (auto& t : threads) t.join();
    Stats st = db->GetStats();
    EXPECT_EQ(st.puts, uint64_t{kThreads * kPerThread});
    EXPECT_LE(st.syncs, st.puts);  // groups share syncs
  }
  auto db = OpenOrDie(o, tmp_.path());
  EXPECT_EQ(db->GetStats().keys, uint64_t{kThreads * kPerThread});
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      ASSERT_EQ(*db->Get("t" + std::to_string(t) + "-" + std::to_string(i)), ValueFor(i));
    }
  }
}

// Concurrent group commits reach the index in the order they were appended. Threads overwrite
// shared keys: the values read live must be the ones the log holds as newest (what a reopen
// finds), and each writer reads its own write back at once.
TEST_P(DBTest, ConcurrentGroupCommitsApplyInAppendOrder) {
  Options o = Opts();
  o.durability = Durability::kSync;
  constexpr int kThreads = 8, kPerThread = 250, kKeys = 5;
  std::map<std::string, std::string> live;
  {
    auto db = OpenOrDie(o, tmp_.path());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::string own = "own" + std::to_string(t);
        for (int i = 0; i < kPerThread; ++i) {
          std::string v = std::to_string(t) + ":" + std::to_string(i);
          ASSERT_TRUE(db->Put("shared" + std::to_string(i % kKeys), v).ok());
          ASSERT_TRUE(db->Put(own, v).ok());
          ASSERT_EQ(*db->Get(own), v);
        }
      });
    }
    for (auto& t : threads) t.join();
    for (int k = 0; k < kKeys; ++k) {
      std::string key = "shared" + std::to_string(k);
      live[key] = *db->Get(key);
    }
  }
  auto db = OpenOrDie(o, tmp_.path());
  for (const auto& [key, value] : live) EXPECT_EQ(*db->Get(key), value) << key;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(*db->Get("own" + std::to_string(t)),
              std::to_string(t) + ":" + std::to_string(kPerThread - 1));
  }
}

TEST_P(DBTest, DurabilityModesSync) {
  for (Durability d : {Durability::kNone, Durability::kInterval, Durability::kBatch}) {
    TempDir dir;
    Options o = Opts();
    o.durability = d;
    o.sync_interval_ms = 5;
    o.sync_batch_writes = 10;
    auto db = OpenOrDie(o, dir.path());
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(db->Put("k" + std::to_string(i), "v").ok());
    // The background sync (or the batch count) makes everything durable; kNone never syncs.
    for (int i = 0; i < 500 && d != Durability::kNone; ++i) {
      Stats st = db->GetStats();
      if (st.durable_sequence == st.last_sequence) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Stats st = db->GetStats();
    if (d == Durability::kNone) {
      EXPECT_EQ(st.syncs, 0u);
      EXPECT_LT(st.durable_sequence, st.last_sequence);
    } else {
      EXPECT_GT(st.syncs, 0u);
      EXPECT_EQ(st.durable_sequence, st.last_sequence);
    }
    ASSERT_TRUE(db->Put("one-more", "v").ok());
    ASSERT_TRUE(db->Sync().ok());
    EXPECT_GT(db->GetStats().syncs, st.syncs);
    EXPECT_EQ(db->GetStats().durable_sequence, db->GetStats().last_sequence);
  }
}

TEST_P(DBTest, IteratorReturnsEveryKeyOnce) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  std::map<std::string, std::string> model;
  for (int i = 0; i < 5000; ++i) {
    std::string k = (i % 3 == 0 ? "user:" : "item:") + std::to_string(i);
    model[k] = ValueFor(i);
    ASSERT_TRUE(db->Put(k, model[k]).ok());
  }
  std::map<std::string, std::string> seen;
  std::vector<std::string> order;
  for (auto it = db->NewIterator(); it->Valid(); it->Next()) {
    EXPECT_TRUE(seen.emplace(std::string(it->key()), std::string(it->value())).second);
    order.emplace_back(it->key());
    EXPECT_GT(it->version(), 0u);
  }
  EXPECT_EQ(seen, model);
  if (GetParam() == IndexKind::kOrdered) {
    EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  }

  ReadOptions ro;
  ro.prefix = "user:";
  size_t n = 0;
  for (auto it = db->NewIterator(ro); it->Valid(); it->Next()) {
    EXPECT_TRUE(it->key().starts_with("user:"));
    ++n;
  }
  EXPECT_EQ(n, 1667u);

  ReadOptions range;
  range.start = "item:2";
  range.end = "item:3";
  std::set<std::string> got;
  for (auto it = db->NewIterator(range); it->Valid(); it->Next()) got.emplace(it->key());
  std::set<std::string> want;
  for (const auto& [k, v] : model) {
    if (k >= "item:2" && k < "item:3") want.insert(k);
  }
  EXPECT_EQ(got, want);
}

TEST_P(DBTest, IteratorDuringCompaction) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  for (int r = 0; r < 3; ++r) {
    for (int i = 0; i < 5000; ++i) ASSERT_TRUE(db->Put("k" + std::to_string(i), ValueFor(i)).ok());
  }
  auto it = db->NewIterator();
  std::thread compactor([&] { ASSERT_TRUE(db->Compact().ok()); });
  std::set<std::string> seen;
  for (; it->Valid(); it->Next()) {
    EXPECT_TRUE(seen.emplace(it->key()).second);
    EXPECT_EQ(it->value(), ValueFor(std::stoi(std::string(it->key().substr(1)))));
  }
  compactor.join();
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  EXPECT_EQ(seen.size(), 5000u);
}

TEST_P(DBTest, SecondOpenIsRefusedWithHolder) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  Result<std::unique_ptr<DB>> second = DB::Open(Opts(), tmp_.path());
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.status().IsBusy());
  EXPECT_NE(second.status().message().find("pid " + std::to_string(getpid())), std::string::npos)
      << second.status().ToString();
  db.reset();
  EXPECT_TRUE(DB::Open(Opts(), tmp_.path()).ok());
}

TEST_P(DBTest, StatsAccountBytes) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(db->Put("k" + std::to_string(i % 500), ValueFor(i)).ok());
  Stats st = db->GetStats();
  EXPECT_EQ(st.keys, 500u);
  EXPECT_EQ(st.puts, 1000u);
  EXPECT_GT(st.live_bytes, 0u);
  EXPECT_NEAR(static_cast<double>(st.dead_bytes), static_cast<double>(st.live_bytes),
              st.live_bytes * 0.05);
  EXPECT_GE(st.write_amplification, 1.0);
  EXPECT_LT(st.write_amplification, 1.3);
  EXPECT_GT(st.index_memory_bytes, 0u);
  EXPECT_EQ(st.live_bytes + st.dead_bytes + 32 * st.segments, st.disk_bytes);
}

// An open rebuilds the newest version of every key from versions spread over many segments
// (loaded by several threads, from hints and then from scans), deletes included, with the
// same live and dead byte counts as before the close.
TEST_P(DBTest, ReopenKeepsNewestVersionsAndByteCounts) {
  Options o = Opts();
  o.open_threads = 4;
  std::map<std::string, std::string> model;
  {
    auto db = OpenOrDie(o, tmp_.path());
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 3000; ++i) {
        std::string k = (i % 5 == 0 ? std::string(30, 'L') : "") + "k" + std::to_string(i);
        model[k] = ValueFor(i * 10 + round, 900);
        ASSERT_TRUE(db->Put(k, model[k]).ok());
      }
      for (int i = round; i < 3000; i += 7) {
        std::string k = (i % 5 == 0 ? std::string(30, 'L') : "") + "k" + std::to_string(i);
        model.erase(k);
        ASSERT_TRUE(db->Delete(k).ok());
      }
    }
  }
  Stats before;
  {
    auto db = OpenOrDie(o, tmp_.path());
    before = db->GetStats();
  }
  EXPECT_GT(before.segments, 5u);
  EXPECT_EQ(before.keys, model.size());
  for (bool drop_hints : {false, true}) {
    if (drop_hints) {
      for (const auto& f : std::filesystem::directory_iterator(tmp_.path())) {
        if (f.path().extension() == ".hint") std::filesystem::remove(f.path());
      }
    }
    auto db = OpenOrDie(o, tmp_.path());
    Stats st = db->GetStats();
    EXPECT_EQ(st.keys, model.size()) << drop_hints;
    EXPECT_EQ(st.live_bytes, before.live_bytes) << drop_hints;
    EXPECT_EQ(st.dead_bytes, before.dead_bytes) << drop_hints;
    for (const auto& [k, v] : model) ASSERT_EQ(*db->Get(k), v) << k;
    for (int i = 2; i < 3000; i += 7) {  // deleted in the last round
      std::string k = (i % 5 == 0 ? std::string(30, 'L') : "") + "k" + std::to_string(i);
      EXPECT_TRUE(db->Get(k).status().IsNotFound()) << k;
    }
    if (GetParam() == IndexKind::kOrdered) {
      auto m = model.begin();
      for (auto it = db->NewIterator(); it->Valid(); it->Next(), ++m) {
        ASSERT_TRUE(m != model.end());
        ASSERT_EQ(it->key(), m->first);
      }
      EXPECT_TRUE(m == model.end());
    }
  }
}

TEST_P(DBTest, RejectsBadOptionsAndOversizeKeys) {
  Options o = Opts();
  o.segment_size_bytes = 1000;
  EXPECT_TRUE(DB::Open(o, tmp_.path()).status().IsInvalidArgument());
  o = Opts();
  o.compaction_live_ratio = 1.5;
  EXPECT_TRUE(DB::Open(o, tmp_.path()).status().IsInvalidArgument());
  o = Opts();
  o.create_if_missing = false;
  EXPECT_TRUE(DB::Open(o, tmp_.Sub("nope")).status().IsNotFound());
  auto db = OpenOrDie(Opts(), tmp_.path());
  std::string huge_key((64 << 20) + 1, 'k');
  EXPECT_TRUE(db->Put(huge_key, "v").IsInvalidArgument());
}

TEST_P(DBTest, CallsAfterCloseFail) {
  auto db = OpenOrDie(Opts(), tmp_.path());
  ASSERT_TRUE(db->Put("k", "v").ok());
  auto it = db->NewIterator();
  ASSERT_TRUE(it->Valid());
  ASSERT_TRUE(db->Close().ok());
  EXPECT_TRUE(db->Get("k").status().IsInvalidArgument());
  EXPECT_TRUE(db->Put("k", "v2").IsInvalidArgument());
  EXPECT_TRUE(db->Close().ok());  // idempotent
  it.reset();
  auto again = OpenOrDie(Opts(), tmp_.path());
  EXPECT_EQ(*again->Get("k"), "v");
}

INSTANTIATE_TEST_SUITE_P(AllIndexes, DBTest,
                         ::testing::Values(IndexKind::kHash, IndexKind::kOrdered),
                         [](const auto& info) {
                           return info.param == IndexKind::kHash ? "Hash" : "Ordered";
                         });

}  // namespace
}  // namespace varve
