// The interface every engine under test implements, and the factory that names them.
//
// Adapters are thin: they map each call onto the peer's native API with the settings that peer
// recommends for the workload (EngineConfig says what the workload needs) and describe those
// settings in Settings(), which the report prints. Errors are fatal (a benchmark that silently
// skips failed writes measures nothing): adapters call Die() with the engine's message.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace varve_bench {

struct EngineConfig {
  uint64_t expected_keys = 0;  // sizing hint (hash buckets, map size)
  size_t key_bytes = 16;
  size_t value_bytes = 100;
  // Every Put/PutBatch is durable when it returns (fdatasync or the engine's equivalent).
  bool sync_writes = false;
  // Memory the engine may use for its caches (block cache, mmap budget); 0 = generous default.
  uint64_t cache_bytes = 0;
  // The data will not fit in memory: prefer the engine's random-read settings (no readahead,
  // pread instead of mmap where that is the engine's own advice).
  bool larger_than_memory = false;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string Name() const = 0;
  // One line: cache sizes, compression, sync, index kind...
  virtual std::string Settings() const = 0;
  // Keys come back in key order (range scans are meaningful).
  virtual bool Ordered() const = 0;
  // Safe to call Put and Get from many threads at once.
  virtual bool ThreadSafe() const { return true; }

  virtual void Open(const std::string& dir, const EngineConfig& cfg) = 0;
  // Flushes and closes; after it returns all data is on disk as far as the engine promises.
  virtual void Close() = 0;

  virtual void Put(std::string_view key, std::string_view value) = 0;
  // False if absent.
  virtual bool Get(std::string_view key, std::string* value) = 0;
  virtual void Delete(std::string_view key) = 0;
  // Atomic where the engine supports it; durable on return if sync.
  virtual void PutBatch(const std::vector<std::pair<std::string, std::string>>& kvs, bool sync) = 0;
  // Everything written so far is durable on return.
  virtual void Sync() = 0;
  // Visits every key; returns the count.
  virtual uint64_t Iterate(const std::function<void(std::string_view, std::string_view)>& fn) = 0;
  // Ordered engines: visits up to n keys >= start in order; returns the count.
  virtual uint64_t Range(std::string_view start, uint64_t n,
                         const std::function<void(std::string_view, std::string_view)>& fn) {
    return 0;
  }
  // Engines that count their log syncs: the count so far (for writes per sync in group commit).
  virtual bool LogSyncs(uint64_t* syncs) const { return false; }
};

// Names: varve, varve-ordered, varve-pread, rocksdb, leveldb, lmdb, tkrzw-hash, tkrzw-tree,
// kyoto-hash.
std::unique_ptr<Engine> MakeEngine(const std::string& name);
const std::vector<std::string>& AllEngineNames();

[[noreturn]] void Die(const std::string& what);

std::unique_ptr<Engine> MakeVarve(const std::string& variant);
std::unique_ptr<Engine> MakeRocksDB();
std::unique_ptr<Engine> MakeLevelDB();
std::unique_ptr<Engine> MakeLmdb();
std::unique_ptr<Engine> MakeTkrzw(bool tree);
std::unique_ptr<Engine> MakeKyotoHash();

}  // namespace varve_bench
