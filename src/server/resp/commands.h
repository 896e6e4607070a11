// The Redis command table and what its handlers share. A command is data — name, arity, flags,
// key positions, handler (command_table.cc) — and the handler for one connection checks arity
// and key sizes once, before dispatch. Handlers append exactly one reply to *out.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "server/protocol.h"
#include "varve/db.h"

namespace varve::server::resp {

// What a command may do; shown by COMMAND INFO.
enum CommandFlag : uint32_t {
  kWrite = 1u << 0,     // changes data
  kReadOnly = 1u << 1,  // reads data only
  kFast = 1u << 2,      // O(1) or O(log n)
  kDenyOom = 1u << 3,   // may grow the data
  kAdmin = 1u << 4,
  kLoading = 1u << 5,  // allowed while loading
  kStale = 1u << 6,    // allowed on a stale replica
};

struct CommandSpec;

// One command being executed.
struct Call {
  ServerContext* ctx;
  ClientInfo* client;
  const CommandSpec* spec;
  std::span<const std::string_view> argv;  // argv[0] is the command name as sent
  std::string* out;
  uint64_t connected_unix_ms = 0;  // when the connection was made (CLIENT INFO)
  bool quit = false;               // set by QUIT: close after this reply

  DB* db() const { return ctx->db; }
  const ServerOptions& options() const { return *ctx->options; }
};

using CommandHandler = void (*)(Call& call);

struct CommandSpec {
  std::string_view name;  // lower case
  // Like Redis: N > 0 means exactly N arguments (the name included), -N means at least N.
  int arity;
  uint32_t flags;
  // Key positions as in Redis's COMMAND INFO: first, last (-1 = the last argument), step;
  // 0, 0, 0 for none. Every key is checked against max_key_bytes before dispatch.
  int first_key, last_key, key_step;
  std::string_view category;  // ACL category shown by COMMAND INFO, "@string" ...
  CommandHandler handler;
};

// Every command, in a fixed order (metric ids follow it).
std::span<const CommandSpec> CommandTable();
// Case-insensitive lookup; nullptr for an unknown name.
const CommandSpec* FindCommand(std::string_view name);

// ---------------------------------------------------------------------------------------------
// Helpers for handlers.

// "-ERR wrong number of arguments for 'name' command".
void ReplyArityError(Call& c, std::string_view name);
void ReplySyntaxError(Call& c);
// A null reply ($-1 in RESP2, _ in RESP3) and a map header (a flat array of 2n items in RESP2).
void ReplyNull(Call& c);
void ReplyMapHeader(Call& c, size_t pairs);
void ReplyNotInteger(Call& c);
// "-ERR invalid expire time in 'name' command".
void ReplyInvalidExpire(Call& c);
// False (after replying "-ERR string exceeds maximum allowed size (max_value_bytes)") if a value
// of size bytes is over the limit.
bool CheckValueSize(Call& c, uint64_t size);

// A change decided by a read-modify-write step.
struct Mutation {
  enum class Kind : uint8_t { kNone, kPut, kDelete };
  Kind kind = Kind::kNone;
  // kPut: the new value; must stay valid until the write (a view into the value read, into the
  // arguments, or into a buffer the step owns).
  std::string_view value;
  uint64_t ttl_ms = 0;  // kPut: 0 = no expiry
};

// Remaining time to live for PutOptions from an absolute expiry (0 = none); at least 1 ms, since
// an expired record is not returned by reads.
uint64_t RemainingTtlMs(uint64_t expiry_unix_ms, uint64_t now_unix_ms);

// Atomic read-modify-write of one key: reads it (with its version), lets step decide a Mutation,
// and applies it with CompareAndSet / CompareAndDelete (version 0 = the key must still be absent),
// retrying from the read if another writer got there first. step(const VersionedValue* current,
// Mutation* m) gets nullptr for an absent key and may run several times; only its last run
// counts. On success *found and *current describe the value the committed step saw.
template <typename Step>
Status ReadModifyWrite(DB* db, std::string_view key, Step&& step, DB::VersionedValue* current,
                       bool* found) {
  constexpr int kMaxAttempts = 100000;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    Result<DB::VersionedValue> read = db->GetVersioned(key);
    if (!read.ok() && !read.status().IsNotFound()) return read.status();
    const DB::VersionedValue* cur = read.ok() ? &*read : nullptr;
    Mutation m;
    step(cur, &m);
    Status s;
    if (m.kind == Mutation::Kind::kPut) {
      s = db->CompareAndSet(key, cur != nullptr ? cur->version : 0, m.value,
                            PutOptions{m.ttl_ms, 0});
    } else if (m.kind == Mutation::Kind::kDelete && cur != nullptr) {
      s = db->CompareAndDelete(key, cur->version);
    }
    if (s.IsAborted()) continue;
    if (!s.ok()) return s;
    *found = cur != nullptr;
    if (cur != nullptr) *current = std::move(read).value();
    return Status::Ok();
  }
  return Status::Aborted("too many concurrent writers on one key");
}

// Handlers (commands_string.cc, commands_keyspace.cc, commands_server.cc).
void CmdGet(Call& c);
void CmdSet(Call& c);
void CmdSetNx(Call& c);
void CmdSetEx(Call& c);
void CmdPSetEx(Call& c);
void CmdGetSet(Call& c);
void CmdGetDel(Call& c);
void CmdGetEx(Call& c);
void CmdMGet(Call& c);
void CmdMSet(Call& c);
void CmdMSetNx(Call& c);
void CmdIncr(Call& c);
void CmdDecr(Call& c);
void CmdIncrBy(Call& c);
void CmdDecrBy(Call& c);
void CmdIncrByFloat(Call& c);
void CmdAppend(Call& c);
void CmdStrLen(Call& c);
void CmdGetRange(Call& c);
void CmdSetRange(Call& c);

void CmdDel(Call& c);
void CmdExists(Call& c);
void CmdExpire(Call& c);
void CmdPExpire(Call& c);
void CmdExpireAt(Call& c);
void CmdPExpireAt(Call& c);
void CmdTtl(Call& c);
void CmdPTtl(Call& c);
void CmdPersist(Call& c);
void CmdType(Call& c);
void CmdKeys(Call& c);
void CmdScan(Call& c);
void CmdDbSize(Call& c);
void CmdFlushDb(Call& c);

void CmdPing(Call& c);
void CmdEcho(Call& c);
void CmdQuit(Call& c);
void CmdSelect(Call& c);
void CmdHello(Call& c);
void CmdInfo(Call& c);
void CmdCommand(Call& c);
void CmdClient(Call& c);
void CmdConfig(Call& c);

}  // namespace varve::server::resp
