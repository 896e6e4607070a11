// One behaviour suite for every index kind (src/engine/index.h): each test runs against the hash
// index and the ordered index.
#include "engine/index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "util/coding.h"

namespace varve {
namespace {

IndexEntry Entry(uint32_t segment, uint32_t offset, uint32_t size, uint8_t flags = 0) {
  IndexEntry e;
  e.segment = segment;
  e.offset = offset;
  e.size = size;
  e.flags = flags;
  return e;
}

bool Same(const IndexEntry& a, const IndexEntry& b) {
  return a.segment == b.segment && a.offset == b.offset && a.size == b.size && a.flags == b.flags;
}

std::string Show(const IndexEntry& e) {
  return "{segment " + std::to_string(e.segment) + ", offset " + std::to_string(e.offset) +
         ", size " + std::to_string(e.size) + ", flags " + std::to_string(e.flags) + "}";
}

#define EXPECT_ENTRY_EQ(a, b) EXPECT_TRUE(Same((a), (b))) << Show(a) << " vs " << Show(b)
#define ASSERT_ENTRY_EQ(a, b) ASSERT_TRUE(Same((a), (b))) << Show(a) << " vs " << Show(b)

std::string KindName(const ::testing::TestParamInfo<IndexKind>& info) {
  return info.param == IndexKind::kHash ? "Hash" : "Ordered";
}

class IndexTest : public ::testing::TestWithParam<IndexKind> {
 protected:
  IndexTest() : index_(Index::Create(GetParam())) {}

  // Every entry, through ForEach.
  std::map<std::string, IndexEntry> Contents() const {
    std::map<std::string, IndexEntry> out;
    index_->ForEach([&](std::string_view k, const IndexEntry& e) {
      EXPECT_TRUE(out.emplace(std::string(k), e).second) << "ForEach visited a key twice";
    });
    return out;
  }

  // Every entry, through Scan in chunks of max_entries.
  std::vector<Index::KeyEntry> ScanAll(std::string_view start, size_t max_entries,
                                       size_t* calls = nullptr) const {
    std::vector<Index::KeyEntry> out;
    Index::Cursor cursor;
    size_t n = 0;
    bool more = true;
    while (more) {
      size_t before = out.size();
      more = index_->Scan(&cursor, start, max_entries, &out);
      ++n;
      if (index_->Ordered()) {
        EXPECT_LE(out.size() - before, max_entries);
      }
      EXPECT_LT(n, 1000000u) << "Scan does not terminate";
      if (n >= 1000000) break;
    }
    if (calls != nullptr) *calls = n;
    return out;
  }

