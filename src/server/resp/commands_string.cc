// String commands: GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX MGET MSET MSETNX INCR DECR
// INCRBY DECRBY INCRBYFLOAT APPEND STRLEN GETRANGE SETRANGE. Read-modify-write ones go through
// ReadModifyWrite (compare-and-set on the record version), so they are atomic against every
// other writer, including the memcached and HTTP front ends.
#include <charconv>
#include <cmath>
#include <string>

#include "server/resp/commands.h"
#include "server/resp/reply.h"
#include "server/resp/text.h"
#include "util/clock.h"
#include "varve/write_batch.h"

namespace varve::server::resp {
namespace {

enum class ExpireKind : uint8_t { kNone, kEx, kPx, kExAt, kPxAt };

// Options of SET and GETEX.
struct SetOptions {
  bool nx = false, xx = false, get = false, keep_ttl = false, persist = false;
  ExpireKind expire = ExpireKind::kNone;
  std::string_view expire_arg;
};

// Parses argv[first..] like Redis's parseExtendedStringArgumentsOrReply; false after replying
// "syntax error". is_set: SET's options (NX XX GET KEEPTTL), else GETEX's (PERSIST).
bool ParseSetOptions(Call& c, size_t first, bool is_set, SetOptions* o) {
  for (size_t j = first; j < c.argv.size(); ++j) {
    std::string_view opt = c.argv[j];
    bool has_next = j + 1 < c.argv.size();
    auto expire_ok = [&](ExpireKind kind) {
      return has_next && !o->keep_ttl && !o->persist &&
             (o->expire == ExpireKind::kNone || o->expire == kind);
    };
    auto take_expire = [&](ExpireKind kind) {
      o->expire = kind;
      o->expire_arg = c.argv[++j];
    };
    if (is_set && EqualsLower(opt, "nx") && !o->xx) {
      o->nx = true;
    } else if (is_set && EqualsLower(opt, "xx") && !o->nx) {
      o->xx = true;
    } else if (is_set && EqualsLower(opt, "get")) {
      o->get = true;
    } else if (is_set && EqualsLower(opt, "keepttl") && o->expire == ExpireKind::kNone) {
      o->keep_ttl = true;
    } else if (!is_set && EqualsLower(opt, "persist") && o->expire == ExpireKind::kNone) {
      o->persist = true;
    } else if (EqualsLower(opt, "ex") && expire_ok(ExpireKind::kEx)) {
      take_expire(ExpireKind::kEx);
    } else if (EqualsLower(opt, "px") && expire_ok(ExpireKind::kPx)) {
      take_expire(ExpireKind::kPx);
    } else if (EqualsLower(opt, "exat") && expire_ok(ExpireKind::kExAt)) {
      take_expire(ExpireKind::kExAt);
    } else if (EqualsLower(opt, "pxat") && expire_ok(ExpireKind::kPxAt)) {
      take_expire(ExpireKind::kPxAt);
    } else {
      ReplySyntaxError(c);
      return false;
    }
  }
  return true;
}

// The absolute expiry (ms since the epoch) an EX/PX/EXAT/PXAT argument asks for, checked like
// Redis's getExpireMillisecondsOrReply; false after replying an error.
bool ExpireAtMs(Call& c, ExpireKind kind, std::string_view arg, uint64_t now_ms, int64_t* at_ms) {
  int64_t v = 0;
  if (!ParseInt64(arg, &v)) {
    ReplyNotInteger(c);
    return false;
  }
  bool seconds = kind == ExpireKind::kEx || kind == ExpireKind::kExAt;
  if (v <= 0 || (seconds && v > INT64_MAX / 1000)) {
    ReplyInvalidExpire(c);
    return false;
  }
  if (seconds) v *= 1000;
  if (kind == ExpireKind::kEx || kind == ExpireKind::kPx) {
    if (v > INT64_MAX - static_cast<int64_t>(now_ms)) {
      ReplyInvalidExpire(c);
      return false;
    }
    v += static_cast<int64_t>(now_ms);
  }
  *at_ms = v;
  return true;
}

void ReplyValueOrNull(Call& c, bool found, const DB::VersionedValue& v) {
  if (found) {
    AppendBulk(c.out, v.value);
  } else {
    ReplyNull(c);
  }
}

// SETEX / PSETEX.
void SetWithExpire(Call& c, ExpireKind kind) {
  uint64_t now = NowUnixMs();
  int64_t at = 0;
  if (!ExpireAtMs(c, kind, c.argv[2], now, &at)) return;
  if (!CheckValueSize(c, c.argv[3].size())) return;
  Status s = c.db()->Put(c.argv[1], c.argv[3], PutOptions{static_cast<uint64_t>(at) - now, 0});
  if (s.ok()) {
    AppendOk(c.out);
  } else {
    AppendStatusError(c.out, s);
  }
}

void IncrementBy(Call& c, int64_t incr) {
  const char* error = nullptr;
  int64_t result = 0;
  char buf[24];
  DB::VersionedValue old;
  bool found = false;
  Status s = ReadModifyWrite(
      c.db(), c.argv[1],
      [&](const DB::VersionedValue* cur, Mutation* m) {
        error = nullptr;
        int64_t value = 0;
        if (cur != nullptr && !ParseInt64(cur->value, &value)) {
          error = "ERR value is not an integer or out of range";
          return;
        }
        if ((incr < 0 && value < 0 && incr < INT64_MIN - value) ||
            (incr > 0 && value > 0 && incr > INT64_MAX - value)) {
          error = "ERR increment or decrement would overflow";
          return;
        }
        result = value + incr;
        char* end = std::to_chars(buf, buf + sizeof(buf), result).ptr;
        m->kind = Mutation::Kind::kPut;
        m->value = std::string_view(buf, static_cast<size_t>(end - buf));
        m->ttl_ms = cur != nullptr ? RemainingTtlMs(cur->expiry_ms, NowUnixMs()) : 0;
      },
      &old, &found);
  if (!s.ok()) {
    AppendStatusError(c.out, s);
  } else if (error != nullptr) {
    AppendError(c.out, error);
  } else {
    AppendInteger(c.out, result);
  }
}

}  // namespace

void CmdGet(Call& c) {
  Result<std::string> r = c.db()->Get(c.argv[1]);
  if (r.ok()) {
    AppendBulk(c.out, *r);
  } else if (r.status().IsNotFound()) {
    ReplyNull(c);
  } else {
    AppendStatusError(c.out, r.status());
  }
}

void CmdSet(Call& c) {
  SetOptions o;
  if (!ParseSetOptions(c, 3, /*is_set=*/true, &o)) return;
  uint64_t now = NowUnixMs();
  int64_t at = 0;
  if (o.expire != ExpireKind::kNone && !ExpireAtMs(c, o.expire, o.expire_arg, now, &at)) return;
  std::string_view key = c.argv[1], value = c.argv[2];
  if (!CheckValueSize(c, value.size())) return;
  // EXAT/PXAT in the past: the key is set and expires at once, i.e. it is deleted.
  bool expired = o.expire != ExpireKind::kNone && static_cast<uint64_t>(at) <= now;
  uint64_t ttl = o.expire != ExpireKind::kNone && !expired ? static_cast<uint64_t>(at) - now : 0;
  if (!o.nx && !o.xx && !o.get && !o.keep_ttl && !expired) {  // the common case: a blind write
    Status s = c.db()->Put(key, value, PutOptions{ttl, 0});
    if (s.ok()) {
      AppendOk(c.out);
    } else {
      AppendStatusError(c.out, s);
    }
    return;
  }
  if (o.nx && !o.get && !expired) {  // put-if-absent needs no read
    Status s = c.db()->CompareAndSet(key, 0, value, PutOptions{ttl, 0});
    if (s.ok()) {
      AppendOk(c.out);
    } else if (s.IsAborted()) {
      ReplyNull(c);
    } else {
      AppendStatusError(c.out, s);
    }
    return;
  }
  bool condition_failed = false;
  DB::VersionedValue old;
  bool found = false;
  Status s = ReadModifyWrite(
      c.db(), key,
      [&](const DB::VersionedValue* cur, Mutation* m) {
        condition_failed = (o.nx && cur != nullptr) || (o.xx && cur == nullptr);
        if (condition_failed) return;
        if (expired) {
          m->kind = Mutation::Kind::kDelete;
          return;
        }
        m->kind = Mutation::Kind::kPut;
        m->value = value;
        m->ttl_ms =
            o.keep_ttl && cur != nullptr ? RemainingTtlMs(cur->expiry_ms, NowUnixMs()) : ttl;
      },
      &old, &found);
  if (!s.ok()) {
    AppendStatusError(c.out, s);
  } else if (o.get) {
    ReplyValueOrNull(c, found, old);
  } else if (condition_failed) {
    ReplyNull(c);
  } else {
    AppendOk(c.out);
  }
}

void CmdSetNx(Call& c) {
  if (!CheckValueSize(c, c.argv[2].size())) return;
  Status s = c.db()->CompareAndSet(c.argv[1], 0, c.argv[2]);
  if (s.ok() || s.IsAborted()) {
    AppendInteger(c.out, s.ok() ? 1 : 0);
  } else {
    AppendStatusError(c.out, s);
  }
}

void CmdSetEx(Call& c) { SetWithExpire(c, ExpireKind::kEx); }
void CmdPSetEx(Call& c) { SetWithExpire(c, ExpireKind::kPx); }

void CmdGetSet(Call& c) {
  if (!CheckValueSize(c, c.argv[2].size())) return;
  DB::VersionedValue old;
  bool found = false;
  Status s = ReadModifyWrite(
      c.db(), c.argv[1],
      [&](const DB::VersionedValue*, Mutation* m) {
        m->kind = Mutation::Kind::kPut;
        m->value = c.argv[2];
      },
      &old, &found);
  if (s.ok()) {
    ReplyValueOrNull(c, found, old);
  } else {
    AppendStatusError(c.out, s);
  }
}

void CmdGetDel(Call& c) {
  DB::VersionedValue old;
  bool found = false;
  Status s = ReadModifyWrite(
      c.db(), c.argv[1],
      [&](const DB::VersionedValue*, Mutation* m) { m->kind = Mutation::Kind::kDelete; }, &old,
      &found);
  if (s.ok()) {
    ReplyValueOrNull(c, found, old);
  } else {
    AppendStatusError(c.out, s);
  }
}

void CmdGetEx(Call& c) {
  SetOptions o;
  if (!ParseSetOptions(c, 2, /*is_set=*/false, &o)) return;
  if (o.expire == ExpireKind::kNone && !o.persist) {
    CmdGet(c);
    return;
  }
  uint64_t now = NowUnixMs();
  int64_t at = 0;
  if (o.expire != ExpireKind::kNone && !ExpireAtMs(c, o.expire, o.expire_arg, now, &at)) return;
  DB::VersionedValue old;
  bool found = false;
  Status s = ReadModifyWrite(
      c.db(), c.argv[1],
      [&](const DB::VersionedValue* cur, Mutation* m) {
        if (cur == nullptr) return;
        if (o.persist) {
          if (cur->expiry_ms == 0) return;  // nothing to remove
          m->kind = Mutation::Kind::kPut;
          m->value = cur->value;
          return;
        }
        uint64_t t = NowUnixMs();
        if (static_cast<uint64_t>(at) <= t) {
          m->kind = Mutation::Kind::kDelete;
          return;
        }
        m->kind = Mutation::Kind::kPut;
        m->value = cur->value;
        m->ttl_ms = static_cast<uint64_t>(at) - t;
      },
      &old, &found);
  if (s.ok()) {
    ReplyValueOrNull(c, found, old);
  } else {
    AppendStatusError(c.out, s);
  }
}

void CmdMGet(Call& c) {
  size_t start = c.out->size();
  AppendArrayHeader(c.out, c.argv.size() - 1);
  for (size_t i = 1; i < c.argv.size(); ++i) {
    Result<std::string> r = c.db()->Get(c.argv[i]);
    if (r.ok()) {
      AppendBulk(c.out, *r);
    } else if (r.status().IsNotFound()) {
      ReplyNull(c);
    } else {
      c.out->resize(start);  // an error replaces the whole reply
      AppendStatusError(c.out, r.status());
      return;
    }
  }
}

namespace {

// MSET / MSETNX: pairs after the name, values within the limit; false after replying.
bool CheckPairs(Call& c) {
  if (c.argv.size() % 2 != 1) {
    ReplyArityError(c, c.spec->name);
    return false;
  }
  for (size_t i = 2; i < c.argv.size(); i += 2) {
    if (!CheckValueSize(c, c.argv[i].size())) return false;
  }
  return true;
}

Status WritePairs(Call& c) {
  WriteBatch batch;
  for (size_t i = 1; i + 1 < c.argv.size(); i += 2) batch.Put(c.argv[i], c.argv[i + 1]);
  return c.db()->Write(batch);
}

}  // namespace

void CmdMSet(Call& c) {
  if (!CheckPairs(c)) return;
  Status s = WritePairs(c);
  if (s.ok()) {
    AppendOk(c.out);
  } else {
    AppendStatusError(c.out, s);
  }
}

void CmdMSetNx(Call& c) {
  if (!CheckPairs(c)) return;
  // One transaction: every key must be absent when the batch commits.
  WriteBatch batch;
  for (size_t i = 1; i + 1 < c.argv.size(); i += 2) {
    batch.Expect(c.argv[i], 0);
    batch.Put(c.argv[i], c.argv[i + 1]);
  }
  Status s = c.db()->Write(batch);
  if (s.ok() || s.IsAborted()) {
    AppendInteger(c.out, s.ok() ? 1 : 0);
  } else {
    AppendStatusError(c.out, s);
  }
}

void CmdIncr(Call& c) { IncrementBy(c, 1); }
void CmdDecr(Call& c) { IncrementBy(c, -1); }

void CmdIncrBy(Call& c) {
  int64_t incr = 0;
  if (!ParseInt64(c.argv[2], &incr)) return ReplyNotInteger(c);
  IncrementBy(c, incr);
}

void CmdDecrBy(Call& c) {
  int64_t decr = 0;
  if (!ParseInt64(c.argv[2], &decr)) return ReplyNotInteger(c);
  if (decr == INT64_MIN) return AppendError(c.out, "ERR decrement would overflow");
  IncrementBy(c, -decr);
}

void CmdIncrByFloat(Call& c) {
  long double incr = 0;
  if (!ParseLongDouble(c.argv[2], &incr)) {
    return AppendError(c.out, "ERR value is not a valid float");
  }
  const char* error = nullptr;
  std::string result;
  DB::VersionedValue old;
  bool found = false;
  Status s = ReadModifyWrite(
      c.db(), c.argv[1],
      [&](const DB::VersionedValue* cur, Mutation* m) {
        error = nullptr;
        long double value = 0;
        if (cur != nullptr && !ParseLongDouble(cur->value, &value)) {
          error = "ERR value is not a valid float";
          return;
        }
        value += incr;
        if (std::isnan(value) || std::isinf(value)) {
          error = "ERR increment would produce NaN or Infinity";
          return;
        }
        result = FormatLongDouble(value);
        m->kind = Mutation::Kind::kPut;
        m->value = result;
        m->ttl_ms = cur != nullptr ? RemainingTtlMs(cur->expiry_ms, NowUnixMs()) : 0;
      },
      &old, &found);
  if (!s.ok()) {
    AppendStatusError(c.out, s);
  } else if (error != nullptr) {
    AppendError(c.out, error);
  } else {
    AppendBulk(c.out, result);
  }
}

void CmdAppend(Call& c) {
  std::string_view suffix = c.argv[2];
  bool too_big = false;
  std::string joined;
  size_t length = 0;
  DB::VersionedValue old;
  bool found = false;
  Status s = ReadModifyWrite(
      c.db(), c.argv[1],
      [&](const DB::VersionedValue* cur, Mutation* m) {
        size_t old_size = cur != nullptr ? cur->value.size() : 0;
        length = old_size + suffix.size();
        too_big = length > c.options().max_value_bytes;
        if (too_big) return;
        m->kind = Mutation::Kind::kPut;
        if (cur == nullptr) {
          m->value = suffix;
          return;
        }
        joined.reserve(length);
        joined.assign(cur->value);
        joined.append(suffix);
        m->value = joined;
        m->ttl_ms = RemainingTtlMs(cur->expiry_ms, NowUnixMs());
      },
      &old, &found);
  if (!s.ok()) {
    AppendStatusError(c.out, s);
  } else if (too_big) {
    CheckValueSize(c, length);
  } else {
    AppendInteger(c.out, static_cast<int64_t>(length));
  }
}

void CmdStrLen(Call& c) {
  Result<std::string> r = c.db()->Get(c.argv[1]);
  if (r.ok() || r.status().IsNotFound()) {
    AppendInteger(c.out, r.ok() ? static_cast<int64_t>(r->size()) : 0);
  } else {
    AppendStatusError(c.out, r.status());
  }
}

void CmdGetRange(Call& c) {
  int64_t start = 0, end = 0;
  if (!ParseInt64(c.argv[2], &start) || !ParseInt64(c.argv[3], &end)) return ReplyNotInteger(c);
  Result<std::string> r = c.db()->Get(c.argv[1]);
  if (!r.ok() && !r.status().IsNotFound()) return AppendStatusError(c.out, r.status());
  std::string_view value = r.ok() ? std::string_view(*r) : std::string_view();
  // Redis's getrangeCommand, step by step.
  int64_t len = static_cast<int64_t>(value.size());
  if (start < 0 && end < 0 && start > end) return AppendBulk(c.out, "");
  if (start < 0) start = len + start;
  if (end < 0) end = len + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (start > end || len == 0) return AppendBulk(c.out, "");
  AppendBulk(c.out, value.substr(static_cast<size_t>(start), static_cast<size_t>(end - start + 1)));
}

void CmdSetRange(Call& c) {
  int64_t offset = 0;
  if (!ParseInt64(c.argv[2], &offset)) return ReplyNotInteger(c);
  if (offset < 0) return AppendError(c.out, "ERR offset is out of range");
  std::string_view patch = c.argv[3];
  uint64_t needed = static_cast<uint64_t>(offset) + patch.size();
  bool too_big = false;
  std::string updated;
  size_t length = 0;
  DB::VersionedValue old;
  bool found = false;
  Status s = ReadModifyWrite(
      c.db(), c.argv[1],
      [&](const DB::VersionedValue* cur, Mutation* m) {
        length = cur != nullptr ? cur->value.size() : 0;
        too_big = false;
        if (patch.empty()) return;  // nothing to write: reply the current length
        too_big = needed > c.options().max_value_bytes;
        if (too_big) return;
        if (cur != nullptr) {
          updated.assign(cur->value);
        } else {
          updated.clear();
        }
        if (updated.size() < needed) updated.resize(needed, '\0');
        updated.replace(static_cast<size_t>(offset), patch.size(), patch);
        length = updated.size();
        m->kind = Mutation::Kind::kPut;
        m->value = updated;
        m->ttl_ms = cur != nullptr ? RemainingTtlMs(cur->expiry_ms, NowUnixMs()) : 0;
      },
      &old, &found);
  if (!s.ok()) {
    AppendStatusError(c.out, s);
  } else if (too_big) {
    CheckValueSize(c, needed);
  } else {
    AppendInteger(c.out, static_cast<int64_t>(length));
  }
}

}  // namespace varve::server::resp
