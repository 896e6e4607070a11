// Connection and server commands: PING ECHO QUIT SELECT HELLO CLIENT INFO COMMAND CONFIG.
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "server/resp/commands.h"
#include "server/resp/glob.h"
#include "server/resp/reply.h"
#include "server/resp/text.h"
#include "util/clock.h"

namespace varve::server::resp {
namespace {

// What HELLO and INFO call the server; clients look at redis_version to pick features.
constexpr std::string_view kRedisVersion = "7.0.0";
constexpr std::string_view kVarveVersion = "0.1.0";

// "-ERR unknown subcommand 'x'. Try CLIENT HELP."
void ReplyBadSubcommand(Call& c) {
  std::string upper(c.spec->name);
  for (char& ch : upper) ch = static_cast<char>(ch - 'a' + 'A');
  AppendError(c.out, "ERR unknown subcommand '" + std::string(c.argv[1].substr(0, 128)) +
                         "'. Try " + upper + " HELP.");
}

// For "client|setname"-style arity errors.
bool CheckSubArity(Call& c, std::string_view sub, size_t min_args, size_t max_args) {
  if (c.argv.size() >= min_args && c.argv.size() <= max_args) return true;
  ReplyArityError(c, std::string(c.spec->name) + "|" + std::string(sub));
  return false;
}

// Client names: printable ASCII without spaces, as Redis requires.
bool ValidClientName(std::string_view name) {
  for (char ch : name) {
    if (ch < '!' || ch > '~') return false;
  }
  return true;
}

void AppendCommandInfo(std::string* out, const CommandSpec& spec) {
  AppendArrayHeader(out, 10);
  AppendBulk(out, spec.name);
  AppendInteger(out, spec.arity);
  static constexpr std::pair<uint32_t, std::string_view> kFlagNames[] = {
      {kWrite, "write"},     {kReadOnly, "readonly"}, {kDenyOom, "denyoom"}, {kAdmin, "admin"},
      {kLoading, "loading"}, {kStale, "stale"},       {kFast, "fast"}};
  size_t n = 0;
  for (const auto& [flag, name] : kFlagNames) n += (spec.flags & flag) != 0;
  AppendArrayHeader(out, n);
  for (const auto& [flag, name] : kFlagNames) {
    if (spec.flags & flag) AppendSimple(out, name);
  }
  AppendInteger(out, spec.first_key);
  AppendInteger(out, spec.last_key);
  AppendInteger(out, spec.key_step);
  std::vector<std::string_view> categories;
  if (spec.flags & kWrite) categories.push_back("@write");
  if (spec.flags & kReadOnly) categories.push_back("@read");
  categories.push_back(spec.category);
  if (spec.flags & kFast) {
    categories.push_back("@fast");
  } else {
    categories.push_back("@slow");
  }
  AppendArrayHeader(out, categories.size());
  for (std::string_view cat : categories) AppendSimple(out, cat);
  AppendArrayHeader(out, 0);  // tips
  AppendArrayHeader(out, 0);  // key specifications
  AppendArrayHeader(out, 0);  // subcommands
}

const char* DurabilityName(Durability d) {
  switch (d) {
    case Durability::kNone:
      return "none";
    case Durability::kInterval:
      return "interval";
    case Durability::kBatch:
      return "batch";
    case Durability::kSync:
      return "sync";
  }
  return "unknown";
}

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "K", "M", "G", "T"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%lluB", static_cast<unsigned long long>(n));
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f%s", v, units[u]);
  }
  return buf;
}

class InfoWriter {
 public:
  void Section(std::string_view title) {
    if (!text_.empty()) text_ += "\r\n";
    text_ += "# ";
    text_ += title;
    text_ += "\r\n";
  }
  void Field(std::string_view name, std::string_view value) {
    text_ += name;
    text_ += ':';
    text_ += value;
    text_ += "\r\n";
  }
  void Field(std::string_view name, uint64_t value) { Field(name, std::to_string(value)); }
  void Field(std::string_view name, double value) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.2f", value);
    Field(name, std::string_view(buf));
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

}  // namespace

void CmdPing(Call& c) {
  if (c.argv.size() > 2) return ReplyArityError(c, "ping");
  if (c.argv.size() == 2) return AppendBulk(c.out, c.argv[1]);
  AppendSimple(c.out, "PONG");
}