  std::unique_ptr<Index> index_;
};

INSTANTIATE_TEST_SUITE_P(AllKinds, IndexTest,
                         ::testing::Values(IndexKind::kHash, IndexKind::kOrdered), KindName);

TEST_P(IndexTest, OrderedMatchesKind) {
  EXPECT_EQ(index_->Ordered(), GetParam() == IndexKind::kOrdered);
}

TEST_P(IndexTest, EmptyIndex) {
  IndexEntry e;
  EXPECT_FALSE(index_->Get("missing", &e));
  EXPECT_FALSE(index_->Get("", &e));
  EXPECT_FALSE(index_->Remove("missing", &e));
  EXPECT_FALSE(index_->ReplaceIf("missing", Entry(1, 2, 3), Entry(5, 6, 7)));
  EXPECT_FALSE(index_->RemoveIf("missing", Entry(1, 2, 3)));
  EXPECT_EQ(index_->Size(), 0u);
  EXPECT_TRUE(Contents().empty());
  EXPECT_TRUE(ScanAll("", 7).empty());
  index_->FinishRecovery();
  EXPECT_EQ(index_->Size(), 0u);
}

TEST_P(IndexTest, PutGetRemove) {
  IndexEntry old;
  EXPECT_FALSE(index_->Put("a", Entry(1, 32, 20), &old));
  EXPECT_FALSE(index_->Put("b", Entry(1, 52, 21), &old));
  EXPECT_FALSE(index_->Put("", Entry(1, 73, 15), &old));
  EXPECT_EQ(index_->Size(), 3u);

  IndexEntry e;
  ASSERT_TRUE(index_->Get("a", &e));
  EXPECT_ENTRY_EQ(e, Entry(1, 32, 20));
  ASSERT_TRUE(index_->Get("", &e));
  EXPECT_ENTRY_EQ(e, Entry(1, 73, 15));
  EXPECT_FALSE(index_->Get("c", &e));
  EXPECT_FALSE(index_->Get("a ", &e));
  EXPECT_FALSE(index_->Get(std::string_view("a\0", 2), &e));

  // Replacing returns the old entry and keeps the size.
  EXPECT_TRUE(index_->Put("a", Entry(2, 32, 25), &old));
  EXPECT_ENTRY_EQ(old, Entry(1, 32, 20));
  EXPECT_EQ(index_->Size(), 3u);
  ASSERT_TRUE(index_->Get("a", &e));
  EXPECT_ENTRY_EQ(e, Entry(2, 32, 25));
  // Sizes whose encoding is longer or shorter than the old one's.
  EXPECT_TRUE(index_->Put("a", Entry(2, 32, 3u << 30), &old));
  ASSERT_TRUE(index_->Get("a", &e));
  EXPECT_ENTRY_EQ(e, Entry(2, 32, 3u << 30));
  EXPECT_TRUE(index_->Put("a", Entry(2, 32, 25), &old));
  EXPECT_ENTRY_EQ(old, Entry(2, 32, 3u << 30));
  ASSERT_TRUE(index_->Get("a", &e));
  EXPECT_ENTRY_EQ(e, Entry(2, 32, 25));

  EXPECT_TRUE(index_->Remove("a", &old));
  EXPECT_ENTRY_EQ(old, Entry(2, 32, 25));
  EXPECT_FALSE(index_->Get("a", &e));
  EXPECT_FALSE(index_->Remove("a", &old));
  EXPECT_EQ(index_->Size(), 2u);
  ASSERT_TRUE(index_->Get("b", &e));
  EXPECT_ENTRY_EQ(e, Entry(1, 52, 21));

  // Removed keys can come back.
  EXPECT_FALSE(index_->Put("a", Entry(3, 40, 10), &old));
  ASSERT_TRUE(index_->Get("a", &e));
  EXPECT_ENTRY_EQ(e, Entry(3, 40, 10));
  EXPECT_EQ(index_->Size(), 3u);
}

// Segment ids, offsets and sizes at each limit of the hash index's 1- to 4-byte fields, with
// and without the tombstone flag, under keys whose length needs 1 to 3 varint bytes; each entry is
// then overwritten by every other (an item is rewritten in place or moves).
TEST_P(IndexTest, EntryFieldsAtTheirLimits) {
  const std::vector<uint32_t> values = {
      0, 1, 127, 128, 255, 256, 65535, 65536, (1u << 24) - 1, 1u << 24, UINT32_MAX - 1, UINT32_MAX};
  std::vector<IndexEntry> entries;
  for (size_t i = 0; i < values.size(); ++i) {
    // Every value in every field, with varied neighbours.
    uint32_t a = values[i], b = values[(i * 5 + 3) % values.size()];
    uint32_t c = values[(i * 7 + 1) % values.size()];
    uint8_t flags = i % 2 == 0 ? 0 : IndexEntry::kTombstone;
    entries.push_back(Entry(a, b, c, flags));
    entries.push_back(Entry(c, a, b, flags));
    entries.push_back(Entry(b, c, a, static_cast<uint8_t>(flags ^ IndexEntry::kTombstone)));
  }
  const std::vector<size_t> key_lengths = {0, 1, 16, 127, 128, 16383, 16384, 70000};
  std::vector<std::string> keys;
  for (size_t len : key_lengths) {
    for (size_t j = 0; j < 4; ++j) {
      std::string k(len, static_cast<char>('a' + j));
      if (len > 0) k.back() = static_cast<char>(0x80 + j);  // high bytes in the key too
      keys.push_back(len == 0 && j > 0 ? std::string(j, '\xff') : k);
    }
  }
  std::map<std::string, IndexEntry> model;
  IndexEntry old;
  for (size_t i = 0; i < keys.size(); ++i) {
    IndexEntry e = entries[i % entries.size()];
    EXPECT_FALSE(index_->Put(keys[i], e, &old)) << i;
    model[keys[i]] = e;
  }
  auto check = [&] {
    for (const auto& [k, want] : model) {
      IndexEntry got;
      ASSERT_TRUE(index_->Get(k, &got)) << k.size();
      ASSERT_ENTRY_EQ(got, want);
    }
    std::map<std::string, IndexEntry> got = Contents();
    ASSERT_EQ(got.size(), model.size());
    for (const auto& [k, e] : got) ASSERT_ENTRY_EQ(e, model[k]);
  };
  check();
  for (size_t round = 1; round < entries.size(); ++round) {
    for (size_t i = 0; i < keys.size(); ++i) {
      IndexEntry e = entries[(i + round * 7) % entries.size()];
      ASSERT_TRUE(index_->Put(keys[i], e, &old));
      ASSERT_ENTRY_EQ(old, model[keys[i]]);
      model[keys[i]] = e;
    }
    if (round % 5 == 0) check();
  }
  check();
  // The entries that were tombstones go at the end of recovery; the others stay.
  index_->FinishRecovery();
  for (auto it = model.begin(); it != model.end();) {
    it = it->second.tombstone() ? model.erase(it) : std::next(it);
  }
  check();
}

TEST_P(IndexTest, BinaryKeysAreDistinct) {
  std::vector<std::string> keys = {std::string("\0", 1),
                                   std::string("\0\0", 2),
                                   "\xff",
                                   std::string("a\0b", 3),
                                   "a",
                                   "ab",
                                   "\x80"};
  IndexEntry old;
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_FALSE(index_->Put(keys[i], Entry(1, static_cast<uint32_t>(i), 1), &old));
  }
  EXPECT_EQ(index_->Size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    IndexEntry e;
    ASSERT_TRUE(index_->Get(keys[i], &e)) << i;
    EXPECT_EQ(e.offset, i);
  }
}

TEST_P(IndexTest, PutIfNewer) {
  IndexEntry old;
  bool replaced = true;
  // Absent: inserts.
  EXPECT_TRUE(index_->PutIfNewer("k", Entry(1, 100, 10), 10, &old, &replaced));
  EXPECT_FALSE(replaced);
  EXPECT_EQ(index_->Size(), 1u);

  // Lower sequence: no change.
  EXPECT_FALSE(index_->PutIfNewer("k", Entry(2, 200, 20), 9, &old, &replaced));
  EXPECT_FALSE(replaced);
  // Equal sequence: no change.
  EXPECT_FALSE(index_->PutIfNewer("k", Entry(2, 200, 20), 10, &old, &replaced));
  EXPECT_FALSE(replaced);
  IndexEntry e;
  ASSERT_TRUE(index_->Get("k", &e));
  EXPECT_ENTRY_EQ(e, Entry(1, 100, 10));

  // Flags do not count as sequence: a lower seq with the tombstone bit set still loses.
  EXPECT_FALSE(
      index_->PutIfNewer("k", Entry(2, 200, 20, IndexEntry::kTombstone), 5, &old, &replaced));
  ASSERT_TRUE(index_->Get("k", &e));
  EXPECT_ENTRY_EQ(e, Entry(1, 100, 10));

  // Higher sequence: replaces and reports the old entry.
  EXPECT_TRUE(
      index_->PutIfNewer("k", Entry(3, 300, 30, IndexEntry::kTombstone), 11, &old, &replaced));
  EXPECT_TRUE(replaced);
  EXPECT_ENTRY_EQ(old, Entry(1, 100, 10));
  ASSERT_TRUE(index_->Get("k", &e));
  EXPECT_ENTRY_EQ(e, Entry(3, 300, 30, IndexEntry::kTombstone));
  EXPECT_TRUE(e.tombstone());
  EXPECT_EQ(index_->Size(), 1u);

  // A tombstone entry's sequence still guards against older records.
  EXPECT_FALSE(index_->PutIfNewer("k", Entry(4, 400, 40), 10, &old, &replaced));
  ASSERT_TRUE(index_->Get("k", &e));
  EXPECT_TRUE(e.tombstone());
}

// A record as recovery loads it.
struct Rec {
  std::string key;
  IndexEntry entry;
  uint64_t seq;
};

// Checks index against newest (each key's newest record, tombstones included), then again after
// FinishRecovery (which drops the tombstones); returns the number of live keys.
size_t CheckNewestThenFinish(Index* index, const std::map<std::string, Rec>& newest) {
  std::map<std::string, IndexEntry> got;
  index->ForEach([&](std::string_view k, const IndexEntry& e) { got.emplace(std::string(k), e); });
  EXPECT_EQ(index->Size(), newest.size());
  EXPECT_EQ(got.size(), newest.size());
  for (const auto& [k, r] : newest) EXPECT_ENTRY_EQ(got[k], r.entry);
  index->FinishRecovery();
  size_t live = 0;
  for (const auto& [k, r] : newest) {
    IndexEntry e;
    if (r.entry.tombstone()) {
      EXPECT_FALSE(index->Get(k, &e)) << k;
      continue;
    }
    ++live;
    EXPECT_TRUE(index->Get(k, &e)) << k;
    EXPECT_ENTRY_EQ(e, r.entry);
  }
  EXPECT_EQ(index->Size(), live);
  return live;
}

TEST_P(IndexTest, PutIfNewerAppliedInAnyOrderKeepsTheNewest) {
  // Recovery loads segments in any order: the result must not depend on it. Enough keys that
  // every shard's table grows while sequence numbers are kept, sizes of every encoded length,
  // and tombstones that FinishRecovery drops.
  std::mt19937_64 rng(5);
  std::vector<Rec> records;
  std::map<std::string, Rec> newest;
  for (uint64_t seq = 1; seq <= 200000; ++seq) {
    std::string key = "key" + std::to_string(rng() % 50000);
    uint32_t size = static_cast<uint32_t>(rng() >> (rng() % 64)) | 1;
    IndexEntry e = Entry(static_cast<uint32_t>(seq % 17), static_cast<uint32_t>(seq), size,
                         rng() % 5 == 0 ? IndexEntry::kTombstone : 0);
    records.push_back(Rec{key, e, seq});
    newest[key] = records.back();
  }
  std::shuffle(records.begin(), records.end(), rng);
  for (const Rec& r : records) {
    IndexEntry old;
    bool replaced;
    index_->PutIfNewer(r.key, r.entry, r.seq, &old, &replaced);
  }
  size_t live = CheckNewestThenFinish(index_.get(), newest);
  EXPECT_EQ(Contents().size(), live);
  // Ordinary writes go on after recovery.
  IndexEntry old;
  for (int i = 0; i < 60000; ++i) index_->Put("new" + std::to_string(i), Entry(99, i, 7), &old);
  EXPECT_EQ(index_->Size(), live + 60000);
  IndexEntry e;
  ASSERT_TRUE(index_->Get("new59999", &e));
  EXPECT_ENTRY_EQ(e, Entry(99, 59999, 7));
}

// Bytes compare unsigned, in every position (the ordered index compares the first 8 bytes as a
// word), and a key orders before its extensions.
TEST_P(IndexTest, OrderIsBytewiseUnsigned) {
  std::set<std::string> keys;
  for (int pos : {0, 3, 7, 8, 12}) {
    for (int b : {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff}) {
      std::string k(16, 'm');
      k[pos] = static_cast<char>(b);
      keys.insert(k);
      keys.insert(k.substr(0, pos + 1));
    }
  }
  keys.insert("");
  IndexEntry old;
  uint32_t i = 0;
  for (const std::string& k : keys) EXPECT_FALSE(index_->Put(k, Entry(1, i++, 1), &old));
  EXPECT_EQ(index_->Size(), keys.size());
  for (const std::string& k : keys) {
    IndexEntry e;
    EXPECT_TRUE(index_->Get(k, &e));
  }
  if (index_->Ordered()) {
    std::vector<Index::KeyEntry> all = ScanAll("", 5);
    ASSERT_EQ(all.size(), keys.size());
    auto it = keys.begin();
    for (const auto& [k, e] : all) EXPECT_EQ(k, *it++);
  }
}

// Recovery's bulk path (AddRecovered from several loader threads, then BuildRecovered): the
// same result as PutIfNewer in any order. Versions of a key arrive from different threads
// (segments) in any order, tombstones win or lose by sequence, keys short and long.
void CheckBulkRecovery(Index* index, const std::function<std::string(uint64_t)>& key_of) {
  std::mt19937_64 rng(11);
  std::vector<Rec> records;
  std::map<std::string, Rec> newest;
  for (uint64_t seq = 1; seq <= 150000; ++seq) {
    std::string key = key_of(rng() % 40000);
    IndexEntry e =
        Entry(static_cast<uint32_t>(seq % 13), static_cast<uint32_t>(seq),
              static_cast<uint32_t>(rng() % 1000) + 1, rng() % 5 == 0 ? IndexEntry::kTombstone : 0);
    records.push_back(Rec{key, e, seq});
    newest[key] = records.back();
  }
  std::shuffle(records.begin(), records.end(), rng);
  constexpr int kLoaders = 4;
  std::vector<std::thread> loaders;
  for (int t = 0; t < kLoaders; ++t) {
    loaders.emplace_back([&, t] {
      std::vector<Index::RecoveredEntry> batch;
      for (size_t i = t; i < records.size(); i += kLoaders) {
        batch.push_back(Index::RecoveredEntry{records[i].key, records[i].entry, records[i].seq});
        if (batch.size() == 61) {
          index->AddRecovered(batch.data(), batch.size());
          batch.clear();
        }
      }
      index->AddRecovered(batch.data(), batch.size());
    });
  }
  for (auto& t : loaders) t.join();
  index->BuildRecovered();
  // Tombstones stay until FinishRecovery (recovery looks for the ones tables need).
  if (index->Ordered()) {
    std::vector<Index::KeyEntry> all;
    Index::Cursor cursor;
    while (index->Scan(&cursor, "", 1000, &all)) {
    }
    ASSERT_EQ(all.size(), newest.size());
    auto it = newest.begin();
    for (const auto& [k, e] : all) ASSERT_EQ(k, (it++)->first);
  }
  CheckNewestThenFinish(index, newest);
  // The built index takes ordinary writes.
  IndexEntry old;
  for (int i = 0; i < 20000; ++i) index->Put("new" + std::to_string(i), Entry(99, i, 7), &old);
  for (const auto& [k, r] : newest) {
    if (!r.entry.tombstone()) {
      ASSERT_TRUE(index->Remove(k, &old)) << k;
    }
  }
  EXPECT_EQ(index->Size(), 20000u);
  IndexEntry e;
  ASSERT_TRUE(index->Get("new19999", &e));
  EXPECT_ENTRY_EQ(e, Entry(99, 19999, 7));
}

TEST_P(IndexTest, BulkRecoveryKeepsTheNewestAcrossLoaders) {
  // Keys that share their first bytes, some long.
  CheckBulkRecovery(index_.get(), [](uint64_t k) {
    return (k % 7 == 0 ? std::string(40, 'L') : std::string()) + "key" + std::to_string(k);
  });
}

TEST_P(IndexTest, BulkRecoveryOfVariedKeys) {
  // Keys that differ early (spread over the ordered index's sort buckets), short ones, one empty.
  CheckBulkRecovery(index_.get(), [](uint64_t k) {
    if (k == 0) return std::string();
    if (k < 300) return std::string(1 + k % 3, static_cast<char>(k));
    char buf[24];
    std::snprintf(buf, sizeof(buf), "%016llx",
                  static_cast<unsigned long long>(k * 0x9E3779B97F4A7C15ull));
    return std::string(buf, k % 2 == 0 ? 16 : 9);
  });
}

// Entries buffered for a bulk build merge with what PutIfNewer already put in, by sequence.
TEST_P(IndexTest, BulkRecoveryMergesWithPutIfNewer) {
  IndexEntry old;
  bool replaced;
  ASSERT_TRUE(index_->PutIfNewer("a", Entry(1, 10, 5), 10, &old, &replaced));
  ASSERT_TRUE(index_->PutIfNewer("b", Entry(1, 20, 5), 20, &old, &replaced));
  ASSERT_TRUE(index_->PutIfNewer("c", Entry(1, 30, 5), 30, &old, &replaced));
  std::vector<Index::RecoveredEntry> batch = {
      {"a", Entry(2, 11, 6), 11},                          // newer: wins
      {"b", Entry(2, 19, 6), 19},                          // older: loses
      {"c", Entry(2, 31, 6, IndexEntry::kTombstone), 31},  // a newer delete
      {"d", Entry(2, 40, 6), 40},
      {"d", Entry(2, 41, 6), 39},  // an older version of a new key
  };
  index_->AddRecovered(batch.data(), batch.size());
  index_->BuildRecovered();
  std::map<std::string, IndexEntry> got = Contents();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_ENTRY_EQ(got["a"], Entry(2, 11, 6));
  EXPECT_ENTRY_EQ(got["b"], Entry(1, 20, 5));
  EXPECT_TRUE(got["c"].tombstone());
  EXPECT_ENTRY_EQ(got["d"], Entry(2, 40, 6));
  index_->FinishRecovery();
  EXPECT_EQ(index_->Size(), 3u);
  IndexEntry e;
  EXPECT_FALSE(index_->Get("c", &e));
}

// FinishRecovery builds what was buffered, even without BuildRecovered; an empty build is fine.
TEST_P(IndexTest, FinishRecoveryBuildsBufferedEntries) {
  index_->BuildRecovered();
  EXPECT_EQ(index_->Size(), 0u);
  std::vector<Index::RecoveredEntry> batch = {{"x", Entry(1, 1, 1), 1},
                                              {"y", Entry(1, 2, 1, IndexEntry::kTombstone), 2}};
  index_->Reserve(2);
  index_->AddRecovered(batch.data(), batch.size());
  index_->FinishRecovery();
  EXPECT_EQ(index_->Size(), 1u);
  IndexEntry e;
  ASSERT_TRUE(index_->Get("x", &e));
  EXPECT_ENTRY_EQ(e, Entry(1, 1, 1));
}

TEST_P(IndexTest, ReplaceIfOnlyWhenLocationMatches) {
  IndexEntry old;
  index_->Put("k", Entry(1, 100, 10), &old);
  // Different segment or offset: no change. (Size and seq do not take part in the match.)
  EXPECT_FALSE(index_->ReplaceIf("k", Entry(2, 100, 10), Entry(9, 9, 9)));
  EXPECT_FALSE(index_->ReplaceIf("k", Entry(1, 101, 10), Entry(9, 9, 9)));
  EXPECT_FALSE(index_->ReplaceIf("other", Entry(1, 100, 10), Entry(9, 9, 9)));
  IndexEntry e;
  ASSERT_TRUE(index_->Get("k", &e));
  EXPECT_ENTRY_EQ(e, Entry(1, 100, 10));
  EXPECT_FALSE(index_->Get("other", &e));

  EXPECT_TRUE(index_->ReplaceIf("k", Entry(1, 100, 999), Entry(7, 32, 10)));
  ASSERT_TRUE(index_->Get("k", &e));
  EXPECT_ENTRY_EQ(e, Entry(7, 32, 10));
  EXPECT_EQ(index_->Size(), 1u);
  // The old location no longer matches.
  EXPECT_FALSE(index_->ReplaceIf("k", Entry(1, 100, 10), Entry(8, 8, 8)));
  ASSERT_TRUE(index_->Get("k", &e));
  EXPECT_ENTRY_EQ(e, Entry(7, 32, 10));
}

TEST_P(IndexTest, RemoveIfOnlyWhenLocationMatches) {
  IndexEntry old;
  index_->Put("k", Entry(1, 100, 10), &old);
  index_->Put("j", Entry(1, 200, 10), &old);
  EXPECT_FALSE(index_->RemoveIf("k", Entry(2, 100, 10)));
  EXPECT_FALSE(index_->RemoveIf("k", Entry(1, 200, 10)));
  EXPECT_FALSE(index_->RemoveIf("missing", Entry(1, 100, 10)));
  EXPECT_EQ(index_->Size(), 2u);
  IndexEntry e;
  EXPECT_TRUE(index_->Get("k", &e));

  EXPECT_TRUE(index_->RemoveIf("k", Entry(1, 100, 0)));
  EXPECT_FALSE(index_->Get("k", &e));
  EXPECT_EQ(index_->Size(), 1u);
  EXPECT_FALSE(index_->RemoveIf("k", Entry(1, 100, 10)));
  EXPECT_TRUE(index_->Get("j", &e));
}

TEST_P(IndexTest, FinishRecoveryDropsTombstones) {
  IndexEntry old;
  std::map<std::string, IndexEntry> expected;
  for (uint32_t i = 0; i < 5000; ++i) {
    std::string key = "key-" + std::to_string(i);
    bool tombstone = i % 3 == 0;
    IndexEntry e = Entry(1, i, 10, tombstone ? IndexEntry::kTombstone : 0);
    bool replaced;
    ASSERT_TRUE(index_->PutIfNewer(key, e, i + 1, &old, &replaced));
    if (!tombstone) expected[key] = e;
  }
  EXPECT_EQ(index_->Size(), 5000u);
  index_->FinishRecovery();
  EXPECT_EQ(index_->Size(), expected.size());
  std::map<std::string, IndexEntry> got = Contents();
  ASSERT_EQ(got.size(), expected.size());
  for (const auto& [k, e] : expected) {
    ASSERT_TRUE(got.count(k)) << k;
    EXPECT_ENTRY_EQ(got[k], e);
    IndexEntry g;
    ASSERT_TRUE(index_->Get(k, &g)) << k;
  }
  for (uint32_t i = 0; i < 5000; i += 3) {
    IndexEntry g;
    EXPECT_FALSE(index_->Get("key-" + std::to_string(i), &g)) << i;
  }
  // A second pass finds nothing more to drop.
  index_->FinishRecovery();
  EXPECT_EQ(index_->Size(), expected.size());
}

TEST_P(IndexTest, DropAllTombstones) {
  IndexEntry old;
  for (uint32_t i = 0; i < 3000; ++i) {
    index_->Put("t" + std::to_string(i), Entry(1, i, 1, IndexEntry::kTombstone), &old);
  }
  index_->FinishRecovery();
  EXPECT_EQ(index_->Size(), 0u);
  EXPECT_TRUE(Contents().empty());
  EXPECT_TRUE(ScanAll("", 7).empty());
}

TEST_P(IndexTest, ScanVisitsEveryKeyExactlyOnce) {
  IndexEntry old;
  std::map<std::string, IndexEntry> expected;
  for (uint32_t i = 0; i < 3000; ++i) {
    std::string key = "k" + std::to_string(i * 7919 % 3001);
    IndexEntry e = Entry(i % 5, i, 10);
    index_->Put(key, e, &old);
    expected[key] = e;
  }
  for (size_t max_entries : {size_t{1}, size_t{7}, size_t{1000}, size_t{100000}}) {
    SCOPED_TRACE(max_entries);
    size_t calls = 0;
    std::vector<Index::KeyEntry> all = ScanAll("", max_entries, &calls);
    std::map<std::string, IndexEntry> seen;
    for (const auto& [k, e] : all) {
      EXPECT_TRUE(seen.emplace(k, e).second) << "key " << k << " scanned twice";
    }
    EXPECT_EQ(all.size(), expected.size());
    ASSERT_EQ(seen.size(), expected.size());
    for (const auto& [k, e] : expected) EXPECT_ENTRY_EQ(seen[k], e);
    if (max_entries == 7) {
      EXPECT_GT(calls, 1u) << "small chunks must take several calls";
    }
    if (index_->Ordered()) {
      EXPECT_TRUE(std::is_sorted(all.begin(), all.end(),
                                 [](const auto& a, const auto& b) { return a.first < b.first; }));
    }
  }
}

TEST_P(IndexTest, ScanHonorsStartWhenOrdered) {
  IndexEntry old;
  std::set<std::string> keys;
  for (int i = 0; i < 500; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "key%04d", i);
    keys.insert(buf);
    index_->Put(buf, Entry(1, static_cast<uint32_t>(i), 1), &old);
  }
  for (std::string start : {"", "key0000", "key0250", "key0250x", "key0499", "key05", "a", "z"}) {
    SCOPED_TRACE("start '" + start + "'");
    std::vector<Index::KeyEntry> got = ScanAll(start, 7);
    std::vector<std::string> got_keys;
    for (const auto& [k, e] : got) got_keys.push_back(k);
    if (index_->Ordered()) {
      // Exactly the keys >= start, in order.
      std::vector<std::string> want(keys.lower_bound(start), keys.end());
      EXPECT_EQ(got_keys, want);
    } else {
      // The hash index ignores start: every key, in some order.
      std::sort(got_keys.begin(), got_keys.end());
      EXPECT_EQ(got_keys, std::vector<std::string>(keys.begin(), keys.end()));
    }
  }
}

