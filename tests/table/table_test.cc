// TableBuilder, TableReader and MergeTables: round trips for every compression, order errors,
// scans, the partitioned hash-index build, a merge checked against a model, and damaged files
// (refused or reported, never a wrong value).
#include "varve/table.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>

#include "table/table_test_util.h"
#include "testutil/temp_dir.h"

namespace varve {
namespace {

using testing::TempDir;
using namespace varve::testing;  // NOLINT: the shared table test helpers

class TableCompressionTest : public ::testing::TestWithParam<TableCompression> {};

TEST_P(TableCompressionTest, RoundTrip) {
  TempDir dir;
  Model m;
  for (int i = 0; i < 5000; ++i) m[Key(i * 3)] = Value(i, i % 100);
  m[Key(7)] = std::nullopt;
  m[Key(8)] = std::string(20000, 'x');  // larger than a block
  m[Key(10)] = "";                      // empty value
  TableOptions o;
  o.compression = GetParam();
  Build(dir.Sub("t"), m, o);
  auto t = OpenOrDie(dir.Sub("t"));
  ASSERT_NE(t, nullptr);
  ExpectMatches(*t, m);
  // Again, every block verified: lz4 Gets now decompress a block only up to the record (and the
  // whole block for a record longer than that guess, as Key(8)'s).
  ExpectMatches(*t, m);
  std::string v;
  EXPECT_TRUE(t->Get(Key(1), &v).IsNotFound());
  EXPECT_TRUE(t->Get("", &v).IsNotFound());
  EXPECT_TRUE(t->Get("zzz", &v).IsNotFound());
  EXPECT_EQ(t->properties().min_key, Key(0));
  EXPECT_EQ(t->properties().max_key, Key(4999 * 3));
  EXPECT_EQ(t->properties().tombstones, 1u);
  // Index bytes per key stay under 10 for small keys.
  double per_key = double(t->properties().hash_index_bytes + t->properties().sparse_index_bytes) /
                   t->properties().entries;
  EXPECT_LT(per_key, 10.0);
}

INSTANTIATE_TEST_SUITE_P(All, TableCompressionTest,
                         ::testing::Values(TableCompression::kNone, TableCompression::kLz4,
                                           TableCompression::kZstd));

TEST(TableTest, EmptyTable) {
  TempDir dir;
  Build(dir.Sub("t"), {});
  auto t = OpenOrDie(dir.Sub("t"));
  ASSERT_NE(t, nullptr);
  std::string v;
  EXPECT_TRUE(t->Get("a", &v).IsNotFound());
  auto it = t->NewIterator();
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
  it->Seek("a");
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(t->Check().ok());
}

TEST(TableTest, OutOfOrderAndDuplicateKeysAreRefused) {
  TempDir dir;
  auto b = TableBuilder::Create(dir.Sub("t"));
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->Add("b", "1").ok());
  Status s = (*b)->Add("b", "2");
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("duplicate key 'b'"), std::string::npos) << s.message();
  s = (*b)->Add("a", "2");
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("out of order"), std::string::npos) << s.message();
  ASSERT_TRUE((*b)->Add("c", "3").ok());
  ASSERT_TRUE((*b)->Finish().ok());
  auto t = OpenOrDie(dir.Sub("t"));
  ASSERT_NE(t, nullptr);
  ExpectMatches(*t, {{"b", "1"}, {"c", "3"}});
}

TEST(TableTest, NoFileUntilFinish) {
  TempDir dir;
  {
    auto b = TableBuilder::Create(dir.Sub("t"));
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE((*b)->Add("a", "1").ok());
  }
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("t")));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(TableTest, SeekAndPrefix) {
  TempDir dir;
  Model m;
  for (int i = 0; i < 2000; ++i) m[Key(i * 2)] = Value(i);
  m["pre/a"] = "1";
  m["pre/b"] = "2";
  m["pre\xff"] = "3";
  m["prf"] = "4";
  TableOptions o;
  o.block_size_bytes = 256;
  Build(dir.Sub("t"), m, o);
  auto t = OpenOrDie(dir.Sub("t"));
  ASSERT_NE(t, nullptr);
  auto it = t->NewIterator();
  for (int i = 0; i < 4000; i += 37) {
    it->Seek(Key(i));
    ASSERT_TRUE(it->Valid());
    EXPECT_EQ(it->key(), Key(i % 2 == 0 ? i : i + 1));
  }
  it->Seek("zzz");
  EXPECT_FALSE(it->Valid());
  it->Seek("");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), Key(0));
  std::vector<std::string> got;
  std::string end = TablePrefixEnd("pre");
  EXPECT_EQ(end, "prf");
  for (it->Seek("pre"); it->Valid() && it->key() < end; it->Next()) got.emplace_back(it->key());
  EXPECT_EQ(got, (std::vector<std::string>{"pre/a", "pre/b", "pre\xff"}));
  EXPECT_EQ(TablePrefixEnd("a\xff\xff"), "b");
  EXPECT_EQ(TablePrefixEnd("\xff"), "");
}

