// The index checkpoint (INDEX): an open through it serves exactly what an open through the hint
// files serves; a damaged or stale checkpoint is ignored; writes after it (appends) are replayed
// on top of it after a crash; compactions and tables remove it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <thread>
#include <tuple>

#include "testutil/options.h"
#include "testutil/store_files.h"
#include "testutil/temp_dir.h"
#include "util/clock.h"
#include "varve/db.h"
#include "varve/table.h"

namespace varve {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::string Key(int i) { return "key-" + std::to_string(i); }

Options Opts(bool checkpoint = true) {
  Options o = testing::SmallSegmentOptions();
  o.index_checkpoint = checkpoint;
  return o;
}

std::unique_ptr<DB> OpenOrDie(const Options& o, const std::string& dir) {
  Result<std::unique_ptr<DB>> db = DB::Open(o, dir);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(db).value() : nullptr;
}

struct Item {
  std::string value;
  uint64_t expiry_ms = 0;
  uint32_t user_flags = 0;
};
using Model = std::map<std::string, Item>;

// Puts, overwrites (some with a TTL or client flags), deletes and batches over keys [0, n).
void RandomWrites(DB* db, Model* model, int n, int ops, uint32_t seed) {
  std::mt19937 rng(seed);
  for (int op = 0; op < ops; ++op) {
    int k = static_cast<int>(rng() % n);
    int what = static_cast<int>(rng() % 10);
    if (what < 6) {
      PutOptions po;
      if (what == 0) po.ttl_ms = 3600 * 1000;
      if (what == 1) po.user_flags = rng();
      std::string v(static_cast<size_t>(rng() % 300), static_cast<char>('a' + op % 26));
      v += std::to_string(op);
      ASSERT_TRUE(db->Put(Key(k), v, po).ok());
      auto r = db->GetVersioned(Key(k));
      ASSERT_TRUE(r.ok());
      (*model)[Key(k)] = Item{v, r->expiry_ms, po.user_flags};
    } else if (what < 8) {
      ASSERT_TRUE(db->Delete(Key(k)).ok());
      model->erase(Key(k));
    } else {
      WriteBatch b;
      for (int j = 0; j < 5; ++j) {
        int kk = static_cast<int>(rng() % n);
        if (j % 3 == 2) {
          b.Delete(Key(kk));
          model->erase(Key(kk));
        } else {
          std::string v = "batch-" + std::to_string(op) + "-" + std::to_string(j);
          b.Put(Key(kk), v);
          (*model)[Key(kk)] = Item{v, 0, 0};
        }
      }
      ASSERT_TRUE(db->Write(b).ok());
    }
  }
}

// Every key of the model with its value, TTL and flags; nothing else (by iteration).
void ExpectModel(DB* db, const Model& model, int n) {
  for (int i = 0; i < n; ++i) {
    auto r = db->GetVersioned(Key(i));
    auto it = model.find(Key(i));
    if (it == model.end()) {
      EXPECT_TRUE(r.status().IsNotFound()) << Key(i) << " " << r.status().ToString();
      continue;
    }
    ASSERT_TRUE(r.ok()) << Key(i) << " " << r.status().ToString();
    EXPECT_EQ(r->value, it->second.value) << Key(i);
    EXPECT_EQ(r->expiry_ms, it->second.expiry_ms) << Key(i);
    EXPECT_EQ(r->user_flags, it->second.user_flags) << Key(i);
  }
  size_t seen = 0;
  auto it = db->NewIterator(ReadOptions{});
  for (; it->Valid(); it->Next()) {
    ++seen;
    auto m = model.find(std::string(it->key()));
    ASSERT_NE(m, model.end()) << "unexpected key " << it->key();
    EXPECT_EQ(it->value(), m->second.value);
  }
  EXPECT_TRUE(it->status().ok());
  EXPECT_EQ(seen, model.size());
  EXPECT_EQ(db->GetStats().keys, model.size());
}

// Key, value and version of every key by iteration.
std::map<std::string, std::pair<std::string, uint64_t>> Dump(DB* db) {
  std::map<std::string, std::pair<std::string, uint64_t>> out;
  auto it = db->NewIterator(ReadOptions{});
  for (; it->Valid(); it->Next()) {
    out[std::string(it->key())] = {std::string(it->value()), it->version()};
  }
  EXPECT_TRUE(it->status().ok());
  return out;
}

// A segment file the writer no longer appends to: a compaction output, or an older writer segment
// (the writer's segment is the newest one that compaction did not write).
std::string SealedSegment(const std::string& dir) {
  std::vector<std::string> files = testing::SegmentFiles(dir);
  auto compaction_output = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    char header[16] = {};
    in.read(header, sizeof(header));
    return (static_cast<uint8_t>(header[12]) & 1) != 0;
  };
  std::string writer;
  for (const std::string& f : files) {
    if (!compaction_output(f)) writer = f;
  }
  for (const std::string& f : files) {
    if (f != writer) return f;
  }
  return "";
}

