// TableLayers: the immutable tables a store has attached as read-only layers under its live data
// (docs/design.md, "Table layers"; the TABLES manifest is in docs/format.md).
//
// The attached set is an immutable snapshot held by shared_ptr: readers take the current
// snapshot (a pointer copy under a short lock) and read it without locks, so attaching or
// detaching swaps the whole set atomically; a replaced table's file is unlinked at once and its
// mapping released when the last reader drops the snapshot. Attach and Detach are serialized.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "varve/env.h"
#include "varve/table.h"

namespace varve {

class TableLayers {
 public:
  struct Layer {
    std::string name;  // the attached file's base name; attaching the same name replaces it
    std::string file;  // NAME.GENERATION in DIR/tables
    std::shared_ptr<TableReader> reader;
  };
  struct Set {
    std::vector<Layer> layers;  // oldest first; lookups go newest (last) first
    uint64_t generation = 0;    // increases with every attach and detach
  };

  // Reads DIR/TABLES (if any) and opens every table it lists; removes files in DIR/tables that
  // it does not list (left by an interrupted attach).
  static Result<std::unique_ptr<TableLayers>> Open(Env* env, const std::string& dir);

  std::shared_ptr<const Set> Current() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  bool empty() const { return empty_.load(std::memory_order_acquire); }

  // Copies the table at path into DIR/tables, checks it, and makes it the newest layer (or
  // replaces the layer of the same name in place). Durable when it returns.
  Status Attach(const std::string& path, std::string* name);
  Status Detach(const std::string& name);

  // Looks key up in the newest table that holds a record of it. NotFound if none does or that
  // record is a tombstone. *version (if given) is TableVersion(generation).
  static Status Get(const Set& set, std::string_view key, std::string* value);
  // True if the newest record of key among the tables is a value (a delete must shadow it).
  static bool Holds(const Set& set, std::string_view key);
  // The version table values report (CompareAndSet, WriteBatch::Expect): 2^63 + the set's
  // generation. Never 0 (absent) and never a sequence number; it changes with every attach or
  // detach.
  static uint64_t TableVersion(const Set& set) { return (1ull << 63) | set.generation; }

 private:
  TableLayers(Env* env, std::string dir) : env_(env), dir_(std::move(dir)) {}
  Status WriteManifest(const Set& set);
  void Publish(std::shared_ptr<const Set> set);

  Env* const env_;
  const std::string dir_;
  std::mutex attach_mu_;  // serializes Attach/Detach (outer to mu_)
  mutable std::mutex mu_;
  std::shared_ptr<const Set> current_;
  std::atomic<bool> empty_{true};
};

}  // namespace varve