TEST_P(IndexTest, ScanToleratesWritesBetweenChunks) {
  // Keys present for the whole scan are returned exactly once even if others change meanwhile.
  IndexEntry old;
  for (int i = 0; i < 2000; ++i) {
    index_->Put("stable" + std::to_string(i), Entry(1, static_cast<uint32_t>(i), 1), &old);
  }
  Index::Cursor cursor;
  std::vector<Index::KeyEntry> out;
  std::map<std::string, int> seen;
  int round = 0;
  bool more = true;
  while (more) {
    more = index_->Scan(&cursor, "", 7, &out);
    for (int j = 0; j < 5; ++j) {
      index_->Put("churn" + std::to_string(round * 5 + j), Entry(2, 0, 1), &old);
      index_->Remove("churn" + std::to_string(round * 5 + j - 3), &old);
    }
    ++round;
  }
  for (const auto& [k, e] : out) ++seen[k];
  for (int i = 0; i < 2000; ++i) {
    EXPECT_EQ(seen["stable" + std::to_string(i)], 1) << i;
  }
  for (const auto& [k, n] : seen) EXPECT_EQ(n, 1) << k;
}

TEST_P(IndexTest, ForEachVisitsEveryEntry) {
  IndexEntry old;
  std::map<std::string, IndexEntry> expected;
  for (uint32_t i = 0; i < 1000; ++i) {
    std::string key(i % 50 + 1, static_cast<char>('a' + i % 26));
    key += std::to_string(i);
    expected[key] = Entry(i, i * 2, i * 3);
    index_->Put(key, expected[key], &old);
  }
  std::map<std::string, IndexEntry> got = Contents();
  ASSERT_EQ(got.size(), expected.size());
  for (const auto& [k, e] : expected) EXPECT_ENTRY_EQ(got[k], e);
  if (index_->Ordered()) {
    std::vector<std::string> order;
    index_->ForEach([&](std::string_view k, const IndexEntry&) { order.emplace_back(k); });
    EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  }
}

