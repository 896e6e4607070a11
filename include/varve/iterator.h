// Iterator over a store's live keys. Not a snapshot: each key present for the whole iteration is
// returned exactly once with a value it had during the iteration; keys written or deleted during
// the iteration may or may not appear. Order: key order with IndexKind::kOrdered, none with kHash.
// Not thread-safe; the DB must outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "varve/status.h"

namespace varve {

class Iterator {
 public:
  virtual ~Iterator() = default;
  // True while positioned on a record. After the last one, check status().
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  // Preconditions: Valid(). Views stay valid until Next() or destruction.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // The record's version (its sequence number), as used by CompareAndSet.
  virtual uint64_t version() const = 0;
  // Absolute expiry time in ms since the Unix epoch; 0 = never.
  virtual uint64_t expiry_ms() const = 0;
  // The client flags stored with the value (PutOptions::user_flags).
  virtual uint32_t user_flags() const = 0;
  // The first error met, if any; iteration stops at an error.
  virtual Status status() const = 0;
};

}  // namespace varve