TEST(TableTest, PartitionedHashIndex) {
  TempDir dir;
  Model m;
  for (int i = 0; i < 60000; ++i) m[Key(i)] = Value(i, 8);
  TableOptions o;
  o.hash_memory_bytes = 1;  // the smallest partition: 4096 slots, so 17 partitions
  o.compression = TableCompression::kNone;
  Build(dir.Sub("t"), m, o);
  auto t = OpenOrDie(dir.Sub("t"));
  ASSERT_NE(t, nullptr);
  ExpectMatches(*t, m);
  std::string v;
  for (int i = 60000; i < 70000; ++i) ASSERT_TRUE(t->Get(Key(i), &v).IsNotFound());
  // Same index as a single-partition build.
  TableOptions one = o;
  one.hash_memory_bytes = 64 << 20;
  Build(dir.Sub("u"), m, one);
  auto u = OpenOrDie(dir.Sub("u"));
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(t->properties().hash_slots, u->properties().hash_slots);
  EXPECT_EQ(std::filesystem::file_size(dir.Sub("t")), std::filesystem::file_size(dir.Sub("u")));
  // No temporary files left behind.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++files;
  EXPECT_EQ(files, 2);
}

// The hash index is filled a chunk of spilled entries at a time, in home-slot order: more entries
// than one chunk, in one partition and in many, are all found.
TEST(TableTest, HashIndexFilledInChunks) {
  TempDir dir;
  const int n = 600000;  // over two chunks of 2^18
  for (uint64_t memory : {uint64_t{64} << 20, uint64_t{1} << 20}) {
    for (auto c : {TableCompression::kNone, TableCompression::kLz4}) {
      TableOptions o;
      o.hash_memory_bytes = memory;
      o.compression = c;
      o.sync = false;
      auto b = TableBuilder::Create(dir.Sub("t"), o);
      ASSERT_TRUE(b.ok());
      for (int i = 0; i < n; ++i) {
        ASSERT_TRUE((*b)->Add(Key(i), std::to_string(i)).ok());
      }
      ASSERT_TRUE((*b)->Finish().ok());
      auto t = OpenOrDie(dir.Sub("t"));
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(t->properties().entries, uint64_t{n});
      Status s = t->Check();  // every key found through the hash index
      EXPECT_TRUE(s.ok()) << s.ToString();
      std::string v;
      ASSERT_TRUE(t->Get(Key(n - 1), &v).ok());
      EXPECT_EQ(v, std::to_string(n - 1));
      EXPECT_TRUE(t->Get(Key(n), &v).IsNotFound());
    }
  }
}

