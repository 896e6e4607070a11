// Keyspace commands: DEL UNLINK EXISTS EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL PERSIST TYPE
// KEYS SCAN DBSIZE FLUSHDB FLUSHALL.
#include <charconv>
#include <memory>
#include <string>

#include "server/resp/commands.h"
#include "server/resp/glob.h"
#include "server/resp/reply.h"
#include "server/resp/text.h"
#include "util/clock.h"
#include "varve/write_batch.h"

namespace varve::server::resp {
namespace {

// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT [NX|XX|GT|LT], following Redis's expireGenericCommand.
// The new expiry is written as a new record with the same value (compare-and-set).
void ExpireGeneric(Call& c, bool seconds, bool absolute) {
  bool nx = false, xx = false, gt = false, lt = false;
  for (size_t j = 3; j < c.argv.size(); ++j) {
    std::string_view opt = c.argv[j];
    if (EqualsLower(opt, "nx")) {
      nx = true;
    } else if (EqualsLower(opt, "xx")) {
      xx = true;
    } else if (EqualsLower(opt, "gt")) {
      gt = true;
    } else if (EqualsLower(opt, "lt")) {
      lt = true;
    } else {
      return AppendError(c.out, "ERR Unsupported option " + std::string(opt));
    }
  }
  if (nx && (xx || gt || lt)) {
    return AppendError(c.out,
                       "ERR NX and XX, GT or LT options at the same time are not compatible");
  }
  if (gt && lt)
    return AppendError(c.out, "ERR GT and LT options at the same time are not compatible");
  int64_t when = 0;
  if (!ParseInt64(c.argv[2], &when)) return ReplyNotInteger(c);
  if (seconds) {
    if (when > INT64_MAX / 1000 || when < INT64_MIN / 1000) return ReplyInvalidExpire(c);
    when *= 1000;
  }
  int64_t base = absolute ? 0 : static_cast<int64_t>(NowUnixMs());
  if (when > INT64_MAX - base) return ReplyInvalidExpire(c);
  when += base;

  bool changed = false;
  DB::VersionedValue old;
  bool found = false;
  Status s = ReadModifyWrite(
      c.db(), c.argv[1],
      [&](const DB::VersionedValue* cur, Mutation* m) {
        changed = false;
        if (cur == nullptr) return;
        int64_t current = cur->expiry_ms != 0 ? static_cast<int64_t>(cur->expiry_ms) : -1;
        if (nx && current != -1) return;
        if (xx && current == -1) return;
        if (gt && (current == -1 || when <= current)) return;  // no expiry counts as infinite
        if (lt && current != -1 && when >= current) return;
        changed = true;
        int64_t now = static_cast<int64_t>(NowUnixMs());
        if (when <= now) {
          m->kind = Mutation::Kind::kDelete;
          return;
        }
        m->kind = Mutation::Kind::kPut;
        m->value = cur->value;
        m->ttl_ms = static_cast<uint64_t>(when - now);
      },
      &old, &found);
  if (s.ok()) {
    AppendInteger(c.out, changed ? 1 : 0);
  } else {
    AppendStatusError(c.out, s);
  }
}

void TtlGeneric(Call& c, bool ms) {
  Result<DB::VersionedValue> r = c.db()->GetVersioned(c.argv[1]);
  if (!r.ok()) {
    if (r.status().IsNotFound()) return AppendInteger(c.out, -2);
    return AppendStatusError(c.out, r.status());
  }
  if (r->expiry_ms == 0) return AppendInteger(c.out, -1);
  uint64_t now = NowUnixMs();
  uint64_t ttl = r->expiry_ms > now ? r->expiry_ms - now : 0;
  AppendInteger(c.out, static_cast<int64_t>(ms ? ttl : (ttl + 500) / 1000));
}

// Appends the reply to a key listing: the array header, then the keys gathered in body.
void AppendKeyArray(Call& c, size_t count, const std::string& body) {
  AppendArrayHeader(c.out, count);
  c.out->append(body);
}

}  // namespace

void CmdDel(Call& c) {
  int64_t deleted = 0;
  for (size_t i = 1; i < c.argv.size(); ++i) {
    DB::VersionedValue old;
    bool found = false;
    Status s = ReadModifyWrite(
        c.db(), c.argv[i],
        [](const DB::VersionedValue*, Mutation* m) { m->kind = Mutation::Kind::kDelete; }, &old,
        &found);
    if (!s.ok()) return AppendStatusError(c.out, s);
    if (found) ++deleted;
  }
  AppendInteger(c.out, deleted);
}

void CmdExists(Call& c) {
  int64_t n = 0;
  for (size_t i = 1; i < c.argv.size(); ++i) {
    Result<DB::VersionedValue> r = c.db()->GetVersioned(c.argv[i]);
    if (r.ok()) {
      ++n;
    } else if (!r.status().IsNotFound()) {
      return AppendStatusError(c.out, r.status());
    }
  }
  AppendInteger(c.out, n);
}

void CmdExpire(Call& c) { ExpireGeneric(c, /*seconds=*/true, /*absolute=*/false); }
void CmdPExpire(Call& c) { ExpireGeneric(c, /*seconds=*/false, /*absolute=*/false); }
void CmdExpireAt(Call& c) { ExpireGeneric(c, /*seconds=*/true, /*absolute=*/true); }
void CmdPExpireAt(Call& c) { ExpireGeneric(c, /*seconds=*/false, /*absolute=*/true); }
void CmdTtl(Call& c) { TtlGeneric(c, /*ms=*/false); }
void CmdPTtl(Call& c) { TtlGeneric(c, /*ms=*/true); }

void CmdPersist(Call& c) {
  bool changed = false;
  DB::VersionedValue old;
  bool found = false;
  Status s = ReadModifyWrite(
      c.db(), c.argv[1],
      [&](const DB::VersionedValue* cur, Mutation* m) {
        changed = cur != nullptr && cur->expiry_ms != 0;
        if (!changed) return;
        m->kind = Mutation::Kind::kPut;
        m->value = cur->value;
      },
      &old, &found);
  if (s.ok()) {
    AppendInteger(c.out, changed ? 1 : 0);
  } else {
    AppendStatusError(c.out, s);
  }
}

void CmdType(Call& c) {
  Result<DB::VersionedValue> r = c.db()->GetVersioned(c.argv[1]);
  if (r.ok()) return AppendSimple(c.out, "string");
  if (r.status().IsNotFound()) return AppendSimple(c.out, "none");
  AppendStatusError(c.out, r.status());
}

void CmdKeys(Call& c) {
  std::string_view pattern = c.argv[1];
  bool all = pattern == "*";
  ReadOptions ro;
  ro.prefix = GlobLiteralPrefix(pattern);
  std::unique_ptr<Iterator> it = c.db()->NewIterator(ro);
  std::string body;
  size_t n = 0;
  for (; it->Valid(); it->Next()) {
    if (all || GlobMatch(pattern, it->key())) {
      AppendBulk(&body, it->key());
      ++n;
    }
  }
  if (!it->status().ok()) return AppendStatusError(c.out, it->status());
  AppendKeyArray(c, n, body);
}

// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. The cursor names an Iterator kept in the
// server's CursorRegistry between calls; each call visits about COUNT keys.
void CmdScan(Call& c) {
  uint64_t cursor = 0;
  std::string_view cursor_arg = c.argv[1];
  auto [end, ec] =
      std::from_chars(cursor_arg.data(), cursor_arg.data() + cursor_arg.size(), cursor);
  if (ec != std::errc() || end != cursor_arg.data() + cursor_arg.size()) {
    return AppendError(c.out, "ERR invalid cursor");
  }
  std::string_view pattern;
  bool match = false;
  bool strings = true;  // the TYPE filter lets strings through
  int64_t count = 10;
  for (size_t j = 2; j < c.argv.size(); j += 2) {
    std::string_view opt = c.argv[j];
    if (j + 1 >= c.argv.size()) return ReplySyntaxError(c);
    std::string_view arg = c.argv[j + 1];
    if (EqualsLower(opt, "count")) {
      if (!ParseInt64(arg, &count)) return ReplyNotInteger(c);
      if (count < 1) return ReplySyntaxError(c);
    } else if (EqualsLower(opt, "match")) {
      pattern = arg;
      match = arg != "*";
    } else if (EqualsLower(opt, "type")) {
      if (EqualsLower(arg, "string")) {
        strings = true;
      } else if (EqualsLower(arg, "list") || EqualsLower(arg, "set") || EqualsLower(arg, "zset") ||
                 EqualsLower(arg, "hash") || EqualsLower(arg, "stream")) {
        strings = false;
      } else {
        return AppendError(c.out, "ERR unknown type name '" + std::string(arg) + "'");
      }
    } else {
      return ReplySyntaxError(c);
    }
  }
  if (!strings) {  // every key is a string: nothing to return, and the scan is over
    if (cursor != 0) c.ctx->cursors->Take(cursor);
    AppendArrayHeader(c.out, 2);
    AppendBulk(c.out, "0");
    return AppendArrayHeader(c.out, 0);
  }
  std::unique_ptr<Iterator> it;
  if (cursor == 0) {
    ReadOptions ro;
    if (match) ro.prefix = GlobLiteralPrefix(pattern);
    it = c.db()->NewIterator(ro);
  } else {
    it = c.ctx->cursors->Take(cursor);
    if (it == nullptr) return AppendError(c.out, "ERR invalid cursor (unknown or expired)");
  }
  std::string body;
  size_t n = 0;
  for (int64_t visited = 0; it->Valid() && visited < count; ++visited, it->Next()) {
    if (!match || GlobMatch(pattern, it->key())) {
      AppendBulk(&body, it->key());
      ++n;
    }
  }
  if (!it->status().ok()) return AppendStatusError(c.out, it->status());
  uint64_t next = it->Valid() ? c.ctx->cursors->Put(std::move(it)) : 0;
  char buf[24];
  char* buf_end = std::to_chars(buf, buf + sizeof(buf), next).ptr;
  AppendArrayHeader(c.out, 2);
  AppendBulk(c.out, std::string_view(buf, static_cast<size_t>(buf_end - buf)));
  AppendKeyArray(c, n, body);
}

void CmdDbSize(Call& c) { AppendInteger(c.out, static_cast<int64_t>(c.db()->GetStats().keys)); }

// FLUSHDB / FLUSHALL [ASYNC|SYNC]: deletes every key, 1000 per atomic batch. Not atomic as a
// whole: a key written meanwhile may survive.
void CmdFlushDb(Call& c) {
  if (c.argv.size() > 2 ||
      (c.argv.size() == 2 && !EqualsLower(c.argv[1], "async") && !EqualsLower(c.argv[1], "sync"))) {
    return ReplySyntaxError(c);
  }
  constexpr size_t kBatchKeys = 1000;
  std::unique_ptr<Iterator> it = c.db()->NewIterator();
  WriteBatch batch;
  for (; it->Valid(); it->Next()) {
    batch.Delete(it->key());
    if (batch.Count() >= kBatchKeys) {
      Status s = c.db()->Write(batch);
      if (!s.ok()) return AppendStatusError(c.out, s);
      batch.Clear();
    }
  }
  if (!it->status().ok()) return AppendStatusError(c.out, it->status());
  Status s = c.db()->Write(batch);
  if (!s.ok()) return AppendStatusError(c.out, s);
  AppendOk(c.out);
}

}  // namespace varve::server::resp
