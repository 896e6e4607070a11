// Iterator: walks the index in chunks (no lock held while reading values) and reads each value
// with one pread; a full iteration of the hash index reads the segments in file order instead
// (FullScan).
#include <algorithm>

#include "engine/db_impl.h"
#include "engine/full_scan.h"

namespace varve {
namespace {

class DBIter final : public Iterator {
 public:
  DBIter(DBImpl* db, const ReadOptions& opts)
      : db_(db), prefix_(opts.prefix), start_(opts.start), end_(opts.end) {
    if (db_->index()->Ordered() && prefix_ > start_) start_ = prefix_;
    if (db_->index()->Ordered() && db_->tables() != nullptr && !db_->tables()->empty()) {
      tables_ = db_->tables()->Current();
      merged_ = !tables_->layers.empty();
    }
    if (!db_->index()->Ordered() && prefix_.empty() && start_.empty() && end_.empty()) {
      scan_ = std::make_unique<FullScan>(db_);
      if (!scan_->usable()) scan_.reset();
    }
    Advance();
  }

  bool Valid() const override { return valid_; }
  void Next() override {
    in_scan_buffer_ = false;
    Advance();
  }
  std::string_view key() const override { return in_scan_buffer_ ? scan_rec_.key : key_; }
  std::string_view value() const override {
    return in_scan_buffer_ ? scan_rec_.value : value_.value;
  }
  uint64_t version() const override { return value_.version; }
  uint64_t expiry_ms() const override { return value_.expiry_ms; }
  uint32_t user_flags() const override { return value_.user_flags; }
  Status status() const override { return status_; }

 private:
  // True if key is past every key the ordered scan may return.
  bool PastEnd(std::string_view key) const {
    if (!end_.empty() && key >= end_) return true;
    return !prefix_.empty() && key.substr(0, prefix_.size()) > prefix_;
  }
  bool Wanted(std::string_view key) const {
    if (!prefix_.empty() && !key.starts_with(prefix_)) return false;
    if (!start_.empty() && key < start_) return false;
    return end_.empty() || key < end_;
  }

  void Advance() {
    if (merged_) return AdvanceMerged();
    if (scan_ != nullptr || scanned_) return AdvanceScan();
    valid_ = false;
    while (status_.ok()) {
      if (pos_ >= chunk_.size()) {
        if (!more_) {
          AdvanceTables();
          return;
        }
        chunk_.clear();
        pos_ = 0;
        more_ = db_->index()->Scan(&cursor_, start_, NextChunkSize(), &chunk_);
        continue;
      }
      auto& [key, entry] = chunk_[pos_++];
      if (db_->index()->Ordered() && PastEnd(key)) {
        more_ = false;
        chunk_.clear();
        return;
      }
      if (!Wanted(key) || entry.tombstone()) continue;
      IndexEntry e = entry;
      while (true) {
        bool moved;
        Status s = db_->ReadEntry(key, e, &value_, &moved);
        if (moved) {
          if (!db_->index()->Get(key, &e) || e.tombstone()) break;  // deleted meanwhile
          continue;
        }
        if (s.IsNotFound()) break;  // expired
        if (!s.ok()) {
          status_ = s;
          return;
        }
        key_ = std::move(key);
        valid_ = true;
        return;
      }
    }
  }

  // The live keys from the scan of the segments, then the tables' keys.
  void AdvanceScan() {
    valid_ = false;
    while (scan_ != nullptr && status_.ok()) {
      std::string key;
      switch (scan_->Next(&scan_rec_, &key)) {
        case FullScan::Step::kRecord:
          value_.version = scan_rec_.seq;
          value_.expiry_ms = scan_rec_.expiry_ms;
          value_.user_flags = scan_rec_.user_flags;
          in_scan_buffer_ = true;
          valid_ = true;
          return;
        case FullScan::Step::kMovedKey: {
          IndexEntry e;
          if (!db_->index()->Get(key, &e) || e.tombstone()) continue;
          if (ReadLive(key, e)) return;
          continue;
        }
        case FullScan::Step::kError:
          status_ = scan_->status();
          return;
        case FullScan::Step::kEnd:
          scan_.reset();
          scanned_ = true;
          break;
      }
    }
    if (status_.ok()) AdvanceTables();
  }

  // After the live keys: the attached tables' keys that the live data does not hold and no newer
  // table holds, table by table (newest first), each in key order.
  void AdvanceTables() {
    if (tables_ == nullptr) {
      if (db_->tables() == nullptr || db_->tables()->empty()) return;
      tables_ = db_->tables()->Current();
      layer_ = tables_->layers.size();
    }
    while (status_.ok()) {
      if (table_it_ == nullptr) {
        if (layer_ == 0) return;
        --layer_;
        table_it_ = tables_->layers[layer_].reader->NewIterator();
        std::string from = std::max(prefix_, start_);
        table_it_->Seek(from);
      } else {
        table_it_->Next();
      }
      if (!table_it_->Valid()) {
        status_ = table_it_->status();
        table_it_.reset();
        continue;
      }
      std::string_view key = table_it_->key();
      if (!prefix_.empty() && !key.starts_with(prefix_)) {
        table_it_.reset();
        continue;
      }
      if (!end_.empty() && key >= end_) {
        table_it_.reset();
        continue;
      }
      if (table_it_->is_tombstone()) continue;
      IndexEntry e;
      if (db_->index()->Get(key, &e)) continue;  // live data (or a delete) shadows it
      bool newer = false;
      std::string scratch;
      for (size_t i = layer_ + 1; i < tables_->layers.size() && !newer; ++i) {
        bool tomb;
        Status s = tables_->layers[i].reader->Find(key, &scratch, &tomb);
        if (!s.ok() && !s.IsNotFound()) {
          status_ = s;
          return;
        }
        newer = s.ok();
      }
      if (newer) continue;
      key_.assign(key);
      value_.value.assign(table_it_->value());
      value_.version = TableLayers::TableVersion(*tables_);
      value_.expiry_ms = 0;
      value_.user_flags = 0;
      valid_ = true;
      return;
    }
  }

