// MergeTables' block copy (inputs whose key ranges are disjoint, overlap, or hold tombstones),
// the builder's writer threads (errors from the file system, a builder dropped mid-way) and the
// O_DIRECT writable file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "env/fault_env.h"
#include "table/table_test_util.h"
#include "testutil/temp_dir.h"
#include "varve/env.h"
#include "varve/table.h"

namespace varve {
namespace {

using namespace varve::testing;  // NOLINT: the shared table test helpers

struct Input {
  std::string path;
  Model model;
};

// Builds inputs from models and merges them; checks the result against the model of the merge
// (later inputs win; tombstones kept or dropped). Returns the output's properties.
TableProperties MergeAndCheck(const TempDir& dir, const std::vector<Model>& models,
                              const MergeOptions& mo, const TableOptions& in_options,
                              uint64_t* input_data_bytes) {
  std::vector<std::shared_ptr<TableReader>> readers;
  Model merged;
  *input_data_bytes = 0;
  for (size_t i = 0; i < models.size(); ++i) {
    const std::string path = dir.Sub("in" + std::to_string(i));
    Build(path, models[i], in_options);
    readers.push_back(OpenOrDie(path));
    EXPECT_NE(readers.back(), nullptr);
    if (readers.back() == nullptr) return {};
    *input_data_bytes += readers.back()->properties().data_bytes;
    for (auto& [k, v] : models[i]) merged[k] = v;
  }
  const std::string out = dir.Sub("out");
  std::filesystem::remove(out);
  Status s = MergeTables(readers, out, mo);
  EXPECT_TRUE(s.ok()) << s.ToString();
  Model expect;
  for (auto& [k, v] : merged) {
    if (v || mo.keep_tombstones) expect[k] = v;
  }
  auto t = OpenOrDie(out);
  EXPECT_NE(t, nullptr);
  if (t == nullptr) return {};
  ExpectMatches(*t, expect);
  return t->properties();
}

Model Range(int begin, int end, int tag, int tombstone_every = 0) {
  Model m;
  for (int i = begin; i < end; ++i) {
    if (tombstone_every > 0 && i % tombstone_every == 0) {
      m[Key(i)] = std::nullopt;
    } else {
      m[Key(i)] = Value(i * 7 + tag, 20 + i % 50);
    }
  }
  return m;
}

// Inputs and output alike: compression c, blocks of block_size_bytes.
MergeOptions SameOptions(TableCompression c, uint32_t block_size_bytes, bool keep = false) {
  MergeOptions mo;
  mo.table.compression = c;
  mo.table.block_size_bytes = block_size_bytes;
  mo.keep_tombstones = keep;
  return mo;
}

class MergeBlockCopyTest : public ::testing::TestWithParam<TableCompression> {};

// Disjoint inputs of the output's compression: every block is copied as stored, so the output's
// data bytes are exactly the inputs'.
TEST_P(MergeBlockCopyTest, DisjointInputsAreCopiedWhole) {
  TempDir dir;
  const MergeOptions mo = SameOptions(GetParam(), 512);
  uint64_t in_bytes = 0;
  // Given out of key order: the merge orders them.
  auto p = MergeAndCheck(dir, {Range(2000, 3000, 1), Range(0, 1000, 2), Range(1000, 2000, 3)}, mo,
                         mo.table, &in_bytes);
  EXPECT_EQ(p.entries, 3000u);
  EXPECT_EQ(p.data_bytes, in_bytes);
}

// Overlapping inputs: blocks wholly below the other inputs are copied, the rest merged record
// by record; the latest input wins, whichever path a key takes.
TEST_P(MergeBlockCopyTest, OverlappingInputsLaterWins) {
  TempDir dir;
  const MergeOptions mo = SameOptions(GetParam(), 300);
  uint64_t in_bytes = 0;
  Model sparse;  // every 97th key of the middle range, overriding the others
  for (int i = 1500; i < 2500; i += 97) sparse[Key(i)] = "override-" + std::to_string(i);
  auto p = MergeAndCheck(dir, {Range(0, 2000, 1), Range(1800, 4000, 2), sparse}, mo, mo.table,
                         &in_bytes);
  EXPECT_EQ(p.entries, 4000u);
  EXPECT_LT(p.data_bytes, in_bytes);  // the overlap was merged, not copied twice
}

// Tombstones: blocks holding one are copied only when tombstones are kept; dropped, the
// tombstones and the keys they delete in older inputs are gone.
TEST_P(MergeBlockCopyTest, TombstonesKeptOrDropped) {
  for (bool keep : {false, true}) {
    TempDir dir;
    const MergeOptions mo = SameOptions(GetParam(), 400, keep);
    uint64_t in_bytes = 0;
    // Input 1 deletes keys of input 0 (overlap), and holds disjoint tombstones of its own.
    auto p =
        MergeAndCheck(dir, {Range(0, 1000, 1), Range(500, 3000, 2, 10)}, mo, mo.table, &in_bytes);
    EXPECT_EQ(p.tombstones, keep ? 250u : 0u) << keep;
    if (!keep) {
      EXPECT_EQ(p.entries, 3000u - 250u);
    }
  }
}

// Random inputs of one compression (so copies happen) against the model, with and without a
// partitioned hash index and with the block writer on the calling thread or on workers.
TEST_P(MergeBlockCopyTest, RandomRunsMatchModel) {
  std::mt19937 rng(7);
  for (int round = 0; round < 6; ++round) {
    TempDir dir;
    std::vector<Model> models;
    const int inputs = 2 + round;
    for (int n = 0; n < inputs; ++n) {
      Model m;
      // Runs of consecutive keys at random places: some disjoint, some overlapping.
      for (int run = 0; run < 4; ++run) {
        const int begin = rng() % 20000, len = rng() % 800;
        for (int i = begin; i < begin + len; ++i) {
          if (rng() % 20 == 0) {
            m[Key(i)] = std::nullopt;
          } else {
            m[Key(i)] = Value(rng() % 100000, rng() % 60);
          }
        }
      }
      models.push_back(std::move(m));
    }
    TableOptions o;
    o.compression = GetParam();
    o.block_size_bytes = 256 + rng() % 2000;
    for (bool keep : {false, true}) {
      MergeOptions mo;
      mo.table = o;
      mo.table.writer_threads = round % 3;
      mo.table.hash_memory_bytes = round % 2 ? 1 : 64 << 20;
      mo.keep_tombstones = keep;
      uint64_t in_bytes = 0;
      MergeAndCheck(dir, models, mo, o, &in_bytes);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, MergeBlockCopyTest,
                         ::testing::Values(TableCompression::kNone, TableCompression::kLz4,
                                           TableCompression::kZstd));

// Inputs of another compression than the output's are re-encoded (nothing is copied).
TEST(MergeBlockCopyTest, OtherCompressionIsReencoded) {
  TempDir dir;
  TableOptions in;
  in.compression = TableCompression::kZstd;
  MergeOptions mo;
  mo.table.compression = TableCompression::kNone;
  uint64_t in_bytes = 0;
  auto p = MergeAndCheck(dir, {Range(0, 1000, 1), Range(1000, 2000, 2)}, mo, in, &in_bytes);
  EXPECT_EQ(p.compression, TableCompression::kNone);
  EXPECT_GT(p.data_bytes, in_bytes);
}

// A failing write or sync anywhere in a build gives an error from Add or Finish (never a hang,
// a crash or a file at the path), whichever thread meets it.
TEST(TableWriterThreadsTest, WriteErrorsPropagate) {
  for (int threads : {0, 1, 3}) {
    for (auto op : {FaultEnv::Op::kAppend, FaultEnv::Op::kSync}) {
      for (int n : {0, 1, 5, 40}) {
        if (op == FaultEnv::Op::kSync && n > 0) continue;  // a build syncs once
        TempDir dir;
        FaultEnv env(Env::Default());
        TableOptions o;
        o.env = &env;
        o.writer_threads = threads;
        o.block_size_bytes = 256;
        const std::string path = dir.Sub("t");
        auto b = TableBuilder::Create(path, o);
        if (!b.ok()) continue;  // the header write can already fail later in other cases
        env.FailAfter(op, n, EIO, /*sticky=*/true);
        Status s;
        for (int i = 0; i < 20000 && s.ok(); ++i) s = (*b)->Add(Key(i), Value(i, 100));
        if (s.ok()) s = (*b)->Finish();
        EXPECT_TRUE(s.IsIOError()) << threads << " " << n << ": " << s.ToString();
        // Every later call reports the error too.
        EXPECT_FALSE((*b)->Add("zzzz", "v").ok());
        EXPECT_FALSE((*b)->Finish().ok());
        b->reset();
        EXPECT_FALSE(std::filesystem::exists(path));
        env.ClearFaults();
      }
    }
  }
}

// A real full disk under O_DIRECT writes (a loop-mounted 16 MiB ext4 image; needs root and
// mkfs.ext4): the flusher's ENOSPC reaches Add or Finish as a clear error, and no table appears.
TEST(TableWriterThreadsTest, FullDiskWithDirectWrites) {
  TempDir dir;
  const std::string img = dir.Sub("disk.img"), mnt = dir.Sub("mnt");
  std::filesystem::create_directories(mnt);
  const std::string setup = "truncate -s 16M " + img + " && mkfs.ext4 -q -F " + img +
                            " >/dev/null 2>&1 && mount -o loop " + img + " " + mnt +
                            " >/dev/null 2>&1";
  if (geteuid() != 0 || std::system(setup.c_str()) != 0) {
    GTEST_SKIP() << "needs root, mkfs.ext4 and a loop device";
  }
  struct Unmount {
    std::string mnt;
    ~Unmount() { EXPECT_EQ(std::system(("umount " + mnt).c_str()), 0); }
  } unmount{mnt};
  for (int threads : {0, 1}) {
    TableOptions o;
    o.writer_threads = threads;
    o.compression = TableCompression::kNone;
    const std::string path = mnt + "/t";
    auto b = TableBuilder::Create(path, o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    Status s;
    std::mt19937_64 rng(threads);
    std::string value(1000, 'x');
    for (int i = 0; i < 40000 && s.ok(); ++i) {
      for (char& c : value) c = static_cast<char>(rng());
      s = (*b)->Add(Key(i), value);
    }
    if (s.ok()) s = (*b)->Finish();
    EXPECT_TRUE(s.IsIOError()) << s.ToString();
    EXPECT_NE(s.message().find("No space"), std::string::npos) << s.ToString();
    b->reset();
    EXPECT_FALSE(std::filesystem::exists(path));
  }
}

// A builder dropped with batches in flight stops its workers and removes its files.
TEST(TableWriterThreadsTest, DroppedBuilderCleansUp) {
  for (int threads : {1, 2}) {
    TempDir dir;
    TableOptions o;
    o.writer_threads = threads;
    o.block_size_bytes = 256;
    {
      auto b = TableBuilder::Create(dir.Sub("t"), o);
      ASSERT_TRUE(b.ok());
      for (int i = 0; i < 50000; ++i) ASSERT_TRUE((*b)->Add(Key(i), Value(i, 80)).ok());
    }
    EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  }
}

// Every thread count builds the same file, byte for byte.
TEST(TableWriterThreadsTest, SameFileForAnyThreadCount) {
  TempDir dir;
  std::string first;
  for (int threads : {0, 1, 4}) {
    for (bool direct : {false, true}) {
      TableOptions o;
      o.writer_threads = threads;
      o.direct_writes = direct;
      o.block_size_bytes = 1024;
      const std::string path = dir.Sub("t" + std::to_string(threads) + (direct ? "d" : ""));
      auto b = TableBuilder::Create(path, o);
      ASSERT_TRUE(b.ok());
      for (int i = 0; i < 30000; ++i) ASSERT_TRUE((*b)->Add(Key(i), Value(i, i % 300)).ok());
      ASSERT_TRUE((*b)->Finish().ok());
      std::ifstream f(path, std::ios::binary);
      std::string data((std::istreambuf_iterator<char>(f)), {});
      if (first.empty()) {
        first = data;
      } else {
        EXPECT_TRUE(data == first) << threads << " " << direct;
      }
    }
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

// Large enough for a striped, multi-threaded hash index fill (several stripes, chunks sorted on
// several threads): the file is still the same for any thread count, and complete.
TEST(TableWriterThreadsTest, SameFileForAnyThreadCountLarge) {
  TempDir dir;
  for (auto c : {TableCompression::kNone, TableCompression::kLz4}) {
    std::string first;
    for (int threads : {0, 1, 3, -1}) {
      TableOptions o;
      o.compression = c;
      o.writer_threads = threads;
      o.sync = false;
      const std::string path = dir.Sub("t" + std::to_string(threads));
      auto b = TableBuilder::Create(path, o);
      ASSERT_TRUE(b.ok());
      for (int i = 0; i < 300000; ++i) ASSERT_TRUE((*b)->Add(Key(i), std::to_string(i)).ok());
      ASSERT_TRUE((*b)->Finish().ok());
      std::string data = ReadFile(path);
      if (first.empty()) {
        first = data;
        auto t = OpenOrDie(path);
        ASSERT_NE(t, nullptr);
        EXPECT_GT(t->properties().hash_slots, 2u << 16);  // more than one stripe
        Status s = t->Check();
        EXPECT_TRUE(s.ok()) << s.ToString();
      } else {
        EXPECT_TRUE(data == first) << TableCompressionName(c) << " " << threads;
      }
    }
  }
}

// writer_threads: -1 (automatic) .. 64.
TEST(TableWriterThreadsTest, ThreadCountRange) {
  TempDir dir;
  for (int threads : {-2, 65}) {
    TableOptions o;
    o.writer_threads = threads;
    EXPECT_TRUE(TableBuilder::Create(dir.Sub("t"), o).status().IsInvalidArgument()) << threads;
  }
  for (int threads : {-1, 0, 64}) {
    TableOptions o;
    o.writer_threads = threads;
    auto b = TableBuilder::Create(dir.Sub("t"), o);
    ASSERT_TRUE(b.ok()) << threads;
    ASSERT_TRUE((*b)->Add("k", "v").ok());
    ASSERT_TRUE((*b)->Finish().ok());
  }
}

// A merge gives the same file for any number of writer threads, whether its blocks are copied
// (disjoint inputs), re-encoded (interleaved ones) or both, and the file matches the model.
TEST(TableWriterThreadsTest, MergeSameFileForAnyThreadCount) {
  for (auto c : {TableCompression::kNone, TableCompression::kLz4}) {
    TempDir dir;
    std::vector<Model> models(4);
    for (int i = 0; i < 40000; ++i) {
      // Inputs 0-1 interleaved over [0, 20000); inputs 2-3 each one run of [20000, 40000);
      // input 3 overrides some keys of input 0.
      const int k = i < 20000 ? i % 2 : 2 + (i - 20000) / 10000;
      models[k][Key(i)] = Value(i, 10 + i % 90);
      if (i % 1000 == 0 && i < 20000) models[3][Key(i)] = "override";
    }
    Model merged;
    std::vector<std::shared_ptr<TableReader>> readers;
    TableOptions in;
    in.compression = c;
    in.block_size_bytes = 1024;
    for (size_t k = 0; k < models.size(); ++k) {
      Build(dir.Sub("in" + std::to_string(k)), models[k], in);
      readers.push_back(OpenOrDie(dir.Sub("in" + std::to_string(k))));
      ASSERT_NE(readers.back(), nullptr);
      for (auto& [key, v] : models[k]) merged[key] = v;
    }
    std::string first;
    for (int threads : {0, 1, 3}) {
      MergeOptions mo;
      mo.table = in;
      mo.table.writer_threads = threads;
      const std::string out = dir.Sub("out" + std::to_string(threads));
      Status s = MergeTables(readers, out, mo);
      ASSERT_TRUE(s.ok()) << s.ToString();
      std::string data = ReadFile(out);
      if (first.empty()) {
        first = data;
        auto t = OpenOrDie(out);
        ASSERT_NE(t, nullptr);
        ExpectMatches(*t, merged);
      } else {
        EXPECT_TRUE(data == first) << TableCompressionName(c) << " " << threads;
      }
    }
  }
}

// A damaged data block in an input fails the merge with Corruption naming the input and the
// offset (never a table at the output path), whether the block is copied or merged record by
// record, and whether the checksums are checked ahead of the merge or by it.
TEST(MergeVerifyAheadTest, DamagedInputIsRefused) {
  for (auto c : {TableCompression::kNone, TableCompression::kLz4}) {
    for (bool disjoint : {false, true}) {
      for (bool ahead : {false, true}) {
        TempDir dir;
        std::vector<std::shared_ptr<TableReader>> readers;
        TableOptions o;
        o.compression = c;
        o.block_size_bytes = 512;
        for (int k = 0; k < 3; ++k) {
          Model m;
          for (int i = 0; i < 6000; ++i) {
            if (disjoint ? i / 2000 == k : i % 3 == k) m[Key(i)] = Value(i, 40);
          }
          const std::string path = dir.Sub("in" + std::to_string(k));
          Build(path, m, o);
          std::string data = ReadFile(path);
          if (k == 1) {
            auto good = OpenOrDie(path);
            ASSERT_NE(good, nullptr);
            data[16 + good->properties().data_bytes / 2] ^= 0x20;
          }
          auto r = TableReader::OpenFromMemory("in" + std::to_string(k), data);
          ASSERT_TRUE(r.ok()) << r.status().ToString();
          readers.push_back(*r);
        }
        MergeOptions mo;
        mo.table = o;
        mo.verify_ahead = ahead;
        const std::string out = dir.Sub("out");
        Status s = MergeTables(readers, out, mo);
        EXPECT_TRUE(s.IsCorruption()) << s.ToString();
        EXPECT_NE(s.message().find("in1: "), std::string::npos) << s.ToString();
        EXPECT_NE(s.message().find("at offset"), std::string::npos) << s.ToString();
        EXPECT_FALSE(std::filesystem::exists(out));
      }
    }
  }
}

// Merges with and without the read-ahead check give the same file.
TEST(MergeVerifyAheadTest, SameFileEitherWay) {
  TempDir dir;
  std::vector<std::shared_ptr<TableReader>> readers;
  for (int k = 0; k < 4; ++k) {
    Model m;
    for (int i = k; i < 20000; i += 4) m[Key(i)] = Value(i, 30);
    for (int i = 20000 + k * 5000; i < 25000 + k * 5000; ++i) m[Key(i)] = Value(i, 30);
    Build(dir.Sub("in" + std::to_string(k)), m);
    readers.push_back(OpenOrDie(dir.Sub("in" + std::to_string(k))));
    ASSERT_NE(readers.back(), nullptr);
  }
  std::string first;
  for (bool ahead : {true, false}) {
    MergeOptions mo;
    mo.verify_ahead = ahead;
    ASSERT_TRUE(MergeTables(readers, dir.Sub("out"), mo).ok());
    std::string data = ReadFile(dir.Sub("out"));
    if (first.empty()) {
      first = data;
    } else {
      EXPECT_TRUE(data == first);
    }
  }
}

// The direct writable file: appends of every size across chunk boundaries, a Sync in the middle
// (the tail goes through the page cache; later appends too), read back exactly. Runs on the test
// directory's file system, and on tmpfs (which refuses O_DIRECT) where there is one.
TEST(DirectWritableFileTest, WritesExactlyWhatWasAppended) {
  TempDir dir;
  std::vector<std::string> dirs = {dir.path()};
  if (std::filesystem::is_directory("/dev/shm")) dirs.push_back("/dev/shm");
  for (const std::string& d : dirs) {
    for (bool sync_midway : {false, true}) {
      const std::string path = d + "/varve-direct-test-" + std::to_string(::getpid());
      std::string expect;
      {
        auto f = Env::Default()->NewDirectWritableFile(path);
        ASSERT_TRUE(f.ok()) << f.status().ToString();
        std::mt19937 rng(3);
        for (int i = 0; i < 60; ++i) {
          std::string piece(rng() % 200000 + (i % 7 == 0 ? (1 << 20) : 0), 'a' + i % 26);
          expect += piece;
          ASSERT_TRUE((*f)->Append(piece).ok());
          ASSERT_EQ((*f)->Size(), expect.size());
          if (sync_midway && i == 30) {
            ASSERT_TRUE((*f)->Sync().ok());
          }
        }
        ASSERT_TRUE((*f)->Sync().ok());
        ASSERT_TRUE((*f)->Close().ok());
      }
      std::ifstream in(path, std::ios::binary);
      std::string data((std::istreambuf_iterator<char>(in)), {});
      std::filesystem::remove(path);
      EXPECT_TRUE(data == expect) << d << " " << data.size() << " vs " << expect.size();
    }
  }
}

}  // namespace
}  // namespace varve
