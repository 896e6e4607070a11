// The Redis RESP2 front end driven in-process: bytes in, exact reply bytes out, against a real DB
// in a temporary directory (with both index kinds). Covers every command's normal and error
// replies, pipelining, requests split at every byte, binary data, inline commands, protocol
// errors, size limits, metrics and concurrent read-modify-write.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/protocol.h"
#include "server/resp/commands.h"
#include "server/resp/glob.h"
#include "server/resp/reply.h"
#include "server/resp/text.h"
#include "testutil/temp_dir.h"
#include "util/clock.h"
#include "varve/db.h"

namespace varve::server {
namespace {

using Args = std::vector<std::string>;

std::string Encode(const Args& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

std::string Bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

std::string Int(int64_t n) { return ":" + std::to_string(n) + "\r\n"; }

const std::string kOk = "+OK\r\n";
const std::string kNull = "$-1\r\n";

std::string Arity(const std::string& name) {
  return "-ERR wrong number of arguments for '" + name + "' command\r\n";
}

const std::string kSyntax = "-ERR syntax error\r\n";
const std::string kNotInt = "-ERR value is not an integer or out of range\r\n";

// A key of every byte value, and a value of every byte value (CR, LF and NUL included).
std::string AllBytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
  return s;
}

// One connection's view: a handler plus the buffer handling a connection does.
struct Conn {
  std::unique_ptr<ProtocolHandler> handler;
  ClientInfo client;
  std::string pending;  // unconsumed input
  bool closed = false;
  Disconnect why = Disconnect::kClient;

  // Appends bytes and processes everything complete, as the network layer does; returns replies.
  std::string Feed(std::string_view bytes) {
    pending.append(bytes);
    std::string out;
    while (!closed) {
      size_t before = out.size();
      size_t used = handler->Process(pending, &out, &closed, &why);
      pending.erase(0, used);
      if (used == 0 || (out.size() == before && pending.empty())) break;
    }
    return out;
  }
};

class RespTest : public ::testing::TestWithParam<IndexKind> {
 protected:
  void SetUp() override { Start(); }

  void Start() {
    Options o;
    o.index = GetParam();
    o.background_compaction = false;
    Result<std::unique_ptr<DB>> db = DB::Open(o, dir_.Sub("db"));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    ctx_.db = db_.get();
    ctx_.options = &opts_;
    ctx_.metrics = &metrics_;
    ctx_.cursors = &cursors_;
    ctx_.start_unix_ms = NowUnixMs();
    RegisterRedisCommands(&metrics_);
    conn_ = NewConn();
  }

  std::unique_ptr<Conn> NewConn() {
    auto c = std::make_unique<Conn>();
    c->client.id = ctx_.next_client_id.fetch_add(1);
    c->client.peer = "127.0.0.1:5555";
    c->handler = NewRedisHandler(&ctx_, &c->client);
    return c;
  }

  // Sends one request and returns its reply; the connection must stay open.
  std::string Cmd(const Args& args) {
    std::string out = conn_->Feed(Encode(args));
    EXPECT_FALSE(conn_->closed) << out;
    EXPECT_TRUE(conn_->pending.empty());
    return out;
  }
  std::string Raw(std::string_view bytes) { return conn_->Feed(bytes); }

  // Feeds bytes to a fresh connection; returns the replies, expecting it to be closed.
  std::string ExpectClosed(std::string_view bytes, Disconnect why) {
    auto c = NewConn();
    std::string out = c->Feed(bytes);
    EXPECT_TRUE(c->closed) << out;
    EXPECT_EQ(static_cast<int>(c->why), static_cast<int>(why)) << out;
    return out;
  }

  // The Prometheus sample for one Redis command's counter ("varve_requests_total", ...).
  double Counter(const std::string& metric, const std::string& command) {
    std::string text = metrics_.RenderPrometheus(db_->GetStats());
    std::string needle = metric + "{protocol=\"redis\",command=\"" + command + "\"} ";
    size_t at = text.find(needle);
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + needle.size()));
  }

  int64_t Ttl(const std::string& key) {
    std::string r = Cmd({"TTL", key});
    return std::stoll(r.substr(1));
  }
  int64_t PTtl(const std::string& key) {
    std::string r = Cmd({"PTTL", key});
    return std::stoll(r.substr(1));
  }

  testing::TempDir dir_;
  ServerOptions opts_;
  Metrics metrics_;
  std::unique_ptr<DB> db_;
  CursorRegistry cursors_;  // after db_: its iterators go first
  ServerContext ctx_;
  std::unique_ptr<Conn> conn_;
};

INSTANTIATE_TEST_SUITE_P(Index, RespTest, ::testing::Values(IndexKind::kHash, IndexKind::kOrdered),
                         [](const auto& info) {
                           return info.param == IndexKind::kHash ? "Hash" : "Ordered";
                         });

// --- connection commands -----------------------------------------------------------------------

TEST_P(RespTest, PingEcho) {
  EXPECT_EQ(Cmd({"PING"}), "+PONG\r\n");
  EXPECT_EQ(Cmd({"ping", "hello world"}), Bulk("hello world"));
  EXPECT_EQ(Cmd({"PING", "a", "b"}), Arity("ping"));
  EXPECT_EQ(Cmd({"ECHO", "x\r\ny"}), Bulk("x\r\ny"));
  EXPECT_EQ(Cmd({"ECHO"}), Arity("echo"));
  EXPECT_EQ(Cmd({"ECHO", "a", "b"}), Arity("echo"));
}