TEST(TableMergeTest, MatchesModel) {
  std::mt19937 rng(42);
  for (int round = 0; round < 6; ++round) {
    TempDir dir;
    const int inputs = 1 + round * 2;
    std::vector<std::shared_ptr<TableReader>> readers;
    Model merged;  // with tombstones
    for (int n = 0; n < inputs; ++n) {
      Model m;
      int count = rng() % 3000;
      for (int i = 0; i < count; ++i) {
        std::string k = Key(rng() % 5000);
        if (rng() % 5 == 0) {
          m[k] = std::nullopt;
        } else {
          m[k] = Value(rng() % 100000, rng() % 60);
        }
      }
      for (auto& [k, v] : m) merged[k] = v;  // later inputs win
      TableOptions o;
      o.compression = static_cast<TableCompression>(n % 3);
      o.block_size_bytes = 256 + rng() % 8000;
      std::string path = dir.Sub("in" + std::to_string(n));
      Build(path, m, o);
      readers.push_back(OpenOrDie(path));
      ASSERT_NE(readers.back(), nullptr);
    }
    for (bool keep : {false, true}) {
      MergeOptions mo;
      mo.keep_tombstones = keep;
      mo.table.hash_memory_bytes = round % 2 ? 1 : 64 << 20;
      std::string out = dir.Sub(keep ? "keep" : "drop");
      Status s = MergeTables(readers, out, mo);
      ASSERT_TRUE(s.ok()) << s.ToString();
      Model expect;
      for (auto& [k, v] : merged) {
        if (v || keep) expect[k] = v;
      }
      auto t = OpenOrDie(out);
      ASSERT_NE(t, nullptr);
      ExpectMatches(*t, expect);
    }
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Every truncation is refused at open; every single-byte change is refused at open or reported
// by the read that meets it, never returned as a wrong value.
TEST(TableCorruptionTest, TruncatedAndFlippedBytes) {
  TempDir dir;
  Model m;
  for (int i = 0; i < 120; ++i) m[Key(i)] = Value(i, 30);
  m[Key(5)] = std::nullopt;
  for (auto c : {TableCompression::kNone, TableCompression::kLz4, TableCompression::kZstd}) {
    TableOptions o;
    o.compression = c;
    o.block_size_bytes = 512;
    Build(dir.Sub("t"), m, o);
    const std::string good = ReadFile(dir.Sub("t"));
    for (size_t len = 0; len < good.size(); len += (len < 200 ? 1 : 7)) {
      auto r = TableReader::OpenFromMemory("t", good.substr(0, len));
      ASSERT_FALSE(r.ok()) << "truncated to " << len;
    }
    for (size_t pos = 0; pos < good.size(); ++pos) {
      if (pos == 10 || pos == 11) continue;  // the minor version: any is readable
      std::string bad = good;
      bad[pos] ^= static_cast<char>(1 + pos % 255);
      auto r = TableReader::OpenFromMemory("t", bad);
      if (!r.ok()) {
        EXPECT_NE(r.status().message().find("t: "), std::string::npos) << r.status().ToString();
        continue;
      }
      std::string v;
      for (auto& [k, val] : m) {
        bool tomb = false;
        Status s = (*r)->Find(k, &v, &tomb);
        if (s.ok()) {
          ASSERT_EQ(tomb, !val.has_value()) << "byte " << pos;
          if (val) {
            ASSERT_EQ(v, *val) << "byte " << pos;
          }
        } else {
          ASSERT_TRUE(s.IsCorruption()) << "byte " << pos << ": " << s.ToString();
          EXPECT_NE(s.message().find("at offset"), std::string::npos) << s.message();
        }
      }
      auto it = (*r)->NewIterator();
      auto mi = m.begin();
      for (it->SeekToFirst(); it->Valid(); it->Next(), ++mi) {
        ASSERT_EQ(it->key(), mi->first) << "byte " << pos;
        if (mi->second) {
          ASSERT_EQ(it->value(), *mi->second) << "byte " << pos;
        }
      }
      if (mi != m.end()) {
        ASSERT_TRUE(it->status().IsCorruption()) << "byte " << pos;
      }
      EXPECT_FALSE((*r)->Check().ok()) << "byte " << pos;
    }
  }
}

// Format 2 with compression none reads records in place through file offsets in the hash slots,
// checking blocks once per 4 KiB page: damage in a later page of a record that spans several
// pages (and of its block) is refused with an error naming the file and offset, even after reads
// of other records have verified earlier pages.
TEST(TableCorruptionTest, DamageInARecordSpanningPages) {
  TempDir dir;
  Model m;
  for (int i = 0; i < 200; ++i) m[Key(i)] = Value(i, 60);
  const std::string big_key = Key(100);
  std::string big_value = Value(100, 5 * 4096 + 123);  // one block over 6 pages
  m[big_key] = big_value;
  TableOptions o;
  o.compression = TableCompression::kNone;
  Build(dir.Sub("t"), m, o);
  const std::string good = ReadFile(dir.Sub("t"));
  const size_t value_at = good.find(big_value);
  ASSERT_NE(value_at, std::string::npos);
  // Undamaged: every record reads back.
  ExpectMatches(*OpenOrDie(dir.Sub("t")), m);

  for (size_t delta : {size_t{4096 + 7}, size_t{3 * 4096}, big_value.size() - 1}) {
    std::string bad = good;
    bad[value_at + delta] ^= 0x20;
    const std::string path = dir.Sub("bad");
    { std::ofstream(path, std::ios::binary | std::ios::trunc) << bad; }
    auto r = TableReader::Open(path);
    ASSERT_TRUE(r.ok()) << r.status().ToString();  // data blocks are checked when read
    std::string v;
    // Records in the first pages (before the damaged block) read fine and mark their pages.
    ASSERT_TRUE((*r)->Get(Key(0), &v).ok());
    EXPECT_EQ(v, *m[Key(0)]);
    Status s = (*r)->Get(big_key, &v);
    ASSERT_TRUE(s.IsCorruption()) << "delta " << delta << ": " << s.ToString();
    EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("checksum mismatch at offset"), std::string::npos) << s.message();
    // Asked again (pages stay unverified): the same error, never the value.
    EXPECT_TRUE((*r)->Get(big_key, &v).IsCorruption());
    // Every other record is its own value or an error.
    for (auto& [k, val] : m) {
      bool tomb = false;
      Status f = (*r)->Find(k, &v, &tomb);
      if (f.ok()) {
        ASSERT_EQ(v, *val) << k;
      } else {
        ASSERT_TRUE(f.IsCorruption()) << f.ToString();
      }
    }
    auto it = (*r)->NewIterator();
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ASSERT_NE(it->key(), big_key);
    }
    EXPECT_TRUE(it->status().IsCorruption());
    EXPECT_FALSE((*r)->Check().ok());
  }
}