void CmdEcho(Call& c) { AppendBulk(c.out, c.argv[1]); }

void CmdQuit(Call& c) {
  AppendOk(c.out);
  c.quit = true;
}

void CmdSelect(Call& c) {
  int64_t index = 0;
  if (!ParseInt64(c.argv[1], &index) || index < INT32_MIN || index > INT32_MAX) {
    return ReplyNotInteger(c);
  }
  if (index != 0) return AppendError(c.out, "ERR DB index is out of range");
  AppendOk(c.out);
}

// HELLO [protover [AUTH username password] [SETNAME clientname]]: RESP2 or RESP3 (maps and
// the _ null; every other reply is the same in both).
void CmdHello(Call& c) {
  size_t next = 1;
  int proto = c.client->resp_version;
  if (c.argv.size() >= 2) {
    int64_t version = 0;
    if (!ParseInt64(c.argv[1], &version)) {
      return AppendError(c.out, "ERR Protocol version is not an integer or out of range");
    }
    if (version < 2 || version > 3) {
      return AppendError(c.out, "NOPROTO unsupported protocol version");
    }
    proto = static_cast<int>(version);
    next = 2;
  }
  std::string_view user, name;
  bool set_name = false;
  for (size_t j = next; j < c.argv.size(); ++j) {
    size_t more = c.argv.size() - 1 - j;
    if (EqualsLower(c.argv[j], "auth") && more >= 2) {
      user = c.argv[j + 1];
      j += 2;
    } else if (EqualsLower(c.argv[j], "setname") && more >= 1) {
      name = c.argv[j + 1];
      set_name = true;
      j += 1;
    } else {
      return AppendError(c.out,
                         "ERR Syntax error in HELLO option '" + std::string(c.argv[j]) + "'");
    }
  }
  // There are no users or passwords: the default user accepts any password, as in a Redis
  // without requirepass.
  if (!user.empty() && user != "default") {
    return AppendError(c.out, "WRONGPASS invalid username-password pair or user is disabled.");
  }
  if (set_name) {
    if (!ValidClientName(name)) {
      return AppendError(c.out,
                         "ERR Client names cannot contain spaces, newlines or special characters.");
    }
    c.client->name = std::string(name);
  }
  c.client->resp_version = proto;
  ReplyMapHeader(c, 7);
  AppendBulk(c.out, "server");
  AppendBulk(c.out, "redis");
  AppendBulk(c.out, "version");
  AppendBulk(c.out, kRedisVersion);
  AppendBulk(c.out, "proto");
  AppendInteger(c.out, proto);
  AppendBulk(c.out, "id");
  AppendInteger(c.out, static_cast<int64_t>(c.client->id));
  AppendBulk(c.out, "mode");
  AppendBulk(c.out, "standalone");
  AppendBulk(c.out, "role");
  AppendBulk(c.out, "master");
  AppendBulk(c.out, "modules");
  AppendArrayHeader(c.out, 0);
}

void CmdClient(Call& c) {
  std::string_view sub = c.argv[1];
  if (EqualsLower(sub, "id")) {
    if (!CheckSubArity(c, "id", 2, 2)) return;
    return AppendInteger(c.out, static_cast<int64_t>(c.client->id));
  }
  if (EqualsLower(sub, "setname")) {
    if (!CheckSubArity(c, "setname", 3, 3)) return;
    if (!ValidClientName(c.argv[2])) {
      return AppendError(c.out,
                         "ERR Client names cannot contain spaces, newlines or special characters.");
    }
    c.client->name = std::string(c.argv[2]);
    return AppendOk(c.out);
  }
  if (EqualsLower(sub, "getname")) {
    if (!CheckSubArity(c, "getname", 2, 2)) return;
    if (c.client->name.empty()) return ReplyNull(c);
    return AppendBulk(c.out, c.client->name);
  }
  if (EqualsLower(sub, "info")) {
    if (!CheckSubArity(c, "info", 2, 2)) return;
    uint64_t now = NowUnixMs();
    uint64_t age = now > c.connected_unix_ms ? (now - c.connected_unix_ms) / 1000 : 0;
    std::string line = "id=" + std::to_string(c.client->id) + " addr=" + c.client->peer +
                       " laddr= fd=-1 name=" + c.client->name + " age=" + std::to_string(age) +
                       " idle=0 flags=N db=0 sub=0 psub=0 multi=-1 cmd=client|info user=default"
                       " resp=2\n";
    return AppendBulk(c.out, line);
  }
  if (EqualsLower(sub, "setinfo")) {  // client library name and version: accepted, not kept
    if (!CheckSubArity(c, "setinfo", 4, 4)) return;
    if (!EqualsLower(c.argv[2], "lib-name") && !EqualsLower(c.argv[2], "lib-ver")) {
      return AppendError(c.out, "ERR Unrecognized option '" + std::string(c.argv[2]) + "'");
    }
    return AppendOk(c.out);
  }
  ReplyBadSubcommand(c);
}

