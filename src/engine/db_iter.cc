// Iterator: walks the index in chunks (no lock held while reading values) and reads each value
// with one pread.
#include <algorithm>

#include "engine/db_impl.h"

namespace varve {
namespace {

class DBIter final : public Iterator {
 public:
  DBIter(DBImpl* db, const ReadOptions& opts)
      : db_(db), prefix_(opts.prefix), start_(opts.start), end_(opts.end) {
    if (db_->index()->Ordered() && prefix_ > start_) start_ = prefix_;
    Advance();
  }

  bool Valid() const override { return valid_; }
  void Next() override { Advance(); }
  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_.value; }
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
    valid_ = false;
    while (status_.ok()) {
      if (pos_ >= chunk_.size()) {
        if (!more_) {
          AdvanceTables();
          return;
        }
        chunk_.clear();
        pos_ = 0;
        more_ = db_->index()->Scan(&cursor_, start_, 1024, &chunk_);
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

  std::shared_ptr<const TableLayers::Set> tables_;
  size_t layer_ = 0;
  std::unique_ptr<TableIterator> table_it_;
  DBImpl* db_;
  std::string prefix_, start_, end_;
  Index::Cursor cursor_;
  std::vector<Index::KeyEntry> chunk_;
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