// A table file cut short while open (or a disk error under its mapping) reads as IOError naming
// the file, never a crash (SIGBUS) or a wrong value: for every compression, cuts at a page
// boundary and inside a page (whose bytes past the end then read as zeros).
TEST(TableCutTest, CutWhileOpenIsIOError) {
  TempDir dir;
  Model m;
  for (int i = 0; i < 3000; ++i) m[Key(i)] = Value(i, 100);
  for (auto c : {TableCompression::kNone, TableCompression::kLz4, TableCompression::kZstd}) {
    for (double fraction : {0.5, 0.9, 0.999}) {
      for (bool page_aligned : {false, true}) {
        SCOPED_TRACE(std::string(TableCompressionName(c)) + " fraction " +
                     std::to_string(fraction) + (page_aligned ? " aligned" : ""));
        const std::string path = dir.Sub("t");
        TableOptions o;
        o.compression = c;
        Build(path, m, o);
        auto t = OpenOrDie(path);
        ASSERT_NE(t, nullptr);
        ExpectMatches(*t, m);  // every page touched (and verified) before the cut
        auto it = t->NewIterator();
        it->SeekToFirst();
        ASSERT_TRUE(it->Valid());
        const std::string first_key(it->key()), first_value(it->value());
        uint64_t size = std::filesystem::file_size(path);
        uint64_t cut = static_cast<uint64_t>(size * fraction);
        if (page_aligned) cut = cut / 4096 * 4096;
        std::filesystem::resize_file(path, cut);

        std::string v;
        int errors = 0;
        for (auto& [k, val] : m) {
          bool tomb = false;
          Status s = t->Find(k, &v, &tomb);
          if (s.ok()) {
            ASSERT_EQ(v, *val) << k;
            continue;
          }
          ASSERT_TRUE(s.IsIOError()) << k << ": " << s.ToString();
          EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
          EXPECT_NE(s.message().find("offset"), std::string::npos) << s.message();
          // The last page is gone: that read at least raises SIGBUS.
          if (page_aligned) {
            EXPECT_NE(s.message().find("SIGBUS"), std::string::npos) << s.message();
          }
          ++errors;
        }
        // The footer (at the end) is gone: nothing can be trusted, every read says so.
        EXPECT_EQ(errors, static_cast<int>(m.size()));
        EXPECT_TRUE(t->Get("absent", &v).IsIOError());
        // The iterator's current block was copied before the cut; moving on reads the cut file.
        EXPECT_EQ(it->key(), first_key);
        EXPECT_EQ(it->value(), first_value);
        size_t seen = 0;
        for (; it->Valid(); it->Next()) {
          auto want = m.find(std::string(it->key()));
          ASSERT_NE(want, m.end());
          ASSERT_EQ(it->value(), *want->second);
          ++seen;
        }
        EXPECT_LT(seen, m.size());
        EXPECT_TRUE(it->status().IsIOError()) << it->status().ToString();
        auto it2 = t->NewIterator();
        it2->Seek(Key(2999));
        EXPECT_FALSE(it2->Valid());
        EXPECT_TRUE(it2->status().IsIOError()) << it2->status().ToString();
        EXPECT_TRUE(t->Check().IsIOError());
        it.reset();
        it2.reset();
        t.reset();
        std::filesystem::remove(path);
      }
    }
  }
}

TEST(TableCorruptionTest, OpenNamesFileAndOffset) {
  TempDir dir;
  Build(dir.Sub("t"), {{"a", "1"}});
  std::string data = ReadFile(dir.Sub("t"));
  data.resize(data.size() - 1);
  std::ofstream(dir.Sub("cut"), std::ios::binary) << data;
  auto r = TableReader::Open(dir.Sub("cut"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption());
  EXPECT_NE(r.status().message().find(dir.Sub("cut")), std::string::npos);
  EXPECT_NE(r.status().message().find("offset"), std::string::npos);
  EXPECT_TRUE(TableReader::Open(dir.Sub("missing")).status().IsIOError());
}

}  // namespace
}  // namespace varve