void CopyDir(const std::string& from, const std::string& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) {
    if (e.path().filename() == "LOCK") continue;
    fs::copy(e.path(), to + "/" + e.path().filename().string(), fs::copy_options::recursive);
  }
}

class IndexCheckpointTest : public ::testing::Test {
 protected:
  std::string dir() const { return tmp_.Sub("db"); }
  std::string index_file() const { return dir() + "/INDEX"; }

  // A store of several segments, compacted once, closed cleanly.
  void Build(Model* model, int n = 3000) {
    auto db = OpenOrDie(Opts(), dir());
    ASSERT_NE(db, nullptr);
    RandomWrites(db.get(), model, n, 6000, 1);
    ASSERT_TRUE(db->Compact().ok());
    RandomWrites(db.get(), model, n, 3000, 2);
    ASSERT_TRUE(db->Close().ok());
    ASSERT_TRUE(fs::exists(index_file()));
  }

  // Opens dir(), expecting the given path to the index and the model's contents.
  void ExpectOpen(bool from_checkpoint, const Model& model, int n = 3000) {
    auto db = OpenOrDie(Opts(), dir());
    ASSERT_NE(db, nullptr);
    EXPECT_EQ(db->GetStats().index_from_checkpoint, from_checkpoint ? 1u : 0u);
    ExpectModel(db.get(), model, n);
  }

  TempDir tmp_;
};

TEST_F(IndexCheckpointTest, ReopenServesWhatAHintReopenServes) {
  Model model;
  Build(&model);
  std::string copy = tmp_.Sub("copy");
  CopyDir(dir(), copy);

  auto a = OpenOrDie(Opts(), dir());
  auto b = OpenOrDie(Opts(false), copy);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->GetStats().index_from_checkpoint, 1u);
  EXPECT_EQ(b->GetStats().index_from_checkpoint, 0u);
  ExpectModel(a.get(), model, 3000);
  ExpectModel(b.get(), model, 3000);
  EXPECT_EQ(Dump(a.get()), Dump(b.get()));
  Stats sa = a->GetStats(), sb = b->GetStats();
  EXPECT_EQ(sa.keys, sb.keys);
  EXPECT_EQ(sa.live_bytes, sb.live_bytes);
  EXPECT_EQ(sa.dead_bytes, sb.dead_bytes);
  EXPECT_EQ(sa.segments, sb.segments);
  EXPECT_EQ(sa.last_sequence, sb.last_sequence);
  EXPECT_LE(sa.index_memory_bytes, sb.index_memory_bytes * 11 / 10);

  // Both go on alike: writes, compaction, another reopen through a new checkpoint.
  Model model_b = model;
  RandomWrites(a.get(), &model, 3000, 3000, 3);
  RandomWrites(b.get(), &model_b, 3000, 3000, 3);
  ASSERT_TRUE(a->Compact().ok());
  ASSERT_TRUE(b->Compact().ok());
  EXPECT_EQ(a->GetStats().live_bytes, b->GetStats().live_bytes);
  EXPECT_EQ(a->GetStats().last_sequence, b->GetStats().last_sequence);
  ASSERT_TRUE(a->Close().ok());
  a.reset();
  ExpectOpen(true, model);
}

