// tkrzw (Debian libtkrzw-dev): HashDBM (file hash table) and TreeDBM (B+tree on a HashDBM), the
// author's recommended tuning: buckets = 2x expected keys, in-place updates for HashDBM, no record
// compression; memory-mapped file (MemoryMapParallelFile) while the data fits in memory,
// PositionalParallelFile (pread) when it does not. Durable writes: Synchronize(hard) after each
// write (tkrzw has no write-ahead log to group-commit).
#include <tkrzw_dbm_hash.h>
#include <tkrzw_dbm_tree.h>
#include <tkrzw_file_mmap.h>
#include <tkrzw_file_pos.h>

#include <mutex>

#include "engine.h"

namespace varve_bench {
namespace {

class TkrzwEngine : public Engine {
 public:
  explicit TkrzwEngine(bool tree) : tree_(tree) {}
  std::string Name() const override { return tree_ ? "tkrzw-tree" : "tkrzw-hash"; }
  std::string Settings() const override { return settings_; }
  bool Ordered() const override { return tree_; }

  void Open(const std::string& dir, const EngineConfig& cfg) override {
    std::unique_ptr<tkrzw::File> file;
    if (cfg.larger_than_memory)
      file = std::make_unique<tkrzw::PositionalParallelFile>();
    else
      file = std::make_unique<tkrzw::MemoryMapParallelFile>();
    int64_t buckets = std::max<int64_t>(cfg.expected_keys * 2, 1 << 16);
    sync_ = cfg.sync_writes;
    if (tree_) {
      auto db = std::make_unique<tkrzw::TreeDBM>(std::move(file));
      tkrzw::TreeDBM::TuningParameters tp;
      tp.num_buckets = std::max<int64_t>(cfg.expected_keys / 16, 1 << 16);
      tp.max_cached_pages = cfg.larger_than_memory ? 2000 : 100000;
      Check(db->OpenAdvanced(dir + "/casket.tkt", true, tkrzw::File::OPEN_DEFAULT, tp), "open");
      settings_ = "TreeDBM, " + std::to_string(tp.max_cached_pages) + " cached pages, " +
                  std::string(cfg.larger_than_memory ? "pread file" : "mmap file");
      dbm_ = std::move(db);
    } else {
      auto db = std::make_unique<tkrzw::HashDBM>(std::move(file));
      tkrzw::HashDBM::TuningParameters tp;
      tp.num_buckets = buckets;
      tp.update_mode = tkrzw::HashDBM::UPDATE_IN_PLACE;
      tp.offset_width = 5;
      Check(db->OpenAdvanced(dir + "/casket.tkh", true, tkrzw::File::OPEN_DEFAULT, tp), "open");
      settings_ = "HashDBM, " + std::to_string(buckets) + " buckets, in-place updates, " +
                  std::string(cfg.larger_than_memory ? "pread file" : "mmap file");
      dbm_ = std::move(db);
    }
    settings_ +=
        std::string(", no compression, sync ") + (sync_ ? "Synchronize(hard) per write" : "off");
  }
  void Close() override {
    if (!dbm_) return;
    Check(dbm_->Close(), "close");
    dbm_.reset();
  }
  void Put(std::string_view key, std::string_view value) override {
    Check(dbm_->Set(key, value, true), "set");
    if (sync_) Check(dbm_->Synchronize(true), "sync");
  }
  bool Get(std::string_view key, std::string* value) override {
    tkrzw::Status s = dbm_->Get(key, value);
    if (s == tkrzw::Status::NOT_FOUND_ERROR) return false;
    Check(s, "get");
    return true;
  }
  void Delete(std::string_view key) override {
    tkrzw::Status s = dbm_->Remove(key);
    if (s != tkrzw::Status::NOT_FOUND_ERROR) Check(s, "remove");
    if (sync_) Check(dbm_->Synchronize(true), "sync");
  }
  void PutBatch(const std::vector<std::pair<std::string, std::string>>& kvs, bool sync) override {
    for (const auto& [k, v] : kvs) Check(dbm_->Set(k, v, true), "set");
    if (sync || sync_) Check(dbm_->Synchronize(true), "sync");
  }
  void Sync() override { Check(dbm_->Synchronize(true), "sync"); }
  uint64_t Iterate(const std::function<void(std::string_view, std::string_view)>& fn) override {
    auto it = dbm_->MakeIterator();
    Check(it->First(), "first");
    return Walk(it.get(), UINT64_MAX, fn);
  }
  uint64_t Range(std::string_view start, uint64_t n,
                 const std::function<void(std::string_view, std::string_view)>& fn) override {
    if (!tree_) return 0;
    auto it = dbm_->MakeIterator();
    Check(it->Jump(start), "jump");
    return Walk(it.get(), n, fn);
  }

 private:
  uint64_t Walk(tkrzw::DBM::Iterator* it, uint64_t n,
                const std::function<void(std::string_view, std::string_view)>& fn) {
    uint64_t c = 0;
    std::string k, v;
    while (c < n) {
      tkrzw::Status s = it->Get(&k, &v);
      if (s == tkrzw::Status::NOT_FOUND_ERROR) break;
      Check(s, "iter get");
      fn(k, v);
      ++c;
      s = it->Next();
      if (s == tkrzw::Status::NOT_FOUND_ERROR) break;
      Check(s, "next");
    }
    return c;
  }
  static void Check(const tkrzw::Status& s, const char* what) {
    if (s != tkrzw::Status::SUCCESS) Die(std::string("tkrzw ") + what + ": " + s.GetMessage());
  }
  bool tree_;
  bool sync_ = false;
  std::unique_ptr<tkrzw::DBM> dbm_;
  std::string settings_;
};

}  // namespace

std::unique_ptr<Engine> MakeTkrzw(bool tree) { return std::make_unique<TkrzwEngine>(tree); }

}  // namespace varve_bench
