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
        if (!more_) return;
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
      if (!Wanted(key)) continue;
      IndexEntry e = entry;
      while (true) {
        bool moved;
        Status s = db_->ReadEntry(key, e, &value_, &moved);
        if (moved) {
          if (!db_->index()->Get(key, &e)) break;  // deleted meanwhile
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