TEST_F(IndexCheckpointTest, ExpiredKeysStayExpired) {
  Model model;
  {
    auto db = OpenOrDie(Opts(), dir());
    for (int i = 0; i < 100; ++i) {
      PutOptions po;
      po.ttl_ms = i % 2 == 0 ? 1 : 3600 * 1000;
      ASSERT_TRUE(db->Put(Key(i), "v" + std::to_string(i), po).ok());
      if (i % 2 != 0)
        model[Key(i)] = Item{"v" + std::to_string(i), db->GetVersioned(Key(i))->expiry_ms, 0};
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto db = OpenOrDie(Opts(), dir());
  EXPECT_EQ(db->GetStats().index_from_checkpoint, 1u);
  for (int i = 0; i < 100; ++i) {
    auto r = db->GetVersioned(Key(i));
    if (i % 2 == 0) {
      EXPECT_TRUE(r.status().IsNotFound()) << Key(i);
    } else {
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->expiry_ms, model[Key(i)].expiry_ms);
    }
  }
  EXPECT_EQ(Dump(db.get()).size(), 50u);
}

TEST_F(IndexCheckpointTest, DamagedCheckpointIsIgnored) {
  Model model;
  Build(&model);
  std::string good = tmp_.Sub("INDEX.good");
  fs::copy_file(index_file(), good);
  const uint64_t size = fs::file_size(good);
  // The header, the first part's header, inside parts, the meta, the footer.
  for (uint64_t at : {uint64_t{3}, uint64_t{33}, uint64_t{40}, size / 3, size / 2, size - 200,
                      size - 30, size - 10, size - 1}) {
    SCOPED_TRACE("flipped byte at " + std::to_string(at));
    fs::copy_file(good, index_file(), fs::copy_options::overwrite_existing);
    {
      std::fstream f(index_file(), std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(at));
      char c;
      f.get(c);
      f.seekp(static_cast<std::streamoff>(at));
      f.put(static_cast<char>(c ^ 0x20));
    }
    ExpectOpen(false, model);
  }
  for (uint64_t cut : {uint64_t{0}, uint64_t{20}, size / 2, size - 1}) {
    SCOPED_TRACE("truncated to " + std::to_string(cut));
    fs::copy_file(good, index_file(), fs::copy_options::overwrite_existing);
    fs::resize_file(index_file(), cut);
    ExpectOpen(false, model);
  }
  {
    SCOPED_TRACE("bytes appended");
    fs::copy_file(good, index_file(), fs::copy_options::overwrite_existing);
    std::ofstream(index_file(), std::ios::app | std::ios::binary) << "tail";
    ExpectOpen(false, model);
  }
  // The good one still loads (the opens above closed cleanly and rewrote it: restore ours).
  fs::copy_file(good, index_file(), fs::copy_options::overwrite_existing);
  ExpectOpen(true, model);
}

TEST_F(IndexCheckpointTest, StaleCheckpointIsIgnored) {
  Model model;
  Build(&model);
  // Segments added and removed by compaction.
  std::string before_compaction = tmp_.Sub("INDEX.before");
  {
    auto db = OpenOrDie(Opts(), dir());
    ASSERT_TRUE(db->Close().ok());
  }
  fs::copy_file(index_file(), before_compaction);
  {
    auto db = OpenOrDie(Opts(), dir());
    RandomWrites(db.get(), &model, 3000, 3000, 5);
    ASSERT_TRUE(db->Compact().ok());
  }
  fs::copy_file(before_compaction, index_file(), fs::copy_options::overwrite_existing);
  ExpectOpen(false, model);

  // A segment resized behind the store's back (zeros appended to a sealed one).
  { auto db = OpenOrDie(Opts(), dir()); }
  ASSERT_TRUE(fs::exists(index_file()));
  std::string sealed = SealedSegment(dir());
  ASSERT_FALSE(sealed.empty());
  fs::resize_file(sealed, fs::file_size(sealed) + 4096);
  ExpectOpen(false, model);  // (the open cuts the zeros again)

  // An unfinished deletion (OBSOLETE) means the last run did not close cleanly.
  { auto db = OpenOrDie(Opts(), dir()); }
  std::ofstream(dir() + "/OBSOLETE") << "not a valid list";
  ExpectOpen(false, model);
}

TEST_F(IndexCheckpointTest, OptionOffAndOrderedIndexWriteNone) {
  Model model;
  Build(&model);
  {
    Options o = Opts(false);
    auto db = OpenOrDie(o, dir());
    EXPECT_EQ(db->GetStats().index_from_checkpoint, 0u);
    ASSERT_TRUE(db->Put(Key(0), "x").ok());
    model[Key(0)] = Item{"x", 0, 0};
    EXPECT_FALSE(fs::exists(index_file()));  // removed all the same
  }
  EXPECT_FALSE(fs::exists(index_file()));
  {
    auto db = OpenOrDie(Opts(), dir());  // writes one at close
  }
  ASSERT_TRUE(fs::exists(index_file()));
  {
    Options o = Opts();
    o.index = IndexKind::kOrdered;
    auto db = OpenOrDie(o, dir());
    EXPECT_EQ(db->GetStats().index_from_checkpoint, 0u);
    ExpectModel(db.get(), model, 3000);
    ASSERT_TRUE(db->Delete(Key(1)).ok());
    model.erase(Key(1));
  }
  EXPECT_FALSE(fs::exists(index_file()));
  ExpectOpen(false, model);
}

TEST_F(IndexCheckpointTest, TableShadowsSurvive) {
  std::string table = tmp_.Sub("t.vtb");
  {
    auto b = TableBuilder::Create(table);
    ASSERT_TRUE(b.ok());
    for (int i = 0; i < 100; ++i) ASSERT_TRUE((*b)->Add(Key(1000 + i), "table").ok());
    ASSERT_TRUE((*b)->Finish().ok());
  }
  Model model;
  std::string name;
  {
    auto db = OpenOrDie(Opts(), dir());
    ASSERT_TRUE(db->AttachTable(table, &name).ok());
    for (int i = 0; i < 100; ++i) model[Key(1000 + i)] = Item{"table", 0, 0};
  }
  // An attach (or detach) in a session: no checkpoint at its close.
  EXPECT_FALSE(fs::exists(index_file()));
  {
    auto db = OpenOrDie(Opts(), dir());
    for (int i = 0; i < 100; i += 3) {
      ASSERT_TRUE(db->Delete(Key(1000 + i)).ok());  // a tombstone that hides the table's key
      model.erase(Key(1000 + i));
    }
    ASSERT_TRUE(db->Put(Key(1001), "live").ok());
    model[Key(1001)] = Item{"live", 0, 0};
  }
  std::string copy = tmp_.Sub("copy");
  CopyDir(dir(), copy);
  auto a = OpenOrDie(Opts(), dir());
  auto b = OpenOrDie(Opts(false), copy);
  EXPECT_EQ(a->GetStats().index_from_checkpoint, 1u);
  EXPECT_EQ(Dump(a.get()), Dump(b.get()));
  EXPECT_EQ(a->GetStats().keys, b->GetStats().keys);
  for (int i = 0; i < 100; ++i) {
    auto r = a->Get(Key(1000 + i));
    auto m = model.find(Key(1000 + i));
    if (m == model.end()) {
      EXPECT_TRUE(r.status().IsNotFound()) << Key(1000 + i);
    } else {
      ASSERT_TRUE(r.ok()) << Key(1000 + i);
      EXPECT_EQ(*r, m->second.value);
    }
  }
  // Detaching changes what the shadows mean: an old checkpoint is stale afterwards.
  ASSERT_TRUE(a->Close().ok());
  a.reset();
  std::string with_table = tmp_.Sub("INDEX.table");
  fs::copy_file(index_file(), with_table);
  {
    auto db = OpenOrDie(Opts(), dir());
    Status s = db->DetachTable(name);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(db->Close().ok());
  }
  EXPECT_FALSE(fs::exists(index_file()));
  fs::copy_file(with_table, index_file(), fs::copy_options::overwrite_existing);
  auto c = OpenOrDie(Opts(), dir());
  EXPECT_EQ(c->GetStats().index_from_checkpoint, 0u);
  EXPECT_TRUE(c->Get(Key(1002)).status().IsNotFound());  // the table is gone
  EXPECT_EQ(*c->Get(Key(1001)), "live");
}

// An open that changes nothing leaves INDEX and the hints as they are at its close (no rewrite,
// no tail scan), and the next open still loads INDEX.
TEST_F(IndexCheckpointTest, CloseAfterReadsOnlyRewritesNothing) {
  Model model;
  Build(&model);
  auto files = [&] {
    std::map<std::string, fs::file_time_type> out;
    for (const auto& e : fs::directory_iterator(dir())) {
      if (e.path().filename() != "LOCK") out[e.path().filename()] = e.last_write_time();
    }
    return out;
  };
  const auto before = files();
  ASSERT_TRUE(before.contains("INDEX"));
  ExpectOpen(/*from_checkpoint=*/true, model);  // reads, then the close
  EXPECT_EQ(files(), before);
  ExpectOpen(/*from_checkpoint=*/true, model);
  // After a write the close rewrites them, and the next open loads the new INDEX.
  {
    auto db = OpenOrDie(Opts(), dir());
    ASSERT_TRUE(db->Put("zz", "v").ok());
    model["zz"] = Item{"v"};
    ASSERT_TRUE(db->Close().ok());
  }
  EXPECT_NE(files(), before);
  auto db = OpenOrDie(Opts(), dir());
  EXPECT_EQ(db->GetStats().index_from_checkpoint, 1u);
  EXPECT_EQ(*db->Get("zz"), "v");
}

TEST_F(IndexCheckpointTest, AnOlderCheckpointReplaysTheWritesAfterIt) {
  Model model;
  Build(&model);
  std::string old_index = tmp_.Sub("INDEX.old");
  fs::copy_file(index_file(), old_index);
  // More writes: the tail grows and new segments follow it (1 MiB segments).
  {
    auto db = OpenOrDie(Opts(), dir());
    RandomWrites(db.get(), &model, 3000, 6000, 4);
  }
  fs::copy_file(old_index, index_file(), fs::copy_options::overwrite_existing);
  auto db = OpenOrDie(Opts(), dir());
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->GetStats().index_from_checkpoint, 1u);
  EXPECT_GE(db->GetStats().index_replayed_segments, 2u);
  ExpectModel(db.get(), model, 3000);
  // It serves what an open from the hint files serves.
  ASSERT_TRUE(db->Close().ok());
  std::string copy = tmp_.Sub("copy");
  CopyDir(dir(), copy);
  fs::copy_file(old_index, index_file(), fs::copy_options::overwrite_existing);
  fs::remove(copy + "/INDEX");
  auto a = OpenOrDie(Opts(), dir());
  auto h = OpenOrDie(Opts(false), copy);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(a->GetStats().index_from_checkpoint, 1u);
  EXPECT_EQ(Dump(a.get()), Dump(h.get()));
  Stats sa = a->GetStats(), sh = h->GetStats();
  EXPECT_EQ(sa.keys, sh.keys);
  EXPECT_EQ(sa.live_bytes, sh.live_bytes);
  EXPECT_EQ(sa.last_sequence, sh.last_sequence);
}

