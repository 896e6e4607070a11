// The Redis command table (data) and the helpers handlers share.
#include <array>
#include <string>
#include <unordered_map>

#include "server/resp/commands.h"
#include "server/resp/reply.h"

namespace varve::server::resp {
namespace {

constexpr uint32_t kR = kReadOnly;
constexpr uint32_t kW = kWrite;
constexpr uint32_t kF = kFast;
constexpr uint32_t kM = kDenyOom;
constexpr uint32_t kLS = kLoading | kStale;

// name, arity, flags, first key, last key, key step, category, handler
constexpr std::array kCommands = {
    CommandSpec{"get", 2, kR | kF, 1, 1, 1, "@string", CmdGet},
    CommandSpec{"set", -3, kW | kM, 1, 1, 1, "@string", CmdSet},
    CommandSpec{"setnx", 3, kW | kM | kF, 1, 1, 1, "@string", CmdSetNx},
    CommandSpec{"setex", 4, kW | kM, 1, 1, 1, "@string", CmdSetEx},
    CommandSpec{"psetex", 4, kW | kM, 1, 1, 1, "@string", CmdPSetEx},
    CommandSpec{"getset", 3, kW | kM | kF, 1, 1, 1, "@string", CmdGetSet},
    CommandSpec{"getdel", 2, kW | kF, 1, 1, 1, "@string", CmdGetDel},
    CommandSpec{"getex", -2, kW | kF, 1, 1, 1, "@string", CmdGetEx},
    CommandSpec{"mget", -2, kR | kF, 1, -1, 1, "@string", CmdMGet},
    CommandSpec{"mset", -3, kW | kM, 1, -1, 2, "@string", CmdMSet},
    CommandSpec{"msetnx", -3, kW | kM, 1, -1, 2, "@string", CmdMSetNx},
    CommandSpec{"incr", 2, kW | kM | kF, 1, 1, 1, "@string", CmdIncr},
    CommandSpec{"decr", 2, kW | kM | kF, 1, 1, 1, "@string", CmdDecr},
    CommandSpec{"incrby", 3, kW | kM | kF, 1, 1, 1, "@string", CmdIncrBy},
    CommandSpec{"decrby", 3, kW | kM | kF, 1, 1, 1, "@string", CmdDecrBy},
    CommandSpec{"incrbyfloat", 3, kW | kM | kF, 1, 1, 1, "@string", CmdIncrByFloat},
    CommandSpec{"append", 3, kW | kM | kF, 1, 1, 1, "@string", CmdAppend},
    CommandSpec{"strlen", 2, kR | kF, 1, 1, 1, "@string", CmdStrLen},
    CommandSpec{"getrange", 4, kR, 1, 1, 1, "@string", CmdGetRange},
    CommandSpec{"setrange", 4, kW | kM, 1, 1, 1, "@string", CmdSetRange},
    CommandSpec{"del", -2, kW, 1, -1, 1, "@keyspace", CmdDel},
    CommandSpec{"unlink", -2, kW | kF, 1, -1, 1, "@keyspace", CmdDel},
    CommandSpec{"exists", -2, kR | kF, 1, -1, 1, "@keyspace", CmdExists},
    CommandSpec{"expire", -3, kW | kF, 1, 1, 1, "@keyspace", CmdExpire},
    CommandSpec{"pexpire", -3, kW | kF, 1, 1, 1, "@keyspace", CmdPExpire},
    CommandSpec{"expireat", -3, kW | kF, 1, 1, 1, "@keyspace", CmdExpireAt},
    CommandSpec{"pexpireat", -3, kW | kF, 1, 1, 1, "@keyspace", CmdPExpireAt},
    CommandSpec{"ttl", 2, kR | kF, 1, 1, 1, "@keyspace", CmdTtl},
    CommandSpec{"pttl", 2, kR | kF, 1, 1, 1, "@keyspace", CmdPTtl},
    CommandSpec{"persist", 2, kW | kF, 1, 1, 1, "@keyspace", CmdPersist},
    CommandSpec{"type", 2, kR | kF, 1, 1, 1, "@keyspace", CmdType},
    CommandSpec{"keys", 2, kR, 0, 0, 0, "@keyspace", CmdKeys},
    CommandSpec{"scan", -2, kR, 0, 0, 0, "@keyspace", CmdScan},
    CommandSpec{"dbsize", 1, kR | kF, 0, 0, 0, "@keyspace", CmdDbSize},
    CommandSpec{"flushdb", -1, kW, 0, 0, 0, "@keyspace", CmdFlushDb},
    CommandSpec{"flushall", -1, kW, 0, 0, 0, "@keyspace", CmdFlushDb},
    CommandSpec{"ping", -1, kF | kStale, 0, 0, 0, "@connection", CmdPing},
    CommandSpec{"echo", 2, kF, 0, 0, 0, "@connection", CmdEcho},
    CommandSpec{"quit", -1, kF | kLS, 0, 0, 0, "@connection", CmdQuit},
    CommandSpec{"select", 2, kF | kLS, 0, 0, 0, "@connection", CmdSelect},
    CommandSpec{"hello", -1, kF | kLS, 0, 0, 0, "@connection", CmdHello},
    CommandSpec{"client", -2, kLS, 0, 0, 0, "@connection", CmdClient},
    CommandSpec{"info", -1, kLS, 0, 0, 0, "@dangerous", CmdInfo},
    CommandSpec{"command", -1, kLS, 0, 0, 0, "@connection", CmdCommand},
    CommandSpec{"config", -2, kAdmin | kLS, 0, 0, 0, "@admin", CmdConfig},
};

struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

}  // namespace

std::span<const CommandSpec> CommandTable() { return kCommands; }

const CommandSpec* FindCommand(std::string_view name) {
  static const auto* const kByName = [] {
    auto* m = new std::unordered_map<std::string, const CommandSpec*, NameHash, std::equal_to<>>;
    for (const CommandSpec& spec : kCommands) m->emplace(std::string(spec.name), &spec);
    return m;
  }();
  char lower[16];
  if (name.size() > sizeof(lower)) return nullptr;
  for (size_t i = 0; i < name.size(); ++i) {
    char ch = name[i];
    lower[i] = ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
  }
  auto found = kByName->find(std::string_view(lower, name.size()));
  return found == kByName->end() ? nullptr : found->second;
}

void AppendStatusError(std::string* out, const Status& s) {
  const char* kind = "error";
  switch (s.code()) {
    case Status::Code::kOk:
      kind = "ok";
      break;
    case Status::Code::kNotFound:
      kind = "not found";
      break;
    case Status::Code::kCorruption:
      kind = "corruption";
      break;
    case Status::Code::kIOError:
      kind = "I/O error";
      break;
    case Status::Code::kInvalidArgument:
      kind = "invalid argument";
      break;
    case Status::Code::kNotSupported:
      kind = "not supported";
      break;
    case Status::Code::kBusy:
      kind = "busy";
      break;
    case Status::Code::kAborted:
      kind = "aborted";
      break;
  }
  // ToString() is "<Code>: <message>"; the reply names the code in words instead.
  AppendError(
      out, std::string("ERR ") + kind + ": " + (s.message().empty() ? s.ToString() : s.message()));
}

void ReplyArityError(Call& c, std::string_view name) {
  AppendError(c.out, "ERR wrong number of arguments for '" + std::string(name) + "' command");
}

void ReplySyntaxError(Call& c) { AppendError(c.out, "ERR syntax error"); }

void ReplyNull(Call& c) {
  if (c.client->resp_version >= 3) {
    c.out->append("_\r\n", 3);
  } else {
    AppendNull(c.out);
  }
}

void ReplyMapHeader(Call& c, size_t pairs) {
  if (c.client->resp_version >= 3) return AppendNumberLine(c.out, '%', static_cast<int64_t>(pairs));
  AppendArrayHeader(c.out, 2 * pairs);
}

void ReplyNotInteger(Call& c) { AppendError(c.out, "ERR value is not an integer or out of range"); }

void ReplyInvalidExpire(Call& c) {
  AppendError(c.out, "ERR invalid expire time in '" + std::string(c.spec->name) + "' command");
}

bool CheckValueSize(Call& c, uint64_t size) {
  if (size <= c.options().max_value_bytes) return true;
  AppendError(c.out, "ERR string exceeds maximum allowed size (max_value_bytes)");
  return false;
}

uint64_t RemainingTtlMs(uint64_t expiry_unix_ms, uint64_t now_unix_ms) {
  if (expiry_unix_ms == 0) return 0;
  return expiry_unix_ms > now_unix_ms ? expiry_unix_ms - now_unix_ms : 1;
}

}  // namespace varve::server::resp
