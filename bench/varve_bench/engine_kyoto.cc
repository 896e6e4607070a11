// Kyoto Cabinet HashDB (Debian libkyotocabinet-dev): buckets = 2x expected keys, a 1 GiB
// memory-mapped region (tune_map; less when the data outgrows memory), default options (no
// compression). Durable writes: synchronize(hard) after each write.
#include <kchashdb.h>

#include "engine.h"

namespace varve_bench {
namespace {

class KyotoEngine : public Engine {
 public:
  std::string Name() const override { return "kyoto-hash"; }
  std::string Settings() const override { return settings_; }
  bool Ordered() const override { return false; }

  void Open(const std::string& dir, const EngineConfig& cfg) override {
    db_ = std::make_unique<kyotocabinet::HashDB>();
    int64_t buckets = std::max<int64_t>(cfg.expected_keys * 2, 1 << 16);
    int64_t map =
        cfg.larger_than_memory ? (cfg.cache_bytes ? cfg.cache_bytes / 2 : 64ll << 20) : (1ll << 30);
    db_->tune_buckets(buckets);
    db_->tune_map(map);
    sync_ = cfg.sync_writes;
    settings_ = "HashDB, " + std::to_string(buckets) + " buckets, mmap " +
                std::to_string(map >> 20) + " MiB, no compression, sync " +
                (sync_ ? "synchronize(hard) per write" : "off");
    if (!db_->open(dir + "/casket.kch",
                   kyotocabinet::HashDB::OWRITER | kyotocabinet::HashDB::OCREATE))
      Fail("open");
  }
  void Close() override {
    if (!db_) return;
    if (!db_->close()) Fail("close");
    db_.reset();
  }
  void Put(std::string_view key, std::string_view value) override {
    if (!db_->set(key.data(), key.size(), value.data(), value.size())) Fail("set");
    if (sync_ && !db_->synchronize(true)) Fail("sync");
  }
  bool Get(std::string_view key, std::string* value) override {
    size_t n = 0;
    char* v = db_->get(key.data(), key.size(), &n);
    if (!v) {
      if (db_->error().code() != kyotocabinet::BasicDB::Error::NOREC) Fail("get");
      return false;
    }
    value->assign(v, n);
    delete[] v;
    return true;
  }
  void Delete(std::string_view key) override {
    if (!db_->remove(key.data(), key.size()) &&
        db_->error().code() != kyotocabinet::BasicDB::Error::NOREC)
      Fail("remove");
    if (sync_ && !db_->synchronize(true)) Fail("sync");
  }
  void PutBatch(const std::vector<std::pair<std::string, std::string>>& kvs, bool sync) override {
    for (const auto& [k, v] : kvs)
      if (!db_->set(k.data(), k.size(), v.data(), v.size())) Fail("set");
    if ((sync || sync_) && !db_->synchronize(true)) Fail("sync");
  }
  void Sync() override {
    if (!db_->synchronize(true)) Fail("sync");
  }
  uint64_t Iterate(const std::function<void(std::string_view, std::string_view)>& fn) override {
    std::unique_ptr<kyotocabinet::DB::Cursor> c(db_->cursor());
    uint64_t n = 0;
    if (!c->jump()) return 0;
    std::string k, v;
    while (c->get(&k, &v, true)) {
      fn(k, v);
      ++n;
    }
    return n;
  }

 private:
  [[noreturn]] void Fail(const char* what) {
    Die(std::string("kyoto ") + what + ": " + db_->error().message());
  }
  std::unique_ptr<kyotocabinet::HashDB> db_;
  bool sync_ = false;
  std::string settings_;
};

}  // namespace

std::unique_ptr<Engine> MakeKyotoHash() { return std::make_unique<KyotoEngine>(); }

}  // namespace varve_bench