TEST_F(IndexCheckpointTest, WritesKeepItCompactionsAndTablesRemoveIt) {
  Model model;
  Build(&model);
  using Change = std::function<Status(DB*)>;
  std::string table = tmp_.Sub("t.vtb");
  {
    auto b = TableBuilder::Create(table);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE((*b)->Add("zz-table-key", "v").ok());
    ASSERT_TRUE((*b)->Finish().ok());
  }
  const std::vector<std::tuple<std::string, bool, Change>> changes = {
      {"put", true, [](DB* db) { return db->Put("zz", "v"); }},
      {"delete", true, [](DB* db) { return db->Delete("zz"); }},
      {"batch", true,
       [](DB* db) {
         WriteBatch b;
         b.Put("zz", "w");
         return db->Write(b);
       }},
      {"compact", false, [](DB* db) { return db->Compact(); }},
      {"attach", false, [&](DB* db) { return db->AttachTable(table, nullptr); }},
  };
  for (const auto& [what, kept, change] : changes) {
    SCOPED_TRACE(what);
    ASSERT_TRUE(fs::exists(index_file()));
    auto db = OpenOrDie(Opts(), dir());
    EXPECT_EQ(db->GetStats().index_from_checkpoint, 1u);
    ASSERT_TRUE(db->Get(Key(1)).ok() || db->Get(Key(1)).status().IsNotFound());
    EXPECT_TRUE(fs::exists(index_file()));  // reads leave it
    ASSERT_TRUE(change(db.get()).ok());
    EXPECT_EQ(fs::exists(index_file()), kept);
    ASSERT_TRUE(db->Close().ok());  // writes a new one
  }
}

