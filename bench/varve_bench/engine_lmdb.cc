// LMDB (Debian liblmdb-dev): one B+tree in a memory map. Not durable mode: MDB_WRITEMAP |
// MDB_NOSYNC | MDB_NOMETASYNC (LMDB's advice for bulk loads; Sync() = mdb_env_sync). Durable
// mode: every commit synced (MDB_WRITEMAP only). MDB_NORDAHEAD when the data outgrows memory.
// Readers keep one read transaction per thread (mdb_txn_reset / renew around each Get).
#include <lmdb.h>

#include <mutex>

#include "engine.h"

namespace varve_bench {
namespace {

thread_local MDB_txn* tls_txn = nullptr;
thread_local uint64_t tls_gen = 0;
uint64_t g_gen = 0;

class LmdbEngine : public Engine {
 public:
  std::string Name() const override { return "lmdb"; }
  std::string Settings() const override { return settings_; }
  bool Ordered() const override { return true; }

  void Open(const std::string& dir, const EngineConfig& cfg) override {
    Check(mdb_env_create(&env_), "env_create");
    Check(mdb_env_set_mapsize(env_, 256ull << 30), "set_mapsize");
    Check(mdb_env_set_maxreaders(env_, 256), "set_maxreaders");
    unsigned flags = MDB_NOTLS | MDB_WRITEMAP;
    if (!cfg.sync_writes) flags |= MDB_NOSYNC | MDB_NOMETASYNC;
    if (cfg.larger_than_memory) flags |= MDB_NORDAHEAD;
    settings_ = std::string("map 256 GiB, WRITEMAP") +
                (cfg.sync_writes ? ", every commit synced" : ", NOSYNC + NOMETASYNC") +
                (cfg.larger_than_memory ? ", NORDAHEAD" : "") +
                ", one write txn per put, per-thread read txn";
    Check(mdb_env_open(env_, dir.c_str(), flags, 0644), "env_open");
    MDB_txn* txn;
    Check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    Check(mdb_dbi_open(txn, nullptr, 0, &dbi_), "dbi_open");
    Check(mdb_txn_commit(txn), "commit");
    ++g_gen;
  }
  void Close() override {
    if (!env_) return;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (MDB_txn* t : readers_) mdb_txn_abort(t);
      readers_.clear();
    }
    ++g_gen;
    tls_txn = nullptr;
    Check(mdb_env_sync(env_, 1), "env_sync");
    mdb_env_close(env_);
    env_ = nullptr;
  }
  void Put(std::string_view key, std::string_view value) override {
    MDB_txn* txn;
    Check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v{value.size(), const_cast<char*>(value.data())};
    Check(mdb_put(txn, dbi_, &k, &v, 0), "put");
    Check(mdb_txn_commit(txn), "commit");
  }
  bool Get(std::string_view key, std::string* value) override {
    MDB_txn* txn = ReadTxn();
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    MDB_val v;
    int rc = mdb_get(txn, dbi_, &k, &v);
    bool found = rc == 0;
    if (found)
      value->assign(static_cast<const char*>(v.mv_data), v.mv_size);
    else if (rc != MDB_NOTFOUND)
      Check(rc, "get");
    mdb_txn_reset(txn);
    return found;
  }
  void Delete(std::string_view key) override {
    MDB_txn* txn;
    Check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    MDB_val k{key.size(), const_cast<char*>(key.data())};
    int rc = mdb_del(txn, dbi_, &k, nullptr);
    if (rc != 0 && rc != MDB_NOTFOUND) Check(rc, "del");
    Check(mdb_txn_commit(txn), "commit");
  }
  void PutBatch(const std::vector<std::pair<std::string, std::string>>& kvs, bool sync) override {
    MDB_txn* txn;
    Check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    for (const auto& [key, value] : kvs) {
      MDB_val k{key.size(), const_cast<char*>(key.data())};
      MDB_val v{value.size(), const_cast<char*>(value.data())};
      Check(mdb_put(txn, dbi_, &k, &v, 0), "put");
    }
    Check(mdb_txn_commit(txn), "commit");
    if (sync) Check(mdb_env_sync(env_, 1), "env_sync");
  }
  void Sync() override { Check(mdb_env_sync(env_, 1), "env_sync"); }
  uint64_t Iterate(const std::function<void(std::string_view, std::string_view)>& fn) override {
    return Scan(nullptr, UINT64_MAX, fn);
  }
  uint64_t Range(std::string_view start, uint64_t n,
                 const std::function<void(std::string_view, std::string_view)>& fn) override {
    return Scan(&start, n, fn);
  }

 private:
  uint64_t Scan(std::string_view* start, uint64_t n,
                const std::function<void(std::string_view, std::string_view)>& fn) {
    MDB_txn* txn = ReadTxn();
    MDB_cursor* c;
    Check(mdb_cursor_open(txn, dbi_, &c), "cursor_open");
    MDB_val k, v;
    int rc;
    if (start) {
      k = MDB_val{start->size(), const_cast<char*>(start->data())};
      rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    } else {
      rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    }
    uint64_t cnt = 0;
    while (rc == 0 && cnt < n) {
      fn(std::string_view(static_cast<const char*>(k.mv_data), k.mv_size),
         std::string_view(static_cast<const char*>(v.mv_data), v.mv_size));
      ++cnt;
      rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) Check(rc, "cursor_get");
    mdb_cursor_close(c);
    mdb_txn_reset(txn);
    return cnt;
  }
  MDB_txn* ReadTxn() {
    if (tls_txn == nullptr || tls_gen != g_gen) {
      MDB_txn* t;
      Check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &t), "read txn_begin");
      std::lock_guard<std::mutex> l(mu_);
      readers_.push_back(t);
      tls_txn = t;
      tls_gen = g_gen;
      return t;
    }
    Check(mdb_txn_renew(tls_txn), "txn_renew");
    return tls_txn;
  }
  static void Check(int rc, const char* what) {
    if (rc != 0) Die(std::string("lmdb ") + what + ": " + mdb_strerror(rc));
  }
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  std::mutex mu_;
  std::vector<MDB_txn*> readers_;
  std::string settings_;
};

}  // namespace

std::unique_ptr<Engine> MakeLmdb() { return std::make_unique<LmdbEngine>(); }

}  // namespace varve_bench
