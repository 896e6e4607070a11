// Varve adapters: "varve" (hash index, mmap reads and writes: the defaults), "varve-ordered"
// (ordered index, for scans), "varve-pread" (hash index, one pread per Get instead of mmap) and
// "varve-write" (hash index, one write(2) per write group instead of appending through a mapping).
#include <string>

#include "engine.h"
#include "varve/db.h"

namespace varve_bench {
namespace {

class VarveEngine : public Engine {
 public:
  explicit VarveEngine(std::string variant) : variant_(std::move(variant)) {}
  std::string Name() const override { return variant_; }
  std::string Settings() const override {
    return std::string("index=") + (opts_.index == varve::IndexKind::kHash ? "hash" : "ordered") +
           ", durability=" + (opts_.durability == varve::Durability::kSync ? "sync" : "none") +
           ", segment=" + std::to_string(opts_.segment_size_bytes >> 20) +
           " MiB, mmap_reads=" + (opts_.mmap_reads ? "on" : "off") +
           ", mmap_writes=" + (opts_.mmap_writes ? "on" : "off") +
           ", open_threads=0 (all CPUs), background compaction at live ratio " +
           std::to_string(opts_.compaction_live_ratio).substr(0, 4) + ", no compression";
  }
  bool Ordered() const override { return variant_ == "varve-ordered"; }

  void Open(const std::string& dir, const EngineConfig& cfg) override {
    opts_ = varve::Options();
    opts_.index = Ordered() ? varve::IndexKind::kOrdered : varve::IndexKind::kHash;
    opts_.durability = cfg.sync_writes ? varve::Durability::kSync : varve::Durability::kNone;
    opts_.mmap_reads = variant_ != "varve-pread";
    opts_.mmap_writes = variant_ != "varve-write";
    auto db = varve::DB::Open(opts_, dir);
    if (!db.ok()) Die("varve open: " + db.status().ToString());
    db_ = std::move(*db);
  }
  void Close() override {
    if (!db_) return;
    Check(db_->Close(), "close");
    db_.reset();
  }
  void Put(std::string_view key, std::string_view value) override {
    Check(db_->Put(key, value), "put");
  }
  bool Get(std::string_view key, std::string* value) override {
    varve::Status s = db_->Get(key, value);  // reuses *value's buffer, as the peers' adapters do
    if (s.ok()) return true;
    if (!s.IsNotFound()) Die("varve get: " + s.ToString());
    return false;
  }
  void Delete(std::string_view key) override { Check(db_->Delete(key), "delete"); }
  void PutBatch(const std::vector<std::pair<std::string, std::string>>& kvs, bool sync) override {
    varve::WriteBatch b;
    for (const auto& [k, v] : kvs) b.Put(k, v);
    Check(db_->Write(b), "write");
    if (sync && opts_.durability != varve::Durability::kSync) Check(db_->Sync(), "sync");
  }
  void Sync() override { Check(db_->Sync(), "sync"); }
  bool LogSyncs(uint64_t* syncs) const override {
    *syncs = db_->GetStats().syncs;
    return true;
  }
  uint64_t Iterate(const std::function<void(std::string_view, std::string_view)>& fn) override {
    uint64_t n = 0;
    auto it = db_->NewIterator();
    for (; it->Valid(); it->Next(), ++n) fn(it->key(), it->value());
    Check(it->status(), "iterate");
    return n;
  }
  uint64_t Range(std::string_view start, uint64_t n,
                 const std::function<void(std::string_view, std::string_view)>& fn) override {
    if (!Ordered()) return 0;
    uint64_t c = 0;
    varve::ReadOptions ro;
    ro.start = start;
    auto it = db_->NewIterator(ro);
    for (; it->Valid() && c < n; it->Next(), ++c) fn(it->key(), it->value());
    Check(it->status(), "range");
    return c;
  }

 private:
  static void Check(const varve::Status& s, const char* what) {
    if (!s.ok()) Die(std::string("varve ") + what + ": " + s.ToString());
  }
  std::string variant_;
  varve::Options opts_;
  std::unique_ptr<varve::DB> db_;
};

}  // namespace

std::unique_ptr<Engine> MakeVarve(const std::string& variant) {
  return std::make_unique<VarveEngine>(variant);
}

}  // namespace varve_bench
