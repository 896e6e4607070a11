// RocksDB (Debian librocksdb-dev). Leveled compaction tuned with OptimizeLevelStyleCompaction and
// IncreaseParallelism, an LRU block cache with 10-bit Bloom filters, LZ4 where built in; values of
// 1 KiB and more go to blob files (integrated BlobDB, RocksDB's own advice for large values).
// Durable writes use WriteOptions::sync (group commit across writer threads).
#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "engine.h"

namespace varve_bench {
namespace {

class RocksEngine : public Engine {
 public:
  std::string Name() const override { return "rocksdb"; }
  std::string Settings() const override { return settings_; }
  bool Ordered() const override { return true; }

  void Open(const std::string& dir, const EngineConfig& cfg) override {
    rocksdb::Options o;
    o.create_if_missing = true;
    o.IncreaseParallelism(2);
    o.OptimizeLevelStyleCompaction(256ull << 20);
    uint64_t cache = cfg.cache_bytes ? cfg.cache_bytes : (512ull << 20);
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = rocksdb::NewLRUCache(cache);
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    t.cache_index_and_filter_blocks = false;
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    auto comp = rocksdb::GetSupportedCompressions();
    bool lz4 = false;
    for (auto c : comp) lz4 |= c == rocksdb::kLZ4Compression;
    o.compression = lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
    std::string blob = "off";
    if (cfg.value_bytes >= 1024) {
      o.enable_blob_files = true;
      o.min_blob_size = 1024;
      o.blob_file_size = 256ull << 20;
      o.enable_blob_garbage_collection = true;
      o.blob_compression_type = rocksdb::kNoCompression;
      blob = "on (min 1 KiB, GC on)";
    }
    if (cfg.larger_than_memory) o.advise_random_on_open = true;
    wo_.sync = cfg.sync_writes;
    settings_ = "block cache " + std::to_string(cache >> 20) +
                " MiB LRU, bloom 10 bits, memtable 64 MiB (OptimizeLevelStyleCompaction 256 MiB), "
                "2 background threads, compression " +
                (lz4 ? std::string("LZ4") : std::string("none")) + ", blob files " + blob +
                ", WAL on, sync " + (cfg.sync_writes ? "per write" : "off");
    rocksdb::DB* db = nullptr;
    auto s = rocksdb::DB::Open(o, dir, &db);
    if (!s.ok()) Die("rocksdb open: " + s.ToString());
    db_.reset(db);
  }
  void Close() override {
    if (!db_) return;
    auto s = db_->Close();
    if (!s.ok()) Die("rocksdb close: " + s.ToString());
    db_.reset();
  }
  void Put(std::string_view key, std::string_view value) override {
    Check(db_->Put(wo_, rocksdb::Slice(key.data(), key.size()),
                   rocksdb::Slice(value.data(), value.size())));
  }
  bool Get(std::string_view key, std::string* value) override {
    auto s = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), value);
    if (s.IsNotFound()) return false;
    Check(s);
    return true;
  }
  void Delete(std::string_view key) override {
    Check(db_->Delete(wo_, rocksdb::Slice(key.data(), key.size())));
  }
  void PutBatch(const std::vector<std::pair<std::string, std::string>>& kvs, bool sync) override {
    rocksdb::WriteBatch b;
    for (const auto& [k, v] : kvs) b.Put(k, v);
    rocksdb::WriteOptions w = wo_;
    w.sync = w.sync || sync;
    Check(db_->Write(w, &b));
  }
  void Sync() override { Check(db_->FlushWAL(true)); }
  uint64_t Iterate(const std::function<void(std::string_view, std::string_view)>& fn) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++n)
      fn(std::string_view(it->key().data(), it->key().size()),
         std::string_view(it->value().data(), it->value().size()));
    Check(it->status());
    return n;
  }
  uint64_t Range(std::string_view start, uint64_t n,
                 const std::function<void(std::string_view, std::string_view)>& fn) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    uint64_t c = 0;
    for (it->Seek(rocksdb::Slice(start.data(), start.size())); it->Valid() && c < n;
         it->Next(), ++c)
      fn(std::string_view(it->key().data(), it->key().size()),
         std::string_view(it->value().data(), it->value().size()));
    Check(it->status());
    return c;
  }

 private:
  static void Check(const rocksdb::Status& s) {
    if (!s.ok()) Die("rocksdb: " + s.ToString());
  }
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions wo_;
  std::string settings_;
};

}  // namespace

std::unique_ptr<Engine> MakeRocksDB() { return std::make_unique<RocksEngine>(); }

}  // namespace varve_bench