// INFO [section ...]: server, clients, memory, persistence, stats, keyspace ("all", "default" and
// "everything" mean all of them). Engine statistics keep their Stats field names.
void CmdInfo(Call& c) {
  const char* kSections[] = {"server", "clients", "memory", "persistence", "stats", "keyspace"};
  bool wanted[std::size(kSections)] = {};
  if (c.argv.size() == 1) {
    for (bool& w : wanted) w = true;
  }
  for (size_t i = 1; i < c.argv.size(); ++i) {
    std::string name = ToLower(c.argv[i]);
    bool all = name == "all" || name == "default" || name == "everything";
    for (size_t s = 0; s < std::size(kSections); ++s) wanted[s] |= all || name == kSections[s];
  }
  const ServerContext& ctx = *c.ctx;
  const ServerOptions& opts = c.options();
  Stats st = c.db()->GetStats();
  uint64_t now = NowUnixMs();
  uint64_t uptime_s =
      ctx.start_unix_ms != 0 && now > ctx.start_unix_ms ? (now - ctx.start_unix_ms) / 1000 : 0;
  InfoWriter w;
  if (wanted[0]) {
    w.Section("Server");
    w.Field("redis_version", kRedisVersion);
    w.Field("varve_version", kVarveVersion);
    w.Field("redis_mode", "standalone");
    struct utsname u;
    if (uname(&u) == 0) {
      w.Field("os", std::string(u.sysname) + " " + u.release + " " + u.machine);
    }
    w.Field("arch_bits", static_cast<uint64_t>(sizeof(void*) * 8));
    w.Field("process_id", static_cast<uint64_t>(getpid()));
    w.Field("tcp_port", static_cast<uint64_t>(opts.redis_port));
    w.Field("uptime_in_seconds", uptime_s);
    w.Field("uptime_in_days", uptime_s / 86400);
    w.Field("index", opts.engine.index == IndexKind::kHash ? "hash" : "ordered");
  }
  if (wanted[1]) {
    w.Section("Clients");
    w.Field("connected_clients", ctx.metrics->connections_open(Protocol::kRedis));
    w.Field("maxclients", static_cast<uint64_t>(opts.max_connections));
  }
  if (wanted[2]) {
    w.Section("Memory");
    w.Field("used_memory", st.index_memory_bytes);
    w.Field("used_memory_human", HumanBytes(st.index_memory_bytes));
    w.Field("maxmemory", static_cast<uint64_t>(0));
    w.Field("index_memory_bytes", st.index_memory_bytes);
  }
  if (wanted[3]) {
    w.Section("Persistence");
    w.Field("loading", static_cast<uint64_t>(0));
    w.Field("aof_enabled", static_cast<uint64_t>(0));
    w.Field("durability", DurabilityName(opts.engine.durability));
    w.Field("sync_interval_ms", static_cast<uint64_t>(opts.engine.sync_interval_ms));
    w.Field("last_sequence", st.last_sequence);
    w.Field("durable_sequence", st.durable_sequence);
    w.Field("segments", st.segments);
    w.Field("sealed_segments", st.sealed_segments);
    w.Field("disk_bytes", st.disk_bytes);
    w.Field("live_bytes", st.live_bytes);
    w.Field("dead_bytes", st.dead_bytes);
    w.Field("compactions", st.compactions);
    w.Field("compaction_bytes_written", st.compaction_bytes_written);
    w.Field("compaction_bytes_reclaimed", st.compaction_bytes_reclaimed);
    w.Field("syncs", st.syncs);
    w.Field("write_groups", st.write_groups);
    w.Field("write_amplification", st.write_amplification);
    w.Field("tables", st.tables);
    w.Field("table_entries", st.table_entries);
  }
  if (wanted[4]) {
    w.Section("Stats");
    w.Field("total_connections_received", ctx.metrics->connections_total(Protocol::kRedis));
    w.Field("total_commands_processed", ctx.metrics->requests(Protocol::kRedis));
    w.Field("total_error_replies", ctx.metrics->errors(Protocol::kRedis));
    w.Field("malformed_requests", ctx.metrics->malformed(Protocol::kRedis));
    w.Field("keyspace_hits", st.gets - st.get_misses);
    w.Field("keyspace_misses", st.get_misses);
    w.Field("puts", st.puts);
    w.Field("deletes", st.deletes);
    w.Field("gets", st.gets);
    w.Field("get_misses", st.get_misses);
    w.Field("skipped_unchanged_writes", st.skipped_unchanged_writes);
    w.Field("user_bytes_written", st.user_bytes_written);
    w.Field("log_bytes_written", st.log_bytes_written);
  }
  if (wanted[5]) {
    w.Section("Keyspace");
    if (st.keys > 0) w.Field("db0", "keys=" + std::to_string(st.keys) + ",expires=0,avg_ttl=0");
  }
  AppendBulk(c.out, w.text());
}