TEST_P(IndexTest, MemoryBytesGrowsWithKeys) {
  IndexEntry old;
  uint64_t m0 = index_->MemoryBytes();
  for (int i = 0; i < 10000; ++i) index_->Put("key-" + std::to_string(i), Entry(1, 1, 1), &old);
  uint64_t m1 = index_->MemoryBytes();
  EXPECT_GT(m1, m0);
  // At least the key bytes are accounted for.
  EXPECT_GE(m1 - m0, 10000u * 8);
  for (int i = 10000; i < 50000; ++i) {
    index_->Put("key-" + std::to_string(i), Entry(1, 1, 1), &old);
  }
  uint64_t m2 = index_->MemoryBytes();
  EXPECT_GT(m2, m1);
  // Long keys are accounted for (at least half of their bytes, whatever the chunking).
  for (int i = 0; i < 10000; ++i) {
    index_->Put(std::string(1000, 'L') + std::to_string(i), Entry(1, 1, 1), &old);
  }
  EXPECT_GE(index_->MemoryBytes(), m2 + 10000u * 1000 / 2);
}

TEST_P(IndexTest, MemoryIsReclaimedAfterMassDelete) {
  // Removing most long keys frees their memory (for the hash index: the arena is compacted).
  IndexEntry old;
  for (int i = 0; i < 20000; ++i) {
    index_->Put(std::to_string(i) + std::string(2048, 'x'), Entry(1, i + 1, 1), &old);
  }
  uint64_t full = index_->MemoryBytes();
  EXPECT_GE(full, 20000u * 2048);
  for (int i = 0; i < 20000; ++i) {
    if (i % 20 != 0) {
      ASSERT_TRUE(index_->Remove(std::to_string(i) + std::string(2048, 'x'), &old));
    }
  }
  EXPECT_EQ(index_->Size(), 1000u);
  EXPECT_LT(index_->MemoryBytes(), full / 2);
  // The survivors are intact after the arena moved them.
  for (int i = 0; i < 20000; i += 20) {
    IndexEntry e;
    ASSERT_TRUE(index_->Get(std::to_string(i) + std::string(2048, 'x'), &e)) << i;
    EXPECT_EQ(e.offset, static_cast<uint32_t>(i + 1));
  }
}

