#include "server/memcache/memcache_store.h"

#include <memory>
#include <string>

#include "util/clock.h"
#include "varve/iterator.h"

namespace varve::server::memcache {
namespace {

// Read-modify-write loops retry when another writer got in between; this bounds them.
constexpr int kMaxAttempts = 100000;

PutOptions Options(const Expiry& e, uint32_t flags) {
  PutOptions o;
  o.ttl_ms = e.ttl_ms;
  o.user_flags = flags;
  return o;
}

uint64_t ExpiryMsAfterWrite(uint64_t ttl_ms) { return ttl_ms == 0 ? 0 : NowUnixMs() + ttl_ms; }

}  // namespace

Outcome ItemStore::Read(std::string_view key, DB::VersionedValue* item, Status* error) {
  Result<DB::VersionedValue> r = db_->GetVersioned(key);
  if (r.ok()) {
    *item = std::move(r).value();
    return Outcome::kStored;
  }
  if (r.status().IsNotFound()) return Outcome::kNotFound;
  *error = r.status();
  return Outcome::kError;
}

Outcome ItemStore::AbsentOrExists(std::string_view key, Status* error) {
  DB::VersionedValue item;
  Outcome o = Read(key, &item, error);
  if (o == Outcome::kError) return o;
  return o == Outcome::kNotFound ? Outcome::kNotFound : Outcome::kExists;
}

Outcome ItemStore::TooManyRetries(std::string_view key, Status* error) {
  *error = Status::Busy("too many concurrent updates of one key; try again");
  return Outcome::kError;
}

Outcome ItemStore::Store(const StoreRequest& req, uint64_t* new_cas, Status* error) {
  if (new_cas != nullptr) *new_cas = 0;
  switch (req.mode) {
    case StoreMode::kAppend:
    case StoreMode::kPrepend:
      return Concat(req, new_cas, error);
    case StoreMode::kAdd: {
      if (req.expiry.expired) {
        // Stored already expired: nothing to write, but add still fails on a present key.
        DB::VersionedValue item;
        Outcome o = Read(req.key, &item, error);
        if (o == Outcome::kError) return o;
        return o == Outcome::kStored ? Outcome::kNotStored : Outcome::kStored;
      }
      Status s = db_->CompareAndSet(req.key, 0, req.data, Options(req.expiry, req.flags), new_cas);
      if (s.ok()) return Outcome::kStored;
      if (s.IsAborted()) return Outcome::kNotStored;
      *error = s;
      return Outcome::kError;
    }
    case StoreMode::kSet:
    case StoreMode::kReplace:
      if (req.has_cas) return CompareAndStore(req, new_cas, error);
      if (req.mode == StoreMode::kReplace) return Replace(req, new_cas, error);
      if (req.expiry.expired) {
        Status s = db_->Delete(req.key);
        if (s.ok()) return Outcome::kStored;
        *error = s;
        return Outcome::kError;
      }
      if (req.want_cas) return SetReturningCas(req, new_cas, error);
      {
        Status s = db_->Put(req.key, req.data, Options(req.expiry, req.flags));
        if (s.ok()) return Outcome::kStored;
        *error = s;
        return Outcome::kError;
      }
  }
  return Outcome::kError;
}

Outcome ItemStore::CompareAndStore(const StoreRequest& req, uint64_t* new_cas, Status* error) {
  // Versions start at 1: a cas unique of 0 never matches a stored item.
  if (req.cas == 0) return AbsentOrExists(req.key, error);
  Status s = req.expiry.expired ? db_->CompareAndDelete(req.key, req.cas)
                                : db_->CompareAndSet(req.key, req.cas, req.data,
                                                     Options(req.expiry, req.flags), new_cas);
  if (s.ok()) return Outcome::kStored;
  if (s.IsAborted()) return AbsentOrExists(req.key, error);
  *error = s;
  return Outcome::kError;
}

Outcome ItemStore::SetReturningCas(const StoreRequest& req, uint64_t* new_cas, Status* error) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    DB::VersionedValue item;
    Outcome o = Read(req.key, &item, error);
    if (o == Outcome::kError) return o;
    uint64_t expected = o == Outcome::kStored ? item.version : 0;
    Status s =
        db_->CompareAndSet(req.key, expected, req.data, Options(req.expiry, req.flags), new_cas);
    if (s.ok()) return Outcome::kStored;
    if (!s.IsAborted()) {
      *error = s;
      return Outcome::kError;
    }
  }
  return TooManyRetries(req.key, error);
}

Outcome ItemStore::Replace(const StoreRequest& req, uint64_t* new_cas, Status* error) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    DB::VersionedValue item;
    Outcome o = Read(req.key, &item, error);
    if (o == Outcome::kError) return o;
    if (o == Outcome::kNotFound) return Outcome::kNotStored;
    Status s = req.expiry.expired ? db_->CompareAndDelete(req.key, item.version)
                                  : db_->CompareAndSet(req.key, item.version, req.data,
                                                       Options(req.expiry, req.flags), new_cas);
    if (s.ok()) return Outcome::kStored;
    if (!s.IsAborted()) {
      *error = s;
      return Outcome::kError;
    }
  }
  return TooManyRetries(req.key, error);
}

