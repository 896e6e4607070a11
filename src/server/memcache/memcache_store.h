// memcached item semantics on top of the engine: storage modes, CAS, incr/decr, touch and
// flush_all, each an atomic read-modify-write built from DB::GetVersioned and
// DB::CompareAndSet / CompareAndDelete retry loops. A memcached "cas unique" is the record's
// version; client flags are PutOptions::user_flags. Shared by the text and meta commands.
#pragma once

#include <cstdint>
#include <string_view>

#include "server/memcache/memcache_parse.h"
#include "varve/db.h"
#include "varve/status.h"

namespace varve::server::memcache {

enum class Outcome : uint8_t {
  kStored,      // done (STORED / HD / TOUCHED / DELETED / a number)
  kNotStored,   // add on a present key, replace/append/prepend on an absent one
  kExists,      // CAS mismatch
  kNotFound,    // absent (cas, incr/decr, touch, delete)
  kNonNumeric,  // incr/decr on a value that is not a decimal number
  kTooLarge,    // append/prepend would exceed max_value_bytes
  kError,       // engine error: see the Status
};

enum class StoreMode : uint8_t { kSet, kAdd, kReplace, kAppend, kPrepend };

struct StoreRequest {
  StoreMode mode = StoreMode::kSet;
  std::string_view key;
  std::string_view data;
  uint32_t flags = 0;
  Expiry expiry;         // ignored by append/prepend, which keep the item's own
  bool has_cas = false;  // compare with cas first (set/replace become "cas")
  uint64_t cas = 0;
  bool want_cas = false;  // fill *new_cas (costs a read for plain sets)
};

struct ArithRequest {
  std::string_view key;
  bool incr = true;
  uint64_t delta = 1;
  bool has_cas = false;
  uint64_t cas = 0;
  bool has_expiry = false;  // ma T: set this expiry on success; else the item's is kept
  Expiry expiry;
  bool vivify = false;  // ma N: create with `initial` and vivify_expiry on a miss
  Expiry vivify_expiry;
  uint64_t initial = 0;
};

struct ArithResult {
  uint64_t value = 0;
  uint64_t cas = 0;
  uint64_t expiry_ms = 0;
  bool created = false;
};

class ItemStore {
 public:
  ItemStore(DB* db, uint64_t max_value_bytes) : db_(db), max_value_bytes_(max_value_bytes) {}

  // set / add / replace / append / prepend / cas. On kStored *new_cas is the new version when
  // req.want_cas (0 if the item was stored already expired, i.e. removed).
  Outcome Store(const StoreRequest& req, uint64_t* new_cas, Status* error);
  Outcome Arith(const ArithRequest& req, ArithResult* result, Status* error);
  // Gives the item a new expiry, keeping value and flags. On kStored *item is the item as it
  // is now (its value, new version and expiry); an already-expired expiry removes it.
  Outcome Touch(std::string_view key, const Expiry& expiry, DB::VersionedValue* item,
                Status* error);
  // Deletes the key (only at version cas when has_cas): kStored, kNotFound or kExists.
  Outcome Delete(std::string_view key, bool has_cas, uint64_t cas, Status* error);
  // Creates an empty item with the expiry if the key is absent (mg N). *created tells whether
  // this call created it; *item is the item either way (kStored), or kNotFound if it expired
  // at once.
  Outcome Vivify(std::string_view key, const Expiry& expiry, DB::VersionedValue* item,
                 bool* created, Status* error);
  // Deletes every item written before the call (compare-and-delete each, so writes racing with
  // the flush survive).
  Status FlushAll();

 private:
  // Reads key: kStored with *item, kNotFound, or kError.
  Outcome Read(std::string_view key, DB::VersionedValue* item, Status* error);
  Outcome StoreExpired(const StoreRequest& req, Status* error);
  Outcome Concat(const StoreRequest& req, uint64_t* new_cas, Status* error);
  Outcome CompareAndStore(const StoreRequest& req, uint64_t* new_cas, Status* error);
  Outcome SetReturningCas(const StoreRequest& req, uint64_t* new_cas, Status* error);
  Outcome Replace(const StoreRequest& req, uint64_t* new_cas, Status* error);
  // After a failed compare: NotFound if the key is absent now, else Exists.
  Outcome AbsentOrExists(std::string_view key, Status* error);
  Outcome TooManyRetries(std::string_view key, Status* error);

  DB* const db_;
  const uint64_t max_value_bytes_;
};

}  // namespace varve::server::memcache
