// Reads racing compaction: readers Get continuously while writers overwrite and compaction
// deletes the segments the reads were looking at. Every value read must be one that was written
// for that key, and no newer than the next read of the key by the same thread returns. Meant
// for the sanitizer builds too (a read of a freed segment is a use-after-free there).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "testutil/temp_dir.h"
#include "varve/db.h"

namespace varve {
namespace {

constexpr int kKeys = 400;

std::string KeyOf(int k) { return "key-" + std::to_string(k); }

// Sizes from a few bytes to past a page, so reads take both the mapped and the pread paths.
std::string ValueOf(int k, uint64_t version) {
  std::string v = KeyOf(k) + "#" + std::to_string(version) + "#";
  size_t len = v.size() + (k * 131 + version * 977) % 6000;
  while (v.size() < len) v += static_cast<char>('a' + (v.size() * 7 + k + version) % 26);
  return v;
}

// The version value was written with, if it is a value of key k; else 0.
uint64_t VersionIn(int k, const std::string& value) {
  std::string prefix = KeyOf(k) + "#";
  if (value.compare(0, prefix.size(), prefix) != 0) return 0;
  size_t end = value.find('#', prefix.size());
  if (end == std::string::npos) return 0;
  uint64_t version = std::stoull(value.substr(prefix.size(), end - prefix.size()));
  return value == ValueOf(k, version) ? version : 0;
}

class ReadRaceTest : public ::testing::TestWithParam<IndexKind> {};

TEST_P(ReadRaceTest, ReadsDuringCompactionSeeOnlyWrittenValues) {
  testing::TempDir tmp;
  Options o;
  o.index = GetParam();
  o.segment_size_bytes = 1 << 20;  // many segments, so compaction deletes many
  o.background_compaction = true;
  o.compaction_check_interval_ms = 5;
  Result<std::unique_ptr<DB>> opened = DB::Open(o, tmp.path());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<DB> db = std::move(opened).value();

  constexpr int kWriters = 2;
  constexpr int kReaders = 4;
  constexpr uint64_t kRounds = 20;
  // Writer w owns keys k with k % kWriters == w and writes versions 1..kRounds of each.
  std::vector<std::atomic<uint64_t>> written(kKeys);
  for (int k = 0; k < kKeys; ++k) {
    ASSERT_TRUE(db->Put(KeyOf(k), ValueOf(k, 1)).ok());
    written[k] = 1;
  }

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, bad{0};
  std::vector<std::string> failures(kReaders);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      std::vector<uint64_t> seen(kKeys, 0);
      std::string value;
      uint64_t n = 0;
      for (uint32_t i = r; !stop.load(std::memory_order_relaxed); i = i * 1103515245 + 12345) {
        int k = static_cast<int>(i % kKeys);
        uint64_t max_written = written[k].load();
        Status s = db->Get(KeyOf(k), &value);
        uint64_t v = s.ok() ? VersionIn(k, value) : 0;
        // Written before the Get started at the earliest; not older than what this thread saw.
        if (v == 0 || v < seen[k] || v < max_written) {
          if (bad.fetch_add(1) == 0) {
            failures[r] = KeyOf(k) + ": " + s.ToString() + " version " + std::to_string(v) +
                          " (seen " + std::to_string(seen[k]) + ", written " +
                          std::to_string(max_written) + ")";
          }
          continue;
        }
        seen[k] = v;
        ++n;
      }
      reads += n;
    });
  }
  std::thread compactor([&] {
    while (!stop.load()) {
      Status s = db->Compact();
      if (!s.ok()) {
        ++bad;
        return;
      }
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (uint64_t version = 2; version <= kRounds; ++version) {
        for (int k = w; k < kKeys; k += kWriters) {
          Status s = db->Put(KeyOf(k), ValueOf(k, version));
          if (!s.ok()) {
            ++bad;
            return;
          }
          written[k].store(version);
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  for (auto& t : readers) t.join();
  compactor.join();

  for (const std::string& f : failures) EXPECT_EQ(f, "");
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  Stats st = db->GetStats();
  EXPECT_GT(st.compactions, 0u);  // segments were deleted under the readers
  for (int k = 0; k < kKeys; ++k) {
    Result<std::string> v = db->Get(KeyOf(k));
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(*v, ValueOf(k, kRounds));
  }
}

// Close while readers are still reading: reads fail cleanly or return a written value.
TEST_P(ReadRaceTest, CloseDuringReads) {
  testing::TempDir tmp;
  Options o;
  o.index = GetParam();
  o.segment_size_bytes = 1 << 20;
  Result<std::unique_ptr<DB>> opened = DB::Open(o, tmp.path());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<DB> db = std::move(opened).value();
  for (int k = 0; k < kKeys; ++k) ASSERT_TRUE(db->Put(KeyOf(k), ValueOf(k, 1)).ok());
  std::atomic<int> started{0};
  std::atomic<uint64_t> bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      std::string value;
      ++started;
      for (int i = 0;; ++i) {
        int k = (i * 7 + r) % kKeys;
        Status s = db->Get(KeyOf(k), &value);
        if (s.ok()) {
          if (VersionIn(k, value) != 1) ++bad;
          continue;
        }
        if (!s.IsInvalidArgument()) ++bad;  // "store is closed"
        return;
      }
    });
  }
  while (started.load() < 3) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(db->Close().ok());
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0u);
}

INSTANTIATE_TEST_SUITE_P(AllIndexes, ReadRaceTest,
                         ::testing::Values(IndexKind::kHash, IndexKind::kOrdered),
                         [](const auto& info) {
                           return info.param == IndexKind::kHash ? "Hash" : "Ordered";
                         });

}  // namespace
}  // namespace varve