// A crash after writes: the next open loads INDEX and replays what was appended since; after a
// compaction it cannot (INDEX is gone) and loads from the hints.
TEST_F(IndexCheckpointTest, KilledAfterWritesReplaysOntoIt) {
  Model model;
  Build(&model);
  for (bool compact : {false, true}) {
    SCOPED_TRACE(compact ? "compaction before the kill" : "writes only");
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Result<std::unique_ptr<DB>> db = DB::Open(Opts(), dir());
      if (!db.ok() || (*db)->GetStats().index_from_checkpoint != 1) _exit(2);
      for (int i = 0; i < 2000; ++i) {
        if (!(*db)->Put(Key(i), "after-" + std::to_string(i)).ok()) _exit(3);
        if (i % 7 == 0 && !(*db)->Delete(Key(2000 + i)).ok()) _exit(3);
      }
      if (compact && !(*db)->Compact().ok()) _exit(5);
      if (!(*db)->Put(Key(2999), "last").ok()) _exit(3);
      kill(getpid(), SIGKILL);
      _exit(4);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exit " << WEXITSTATUS(status);
    for (int i = 0; i < 2000; ++i) {
      model[Key(i)] = Item{"after-" + std::to_string(i), 0, 0};
      if (i % 7 == 0) model.erase(Key(2000 + i));
    }
    model[Key(2999)] = Item{"last", 0, 0};
    EXPECT_EQ(fs::exists(index_file()), !compact);
    {
      auto db = OpenOrDie(Opts(), dir());
      ASSERT_NE(db, nullptr);
      EXPECT_EQ(db->GetStats().index_from_checkpoint, compact ? 0u : 1u);
      if (!compact) {
        EXPECT_GE(db->GetStats().index_replayed_segments, 1u);
      }
      ExpectModel(db.get(), model, 3000);
      ASSERT_TRUE(db->Close().ok());
    }
    ExpectOpen(true, model);  // the close wrote a checkpoint of it all
  }
}

}  // namespace
}  // namespace varve