Outcome ItemStore::Concat(const StoreRequest& req, uint64_t* new_cas, Status* error) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    DB::VersionedValue item;
    Outcome o = Read(req.key, &item, error);
    if (o == Outcome::kError) return o;
    if (o == Outcome::kNotFound) return Outcome::kNotStored;
    if (req.has_cas && item.version != req.cas) return Outcome::kExists;
    if (item.value.size() + req.data.size() > max_value_bytes_) return Outcome::kTooLarge;
    if (req.mode == StoreMode::kAppend) {
      item.value.append(req.data);
    } else {
      item.value.insert(0, req.data);
    }
    // The item keeps its flags and its expiry.
    Expiry keep;
    keep.ttl_ms = RemainingTtlMs(item.expiry_ms, NowUnixMs());
    Status s = db_->CompareAndSet(req.key, item.version, item.value, Options(keep, item.user_flags),
                                  new_cas);
    if (s.ok()) return Outcome::kStored;
    if (!s.IsAborted()) {
      *error = s;
      return Outcome::kError;
    }
    if (req.has_cas) return AbsentOrExists(req.key, error);
  }
  return TooManyRetries(req.key, error);
}

Outcome ItemStore::Arith(const ArithRequest& req, ArithResult* result, Status* error) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    DB::VersionedValue item;
    Outcome o = Read(req.key, &item, error);
    if (o == Outcome::kError) return o;
    if (o == Outcome::kNotFound) {
      if (!req.vivify) return Outcome::kNotFound;
      result->value = req.initial;
      result->created = true;
      result->cas = 0;
      result->expiry_ms = 0;
      if (req.vivify_expiry.expired) return Outcome::kStored;  // created already expired
      std::string text = std::to_string(req.initial);
      Status s = db_->CompareAndSet(req.key, 0, text, Options(req.vivify_expiry, 0), &result->cas);
      if (s.ok()) {
        result->expiry_ms = ExpiryMsAfterWrite(req.vivify_expiry.ttl_ms);
        return Outcome::kStored;
      }
      if (!s.IsAborted()) {
        *error = s;
        return Outcome::kError;
      }
      continue;  // created by someone else meanwhile
    }
    if (req.has_cas && item.version != req.cas) return Outcome::kExists;
    uint64_t value;
    if (!ParseCounter(item.value, &value)) return Outcome::kNonNumeric;
    if (req.incr) {
      value += req.delta;  // wraps at 2^64, as memcached does
    } else {
      value = value > req.delta ? value - req.delta : 0;
    }
    Expiry expiry;
    if (req.has_expiry) {
      expiry = req.expiry;
    } else {
      expiry.ttl_ms = RemainingTtlMs(item.expiry_ms, NowUnixMs());
    }
    result->value = value;
    result->created = false;
    result->cas = 0;
    result->expiry_ms = 0;
    Status s;
    if (expiry.expired) {
      s = db_->CompareAndDelete(req.key, item.version);
    } else {
      std::string text = std::to_string(value);
      s = db_->CompareAndSet(req.key, item.version, text, Options(expiry, item.user_flags),
                             &result->cas);
    }
    if (s.ok()) {
      result->expiry_ms = expiry.expired ? 0 : ExpiryMsAfterWrite(expiry.ttl_ms);
      return Outcome::kStored;
    }
    if (!s.IsAborted()) {
      *error = s;
      return Outcome::kError;
    }
    if (req.has_cas) return AbsentOrExists(req.key, error);
  }
  return TooManyRetries(req.key, error);
}

Outcome ItemStore::Touch(std::string_view key, const Expiry& expiry, DB::VersionedValue* item,
                         Status* error) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    Outcome o = Read(key, item, error);
    if (o != Outcome::kStored) return o;
    Status s;
    if (expiry.expired) {
      s = db_->CompareAndDelete(key, item->version);
    } else {
      uint64_t version = 0;
      s = db_->CompareAndSet(key, item->version, item->value, Options(expiry, item->user_flags),
                             &version);
      if (s.ok()) {
        item->version = version;
        item->expiry_ms = ExpiryMsAfterWrite(expiry.ttl_ms);
      }
    }
    if (s.ok()) return Outcome::kStored;
    if (!s.IsAborted()) {
      *error = s;
      return Outcome::kError;
    }
  }
  return TooManyRetries(key, error);
}

Outcome ItemStore::Delete(std::string_view key, bool has_cas, uint64_t cas, Status* error) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    DB::VersionedValue item;
    Outcome o = Read(key, &item, error);
    if (o != Outcome::kStored) return o;
    if (has_cas && item.version != cas) return Outcome::kExists;
    Status s = db_->CompareAndDelete(key, item.version);
    if (s.ok()) return Outcome::kStored;
    if (!s.IsAborted()) {
      *error = s;
      return Outcome::kError;
    }
    if (has_cas) return AbsentOrExists(key, error);
  }
  return TooManyRetries(key, error);
}

Outcome ItemStore::Vivify(std::string_view key, const Expiry& expiry, DB::VersionedValue* item,
                          bool* created, Status* error) {
  *created = false;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    Outcome o = Read(key, item, error);
    if (o != Outcome::kNotFound) return o;
    if (expiry.expired) return Outcome::kNotFound;
    uint64_t version = 0;
    Status s = db_->CompareAndSet(key, 0, {}, Options(expiry, 0), &version);
    if (s.ok()) {
      item->value.clear();
      item->version = version;
      item->expiry_ms = ExpiryMsAfterWrite(expiry.ttl_ms);
      item->user_flags = 0;
      *created = true;
      return Outcome::kStored;
    }
    if (!s.IsAborted()) {
      *error = s;
      return Outcome::kError;
    }
  }
  return TooManyRetries(key, error);
}

Status ItemStore::FlushAll() {
  // Items written after this point survive, like memcached's "items updated before the flush".
  const uint64_t last = db_->GetStats().last_sequence;
  std::unique_ptr<Iterator> it = db_->NewIterator();
  for (; it->Valid(); it->Next()) {
    if (it->version() > last) continue;
    Status s = db_->CompareAndDelete(it->key(), it->version());
    if (!s.ok() && !s.IsAborted()) return s;
  }
  return it->status();
}

}  // namespace varve::server::memcache
