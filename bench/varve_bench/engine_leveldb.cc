// LevelDB (Debian libleveldb-dev): 64 MiB write buffer and table files, LRU block cache, 10-bit
// Bloom filters, Snappy (LevelDB's default). Durable writes use WriteOptions::sync (LevelDB
// groups concurrent writers into one log write + sync).
#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include "engine.h"

namespace varve_bench {
namespace {

class LevelEngine : public Engine {
 public:
  ~LevelEngine() override {
    delete filter_;
    delete cache_;
  }
  std::string Name() const override { return "leveldb"; }
  std::string Settings() const override { return settings_; }
  bool Ordered() const override { return true; }

  void Open(const std::string& dir, const EngineConfig& cfg) override {
    leveldb::Options o;
    o.create_if_missing = true;
    uint64_t cache = cfg.cache_bytes ? cfg.cache_bytes : (512ull << 20);
    cache_ = leveldb::NewLRUCache(cache);
    filter_ = leveldb::NewBloomFilterPolicy(10);
    o.block_cache = cache_;
    o.filter_policy = filter_;
    o.write_buffer_size = 64ull << 20;
    o.max_file_size = 64ull << 20;
    o.max_open_files = 10000;
    wo_.sync = cfg.sync_writes;
    settings_ = "block cache " + std::to_string(cache >> 20) +
                " MiB, bloom 10 bits, write buffer 64 MiB, files 64 MiB, snappy, sync " +
                (cfg.sync_writes ? "per write" : "off");
    leveldb::DB* db = nullptr;
    auto s = leveldb::DB::Open(o, dir, &db);
    if (!s.ok()) Die("leveldb open: " + s.ToString());
    db_.reset(db);
  }
  void Close() override { db_.reset(); }
  void Put(std::string_view key, std::string_view value) override {
    Check(db_->Put(wo_, leveldb::Slice(key.data(), key.size()),
                   leveldb::Slice(value.data(), value.size())));
  }
  bool Get(std::string_view key, std::string* value) override {
    auto s = db_->Get(leveldb::ReadOptions(), leveldb::Slice(key.data(), key.size()), value);
    if (s.IsNotFound()) return false;
    Check(s);
    return true;
  }
  void Delete(std::string_view key) override {
    Check(db_->Delete(wo_, leveldb::Slice(key.data(), key.size())));
  }
  void PutBatch(const std::vector<std::pair<std::string, std::string>>& kvs, bool sync) override {
    leveldb::WriteBatch b;
    for (const auto& [k, v] : kvs) b.Put(k, v);
    leveldb::WriteOptions w = wo_;
    w.sync = w.sync || sync;
    Check(db_->Write(w, &b));
  }
  void Sync() override {
    // LevelDB has no WAL flush call: an empty synced batch syncs the log.
    leveldb::WriteBatch b;
    leveldb::WriteOptions w;
    w.sync = true;
    Check(db_->Write(w, &b));
  }
  uint64_t Iterate(const std::function<void(std::string_view, std::string_view)>& fn) override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++n)
      fn(std::string_view(it->key().data(), it->key().size()),
         std::string_view(it->value().data(), it->value().size()));
    Check(it->status());
    return n;
  }
  uint64_t Range(std::string_view start, uint64_t n,
                 const std::function<void(std::string_view, std::string_view)>& fn) override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    uint64_t c = 0;
    for (it->Seek(leveldb::Slice(start.data(), start.size())); it->Valid() && c < n;
         it->Next(), ++c)
      fn(std::string_view(it->key().data(), it->key().size()),
         std::string_view(it->value().data(), it->value().size()));
    Check(it->status());
    return c;
  }

 private:
  static void Check(const leveldb::Status& s) {
    if (!s.ok()) Die("leveldb: " + s.ToString());
  }
  std::unique_ptr<leveldb::DB> db_;
  leveldb::Cache* cache_ = nullptr;
  const leveldb::FilterPolicy* filter_ = nullptr;
  leveldb::WriteOptions wo_;
  std::string settings_;
};

}  // namespace

std::unique_ptr<Engine> MakeLevelDB() { return std::make_unique<LevelEngine>(); }

}  // namespace varve_bench