TEST_P(RespTest, UnknownCommand) {
  EXPECT_EQ(Cmd({"foo", "a", "b"}),
            "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
  EXPECT_EQ(Cmd({"FOO"}), "-ERR unknown command 'FOO', with args beginning with: \r\n");
  // CR/LF in an error become spaces; args are cut after 128 bytes.
  EXPECT_EQ(Cmd({"x\ny", "a\rb"}),
            "-ERR unknown command 'x y', with args beginning with: 'a b' \r\n");
  std::string reply = Cmd({"nope", std::string(300, 'a'), "b"});
  EXPECT_EQ(reply, "-ERR unknown command 'nope', with args beginning with: '" +
                       std::string(128, 'a') + "' \r\n");
  EXPECT_EQ(Cmd({"averyveryverylongcommandname"}),
            "-ERR unknown command 'averyveryverylongcommandname', with args beginning with: \r\n");
}

TEST_P(RespTest, CommandNamesAreCaseInsensitive) {
  EXPECT_EQ(Cmd({"SeT", "k", "v"}), kOk);
  EXPECT_EQ(Cmd({"gEt", "k"}), Bulk("v"));
  EXPECT_EQ(Cmd({"GET"}), Arity("get"));
}

TEST_P(RespTest, Select) {
  EXPECT_EQ(Cmd({"SELECT", "0"}), kOk);
  EXPECT_EQ(Cmd({"SELECT", "1"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(Cmd({"SELECT", "-1"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(Cmd({"SELECT", "abc"}), kNotInt);
  EXPECT_EQ(Cmd({"SELECT"}), Arity("select"));
}

TEST_P(RespTest, QuitClosesAfterReply) {
  std::string out = Raw(Encode({"SET", "a", "1"}) + Encode({"QUIT"}) + Encode({"SET", "b", "2"}));
  EXPECT_EQ(out, kOk + kOk);
  EXPECT_TRUE(conn_->closed);
  EXPECT_EQ(static_cast<int>(conn_->why), static_cast<int>(Disconnect::kClient));
  EXPECT_EQ(conn_->pending, Encode({"SET", "b", "2"}));  // not executed
  conn_ = NewConn();
  EXPECT_EQ(Cmd({"GET", "b"}), kNull);
}

TEST_P(RespTest, Hello) {
  std::string id = std::to_string(conn_->client.id);
  std::string map = "*14\r\n" + Bulk("server") + Bulk("redis") + Bulk("version") + Bulk("7.0.0") +
                    Bulk("proto") + Int(2) + Bulk("id") + Int(conn_->client.id) + Bulk("mode") +
                    Bulk("standalone") + Bulk("role") + Bulk("master") + Bulk("modules") + "*0\r\n";
  EXPECT_EQ(Cmd({"HELLO"}), map);
  EXPECT_EQ(Cmd({"HELLO", "2"}), map);
  EXPECT_EQ(Cmd({"HELLO", "4"}), "-NOPROTO unsupported protocol version\r\n");
  EXPECT_EQ(Cmd({"HELLO", "x"}), "-ERR Protocol version is not an integer or out of range\r\n");
  EXPECT_EQ(Cmd({"HELLO", "2", "SETNAME", "bob"}), map);
  EXPECT_EQ(conn_->client.name, "bob");
  EXPECT_EQ(Cmd({"HELLO", "2", "AUTH", "default", "pw"}), map);
  EXPECT_EQ(Cmd({"HELLO", "2", "AUTH", "alice", "pw"}),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  EXPECT_EQ(Cmd({"HELLO", "2", "BOGUS"}), "-ERR Syntax error in HELLO option 'BOGUS'\r\n");
  EXPECT_EQ(Cmd({"HELLO", "2", "SETNAME"}), "-ERR Syntax error in HELLO option 'SETNAME'\r\n");
}

TEST_P(RespTest, Resp3AfterHello3) {
  Cmd({"SET", "a", "1"});
  EXPECT_EQ(Cmd({"GET", "nope"}), kNull);
  std::string map3 = "%7\r\n" + Bulk("server") + Bulk("redis") + Bulk("version") + Bulk("7.0.0") +
                     Bulk("proto") + Int(3) + Bulk("id") + Int(conn_->client.id) + Bulk("mode") +
                     Bulk("standalone") + Bulk("role") + Bulk("master") + Bulk("modules") +
                     "*0\r\n";
  EXPECT_EQ(Cmd({"HELLO", "3"}), map3);
  EXPECT_EQ(conn_->client.resp_version, 3);
  EXPECT_EQ(Cmd({"GET", "nope"}), "_\r\n");
  EXPECT_EQ(Cmd({"MGET", "a", "nope"}), "*2\r\n" + Bulk("1") + "_\r\n");
  EXPECT_EQ(Cmd({"SET", "b", "2", "GET"}), "_\r\n");
  EXPECT_EQ(Cmd({"CLIENT", "GETNAME"}), "_\r\n");
  EXPECT_EQ(Cmd({"CONFIG", "GET", "databases"}), "%1\r\n" + Bulk("databases") + Bulk("1"));
  EXPECT_EQ(Cmd({"COMMAND", "DOCS"}), "%0\r\n");
  EXPECT_EQ(Cmd({"GET", "a"}), Bulk("1"));
  // HELLO without a version keeps the protocol; HELLO 2 goes back.
  EXPECT_EQ(Cmd({"HELLO"}).substr(0, 4), "%7\r\n");
  EXPECT_EQ(Cmd({"HELLO", "2"}).substr(0, 5), "*14\r\n");
  EXPECT_EQ(Cmd({"GET", "nope"}), kNull);
}

TEST_P(RespTest, Client) {
  EXPECT_EQ(Cmd({"CLIENT", "ID"}), Int(conn_->client.id));
  EXPECT_EQ(Cmd({"CLIENT", "GETNAME"}), kNull);
  EXPECT_EQ(Cmd({"CLIENT", "SETNAME", "worker-1"}), kOk);
  EXPECT_EQ(Cmd({"client", "getname"}), Bulk("worker-1"));
  EXPECT_EQ(conn_->client.name, "worker-1");
  EXPECT_EQ(Cmd({"CLIENT", "SETNAME", "has space"}),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
  EXPECT_EQ(Cmd({"CLIENT", "SETNAME", ""}), kOk);
  EXPECT_EQ(Cmd({"CLIENT", "GETNAME"}), kNull);
  EXPECT_EQ(Cmd({"CLIENT", "SETNAME"}), Arity("client|setname"));
  EXPECT_EQ(Cmd({"CLIENT", "ID", "x"}), Arity("client|id"));
  EXPECT_EQ(Cmd({"CLIENT"}), Arity("client"));
  EXPECT_EQ(Cmd({"CLIENT", "KILL", "x"}), "-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n");
  EXPECT_EQ(Cmd({"CLIENT", "SETINFO", "LIB-NAME", "redis-py"}), kOk);
  EXPECT_EQ(Cmd({"CLIENT", "SETINFO", "color", "red"}), "-ERR Unrecognized option 'color'\r\n");
  std::string info = Cmd({"CLIENT", "INFO"});
  EXPECT_EQ(info.substr(0, 1), "$");
  EXPECT_NE(info.find("id=" + std::to_string(conn_->client.id) + " addr=127.0.0.1:5555 "),
            std::string::npos);
  EXPECT_NE(info.find(" resp=2\n\r\n"), std::string::npos);
}

TEST_P(RespTest, Command) {
  size_t n = resp::CommandTable().size();
  EXPECT_EQ(Cmd({"COMMAND", "COUNT"}), Int(static_cast<int64_t>(n)));
  EXPECT_EQ(Cmd({"COMMAND", "COUNT", "x"}), Arity("command|count"));
  EXPECT_EQ(Cmd({"COMMAND", "DOCS"}), "*0\r\n");
  EXPECT_EQ(Cmd({"COMMAND", "DOCS", "get"}), "*0\r\n");
  EXPECT_EQ(Cmd({"COMMAND", "INFO", "get"}),
            "*1\r\n*10\r\n" + Bulk("get") + Int(2) + "*2\r\n+readonly\r\n+fast\r\n" + Int(1) +
                Int(1) + Int(1) + "*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n");
  EXPECT_EQ(Cmd({"COMMAND", "INFO", "nosuch"}), "*1\r\n$-1\r\n");
  std::string mset = "*1\r\n*10\r\n" + Bulk("mset") + Int(-3) + "*2\r\n+write\r\n+denyoom\r\n" +
                     Int(1) + Int(-1) + Int(2);
  EXPECT_EQ(Cmd({"COMMAND", "INFO", "mset"}).substr(0, mset.size()), mset);
  std::string all = Cmd({"COMMAND"});
  EXPECT_EQ(all.substr(0, all.find("\r\n")), "*" + std::to_string(n));
  EXPECT_NE(all.find(Bulk("setrange")), std::string::npos);
  std::string list = Cmd({"COMMAND", "LIST"});
  EXPECT_EQ(list.substr(0, list.find("\r\n")), "*" + std::to_string(n));
  EXPECT_EQ(Cmd({"COMMAND", "FOO"}), "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n");
}

TEST_P(RespTest, Config) {
  EXPECT_EQ(Cmd({"CONFIG", "GET", "save"}), "*2\r\n" + Bulk("save") + Bulk(""));
  EXPECT_EQ(Cmd({"CONFIG", "GET", "APPENDONLY"}), "*2\r\n" + Bulk("appendonly") + Bulk("no"));
  EXPECT_EQ(Cmd({"CONFIG", "GET", "nosuch"}), "*0\r\n");
  EXPECT_EQ(Cmd({"CONFIG", "GET", "max*"}),
            "*4\r\n" + Bulk("maxclients") + Bulk("10000") + Bulk("maxmemory") + Bulk("0"));
  EXPECT_EQ(Cmd({"CONFIG", "GET"}), Arity("config|get"));
  EXPECT_EQ(Cmd({"CONFIG", "SET", "save", ""}),
            "-ERR Unknown option or number of arguments for CONFIG SET - 'save'\r\n");
  EXPECT_EQ(Cmd({"CONFIG", "X"}), "-ERR unknown subcommand 'X'. Try CONFIG HELP.\r\n");
}

TEST_P(RespTest, Info) {
  Cmd({"SET", "a", "1"});
  Cmd({"SET", "b", "2"});
  std::string info = Cmd({"INFO"});
  ASSERT_EQ(info[0], '$');
  for (const char* s : {"# Server\r\n", "# Clients\r\n", "# Memory\r\n", "# Persistence\r\n",
                        "# Stats\r\n", "# Keyspace\r\n", "redis_version:7.0.0\r\n",
                        "db0:keys=2,expires=0,avg_ttl=0\r\n", "total_commands_processed:2\r\n",
                        "malformed_requests:0\r\n", "durability:none\r\n", "puts:2\r\n"}) {
    EXPECT_NE(info.find(s), std::string::npos) << s;
  }
  std::string keyspace = Cmd({"INFO", "keyspace"});
  EXPECT_EQ(keyspace, Bulk("# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n"));
  std::string two = Cmd({"info", "SERVER", "clients"});
  EXPECT_NE(two.find("# Server"), std::string::npos);
  EXPECT_NE(two.find("# Clients"), std::string::npos);
  EXPECT_EQ(two.find("# Stats"), std::string::npos);
  EXPECT_EQ(Cmd({"INFO", "nosuch"}), Bulk(""));
  EXPECT_NE(Cmd({"INFO", "all"}).find("# Keyspace"), std::string::npos);
  Cmd({"FLUSHALL"});
  EXPECT_EQ(Cmd({"INFO", "keyspace"}), Bulk("# Keyspace\r\n"));
}

// --- strings -----------------------------------------------------------------------------------

TEST_P(RespTest, GetSet) {
  EXPECT_EQ(Cmd({"GET", "k"}), kNull);
  EXPECT_EQ(Cmd({"SET", "k", "v"}), kOk);
  EXPECT_EQ(Cmd({"GET", "k"}), Bulk("v"));
  EXPECT_EQ(Cmd({"SET", "k", ""}), kOk);
  EXPECT_EQ(Cmd({"GET", "k"}), "$0\r\n\r\n");
  EXPECT_EQ(Cmd({"SET", "", "empty key"}), kOk);
  EXPECT_EQ(Cmd({"GET", ""}), Bulk("empty key"));
  EXPECT_EQ(Cmd({"SET", "k"}), Arity("set"));
  EXPECT_EQ(Cmd({"GET", "a", "b"}), Arity("get"));
  std::string big(100000, 'x');
  EXPECT_EQ(Cmd({"SET", "big", big}), kOk);
  EXPECT_EQ(Cmd({"GET", "big"}), Bulk(big));
}

TEST_P(RespTest, SetOptions) {
  EXPECT_EQ(Cmd({"SET", "k", "1", "NX"}), kOk);
  EXPECT_EQ(Cmd({"SET", "k", "2", "NX"}), kNull);
  EXPECT_EQ(Cmd({"GET", "k"}), Bulk("1"));
  EXPECT_EQ(Cmd({"SET", "k", "3", "XX"}), kOk);
  EXPECT_EQ(Cmd({"SET", "missing", "3", "XX"}), kNull);
  EXPECT_EQ(Cmd({"GET", "missing"}), kNull);
  EXPECT_EQ(Cmd({"SET", "k", "4", "GET"}), Bulk("3"));
  EXPECT_EQ(Cmd({"SET", "new", "1", "GET"}), kNull);
  EXPECT_EQ(Cmd({"GET", "new"}), Bulk("1"));
  EXPECT_EQ(Cmd({"SET", "k", "5", "NX", "GET"}), Bulk("4"));  // not set, old value returned
  EXPECT_EQ(Cmd({"GET", "k"}), Bulk("4"));
  EXPECT_EQ(Cmd({"SET", "absent", "5", "XX", "GET"}), kNull);
  EXPECT_EQ(Cmd({"GET", "absent"}), kNull);

  EXPECT_EQ(Cmd({"SET", "t", "v", "EX", "100"}), kOk);
  EXPECT_EQ(Ttl("t"), 100);
  EXPECT_EQ(Cmd({"SET", "t", "v", "px", "50000"}), kOk);
  EXPECT_EQ(Ttl("t"), 50);
  EXPECT_EQ(Cmd({"SET", "t", "v2", "KEEPTTL"}), kOk);
  EXPECT_EQ(Ttl("t"), 50);
  EXPECT_EQ(Cmd({"GET", "t"}), Bulk("v2"));
  EXPECT_EQ(Cmd({"SET", "t", "v3"}), kOk);  // a plain SET clears the TTL
  EXPECT_EQ(Ttl("t"), -1);
  uint64_t now_s = NowUnixMs() / 1000;
  EXPECT_EQ(Cmd({"SET", "t", "v", "EXAT", std::to_string(now_s + 200)}), kOk);
  EXPECT_GE(Ttl("t"), 199);
  EXPECT_LE(Ttl("t"), 200);
  EXPECT_EQ(Cmd({"SET", "t", "v", "PXAT", std::to_string(NowUnixMs() + 300000)}), kOk);
  EXPECT_GE(Ttl("t"), 299);
  // An absolute time in the past: set and expired at once.
  EXPECT_EQ(Cmd({"SET", "t", "v", "EXAT", "1"}), kOk);
  EXPECT_EQ(Cmd({"GET", "t"}), kNull);
  EXPECT_EQ(Cmd({"SET", "t", "v", "PXAT", "1", "GET"}), kNull);
  // Expiry takes effect.
  EXPECT_EQ(Cmd({"SET", "short", "v", "PX", "30"}), kOk);
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_EQ(Cmd({"GET", "short"}), kNull);
  EXPECT_EQ(Ttl("short"), -2);

  EXPECT_EQ(Cmd({"SET", "k", "v", "NX", "XX"}), kSyntax);
  EXPECT_EQ(Cmd({"SET", "k", "v", "XX", "NX"}), kSyntax);
  EXPECT_EQ(Cmd({"SET", "k", "v", "EX"}), kSyntax);
  EXPECT_EQ(Cmd({"SET", "k", "v", "EX", "10", "PX", "100"}), kSyntax);
  EXPECT_EQ(Cmd({"SET", "k", "v", "EX", "10", "KEEPTTL"}), kSyntax);
  EXPECT_EQ(Cmd({"SET", "k", "v", "KEEPTTL", "EX", "10"}), kSyntax);
  EXPECT_EQ(Cmd({"SET", "k", "v", "PERSIST"}), kSyntax);
  EXPECT_EQ(Cmd({"SET", "k", "v", "FOO"}), kSyntax);
  EXPECT_EQ(Cmd({"SET", "k", "v", "EX", "10", "EX", "20"}), kOk);  // Redis allows a repeat
  EXPECT_EQ(Ttl("k"), 20);
  EXPECT_EQ(Cmd({"SET", "k", "v", "EX", "0"}), "-ERR invalid expire time in 'set' command\r\n");
  EXPECT_EQ(Cmd({"SET", "k", "v", "PX", "-5"}), "-ERR invalid expire time in 'set' command\r\n");
  EXPECT_EQ(Cmd({"SET", "k", "v", "EX", "9223372036854775807"}),
            "-ERR invalid expire time in 'set' command\r\n");
  EXPECT_EQ(Cmd({"SET", "k", "v", "PX", "9223372036854775807"}),
            "-ERR invalid expire time in 'set' command\r\n");
  EXPECT_EQ(Cmd({"SET", "k", "v", "EX", "abc"}), kNotInt);
  EXPECT_EQ(Cmd({"SET", "k", "v", "EX", "1.5"}), kNotInt);
  EXPECT_EQ(Cmd({"GET", "k"}), Bulk("v"));
}

TEST_P(RespTest, SetNxSetExPSetEx) {
  EXPECT_EQ(Cmd({"SETNX", "k", "1"}), Int(1));
  EXPECT_EQ(Cmd({"SETNX", "k", "2"}), Int(0));
  EXPECT_EQ(Cmd({"GET", "k"}), Bulk("1"));
  EXPECT_EQ(Cmd({"SETNX", "k"}), Arity("setnx"));
  EXPECT_EQ(Cmd({"SETEX", "k", "100", "v"}), kOk);
  EXPECT_EQ(Ttl("k"), 100);
  EXPECT_EQ(Cmd({"GET", "k"}), Bulk("v"));
  EXPECT_EQ(Cmd({"SETEX", "k", "0", "v"}), "-ERR invalid expire time in 'setex' command\r\n");
  EXPECT_EQ(Cmd({"SETEX", "k", "x", "v"}), kNotInt);
  EXPECT_EQ(Cmd({"SETEX", "k", "1"}), Arity("setex"));
  EXPECT_EQ(Cmd({"PSETEX", "k", "100000", "w"}), kOk);
  EXPECT_GT(PTtl("k"), 99000);
  EXPECT_LE(PTtl("k"), 100000);
  EXPECT_EQ(Cmd({"PSETEX", "k", "-1", "v"}), "-ERR invalid expire time in 'psetex' command\r\n");
}

TEST_P(RespTest, GetSetGetDelGetEx) {
  EXPECT_EQ(Cmd({"GETSET", "k", "1"}), kNull);
  EXPECT_EQ(Cmd({"GETSET", "k", "2"}), Bulk("1"));
  EXPECT_EQ(Cmd({"GET", "k"}), Bulk("2"));
  Cmd({"EXPIRE", "k", "100"});
  EXPECT_EQ(Cmd({"GETSET", "k", "3"}), Bulk("2"));
  EXPECT_EQ(Ttl("k"), -1);  // GETSET clears the TTL
  EXPECT_EQ(Cmd({"GETDEL", "k"}), Bulk("3"));
  EXPECT_EQ(Cmd({"GETDEL", "k"}), kNull);
  EXPECT_EQ(Cmd({"GET", "k"}), kNull);
  EXPECT_EQ(Cmd({"GETDEL"}), Arity("getdel"));

  EXPECT_EQ(Cmd({"GETEX", "g"}), kNull);
  EXPECT_EQ(Cmd({"GETEX", "g", "EX", "10"}), kNull);
  EXPECT_EQ(Cmd({"GET", "g"}), kNull);
  Cmd({"SET", "g", "v"});
  EXPECT_EQ(Cmd({"GETEX", "g"}), Bulk("v"));
  EXPECT_EQ(Ttl("g"), -1);
  EXPECT_EQ(Cmd({"GETEX", "g", "EX", "100"}), Bulk("v"));
  EXPECT_EQ(Ttl("g"), 100);
  EXPECT_EQ(Cmd({"GETEX", "g", "PX", "200000"}), Bulk("v"));
  EXPECT_EQ(Ttl("g"), 200);
  EXPECT_EQ(Cmd({"GETEX", "g", "EXAT", std::to_string(NowUnixMs() / 1000 + 300)}), Bulk("v"));
  EXPECT_GE(Ttl("g"), 299);
  EXPECT_EQ(Cmd({"GETEX", "g", "PXAT", std::to_string(NowUnixMs() + 400000)}), Bulk("v"));
  EXPECT_GE(Ttl("g"), 399);
  EXPECT_EQ(Cmd({"GETEX", "g", "PERSIST"}), Bulk("v"));
  EXPECT_EQ(Ttl("g"), -1);
  EXPECT_EQ(Cmd({"GETEX", "g", "PERSIST"}), Bulk("v"));
  EXPECT_EQ(Cmd({"GETEX", "g", "EX", "0"}), "-ERR invalid expire time in 'getex' command\r\n");
  EXPECT_EQ(Cmd({"GETEX", "g", "EX", "x"}), kNotInt);
  EXPECT_EQ(Cmd({"GETEX", "g", "EX", "10", "PERSIST"}), kSyntax);
  EXPECT_EQ(Cmd({"GETEX", "g", "PERSIST", "EX", "10"}), kSyntax);
  EXPECT_EQ(Cmd({"GETEX", "g", "NX"}), kSyntax);
  EXPECT_EQ(Cmd({"GETEX", "g", "KEEPTTL"}), kSyntax);
  EXPECT_EQ(Cmd({"GETEX", "g", "EX"}), kSyntax);
  EXPECT_EQ(Cmd({"GETEX", "g", "PXAT", "1"}), Bulk("v"));  // in the past: deleted
  EXPECT_EQ(Cmd({"GET", "g"}), kNull);
  EXPECT_EQ(Cmd({"GETEX"}), Arity("getex"));
}

TEST_P(RespTest, MGetMSetMSetNx) {
  EXPECT_EQ(Cmd({"MSET", "a", "1", "b", "2"}), kOk);
  EXPECT_EQ(Cmd({"MGET", "a", "nope", "b"}), "*3\r\n" + Bulk("1") + kNull + Bulk("2"));
  EXPECT_EQ(Cmd({"MSET", "a", "1", "b"}), Arity("mset"));
  EXPECT_EQ(Cmd({"MSET", "a"}), Arity("mset"));
  EXPECT_EQ(Cmd({"MGET"}), Arity("mget"));
  EXPECT_EQ(Cmd({"MSET", "d", "1", "d", "2"}), kOk);  // the later one wins
  EXPECT_EQ(Cmd({"GET", "d"}), Bulk("2"));
  EXPECT_EQ(Cmd({"MSETNX", "x", "1", "a", "9"}), Int(0));
  EXPECT_EQ(Cmd({"GET", "x"}), kNull);
  EXPECT_EQ(Cmd({"GET", "a"}), Bulk("1"));
  EXPECT_EQ(Cmd({"MSETNX", "x", "1", "y", "2"}), Int(1));
  EXPECT_EQ(Cmd({"MGET", "x", "y"}), "*2\r\n" + Bulk("1") + Bulk("2"));
  EXPECT_EQ(Cmd({"MSETNX", "z", "1"}), Int(1));
  EXPECT_EQ(Cmd({"MSETNX", "z", "2"}), Int(0));
  EXPECT_EQ(Cmd({"MSETNX", "z", "2", "w"}), Arity("msetnx"));
  // MSET clears TTLs like SET.
  Cmd({"EXPIRE", "a", "100"});
  Cmd({"MSET", "a", "5"});
  EXPECT_EQ(Ttl("a"), -1);
}

TEST_P(RespTest, DelUnlinkExists) {
  Cmd({"MSET", "a", "1", "b", "2", "c", "3"});
  EXPECT_EQ(Cmd({"EXISTS", "a", "a", "nope", "b"}), Int(3));  // repeats count
  EXPECT_EQ(Cmd({"DEL", "a", "nope", "a"}), Int(1));
  EXPECT_EQ(Cmd({"UNLINK", "b", "c"}), Int(2));
  EXPECT_EQ(Cmd({"EXISTS", "a", "b", "c"}), Int(0));
  EXPECT_EQ(Cmd({"DEL"}), Arity("del"));
  EXPECT_EQ(Cmd({"EXISTS"}), Arity("exists"));
}

TEST_P(RespTest, IncrDecr) {
  EXPECT_EQ(Cmd({"INCR", "n"}), Int(1));
  EXPECT_EQ(Cmd({"INCR", "n"}), Int(2));
  EXPECT_EQ(Cmd({"DECR", "n"}), Int(1));
  EXPECT_EQ(Cmd({"INCRBY", "n", "10"}), Int(11));
  EXPECT_EQ(Cmd({"INCRBY", "n", "-20"}), Int(-9));
  EXPECT_EQ(Cmd({"DECRBY", "n", "-9"}), Int(0));
  EXPECT_EQ(Cmd({"DECRBY", "fresh", "5"}), Int(-5));
  EXPECT_EQ(Cmd({"GET", "n"}), Bulk("0"));
  EXPECT_EQ(Cmd({"INCRBY", "n", "x"}), kNotInt);
  EXPECT_EQ(Cmd({"INCRBY", "n", "1.5"}), kNotInt);
  EXPECT_EQ(Cmd({"INCRBY", "n", "+1"}), kNotInt);
  EXPECT_EQ(Cmd({"INCRBY", "n", " 1"}), kNotInt);
  EXPECT_EQ(Cmd({"DECRBY", "n", "-9223372036854775808"}), "-ERR decrement would overflow\r\n");
  for (const char* bad : {"abc", "", " 1", "1 ", "01", "-0", "1.0", "99999999999999999999"}) {
    Cmd({"SET", "s", bad});
    EXPECT_EQ(Cmd({"INCR", "s"}), kNotInt) << bad;
  }
  Cmd({"SET", "m", "9223372036854775807"});
  EXPECT_EQ(Cmd({"INCR", "m"}), "-ERR increment or decrement would overflow\r\n");
  Cmd({"SET", "m", "-9223372036854775808"});
  EXPECT_EQ(Cmd({"DECR", "m"}), "-ERR increment or decrement would overflow\r\n");
  EXPECT_EQ(Cmd({"INCRBY", "m", "9223372036854775807"}), Int(-1));
  EXPECT_EQ(Cmd({"INCR"}), Arity("incr"));
  EXPECT_EQ(Cmd({"INCRBY", "n"}), Arity("incrby"));
  // The TTL survives INCR.
  Cmd({"SET", "t", "5", "EX", "100"});
  EXPECT_EQ(Cmd({"INCR", "t"}), Int(6));
  EXPECT_GE(Ttl("t"), 99);
}

TEST_P(RespTest, IncrByFloat) {
  Cmd({"SET", "f", "10.50"});
  EXPECT_EQ(Cmd({"INCRBYFLOAT", "f", "0.1"}), Bulk("10.6"));
  EXPECT_EQ(Cmd({"INCRBYFLOAT", "f", "-5"}), Bulk("5.6"));
  Cmd({"SET", "f", "5.0e3"});
  EXPECT_EQ(Cmd({"INCRBYFLOAT", "f", "2.0e2"}), Bulk("5200"));
  EXPECT_EQ(Cmd({"GET", "f"}), Bulk("5200"));
  EXPECT_EQ(Cmd({"INCRBYFLOAT", "new", "3"}), Bulk("3"));
  EXPECT_EQ(Cmd({"INCRBYFLOAT", "new", "-3"}), Bulk("0"));
  EXPECT_EQ(Cmd({"INCRBYFLOAT", "f", "abc"}), "-ERR value is not a valid float\r\n");
  EXPECT_EQ(Cmd({"INCRBYFLOAT", "f", " 1"}), "-ERR value is not a valid float\r\n");
  EXPECT_EQ(Cmd({"INCRBYFLOAT", "f", "nan"}), "-ERR value is not a valid float\r\n");
  EXPECT_EQ(Cmd({"INCRBYFLOAT", "f", "inf"}), "-ERR increment would produce NaN or Infinity\r\n");
  Cmd({"SET", "s", "hello"});
  EXPECT_EQ(Cmd({"INCRBYFLOAT", "s", "1"}), "-ERR value is not a valid float\r\n");
  Cmd({"SET", "t", "1.5", "EX", "100"});
  EXPECT_EQ(Cmd({"INCRBYFLOAT", "t", "1"}), Bulk("2.5"));
  EXPECT_GE(Ttl("t"), 99);
  EXPECT_EQ(Cmd({"INCRBYFLOAT", "t"}), Arity("incrbyfloat"));
}

TEST_P(RespTest, AppendStrlen) {
  EXPECT_EQ(Cmd({"APPEND", "a", "Hello"}), Int(5));
  EXPECT_EQ(Cmd({"APPEND", "a", " World"}), Int(11));
  EXPECT_EQ(Cmd({"GET", "a"}), Bulk("Hello World"));
  EXPECT_EQ(Cmd({"STRLEN", "a"}), Int(11));
  EXPECT_EQ(Cmd({"STRLEN", "nope"}), Int(0));
  EXPECT_EQ(Cmd({"APPEND", "a", ""}), Int(11));
  Cmd({"EXPIRE", "a", "100"});
  EXPECT_EQ(Cmd({"APPEND", "a", "!"}), Int(12));
  EXPECT_GE(Ttl("a"), 99);
  EXPECT_EQ(Cmd({"APPEND", "a"}), Arity("append"));
  EXPECT_EQ(Cmd({"STRLEN"}), Arity("strlen"));
}

TEST_P(RespTest, GetRangeSetRange) {
  Cmd({"SET", "s", "This is a string"});
  EXPECT_EQ(Cmd({"GETRANGE", "s", "0", "3"}), Bulk("This"));
  EXPECT_EQ(Cmd({"GETRANGE", "s", "-3", "-1"}), Bulk("ing"));
  EXPECT_EQ(Cmd({"GETRANGE", "s", "0", "-1"}), Bulk("This is a string"));
  EXPECT_EQ(Cmd({"GETRANGE", "s", "10", "100"}), Bulk("string"));
  EXPECT_EQ(Cmd({"GETRANGE", "s", "5", "3"}), Bulk(""));
  EXPECT_EQ(Cmd({"GETRANGE", "s", "-1", "-5"}), Bulk(""));
  EXPECT_EQ(Cmd({"GETRANGE", "s", "-100", "2"}), Bulk("Thi"));
  EXPECT_EQ(Cmd({"GETRANGE", "nope", "0", "-1"}), Bulk(""));
  EXPECT_EQ(Cmd({"GETRANGE", "s", "a", "1"}), kNotInt);
  EXPECT_EQ(Cmd({"GETRANGE", "s", "0"}), Arity("getrange"));

  Cmd({"SET", "k1", "Hello World"});
  EXPECT_EQ(Cmd({"SETRANGE", "k1", "6", "Redis"}), Int(11));
  EXPECT_EQ(Cmd({"GET", "k1"}), Bulk("Hello Redis"));
  EXPECT_EQ(Cmd({"SETRANGE", "k2", "6", "Redis"}), Int(11));
  EXPECT_EQ(Cmd({"GET", "k2"}), Bulk(std::string(6, '\0') + "Redis"));
  EXPECT_EQ(Cmd({"SETRANGE", "k3", "5", ""}), Int(0));
  EXPECT_EQ(Cmd({"EXISTS", "k3"}), Int(0));
  EXPECT_EQ(Cmd({"SETRANGE", "k1", "100", ""}), Int(11));
  EXPECT_EQ(Cmd({"SETRANGE", "k1", "-1", "x"}), "-ERR offset is out of range\r\n");
  EXPECT_EQ(Cmd({"SETRANGE", "k1", "x", "x"}), kNotInt);
  Cmd({"EXPIRE", "k1", "100"});
  EXPECT_EQ(Cmd({"SETRANGE", "k1", "0", "J"}), Int(11));
  EXPECT_GE(Ttl("k1"), 99);
  EXPECT_EQ(Cmd({"GET", "k1"}), Bulk("Jello Redis"));
}

// --- keyspace ----------------------------------------------------------------------------------

TEST_P(RespTest, ExpireTtlPersist) {
  EXPECT_EQ(Cmd({"TTL", "k"}), Int(-2));
  EXPECT_EQ(Cmd({"PTTL", "k"}), Int(-2));
  EXPECT_EQ(Cmd({"EXPIRE", "k", "100"}), Int(0));
  Cmd({"SET", "k", "v"});
  EXPECT_EQ(Cmd({"TTL", "k"}), Int(-1));
  EXPECT_EQ(Cmd({"PTTL", "k"}), Int(-1));
  EXPECT_EQ(Cmd({"EXPIRE", "k", "100"}), Int(1));
  EXPECT_EQ(Ttl("k"), 100);
  EXPECT_EQ(Cmd({"GET", "k"}), Bulk("v"));
  EXPECT_EQ(Cmd({"PEXPIRE", "k", "50000"}), Int(1));
  EXPECT_EQ(Ttl("k"), 50);
  EXPECT_EQ(Cmd({"EXPIREAT", "k", std::to_string(NowUnixMs() / 1000 + 1000)}), Int(1));
  EXPECT_GE(Ttl("k"), 999);
  EXPECT_EQ(Cmd({"PEXPIREAT", "k", std::to_string(NowUnixMs() + 2000000)}), Int(1));
  EXPECT_GE(Ttl("k"), 1999);
  EXPECT_EQ(Cmd({"PERSIST", "k"}), Int(1));
  EXPECT_EQ(Cmd({"PERSIST", "k"}), Int(0));
  EXPECT_EQ(Cmd({"PERSIST", "nope"}), Int(0));
  EXPECT_EQ(Ttl("k"), -1);

  // NX / XX / GT / LT.
  EXPECT_EQ(Cmd({"EXPIRE", "k", "100", "XX"}), Int(0));
  EXPECT_EQ(Cmd({"EXPIRE", "k", "100", "GT"}), Int(0));  // no TTL counts as infinite
  EXPECT_EQ(Cmd({"EXPIRE", "k", "100", "NX"}), Int(1));
  EXPECT_EQ(Cmd({"EXPIRE", "k", "200", "NX"}), Int(0));
  EXPECT_EQ(Cmd({"EXPIRE", "k", "200", "xx"}), Int(1));
  EXPECT_EQ(Cmd({"EXPIRE", "k", "100", "GT"}), Int(0));
  EXPECT_EQ(Cmd({"EXPIRE", "k", "300", "GT"}), Int(1));
  EXPECT_EQ(Cmd({"EXPIRE", "k", "400", "LT"}), Int(0));
  EXPECT_EQ(Cmd({"EXPIRE", "k", "50", "LT"}), Int(1));
  EXPECT_EQ(Ttl("k"), 50);
  Cmd({"PERSIST", "k"});
  EXPECT_EQ(Cmd({"EXPIRE", "k", "50", "LT"}), Int(1));
  EXPECT_EQ(Cmd({"EXPIRE", "k", "1", "NX", "XX"}),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
  EXPECT_EQ(Cmd({"EXPIRE", "k", "1", "GT", "LT"}),
            "-ERR GT and LT options at the same time are not compatible\r\n");
  EXPECT_EQ(Cmd({"EXPIRE", "k", "1", "FOO"}), "-ERR Unsupported option FOO\r\n");
  EXPECT_EQ(Cmd({"EXPIRE", "k", "x"}), kNotInt);
  EXPECT_EQ(Cmd({"EXPIRE", "k", "9223372036854775807"}),
            "-ERR invalid expire time in 'expire' command\r\n");
  EXPECT_EQ(Cmd({"PEXPIRE", "k", "9223372036854775807"}),
            "-ERR invalid expire time in 'pexpire' command\r\n");
  EXPECT_EQ(Cmd({"EXPIRE", "k"}), Arity("expire"));
  EXPECT_EQ(Cmd({"TTL"}), Arity("ttl"));
  // A time in the past deletes the key.
  EXPECT_EQ(Cmd({"EXPIRE", "k", "-1"}), Int(1));
  EXPECT_EQ(Cmd({"EXISTS", "k"}), Int(0));
  Cmd({"SET", "k", "v"});
  EXPECT_EQ(Cmd({"EXPIREAT", "k", "1"}), Int(1));
  EXPECT_EQ(Cmd({"GET", "k"}), kNull);
  Cmd({"SET", "k", "v"});
  EXPECT_EQ(Cmd({"PEXPIRE", "k", "30"}), Int(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_EQ(Cmd({"GET", "k"}), kNull);
}

TEST_P(RespTest, Type) {
  Cmd({"SET", "k", "v"});
  EXPECT_EQ(Cmd({"TYPE", "k"}), "+string\r\n");
  EXPECT_EQ(Cmd({"TYPE", "nope"}), "+none\r\n");
  EXPECT_EQ(Cmd({"TYPE"}), Arity("type"));
}

TEST(RespGlobTest, Patterns) {
  using resp::GlobMatch;
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("*", "anything"));
  EXPECT_TRUE(GlobMatch("h?llo", "hello"));
  EXPECT_TRUE(GlobMatch("h?llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h?llo", "hllo"));
  EXPECT_TRUE(GlobMatch("h*llo", "hllo"));
  EXPECT_TRUE(GlobMatch("h*llo", "heeeello"));
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hello"));
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[ae]llo", "hillo"));
  EXPECT_TRUE(GlobMatch("h[^e]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[^e]llo", "hello"));
  EXPECT_TRUE(GlobMatch("h[a-b]llo", "hbllo"));
  EXPECT_FALSE(GlobMatch("h[a-b]llo", "hcllo"));
  EXPECT_TRUE(GlobMatch("h[b-a]llo", "hallo"));  // reversed range
  EXPECT_TRUE(GlobMatch("a\\*b", "a*b"));
  EXPECT_FALSE(GlobMatch("a\\*b", "axb"));
  EXPECT_TRUE(GlobMatch("a[\\]]b", "a]b"));
  EXPECT_TRUE(GlobMatch("user:*:name", "user:42:name"));
  EXPECT_FALSE(GlobMatch("user:*:name", "user:42:mail"));
  EXPECT_TRUE(GlobMatch("*a*b*c*", "xxaxxbxxcxx"));
  EXPECT_FALSE(GlobMatch("*a*b*c*", "xxaxxcxxbxx"));
  EXPECT_FALSE(GlobMatch("abc", "abcd"));
  EXPECT_FALSE(GlobMatch("", "a"));
  EXPECT_TRUE(GlobMatch("", ""));
  EXPECT_TRUE(GlobMatch("[abc", "b"));  // an unclosed class runs to the end
  // No exponential blow-up on many stars.
  EXPECT_FALSE(GlobMatch(std::string(50, '*') + "b", std::string(10000, 'a')));
  EXPECT_TRUE(GlobMatch(std::string("\xff*"), std::string("\xff\x01")));
  EXPECT_EQ(resp::GlobLiteralPrefix("user:1*"), "user:1");
  EXPECT_EQ(resp::GlobLiteralPrefix("*x"), "");
  EXPECT_EQ(resp::GlobLiteralPrefix("a\\*"), "a");
}

TEST_P(RespTest, Keys) {
  Cmd({"MSET", "hello", "1", "hallo", "2", "hxllo", "3", "world", "4", "h*llo", "5"});
  auto keys = [&](const std::string& pattern) {
    std::string r = Cmd({"KEYS", pattern});
    std::multiset<std::string> out;
    size_t pos = r.find("\r\n") + 2;
    while (pos < r.size()) {
      size_t nl = r.find("\r\n", pos);
      size_t len = std::stoul(r.substr(pos + 1, nl - pos - 1));
      out.insert(r.substr(nl + 2, len));
      pos = nl + 2 + len + 2;
    }
    EXPECT_EQ(r.substr(0, r.find("\r\n")), "*" + std::to_string(out.size()));
    return out;
  };
  using S = std::multiset<std::string>;
  EXPECT_EQ(keys("*"), (S{"hello", "hallo", "hxllo", "world", "h*llo"}));
  EXPECT_EQ(keys("h?llo"), (S{"hello", "hallo", "hxllo", "h*llo"}));
  EXPECT_EQ(keys("h[ae]llo"), (S{"hello", "hallo"}));
  EXPECT_EQ(keys("h[^e]llo"), (S{"hallo", "hxllo", "h*llo"}));
  EXPECT_EQ(keys("h[a-e]llo"), (S{"hello", "hallo"}));
  EXPECT_EQ(keys("h\\*llo"), (S{"h*llo"}));
  EXPECT_EQ(keys("w*"), (S{"world"}));
  EXPECT_EQ(keys("nothing*"), S{});
  EXPECT_EQ(Cmd({"KEYS", "nothing"}), "*0\r\n");
  EXPECT_EQ(Cmd({"KEYS"}), Arity("keys"));
}

TEST_P(RespTest, Scan) {
  std::set<std::string> want;
  for (int i = 0; i < 95; ++i) {
    std::string k = (i % 3 == 0 ? "odd:" : "key:") + std::to_string(i);
    Cmd({"SET", k, "v"});
    want.insert(k);
  }
  // Parses a SCAN reply into (cursor, keys).
  auto scan = [&](const Args& args, std::vector<std::string>* keys) {
    std::string r = Cmd(args);
    EXPECT_EQ(r.substr(0, 5), "*2\r\n$");
    size_t nl = r.find("\r\n", 4);
    size_t len = std::stoul(r.substr(5, nl - 5));
    std::string cursor = r.substr(nl + 2, len);
    size_t pos = nl + 2 + len + 2;
    size_t arr_nl = r.find("\r\n", pos);
    size_t n = std::stoul(r.substr(pos + 1, arr_nl - pos - 1));
    pos = arr_nl + 2;
    for (size_t i = 0; i < n; ++i) {
      size_t bnl = r.find("\r\n", pos);
      size_t blen = std::stoul(r.substr(pos + 1, bnl - pos - 1));
      keys->push_back(r.substr(bnl + 2, blen));
      pos = bnl + 2 + blen + 2;
    }
    EXPECT_EQ(pos, r.size());
    return cursor;
  };
  std::vector<std::string> got;
  std::string cursor = "0";
  int calls = 0;
  do {
    std::vector<std::string> batch;
    cursor = scan({"SCAN", cursor, "COUNT", "10"}, &batch);
    EXPECT_LE(batch.size(), 10u);
    got.insert(got.end(), batch.begin(), batch.end());
    ++calls;
  } while (cursor != "0" && calls < 100);
  EXPECT_EQ(got.size(), want.size());  // each key exactly once
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), want);
  EXPECT_GE(calls, 10);

  got.clear();
  cursor = "0";
  do {
    cursor = scan({"SCAN", cursor, "MATCH", "odd:*", "COUNT", "7"}, &got);
  } while (cursor != "0");
  EXPECT_EQ(got.size(), 32u);
  for (const std::string& k : got) EXPECT_EQ(k.substr(0, 4), "odd:");

  got.clear();
  EXPECT_EQ(scan({"SCAN", "0", "COUNT", "1000", "TYPE", "string"}, &got), "0");
  EXPECT_EQ(got.size(), want.size());
  got.clear();
  EXPECT_EQ(scan({"SCAN", "0", "TYPE", "hash"}, &got), "0");
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(Cmd({"SCAN", "0", "TYPE", "blob"}), "-ERR unknown type name 'blob'\r\n");
  EXPECT_EQ(Cmd({"SCAN", "0", "COUNT", "0"}), kSyntax);
  EXPECT_EQ(Cmd({"SCAN", "0", "COUNT", "x"}), kNotInt);
  EXPECT_EQ(Cmd({"SCAN", "0", "COUNT"}), kSyntax);
  EXPECT_EQ(Cmd({"SCAN", "0", "FOO", "1"}), kSyntax);
  EXPECT_EQ(Cmd({"SCAN", "x"}), "-ERR invalid cursor\r\n");
  EXPECT_EQ(Cmd({"SCAN", "-1"}), "-ERR invalid cursor\r\n");
  EXPECT_EQ(Cmd({"SCAN", "987654"}), "-ERR invalid cursor (unknown or expired)\r\n");
  EXPECT_EQ(Cmd({"SCAN"}), Arity("scan"));
  // A cursor works from another connection too.
  std::vector<std::string> first;
  std::string c1 = scan({"SCAN", "0", "COUNT", "5"}, &first);
  ASSERT_NE(c1, "0");
  auto other = NewConn();
  std::string r = other->Feed(Encode({"SCAN", c1, "COUNT", "5"}));
  EXPECT_EQ(r.substr(0, 5), "*2\r\n$");
}

TEST_P(RespTest, DbSizeFlush) {
  EXPECT_EQ(Cmd({"DBSIZE"}), Int(0));
  for (int i = 0; i < 2500; ++i) Raw(Encode({"SET", "k" + std::to_string(i), "v"}));
  EXPECT_EQ(Cmd({"DBSIZE"}), Int(2500));
  EXPECT_EQ(Cmd({"FLUSHDB"}), kOk);
  EXPECT_EQ(Cmd({"DBSIZE"}), Int(0));
  EXPECT_EQ(Cmd({"GET", "k1"}), kNull);
  Cmd({"SET", "a", "1"});
  EXPECT_EQ(Cmd({"FLUSHALL", "ASYNC"}), kOk);
  EXPECT_EQ(Cmd({"KEYS", "*"}), "*0\r\n");
  EXPECT_EQ(Cmd({"FLUSHALL", "SYNC"}), kOk);
  EXPECT_EQ(Cmd({"FLUSHDB", "x"}), kSyntax);
  EXPECT_EQ(Cmd({"FLUSHDB", "ASYNC", "x"}), kSyntax);
  EXPECT_EQ(Cmd({"DBSIZE", "x"}), Arity("dbsize"));
}

// --- protocol ----------------------------------------------------------------------------------

TEST_P(RespTest, Pipelining) {
  std::string in, want;
  for (int i = 0; i < 200; ++i) {
    in += Encode({"SET", "k" + std::to_string(i), std::to_string(i)});
    want += kOk;
    in += Encode({"INCR", "k" + std::to_string(i)});
    want += Int(i + 1);
    in += Encode({"GET", "k" + std::to_string(i)});
    want += Bulk(std::to_string(i + 1));
  }
  EXPECT_EQ(Raw(in), want);
  EXPECT_TRUE(conn_->pending.empty());
}

// Every command of a mixed buffer (multibulk, inline, binary, empty lines) split at every byte
// gives the same replies as the whole buffer; so does feeding one byte at a time.
TEST_P(RespTest, SplitAtEveryByte) {
  std::string bin = AllBytes();
  std::string in = Encode({"SET", bin, bin}) + "GET \"a b\"\r\n" + Encode({"GET", bin}) + "\r\n\n" +
                   "SET x 'it''s'\r\n" + "*0\r\n" + Encode({"INCR", "n"}) + "PING\n" +
                   Encode({"MGET", "x", bin, "none"}) + "ECHO \"\\x41\\n\"\r\n" +
                   Encode({"DEL", "n"});
  std::string want = Raw(in);
  ASSERT_TRUE(conn_->pending.empty());
  EXPECT_EQ(want,
            kOk + kNull + Bulk(bin) + "-ERR Protocol error: unbalanced quotes in request\r\n");
  // The quotes error closes the connection: use a valid buffer for the split test.
  in = Encode({"SET", bin, bin}) + "GET \"a b\"\r\n" + Encode({"GET", bin}) + "\r\n\n" +
       "SET x 'it\\'s'\r\n" + "*0\r\n" + Encode({"INCR", "n"}) + "PING\n" +
       Encode({"MGET", "x", bin, "none"}) + "ECHO \"\\x41\\n\"\r\n" + Encode({"DEL", "n"});
  conn_ = NewConn();
  want = Raw(in);
  EXPECT_EQ(want, kOk + kNull + Bulk(bin) + kOk + Int(1) + "+PONG\r\n" + "*3\r\n" + Bulk("it's") +
                      Bulk(bin) + kNull + Bulk("A\n") + Int(1));
  for (size_t split = 0; split <= in.size(); ++split) {
    Cmd({"DEL", "n"});
    auto c = NewConn();
    std::string got = c->Feed(in.substr(0, split));
    got += c->Feed(in.substr(split));
    ASSERT_EQ(got, want) << "split at " << split;
    ASSERT_TRUE(c->pending.empty());
  }
  Cmd({"DEL", "n"});
  auto c = NewConn();
  std::string got;
  for (char ch : in) got += c->Feed(std::string_view(&ch, 1));
  EXPECT_EQ(got, want);
}

TEST_P(RespTest, BinaryKeysAndValues) {
  std::string bin = AllBytes();
  for (int i = 0; i < 256; ++i) {
    std::string key = "k" + std::string(1, static_cast<char>(i));
    std::string value = std::string(1, static_cast<char>(i)) + bin;
    EXPECT_EQ(Cmd({"SET", key, value}), kOk);
    EXPECT_EQ(Cmd({"GET", key}), Bulk(value));
  }
  EXPECT_EQ(Cmd({"APPEND", bin, bin}), Int(256));
  EXPECT_EQ(Cmd({"APPEND", bin, "\r\n"}), Int(258));
  EXPECT_EQ(Cmd({"GET", bin}), Bulk(bin + "\r\n"));
  EXPECT_EQ(Cmd({"EXISTS", bin}), Int(1));
  EXPECT_EQ(Cmd({"KEYS", "k\\*"}), "*1\r\n" + Bulk("k*"));
}

TEST_P(RespTest, InlineCommands) {
  EXPECT_EQ(Raw("SET a b\r\n"), kOk);
  EXPECT_EQ(Raw("GET a\n"), Bulk("b"));
  EXPECT_EQ(Raw("  get   a  \r\n"), Bulk("b"));
  EXPECT_EQ(Raw("\r\n\r\n\n"), "");
  EXPECT_EQ(Raw("SET \"sp ace\" \"tab\\there\\x00\\xff\"\r\n"), kOk);
  EXPECT_EQ(Raw("GET \"sp ace\"\r\n"), Bulk(std::string("tab\there\0\xff", 10)));
  EXPECT_EQ(Raw("SET 'single \"q\"' 'it\\'s'\r\n"), kOk);
  EXPECT_EQ(Raw("GET 'single \"q\"'\r\n"), Bulk("it's"));
  EXPECT_EQ(Raw("ECHO a\"b c\"d\r\n"), "-ERR Protocol error: unbalanced quotes in request\r\n");
  EXPECT_TRUE(conn_->closed);
  conn_ = NewConn();
  EXPECT_EQ(Raw("ECHO a\"b c\"\r\n"), Bulk("ab c"));
  EXPECT_EQ(Raw("ECHO \"\"\r\n"), Bulk(""));
  EXPECT_EQ(Raw("GET\r\nPING\r\n"), Arity("get") + "+PONG\r\n");
  EXPECT_EQ(Raw("PING"), "");  // waits for the newline
  EXPECT_EQ(Raw("\r\n"), "+PONG\r\n");
  EXPECT_EQ(ExpectClosed("SET a \"b\r\n", Disconnect::kProtocolError),
            "-ERR Protocol error: unbalanced quotes in request\r\n");
  EXPECT_EQ(ExpectClosed("SET a 'b\r\n", Disconnect::kProtocolError),
            "-ERR Protocol error: unbalanced quotes in request\r\n");
  EXPECT_EQ(ExpectClosed(std::string(70000, 'a'), Disconnect::kTooLarge),
            "-ERR Protocol error: too big inline request\r\n");
  EXPECT_EQ(ExpectClosed("ECHO " + std::string(70000, 'a') + "\r\n", Disconnect::kTooLarge),
            "-ERR Protocol error: too big inline request\r\n");
  // A long line is fine while it stays within the limit.
  EXPECT_EQ(Raw("ECHO " + std::string(60000, 'z') + "\r\n"), Bulk(std::string(60000, 'z')));
}

TEST_P(RespTest, ProtocolErrors) {
  struct Case {
    std::string in, reply;
    Disconnect why;
  };
  const Case cases[] = {
      {"*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n", Disconnect::kProtocolError},
      {"*1x\r\n", "-ERR Protocol error: invalid multibulk length\r\n", Disconnect::kProtocolError},
      {"*1\rx", "-ERR Protocol error: invalid multibulk length\r\n", Disconnect::kProtocolError},
      {"*" + std::string(40, '1'), "-ERR Protocol error: invalid multibulk length\r\n",
       Disconnect::kProtocolError},
      {"*999999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n",
       Disconnect::kTooLarge},
      {"*1\r\n+foo\r\n", "-ERR Protocol error: expected '$', got '+'\r\n",
       Disconnect::kProtocolError},
      {"*2\r\n$3\r\nGET\r\n:1\r\n", "-ERR Protocol error: expected '$', got ':'\r\n",
       Disconnect::kProtocolError},
      {"*1\r\n$-2\r\n", "-ERR Protocol error: invalid bulk length\r\n", Disconnect::kProtocolError},
      {"*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n", Disconnect::kProtocolError},
      {"*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length\r\n", Disconnect::kProtocolError},
      {"*1\r\n$10737418240\r\n", "-ERR Protocol error: invalid bulk length\r\n",
       Disconnect::kTooLarge},
      {"*1\r\n$4\r\nPINGxx", "-ERR Protocol error: bulk data not followed by CRLF\r\n",
       Disconnect::kProtocolError},
  };
  uint64_t malformed = metrics_.malformed(Protocol::kRedis);
  for (const Case& c : cases) {
    EXPECT_EQ(ExpectClosed(c.in, c.why), c.reply) << c.in;
  }
  EXPECT_EQ(metrics_.malformed(Protocol::kRedis), malformed + std::size(cases));
  // Replies to the requests before the bad one are kept.
  EXPECT_EQ(ExpectClosed(Encode({"PING"}) + "*1\r\n$-2\r\n" + Encode({"PING"}),
                         Disconnect::kProtocolError),
            "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
  // "*0" and "*-1" are skipped, like Redis.
  EXPECT_EQ(Raw("*0\r\n*-1\r\n" + Encode({"PING"})), "+PONG\r\n");
  // Incomplete requests wait.
  EXPECT_EQ(Raw("*2\r\n$3\r\nGET\r\n$1\r"), "");
  EXPECT_EQ(Raw("\nk"), "");
  EXPECT_EQ(Raw("\r"), "");
  EXPECT_EQ(Raw("\n"), kNull);
  EXPECT_FALSE(conn_->closed);
}

TEST_P(RespTest, Limits) {
  opts_.max_key_bytes = 16;
  opts_.max_value_bytes = 100;
  opts_.max_request_bytes = 1000;
  conn_ = NewConn();
  std::string key16(16, 'k'), key17(17, 'k');
  const std::string key_err = "-ERR key exceeds maximum allowed size (max_key_bytes)\r\n";
  const std::string value_err = "-ERR string exceeds maximum allowed size (max_value_bytes)\r\n";
  EXPECT_EQ(Cmd({"SET", key16, "v"}), kOk);
  EXPECT_EQ(Cmd({"SET", key17, "v"}), key_err);
  EXPECT_EQ(Cmd({"GET", key17}), key_err);
  EXPECT_EQ(Cmd({"MSET", "a", "1", key17, "2"}), key_err);
  EXPECT_EQ(Cmd({"MSET", "a", key17}), kOk);  // values are not keys
  EXPECT_EQ(Cmd({"DEL", "a", key17}), key_err);
  EXPECT_EQ(Cmd({"SET", "v", std::string(100, 'x')}), kOk);
  EXPECT_EQ(Cmd({"SET", "v", std::string(101, 'x')}), value_err);
  EXPECT_EQ(Cmd({"SETNX", "w", std::string(101, 'x')}), value_err);
  EXPECT_EQ(Cmd({"SETEX", "w", "10", std::string(101, 'x')}), value_err);
  EXPECT_EQ(Cmd({"GETSET", "w", std::string(101, 'x')}), value_err);
  EXPECT_EQ(Cmd({"MSET", "w", std::string(101, 'x')}), value_err);
  EXPECT_EQ(Cmd({"APPEND", "v", "y"}), value_err);
  EXPECT_EQ(Cmd({"SETRANGE", "v", "100", "y"}), value_err);
  EXPECT_EQ(Cmd({"SETRANGE", "v", "99", "y"}), Int(100));
  EXPECT_EQ(Cmd({"GET", "w"}), kNull);
  // A bulk length beyond max_request_bytes: protocol error and close.
  EXPECT_EQ(ExpectClosed("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n", Disconnect::kTooLarge),
            "-ERR Protocol error: invalid bulk length\r\n");
  // So is a request whose arguments add up to more.
  std::string big = Encode({"MSET",
                            std::string(10, 'a'),
                            std::string(90, 'x'),
                            "b",
                            std::string(90, 'x'),
                            "c",
                            std::string(90, 'x'),
                            "d",
                            std::string(90, 'x'),
                            "e",
                            std::string(90, 'x'),
                            "f",
                            std::string(90, 'x'),
                            "g",
                            std::string(90, 'x'),
                            "h",
                            std::string(90, 'x'),
                            "i",
                            std::string(90, 'x'),
                            "j",
                            std::string(90, 'x'),
                            "k",
                            std::string(90, 'x')});
  EXPECT_EQ(ExpectClosed(big, Disconnect::kTooLarge),
            "-ERR Protocol error: invalid bulk length\r\n");
  EXPECT_EQ(ExpectClosed("*200\r\n", Disconnect::kTooLarge),
            "-ERR Protocol error: invalid multibulk length\r\n");
  // The inline limit follows max_request_bytes when that is smaller.
  EXPECT_EQ(ExpectClosed(std::string(1001, 'a'), Disconnect::kTooLarge),
            "-ERR Protocol error: too big inline request\r\n");
}

TEST_P(RespTest, OutputLimitStopsEarly) {
  opts_.max_output_bytes = 1000;
  conn_ = NewConn();
  Cmd({"SET", "k", std::string(300, 'v')});
  std::string in;
  for (int i = 0; i < 10; ++i) in += Encode({"GET", "k"});
  std::string out;
  bool close = false;
  Disconnect why;
  size_t used = conn_->handler->Process(in, &out, &close, &why);
  EXPECT_LT(used, in.size());
  EXPECT_EQ(used % Encode({"GET", "k"}).size(), 0u);  // stops after a whole request
  EXPECT_GT(out.size(), 1000u);
  EXPECT_LT(out.size(), 1000u + 320u);  // right after the reply that crossed the limit
  size_t replies = out.size() / Bulk(std::string(300, 'v')).size();
  EXPECT_EQ(replies, used / Encode({"GET", "k"}).size());
  // The connection writes its output and calls again with the rest.
  std::string rest = conn_->Feed(in.substr(used));
  EXPECT_EQ(out.size() + rest.size(), 10 * Bulk(std::string(300, 'v')).size());
}

TEST_P(RespTest, Metrics) {
  uint64_t before = metrics_.requests(Protocol::kRedis);
  Cmd({"SET", "k", "v"});
  Cmd({"GET", "k"});
  Cmd({"GET", "k"});
  Cmd({"GET"});
  Cmd({"nosuch"});
  Cmd({"INCR", "k"});
  EXPECT_EQ(metrics_.requests(Protocol::kRedis), before + 6);
  EXPECT_EQ(Counter("varve_requests_total", "get"), 3);
  EXPECT_EQ(Counter("varve_request_errors_total", "get"), 1);
  EXPECT_EQ(Counter("varve_requests_total", "unknown"), 1);
  EXPECT_EQ(Counter("varve_request_errors_total", "unknown"), 1);
  EXPECT_EQ(Counter("varve_request_errors_total", "incr"), 1);
  EXPECT_EQ(Counter("varve_requests_total", "set"), 1);
  EXPECT_EQ(Counter("varve_requests_total", "scan"), 0);  // registered up front
  EXPECT_EQ(metrics_.errors(Protocol::kRedis), 3u);
}

TEST_P(RespTest, StatusErrorsHaveOneForm) {
  std::string out;
  resp::AppendStatusError(&out, Status::Corruption("segment 000042.vlog: bad checksum"));
  EXPECT_EQ(out, "-ERR corruption: segment 000042.vlog: bad checksum\r\n");
  out.clear();
  resp::AppendStatusError(&out, Status::IOError("write: No space left\non device"));
  EXPECT_EQ(out, "-ERR I/O error: write: No space left on device\r\n");
  out.clear();
  resp::AppendStatusError(&out, Status::NotSupported(""));
  EXPECT_EQ(out, "-ERR not supported: NotSupported\r\n");
  // A closed store answers every data command with the mapped error.
  ASSERT_TRUE(db_->Close().ok());
  EXPECT_EQ(Cmd({"GET", "k"}), "-ERR invalid argument: store is closed\r\n");
  EXPECT_EQ(Cmd({"INCR", "k"}), "-ERR invalid argument: store is closed\r\n");
  EXPECT_EQ(Cmd({"SET", "k", "v"}), "-ERR invalid argument: store is closed\r\n");
}

TEST(RespTextTest, Numbers) {
  int64_t v = 0;
  EXPECT_TRUE(resp::ParseInt64("0", &v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(resp::ParseInt64("-9223372036854775808", &v));
  EXPECT_EQ(v, INT64_MIN);
  EXPECT_TRUE(resp::ParseInt64("9223372036854775807", &v));
  EXPECT_EQ(v, INT64_MAX);
  for (const char* bad : {"", "-", "-0", "01", "+1", " 1", "1 ", "9223372036854775808",
                          "-9223372036854775809", "1e3", "0x10"}) {
    EXPECT_FALSE(resp::ParseInt64(bad, &v)) << bad;
  }
  EXPECT_EQ(resp::FormatLongDouble(3.0L), "3");
  EXPECT_EQ(resp::FormatLongDouble(-0.0L), "0");
  EXPECT_EQ(resp::FormatLongDouble(10.5L), "10.5");
  EXPECT_EQ(resp::FormatLongDouble(1e20L), "100000000000000000000");
}

// Random mixes of valid requests, truncated requests and garbage: never a crash, and the replies
// (up to a protocol error's close) do not depend on how the bytes are split into reads.
TEST_P(RespTest, RandomInputSplitsAlike) {
  std::mt19937 rng(1234);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const std::vector<std::string> pieces = {Encode({"PING"}),
                                           Encode({"SET", "x", "y"}),
                                           Encode({"GET", "x"}),
                                           Encode({"ECHO", AllBytes()}),
                                           Encode({"MGET", "x", "nope"}),
                                           "PING\r\n",
                                           "GET x\n",
                                           "ECHO \"a\\x41\"\r\n",
                                           "\r\n",
                                           "*0\r\n",
                                           "*1\r\n",
                                           "$3\r\n",
                                           "*2\r\n$4\r\nECHO\r\n",
                                           "*-5\r\n",
                                           "$-1\r\n",
                                           "'",
                                           "\"",
                                           "*99999999999\r\n",
                                           "*1\r\n$99999999999999\r\n",
                                           std::string(1, '\0'),
                                           "\xff\xfe",
                                           "SET x y EX 100\r\n",
                                           Encode({"EXISTS", "x", "x"}),
                                           Encode({"STRLEN", "x"})};
  for (int round = 0; round < 300; ++round) {
    std::string in;
    size_t n = 1 + pick(12);
    for (size_t i = 0; i < n; ++i) {
      if (pick(5) == 0) {
        for (size_t j = pick(20); j > 0; --j) in += static_cast<char>(rng());
      } else {
        in += pieces[pick(pieces.size())];
      }
    }
    auto whole = NewConn();
    std::string want = whole->Feed(in);
    auto split = NewConn();
    std::string got;
    size_t at = 0;
    while (at < in.size() && !split->closed) {
      size_t len = std::min(in.size() - at, 1 + pick(8));
      got += split->Feed(in.substr(at, len));
      at += len;
    }
    ASSERT_EQ(got, want) << "round " << round;
    ASSERT_EQ(split->closed, whole->closed) << "round " << round;
  }
  EXPECT_EQ(Cmd({"PING"}), "+PONG\r\n");
}

// Concurrent clients incrementing one key: no lost update.
TEST_P(RespTest, ConcurrentIncrIsAtomic) {
  constexpr int kThreads = 4, kIncrs = 500;
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto c = NewConn();
      for (int i = 0; i < kIncrs; ++i) {
        std::string r = c->Feed(Encode({"INCR", "counter"}));
        if (r.empty() || r[0] != ':') ++bad;
        r = c->Feed(Encode({"APPEND", "log", "x"}));
        if (r.empty() || r[0] != ':') ++bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(Cmd({"GET", "counter"}), Bulk(std::to_string(kThreads * kIncrs)));
  EXPECT_EQ(Cmd({"STRLEN", "log"}), Int(kThreads * kIncrs));
}

}  // namespace
}  // namespace varve::server