TEST_P(IndexTest, HugeKeys) {
  // Keys larger than the hash index's 1 MiB arena chunks take their own allocation.
  IndexEntry old;
  std::vector<std::string> keys;
  for (int i = 0; i < 4; ++i) {
    keys.push_back(std::string((1 << 20) + 1000 * i + 1, static_cast<char>('A' + i)));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_FALSE(index_->Put(keys[i], Entry(1, static_cast<uint32_t>(i), 1), &old));
    EXPECT_FALSE(index_->Put("small" + std::to_string(i), Entry(2, 0, 1), &old));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    IndexEntry e;
    ASSERT_TRUE(index_->Get(keys[i], &e)) << i;
    EXPECT_EQ(e.offset, i);
    std::string almost = keys[i];
    almost.back() = 'z';
    EXPECT_FALSE(index_->Get(almost, &e));
  }
  EXPECT_TRUE(index_->Remove(keys[1], &old));
  std::map<std::string, IndexEntry> got = Contents();
  EXPECT_EQ(got.size(), 7u);
  EXPECT_TRUE(got.count(keys[0]) && got.count(keys[2]) && got.count(keys[3]));
  EXPECT_FALSE(got.count(keys[1]));
}

// Keys between the hash arena's first chunk size (4 KiB) and its 1 MiB chunk limit.
// These are legal keys: format::kMaxKeyBytes is 64 MiB.
TEST_P(IndexTest, MediumKeys) {
  IndexEntry old;
  std::vector<std::string> keys;
  for (size_t len : {size_t{5000}, size_t{9000}, size_t{70000}, size_t{300000}, size_t{1000000}}) {
    for (int i = 0; i < 3; ++i) keys.push_back(std::string(len, static_cast<char>('a' + i)));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    index_->Put(keys[i], Entry(1, static_cast<uint32_t>(i), 1), &old);
    // Interleave small keys so that later arena chunks get used.
    for (int j = 0; j < 50; ++j) {
      index_->Put("s" + std::to_string(i) + "-" + std::to_string(j), Entry(3, 3, 3), &old);
    }
  }
  EXPECT_EQ(index_->Size(), keys.size() + keys.size() * 50);
  for (size_t i = 0; i < keys.size(); ++i) {
    IndexEntry e;
    ASSERT_TRUE(index_->Get(keys[i], &e)) << "key " << i << " of " << keys[i].size() << " bytes";
    EXPECT_EQ(e.offset, i);
  }
  std::map<std::string, IndexEntry> got = Contents();
  for (const std::string& k : keys) EXPECT_TRUE(got.count(k)) << k.size();
}

// ---------------------------------------------------------------------------------------------
// A long random run against std::unordered_map as the model.

class Model {
 public:
  explicit Model(Index* index) : index_(index) {}

  void Check(const std::string& key) {
    IndexEntry got;
    auto it = map_.find(key);
    bool found = index_->Get(key, &got);
    ASSERT_EQ(found, it != map_.end()) << "key of " << key.size() << " bytes";
    if (found) {
      ASSERT_ENTRY_EQ(got, it->second);
    }
  }