// COMMAND, COMMAND COUNT, COMMAND INFO [name ...], COMMAND DOCS [name ...] (an empty map), COMMAND
// LIST.
void CmdCommand(Call& c) {
  std::span<const CommandSpec> table = CommandTable();
  if (c.argv.size() == 1) {
    AppendArrayHeader(c.out, table.size());
    for (const CommandSpec& spec : table) AppendCommandInfo(c.out, spec);
    return;
  }
  std::string_view sub = c.argv[1];
  if (EqualsLower(sub, "count")) {
    if (!CheckSubArity(c, "count", 2, 2)) return;
    return AppendInteger(c.out, static_cast<int64_t>(table.size()));
  }
  if (EqualsLower(sub, "info")) {
    if (c.argv.size() == 2) {
      AppendArrayHeader(c.out, table.size());
      for (const CommandSpec& spec : table) AppendCommandInfo(c.out, spec);
      return;
    }
    AppendArrayHeader(c.out, c.argv.size() - 2);
    for (size_t i = 2; i < c.argv.size(); ++i) {
      const CommandSpec* spec = FindCommand(c.argv[i]);
      if (spec != nullptr) {
        AppendCommandInfo(c.out, *spec);
      } else {
        ReplyNull(c);
      }
    }
    return;
  }
  if (EqualsLower(sub, "docs")) return ReplyMapHeader(c, 0);
  if (EqualsLower(sub, "list")) {
    AppendArrayHeader(c.out, table.size());
    for (const CommandSpec& spec : table) AppendBulk(c.out, spec.name);
    return;
  }
  ReplyBadSubcommand(c);
}

// CONFIG GET pattern [pattern ...]: a few read-only parameters, enough for redis-benchmark and
// tools that probe the server. CONFIG SET changes nothing.
void CmdConfig(Call& c) {
  std::string_view sub = c.argv[1];
  const ServerOptions& opts = c.options();
  if (EqualsLower(sub, "get")) {
    if (!CheckSubArity(c, "get", 3, SIZE_MAX)) return;
    const std::pair<std::string_view, std::string> params[] = {
        {"appendonly", "no"},
        {"bind", opts.bind},
        {"databases", "1"},
        {"maxclients", std::to_string(opts.max_connections)},
        {"maxmemory", "0"},
        {"port", std::to_string(opts.redis_port)},
        {"proto-max-bulk-len", std::to_string(opts.max_value_bytes)},
        {"save", ""},
        {"timeout", "0"},
    };
    std::string body;
    size_t n = 0;
    for (const auto& [name, value] : params) {
      for (size_t i = 2; i < c.argv.size(); ++i) {
        if (GlobMatch(ToLower(c.argv[i]), name)) {
          AppendBulk(&body, name);
          AppendBulk(&body, value);
          n += 2;
          break;
        }
      }
    }
    ReplyMapHeader(c, n / 2);
    c.out->append(body);
    return;
  }
  if (EqualsLower(sub, "set")) {
    if (!CheckSubArity(c, "set", 4, SIZE_MAX)) return;
    return AppendError(c.out, "ERR Unknown option or number of arguments for CONFIG SET - '" +
                                  std::string(c.argv[2]) + "'");
  }
  ReplyBadSubcommand(c);
}

}  // namespace varve::server::resp
