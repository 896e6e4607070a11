// WriteBatch: puts and deletes applied atomically by DB::Write — all of them or none, also after
// a crash. Later operations on the same key win. Optional conditions make the batch a
// transaction: it applies only if every named key still has the expected version. Not
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace varve {

class WriteBatch {
 public:
  enum class OpType : uint8_t { kPut, kDelete };
  struct Op {
    OpType type;
    std::string key;
    std::string value;
    uint64_t ttl_ms = 0;      // 0 = never expires
    uint32_t user_flags = 0;  // see PutOptions::user_flags
  };

  void Put(std::string_view key, std::string_view value, uint64_t ttl_ms = 0,
           uint32_t user_flags = 0) {
    bytes_ += key.size() + value.size();
    ops_.push_back(Op{OpType::kPut, std::string(key), std::string(value), ttl_ms, user_flags});
  }
  void Delete(std::string_view key) {
    bytes_ += key.size();
    ops_.push_back(Op{OpType::kDelete, std::string(key), {}, 0, 0});
  }
  // DB::Write applies the batch only if key's version (DB::VersionedValue::version) is then
  // version; 0 means the key must be absent. Otherwise it writes nothing and returns Aborted.
  struct Condition {
    std::string key;
    uint64_t version = 0;
  };
  void Expect(std::string_view key, uint64_t version) {
    conditions_.push_back(Condition{std::string(key), version});
  }
  void Clear() {
    ops_.clear();
    conditions_.clear();
    bytes_ = 0;
  }

  size_t Count() const { return ops_.size(); }
  // Key and value bytes held.
  size_t ByteSize() const { return bytes_; }
  const std::vector<Op>& ops() const { return ops_; }
  const std::vector<Condition>& conditions() const { return conditions_; }

 private:
  std::vector<Op> ops_;
  std::vector<Condition> conditions_;
  size_t bytes_ = 0;
};

}  // namespace varve