  void CheckAll() {
    ASSERT_EQ(index_->Size(), map_.size());
    size_t visited = 0;
    index_->ForEach([&](std::string_view k, const IndexEntry& e) {
      ++visited;
      auto it = map_.find(std::string(k));
      ASSERT_TRUE(it != map_.end()) << "stray key of " << k.size() << " bytes";
      ASSERT_ENTRY_EQ(e, it->second);
    });
    ASSERT_EQ(visited, map_.size());
  }

  std::unordered_map<std::string, IndexEntry> map_;
  Index* index_;
};

TEST_P(IndexTest, RandomOperationsMatchModel) {
  std::mt19937_64 rng(20240601 + static_cast<int>(GetParam()));
  Model model(index_.get());
  auto& map = model.map_;
  uint64_t peak_memory = 0;

  // Key space: mostly short keys (enough of them to grow every shard's table several times),
  // some 2 KiB keys, and a few over 1 MiB (the hash arena's large-item path).
  const std::string long_pad(2048, 'L');
  std::vector<std::string> huge;
  for (int i = 0; i < 3; ++i) {
    huge.push_back(std::string((1 << 20) + 17 + i, static_cast<char>('H' + i)));
  }
  auto pick_key = [&](int phase) -> std::string {
    uint64_t r = rng() % 1000;
    if (r < 3 && phase != 0) return huge[rng() % huge.size()];
    if (r < 120) return std::to_string(rng() % 8000) + long_pad;
    return "k" + std::to_string(rng() % 40000);
  };
  // Sizes of every encoded length, so that items move when an entry is replaced.
  auto random_entry = [&]() {
    uint32_t size = static_cast<uint32_t>(rng() >> (rng() % 64)) | 1;
    return Entry(static_cast<uint32_t>(rng() % 100), static_cast<uint32_t>(rng()), size);
  };

  constexpr int kOps = 200000;
  for (int op = 0; op < kOps; ++op) {
    // Phase 0 mostly inserts, phase 1 mixes, phase 2 mostly deletes (so arenas compact).
    int phase = op < kOps / 3 ? 0 : op < 2 * kOps / 3 ? 1 : 2;
    std::string key = pick_key(phase);
    auto it = map.find(key);
    bool present = it != map.end();
    uint64_t r = rng() % 100;
    int put_weight = phase == 0 ? 75 : phase == 1 ? 40 : 10;
    IndexEntry old;
    if (r < static_cast<uint64_t>(put_weight)) {
      IndexEntry e = random_entry();
      bool had = index_->Put(key, e, &old);
      ASSERT_EQ(had, present) << "op " << op;
      if (present) {
        ASSERT_ENTRY_EQ(old, it->second);
      }
      map[key] = e;
    } else if (r < static_cast<uint64_t>(put_weight) + 10) {
      // ReplaceIf with the right location half of the time.
      IndexEntry expected = present && rng() % 2 ? it->second : random_entry();
      IndexEntry e = random_entry();
      bool ok = index_->ReplaceIf(key, expected, e);
      bool want = present && it->second.SameLocation(expected);
      ASSERT_EQ(ok, want) << "op " << op;
      if (want) it->second = e;
    } else if (r < static_cast<uint64_t>(put_weight) + 15) {
      IndexEntry expected = present && rng() % 2 ? it->second : random_entry();
      bool ok = index_->RemoveIf(key, expected);
      bool want = present && it->second.SameLocation(expected);
      ASSERT_EQ(ok, want) << "op " << op;
      if (want) map.erase(it);
    } else if (r < static_cast<uint64_t>(put_weight) + 20) {
      ASSERT_NO_FATAL_FAILURE(model.Check(key)) << "op " << op;
    } else {
      bool had = index_->Remove(key, &old);
      ASSERT_EQ(had, present) << "op " << op;
      if (present) {
        ASSERT_ENTRY_EQ(old, it->second);
        map.erase(it);
      }
    }
    if (op % 20000 == 19999) {
      ASSERT_NO_FATAL_FAILURE(model.CheckAll()) << "after op " << op;
      peak_memory = std::max(peak_memory, index_->MemoryBytes());
    }
  }
  ASSERT_NO_FATAL_FAILURE(model.CheckAll());
  for (const auto& [k, e] : map) ASSERT_NO_FATAL_FAILURE(model.Check(k));
  // Scan agrees too.
  std::vector<Index::KeyEntry> all = ScanAll("", 7);
  ASSERT_EQ(all.size(), map.size());
  for (const auto& [k, e] : all) {
    auto it = map.find(k);
    ASSERT_TRUE(it != map.end());
    ASSERT_ENTRY_EQ(e, it->second);
  }
  // Then delete everything.
  std::vector<std::string> keys;
  for (const auto& [k, e] : map) keys.push_back(k);
  for (const std::string& k : keys) {
    IndexEntry old;
    ASSERT_TRUE(index_->Remove(k, &old));
  }
  EXPECT_EQ(index_->Size(), 0u);
  EXPECT_TRUE(Contents().empty());
  // Emptied, the index holds less than at its peak (dead keys are not kept forever).
  EXPECT_LT(index_->MemoryBytes(), peak_memory);
}

// ---------------------------------------------------------------------------------------------
// Concurrency: writers on disjoint key ranges, readers checking what they see.

TEST_P(IndexTest, ConcurrentWritersAndReaders) {
  constexpr int kWriters = 4;
  constexpr int kKeysPerWriter = 20000;
  constexpr int kRounds = 3;
  auto key_of = [](int writer, int i) {
    return "w" + std::to_string(writer) + "-" + std::to_string(i) +
           (i % 97 == 0 ? std::string(600, 'p') : std::string());
  };
  // An entry says who wrote it and for which key: readers can check what they see.
  auto entry_of = [](int writer, int i, int round) {
    return Entry(static_cast<uint32_t>(writer), static_cast<uint32_t>(i),
                 static_cast<uint32_t>(round * 1000000 + i + 1));
  };
  std::atomic<bool> stop{false};
  std::atomic<int> bad_reads{0};
  std::atomic<uint64_t> reads{0};

  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      IndexEntry old;
      for (int round = 0; round < kRounds; ++round) {
        for (int i = 0; i < kKeysPerWriter; ++i) {
          index_->Put(key_of(w, i), entry_of(w, i, round), &old);
        }
        // Remove every third key, then put some of them back.
        for (int i = 0; i < kKeysPerWriter; i += 3) index_->Remove(key_of(w, i), &old);
        for (int i = 0; i < kKeysPerWriter; i += 6) {
          index_->Put(key_of(w, i), entry_of(w, i, round), &old);
        }
      }
    });
  }
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937 rng(r);
      while (!stop.load()) {
        int w = static_cast<int>(rng() % kWriters);
        int i = static_cast<int>(rng() % kKeysPerWriter);
        IndexEntry e;
        if (index_->Get(key_of(w, i), &e)) {
          if (e.segment != static_cast<uint32_t>(w) || e.offset != static_cast<uint32_t>(i) ||
              e.size % 1000000 != static_cast<uint32_t>(i + 1)) {
            bad_reads.fetch_add(1);
          }
        }
        // Pause now and then: the ordered index's reader-writer lock prefers readers, and two
        // readers that never pause can starve the writers for many seconds.
        uint64_t n = reads.fetch_add(1);
        if (n % 256 == 255) std::this_thread::sleep_for(std::chrono::microseconds(200));
        if (n % 20000 == 0) {
          // A full scan, concurrent with the writers: every entry must be well-formed.
          std::vector<Index::KeyEntry> chunk;
          Index::Cursor cursor;
          bool more = true;
          while (more) {
            more = index_->Scan(&cursor, "", 64, &chunk);
            for (const auto& [k, e] : chunk) {
              if (k != key_of(static_cast<int>(e.segment), static_cast<int>(e.offset))) {
                bad_reads.fetch_add(1);
              }
            }
            chunk.clear();
          }
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad_reads.load(), 0);
  EXPECT_GT(reads.load(), 0u);

  // Final contents: keys not divisible by 3 hold the last round; multiples of 6 were put back.
  std::map<std::string, IndexEntry> want;
  for (int w = 0; w < kWriters; ++w) {
    for (int i = 0; i < kKeysPerWriter; ++i) {
      if (i % 3 != 0 || i % 6 == 0) want[key_of(w, i)] = entry_of(w, i, kRounds - 1);
    }
  }
  EXPECT_EQ(index_->Size(), want.size());
  std::map<std::string, IndexEntry> got = Contents();
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [k, e] : want) {
    auto it = got.find(k);
    ASSERT_TRUE(it != got.end()) << k.substr(0, 20);
    ASSERT_ENTRY_EQ(it->second, e);
  }
}

