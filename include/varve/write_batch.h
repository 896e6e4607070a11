// WriteBatch: puts and deletes applied atomically by DB::Write — all of them or none, also after
// a crash. Later operations on the same key win. Not thread-safe.
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
  void Clear() {
    ops_.clear();
    bytes_ = 0;
  }

  size_t Count() const { return ops_.size(); }
  // Key and value bytes held.
  size_t ByteSize() const { return bytes_; }
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
  size_t bytes_ = 0;
};

}  // namespace varve