  // The ordered index with tables attached: one merge of the live keys and every table in key
  // order. At equal keys live data wins over tables, and a newer table over an older one.
  void AdvanceMerged() {
    valid_ = false;
    if (table_its_.empty()) {
      std::string from = std::max(prefix_, start_);
      for (const auto& layer : tables_->layers) {
        table_its_.push_back(layer.reader->NewIterator());
        table_its_.back()->Seek(from);
      }
    }
    while (status_.ok()) {
      const std::string* live = PeekLive();
      if (!status_.ok()) return;
      // The smallest key among the sources and the newest table that holds it.
      std::string_view min;
      bool any = live != nullptr;
      if (any) min = *live;
      int winner = -1;  // a table index, or -1 for live data
      for (int i = static_cast<int>(table_its_.size()) - 1; i >= 0; --i) {
        TableIterator* t = table_its_[i].get();
        if (!TableUsable(t)) continue;
        if (!any || t->key() < min) {
          min = t->key();
          winner = i;
          any = true;
        }  // equal keys keep the newer table: the scan goes newest first
      }
      if (!any) return;
      if (live != nullptr && *live == min) winner = -1;
      if (winner >= 0) {
        TableIterator* t = table_its_[winner].get();
        bool tomb = t->is_tombstone();
        if (!tomb) {
          key_.assign(t->key());
          value_.value.assign(t->value());
          value_.version = TableLayers::TableVersion(*tables_);
          value_.expiry_ms = 0;
          value_.user_flags = 0;
        }
        SkipTablesAt(tomb ? std::string(min) : key_);
        if (tomb) continue;
        valid_ = true;
        return;
      }
      // Live data: consume it and every table record of the same key.
      auto& [key, entry] = chunk_[pos_++];
      SkipTablesAt(key);
      if (entry.tombstone()) continue;
      if (ReadLive(key, entry)) return;
    }
  }

  // The next live key the scan may return (nullptr when there is none), leaving it at pos_.
  const std::string* PeekLive() {
    while (true) {
      if (pos_ >= chunk_.size()) {
        if (!more_) return nullptr;
        chunk_.clear();
        pos_ = 0;
        more_ = db_->index()->Scan(&cursor_, start_, NextChunkSize(), &chunk_);
        continue;
      }
      const std::string& key = chunk_[pos_].first;
      if (PastEnd(key)) {
        more_ = false;
        chunk_.clear();
        return nullptr;
      }
      if (!Wanted(key)) {
        ++pos_;
        continue;
      }
      return &key;
    }
  }

  // A table iterator positioned on a key the scan may return; records an error.
  bool TableUsable(TableIterator* t) {
    while (t->Valid() && !PastEnd(t->key()) && !Wanted(t->key())) t->Next();
    if (!t->Valid()) {
      if (status_.ok()) status_ = t->status();
      return false;
    }
    return !PastEnd(t->key());
  }

  void SkipTablesAt(std::string_view key) {
    const std::string k(key);  // key may point into an iterator that moves below
    for (auto& t : table_its_) {
      while (t->Valid() && t->key() == k) t->Next();
    }
  }

  // Reads the live record of key into value_; true when it is returned (valid_ set or an error).
  bool ReadLive(std::string& key, const IndexEntry& entry) {
    IndexEntry e = entry;
    while (true) {
      bool moved;
      Status s = db_->ReadEntry(key, e, &value_, &moved);
      if (moved) {
        if (!db_->index()->Get(key, &e) || e.tombstone()) return false;  // deleted meanwhile
        continue;
      }
      if (s.IsNotFound()) return false;  // expired
      if (!s.ok()) {
        status_ = s;
        return true;
      }
      key_ = std::move(key);
      valid_ = true;
      return true;
    }
  }

  bool merged_ = false;
  std::unique_ptr<FullScan> scan_;
  bool scanned_ = false;         // the scan is over: the tables' keys follow
  RecordView scan_rec_;          // the record returned, in the scan's buffer
  bool in_scan_buffer_ = false;  // key() and value() are scan_rec_'s
  std::vector<std::unique_ptr<TableIterator>> table_its_;
  std::shared_ptr<const TableLayers::Set> tables_;
  size_t layer_ = 0;
  std::unique_ptr<TableIterator> table_it_;
  DBImpl* db_;
  std::string prefix_, start_, end_;
  Index::Cursor cursor_;
  // Chunks start small and double: a short range scan copies few keys beyond its end, a long
  // one soon takes the index's locks once per 1024 keys.
  size_t NextChunkSize() {
    size_t n = chunk_size_;
    chunk_size_ = std::min<size_t>(chunk_size_ * 2, 1024);
    return n;
  }
  std::vector<Index::KeyEntry> chunk_;
  size_t chunk_size_ = 32;
  size_t pos_ = 0;
  bool more_ = true;
  bool valid_ = false;
  std::string key_;
  DB::VersionedValue value_;
  Status status_;
};

}  // namespace

std::unique_ptr<Iterator> DBImpl::NewIterator(const ReadOptions& opts) {
  return std::make_unique<DBIter>(this, opts);
}

}  // namespace varve