// The hash index's checkpoint parts (index_checkpoint.cc writes and reads them): saved, loaded
// into a fresh index, then written to further.
std::vector<std::string> SaveParts(const Index& index) {
  std::vector<std::string> parts;
  for (uint32_t p = 0; p < index.CheckpointParts(); ++p) {
    std::string bytes;
    EXPECT_TRUE(index
                    .SaveCheckpointPart(p,
                                        [&](std::string_view d) {
                                          bytes.append(d);
                                          return Status::Ok();
                                        })
                    .ok());
    EXPECT_EQ(bytes.size(), index.CheckpointPartBytes(p));
    parts.push_back(std::move(bytes));
  }
  return parts;
}

Status LoadPart(Index* index, uint32_t p, const std::string& bytes) {
  size_t pos = 0;
  return index->LoadCheckpointPart(p, bytes.size(), [&](char* dst, size_t n) {
    if (n > bytes.size() - pos) return Status::Corruption("past the part");
    std::memcpy(dst, bytes.data() + pos, n);
    pos += n;
    return Status::Ok();
  });
}

// Parts load into one shared block (StartCheckpointLoad, as index_checkpoint.cc does) or each
// into its own allocations.
class HashIndexCheckpointTest : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Blocks, HashIndexCheckpointTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "OneBlock" : "PerShard";
                         });

TEST_P(HashIndexCheckpointTest, PartsRoundTrip) {
  std::unique_ptr<Index> index = Index::Create(IndexKind::kHash);
  ASSERT_NE(index->CheckpointLayout(), 0u);
  std::map<std::string, IndexEntry> model;
  IndexEntry old;
  std::mt19937 rng(7);
  auto put = [&](Index* ix, const std::string& k) {
    // Fields of every width.
    uint32_t seg = rng() >> (8 * (rng() % 4)), off = rng() >> (8 * (rng() % 4));
    IndexEntry e = Entry(seg, off, rng() >> (8 * (rng() % 4)));
    ix->Put(k, e, &old);
    model[k] = e;
  };
  for (int i = 0; i < 20000; ++i) put(index.get(), "key-" + std::to_string(i));
  put(index.get(), std::string((1 << 20) + 5, 'H'));  // an item with a chunk of its own
  put(index.get(), std::string(300, 'L'));
  for (int i = 0; i < 20000; i += 3) {
    ASSERT_TRUE(index->Remove("key-" + std::to_string(i), &old));
    model.erase("key-" + std::to_string(i));
  }
  index->PrepareCheckpoint();
  std::vector<std::string> parts = SaveParts(*index);

  std::unique_ptr<Index> loaded = Index::Create(IndexKind::kHash);
  ASSERT_EQ(loaded->CheckpointLayout(), index->CheckpointLayout());
  if (GetParam()) {
    uint64_t total = 0;
    for (const std::string& part : parts) total += part.size();
    // Over the size (4 MiB) from which the block is a mapping of its own with huge pages.
    loaded->StartCheckpointLoad(total + (8 << 20));
  }
  for (uint32_t p = 0; p < parts.size(); ++p) {
    Status st = LoadPart(loaded.get(), p, parts[p]);
    ASSERT_TRUE(st.ok()) << p << ": " << st.ToString();
  }
  auto check = [&](const Index& ix) {
    ASSERT_EQ(ix.Size(), model.size());
    for (const auto& [k, want] : model) {
      IndexEntry got;
      ASSERT_TRUE(ix.Get(k, &got)) << k.substr(0, 20);
      ASSERT_ENTRY_EQ(got, want);
    }
    size_t n = 0;
    ix.ForEach([&](std::string_view k, const IndexEntry& e) {
      ++n;
      auto it = model.find(std::string(k));
      ASSERT_TRUE(it != model.end());
      ASSERT_ENTRY_EQ(e, it->second);
    });
    EXPECT_EQ(n, model.size());
  };
  check(*loaded);
  // Saving the loaded index gives the same items again.
  loaded->PrepareCheckpoint();
  std::vector<std::string> again = SaveParts(*loaded);
  ASSERT_EQ(again.size(), parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    // The same table and items; only the chunks' room differs (a loaded chunk is full).
    ASSERT_EQ(again[p].size(), parts[p].size()) << p;
    size_t table = 40 + 8 * size_t{DecodeFixed32(parts[p].data() + 32)};
    EXPECT_EQ(again[p].substr(table), parts[p].substr(table)) << p;
  }
  // Writes after the load: new keys in new chunks, loaded items overwritten and removed.
  for (int i = 20000; i < 30000; ++i) put(loaded.get(), "key-" + std::to_string(i));
  for (int i = 1; i < 20000; i += 3) put(loaded.get(), "key-" + std::to_string(i));
  for (int i = 2; i < 20000; i += 6) {
    ASSERT_TRUE(loaded->Remove("key-" + std::to_string(i), &old));
    model.erase("key-" + std::to_string(i));
  }
  check(*loaded);
}

TEST(HashIndexCheckpointPartTest, DamagedPartIsRefusedAndLeftEmpty) {
  std::unique_ptr<Index> index = Index::Create(IndexKind::kHash);
  IndexEntry old;
  for (int i = 0; i < 5000; ++i) {
    index->Put("key-" + std::to_string(i), Entry(1, static_cast<uint32_t>(i), 100), &old);
  }
  index->PrepareCheckpoint();
  std::vector<std::string> parts = SaveParts(*index);
  uint32_t p = 0;
  while (parts[p].size() <= 40) ++p;  // a part with items
  for (size_t cut : {size_t{0}, size_t{39}, parts[p].size() - 1}) {
    std::unique_ptr<Index> loaded = Index::Create(IndexKind::kHash);
    EXPECT_FALSE(LoadPart(loaded.get(), p, parts[p].substr(0, cut)).ok()) << cut;
    EXPECT_EQ(loaded->Size(), 0u);
  }
  // A reference past its chunk's used bytes.
  std::string bad = parts[p];
  uint64_t groups = DecodeFixed64(bad.data());
  size_t table = 40 + 8 * size_t{DecodeFixed32(bad.data() + 32)};
  for (uint64_t g = 0; g < groups; ++g) {
    for (int slot = 0; slot < 12; ++slot) {
      if (static_cast<unsigned char>(bad[table + 64 * g + slot]) < 0x80) {
        uint32_t huge = 0x00ffff00u;
        std::memcpy(&bad[table + 64 * g + 16 + 4 * slot], &huge, 4);
        g = groups;
        break;
      }
    }
  }
  std::unique_ptr<Index> loaded = Index::Create(IndexKind::kHash);
  EXPECT_FALSE(LoadPart(loaded.get(), p, bad).ok());
  EXPECT_EQ(loaded->Size(), 0u);
  // The good bytes still load into it.
  EXPECT_TRUE(LoadPart(loaded.get(), p, parts[p]).ok());
  EXPECT_EQ(loaded->Size(), DecodeFixed64(parts[p].data() + 8));
}

// An index past 32 MiB of items (HugeHeap::kStartBytes) moves its tables and arena chunks to
// huge-page regions shared by the shards: items stay reachable through the move, overwrites that
// move items, removals (arena rewrites), growth, a checkpoint and its load; and rounds of filling
// and emptying it reuse the regions instead of adding to them.
TEST(HashIndexHugeRegionsTest, LargeIndexBuiltByPuts) {
  std::unique_ptr<Index> index = Index::Create(IndexKind::kHash);
  std::map<std::string, IndexEntry> model;
  IndexEntry old;
  const std::string pad(1000, 'p');
  auto key = [&](int round, int i) {
    return std::to_string(round) + "-" + std::to_string(i) + pad;
  };
  auto put = [&](const std::string& k, IndexEntry e) {
    index->Put(k, e, &old);
    model[k] = e;
  };
  auto check = [&](const Index& ix, const std::map<std::string, IndexEntry>& m) {
    ASSERT_EQ(ix.Size(), m.size());
    for (const auto& [k, want] : m) {
      IndexEntry got;
      ASSERT_TRUE(ix.Get(k, &got)) << k.substr(0, 12);
      ASSERT_ENTRY_EQ(got, want);
    }
  };
  constexpr int kKeys = 40000;  // ~40 MiB of items
  for (int i = 0; i < kKeys; ++i) put(key(0, i), Entry(1, static_cast<uint32_t>(i), 100));
  ASSERT_NO_FATAL_FAILURE(check(*index, model));
  // Wider fields: the items move to new arena space.
  for (int i = 0; i < kKeys; i += 3) put(key(0, i), Entry(70000, 0xfffffff0u, 1u << 30));
  for (int i = 1; i < kKeys; i += 3) {
    ASSERT_TRUE(index->Remove(key(0, i), &old));
    model.erase(key(0, i));
  }
  ASSERT_NO_FATAL_FAILURE(check(*index, model));

  index->PrepareCheckpoint();
  std::vector<std::string> parts = SaveParts(*index);
  for (bool one_block : {false, true}) {
    std::unique_ptr<Index> loaded = Index::Create(IndexKind::kHash);
    if (one_block) {
      uint64_t total = 0;
      for (const std::string& part : parts) total += part.size();
      loaded->StartCheckpointLoad(total);
    }
    for (uint32_t p = 0; p < parts.size(); ++p) {
      Status st = LoadPart(loaded.get(), p, parts[p]);
      ASSERT_TRUE(st.ok()) << p << ": " << st.ToString();
    }
    ASSERT_NO_FATAL_FAILURE(check(*loaded, model));
    // New keys after the load, past the threshold again; then this index saved and loaded.
    std::map<std::string, IndexEntry> loaded_model = model;
    for (int i = 0; i < kKeys * 3 / 4; ++i) {
      loaded->Put(key(9, i), Entry(2, static_cast<uint32_t>(i), 7), &old);
      loaded_model[key(9, i)] = Entry(2, static_cast<uint32_t>(i), 7);
    }
    loaded->PrepareCheckpoint();
    std::vector<std::string> again = SaveParts(*loaded);
    std::unique_ptr<Index> reloaded = Index::Create(IndexKind::kHash);
    for (uint32_t p = 0; p < again.size(); ++p) {
      ASSERT_TRUE(LoadPart(reloaded.get(), p, again[p]).ok());
    }
    ASSERT_NO_FATAL_FAILURE(check(*loaded, loaded_model));
    ASSERT_NO_FATAL_FAILURE(check(*reloaded, loaded_model));
  }
  ASSERT_NO_FATAL_FAILURE(check(*index, model));

  // Rounds of filling and emptying: the memory after each fill stays near the first round's.
  for (const auto& [k, e] : std::map<std::string, IndexEntry>(model)) {
    ASSERT_TRUE(index->Remove(k, &old));
    model.erase(k);
  }
  uint64_t first_fill = 0;
  for (int round = 1; round <= 4; ++round) {
    for (int i = 0; i < kKeys; ++i) put(key(round, i), Entry(3, static_cast<uint32_t>(i), 9));
    const uint64_t filled = index->MemoryBytes();
    if (round == 1) first_fill = filled;
    EXPECT_LT(filled, first_fill + first_fill / 4) << "round " << round;
    ASSERT_NO_FATAL_FAILURE(check(*index, model));
    for (int i = 0; i < kKeys; ++i) {
      ASSERT_TRUE(index->Remove(key(round, i), &old));
      model.erase(key(round, i));
    }
    EXPECT_LT(index->MemoryBytes(), filled / 2) << "round " << round;
  }
}

// Writers on disjoint keys cross the threshold both ways (the heap switches on, then off as they
// remove 3/4 of what they put) while a reader looks keys up: every shard moves under its own
// lock.
TEST(HashIndexHugeRegionsTest, SwitchesWhileWritersAndReadersRun) {
  std::unique_ptr<Index> index = Index::Create(IndexKind::kHash);
  constexpr int kWriters = 4;
  constexpr int kKeysPerWriter = 10000;  // 4 x 10000 x ~1 KB: past 32 MiB of items
  const std::string pad(1000, 'q');
  auto key = [&](int w, int i) { return std::to_string(w) + "-" + std::to_string(i) + pad; };
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      IndexEntry old;
      for (int i = 0; i < kKeysPerWriter; ++i) {
        index->Put(key(w, i), Entry(static_cast<uint32_t>(w), static_cast<uint32_t>(i), 1), &old);
      }
      for (int i = 0; i < kKeysPerWriter; ++i) {
        IndexEntry e;
        if (!index->Get(key(w, i), &e) || e.offset != static_cast<uint32_t>(i)) ++wrong;
      }
      for (int i = 0; i < kKeysPerWriter; ++i) {
        if (i % 4 != 0 && !index->Remove(key(w, i), &old)) ++wrong;
      }
    });
  }
  threads.emplace_back([&] {
    std::mt19937 rng(3);
    while (!done.load()) {
      int w = static_cast<int>(rng() % kWriters), i = static_cast<int>(rng() % kKeysPerWriter);
      IndexEntry e;
      if (index->Get(key(w, i), &e) &&
          (e.segment != static_cast<uint32_t>(w) || e.offset != static_cast<uint32_t>(i))) {
        ++wrong;
      }
    }
  });
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  done = true;
  threads.back().join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(index->Size(), static_cast<uint64_t>(kWriters * kKeysPerWriter / 4));
  for (int w = 0; w < kWriters; ++w) {
    for (int i = 0; i < kKeysPerWriter; ++i) {
      IndexEntry e;
      ASSERT_EQ(index->Get(key(w, i), &e), i % 4 == 0) << w << " " << i;
    }
  }
}

}  // namespace
}  // namespace varve
