// The memcached front end driven in-process: bytes in, exact reply bytes out, against a real
// store in a temporary directory. Covers the text and meta protocols, noreply/quiet, exptimes,
// CAS races, pipelining at every split point, binary values, errors and limits.
#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server/delayed_task.h"
#include "server/memcache/memcache_parse.h"
#include "server/memcache/memcache_store.h"
#include "server/protocol.h"
#include "testutil/temp_dir.h"
#include "util/clock.h"
#include "varve/db.h"

namespace varve::server {
namespace {

using memcache::Base64Decode;
using memcache::Base64Encode;

// What one Process call (or a sequence of them) produced.
struct Fed {
  std::string out;
  size_t consumed = 0;
  bool close = false;
  Disconnect why = Disconnect::kClient;
};

class MemcacheTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    Options o;
    o.background_compaction = false;
    Result<std::unique_ptr<DB>> db = DB::Open(o, dir_.Sub("db"));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    ctx_.db = db_.get();
    ctx_.options = &options_;
    ctx_.metrics = &metrics_;
    ctx_.cursors = &cursors_;
    ctx_.start_unix_ms = NowUnixMs();
    RegisterMemcachedCommands(&metrics_);
    handler_ = NewMemcachedHandler(&ctx_, &client_);
  }

  void Reopen() {
    handler_.reset();
    ASSERT_TRUE(db_->Close().ok());
    db_.reset();
    Open();
  }

  // One Process call on exactly `in`.
  Fed Once(std::string_view in, ProtocolHandler* h = nullptr) {
    Fed f;
    f.consumed = (h ? h : handler_.get())->Process(in, &f.out, &f.close, &f.why);
    return f;
  }

  // Feeds `in` as a connection would (calling again after an early stop at max_output_bytes)
  // and expects all of it consumed without a close; returns the replies.
  std::string Run(std::string_view in, ProtocolHandler* h = nullptr) {
    h = h ? h : handler_.get();
    std::string out;
    size_t pos = 0;
    while (pos < in.size()) {
      bool close = false;
      Disconnect why = Disconnect::kClient;
      size_t n = h->Process(in.substr(pos), &out, &close, &why);
      EXPECT_FALSE(close) << "closed at " << pos << " on " << Printable(in);
      if (n == 0 || close) break;
      pos += n;
    }
    EXPECT_EQ(pos, in.size()) << "unconsumed input in " << Printable(in);
    return out;
  }

  // Feeds `in` in the given chunks, keeping the unconsumed rest like the connection does.
  Fed Chunked(std::string_view in, const std::vector<size_t>& cuts, ProtocolHandler* h = nullptr) {
    h = h ? h : handler_.get();
    Fed f;
    std::string pending;
    size_t prev = 0;
    std::vector<size_t> ends = cuts;
    ends.push_back(in.size());
    for (size_t end : ends) {
      pending.append(in.substr(prev, end - prev));
      prev = end;
      while (!pending.empty() && !f.close) {
        size_t n = h->Process(pending, &f.out, &f.close, &f.why);
        f.consumed += n;
        pending.erase(0, n);
        if (n == 0) break;
      }
      if (f.close) break;
    }
    return f;
  }

  static std::string Printable(std::string_view s) {
    std::string r;
    for (char c : s) {
      if (c == '\r') {
        r += "\\r";
      } else if (c == '\n') {
        r += "\\n";
      } else if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) > 126) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(c));
        r += buf;
      } else {
        r += c;
      }
    }
    return r;
  }

  // The cas unique of key, from "gets".
  uint64_t Cas(const std::string& key) {
    std::string r = Run("gets " + key + "\r\n");
    size_t eol = r.find("\r\n");
    EXPECT_EQ(r.rfind("VALUE ", 0), 0u) << r;
    std::string line = r.substr(0, eol);
    return std::stoull(line.substr(line.rfind(' ') + 1));
  }

  testing::TempDir dir_;
  ServerOptions options_;
  Metrics metrics_;
  CursorRegistry cursors_;
  ServerContext ctx_;
  ClientInfo client_;
  std::unique_ptr<DB> db_;
  std::unique_ptr<ProtocolHandler> handler_;
};

// ---------------------------------------------------------------------------------------------
// Parsing helpers

TEST(MemcacheParseTest, Numbers) {
  uint64_t u;
  EXPECT_TRUE(memcache::ParseU64("18446744073709551615", &u));
  EXPECT_EQ(u, 18446744073709551615ull);
  EXPECT_FALSE(memcache::ParseU64("18446744073709551616", &u));
  EXPECT_FALSE(memcache::ParseU64("", &u));
  EXPECT_FALSE(memcache::ParseU64("-1", &u));
  EXPECT_FALSE(memcache::ParseU64("1x", &u));
  EXPECT_FALSE(memcache::ParseU64(" 1", &u));
  uint32_t u32;
  EXPECT_TRUE(memcache::ParseU32("4294967295", &u32));
  EXPECT_FALSE(memcache::ParseU32("4294967296", &u32));
  int64_t i;
  EXPECT_TRUE(memcache::ParseI64("-1", &i));
  EXPECT_EQ(i, -1);
  EXPECT_TRUE(memcache::ParseI64("-9223372036854775808", &i));
  EXPECT_FALSE(memcache::ParseI64("9223372036854775808", &i));
  EXPECT_FALSE(memcache::ParseI64("-", &i));
  EXPECT_TRUE(memcache::ParseCounter("  42   ", &u));
  EXPECT_EQ(u, 42u);
  EXPECT_FALSE(memcache::ParseCounter("", &u));
  EXPECT_FALSE(memcache::ParseCounter("4 2", &u));
}

TEST(MemcacheParseTest, Base64) {
  std::string out;
  for (std::string in : {std::string("a"), std::string("ab"), std::string("abc"),
                         std::string("abcd"), std::string("\0\xff\r\n", 4)}) {
    std::string enc;
    Base64Encode(in, &enc);
    ASSERT_TRUE(Base64Decode(enc, &out)) << enc;
    EXPECT_EQ(out, in);
  }
  EXPECT_TRUE(Base64Decode("YmJi", &out));
  EXPECT_EQ(out, "bbb");
  EXPECT_FALSE(Base64Decode("YmJ", &out));
  EXPECT_FALSE(Base64Decode("Y=Ji", &out));
  EXPECT_FALSE(Base64Decode("Ym!i", &out));
  EXPECT_FALSE(Base64Decode("====", &out));
}

TEST(MemcacheParseTest, Exptime) {
  const uint64_t now = 1700000000000;
  EXPECT_FALSE(memcache::ExpiryFromExptime(0, now).expired);
  EXPECT_EQ(memcache::ExpiryFromExptime(0, now).ttl_ms, 0u);
  EXPECT_EQ(memcache::ExpiryFromExptime(100, now).ttl_ms, 100000u);
  EXPECT_EQ(memcache::ExpiryFromExptime(2592000, now).ttl_ms, 2592000000u);
  EXPECT_TRUE(memcache::ExpiryFromExptime(2592001, now).expired);  // 1970 + 30 days
  EXPECT_EQ(memcache::ExpiryFromExptime(1700000100, now).ttl_ms, 100000u);
  EXPECT_TRUE(memcache::ExpiryFromExptime(1700000000, now).expired);
  EXPECT_TRUE(memcache::ExpiryFromExptime(-1, now).expired);
  EXPECT_EQ(memcache::RemainingSeconds(0, now), -1);
  EXPECT_EQ(memcache::RemainingSeconds(now + 30000, now), 30);
  EXPECT_EQ(memcache::RemainingSeconds(now + 29001, now), 30);
}

TEST(MemcacheParseTest, Tokenize) {
  memcache::Tokens t;
  memcache::Tokenize("  get  a b ", &t);
  ASSERT_EQ(t.n, 3u);
  EXPECT_EQ(t.v[0], "get");
  EXPECT_EQ(t.v[2], "b");
  EXPECT_FALSE(t.truncated);
  std::string many = "x";
  for (int i = 0; i < 30; ++i) many += " k";
  memcache::Tokenize(many, &t);
  EXPECT_TRUE(t.truncated);
}

// ---------------------------------------------------------------------------------------------
// Storage and retrieval

TEST_F(MemcacheTest, SetGet) {
  EXPECT_EQ(Run("set a 5 0 3\r\nabc\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("get a\r\n"), "VALUE a 5 3\r\nabc\r\nEND\r\n");
  EXPECT_EQ(Run("get nope\r\n"), "END\r\n");
  EXPECT_EQ(Run("set b 0 0 0\r\n\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("get a nope b a\r\n"),
            "VALUE a 5 3\r\nabc\r\nVALUE b 0 0\r\n\r\nVALUE a 5 3\r\nabc\r\nEND\r\n");
  // A bare \n ends a command line too.
  EXPECT_EQ(Run("get a\n"), "VALUE a 5 3\r\nabc\r\nEND\r\n");
  // Extra spaces between tokens.
  EXPECT_EQ(Run("get   a  \r\n"), "VALUE a 5 3\r\nabc\r\nEND\r\n");
  // A trailing token that is not "noreply" is ignored, as memcached does.
  EXPECT_EQ(Run("set a 1 0 1 junk\r\nx\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("get a\r\n"), "VALUE a 1 1\r\nx\r\nEND\r\n");
}

TEST_F(MemcacheTest, GetsShowsVersion) {
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\n"), "STORED\r\n");
  Result<DB::VersionedValue> v = db_->GetVersioned("a");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(Run("gets a\r\n"), "VALUE a 0 1 " + std::to_string(v->version) + "\r\nx\r\nEND\r\n");
  EXPECT_EQ(Cas("a"), v->version);
  EXPECT_EQ(Run("set a 0 0 1\r\ny\r\n"), "STORED\r\n");
  EXPECT_GT(Cas("a"), v->version);
}

TEST_F(MemcacheTest, FlagsRoundTrip) {
  for (uint64_t flags : {0ull, 1ull, 65535ull, 65536ull, 4294967295ull}) {
    std::string f = std::to_string(flags);
    EXPECT_EQ(Run("set k " + f + " 0 1\r\nv\r\n"), "STORED\r\n");
    EXPECT_EQ(Run("get k\r\n"), "VALUE k " + f + " 1\r\nv\r\nEND\r\n");
    Result<DB::VersionedValue> v = db_->GetVersioned("k");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->user_flags, flags);
  }
  // 33-bit flags and negative flags are refused; the data block is discarded.
  EXPECT_EQ(Run("set k 4294967296 0 1\r\nv\r\nmn\r\n"),
            "CLIENT_ERROR bad command line format\r\nMN\r\n");
  EXPECT_EQ(Run("set k -1 0 1\r\nv\r\nmn\r\n"), "CLIENT_ERROR bad command line format\r\nMN\r\n");
}

TEST_F(MemcacheTest, AddReplace) {
  EXPECT_EQ(Run("replace k 0 0 1\r\na\r\n"), "NOT_STORED\r\n");
  EXPECT_EQ(Run("add k 1 0 1\r\na\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("add k 2 0 1\r\nb\r\n"), "NOT_STORED\r\n");
  EXPECT_EQ(Run("get k\r\n"), "VALUE k 1 1\r\na\r\nEND\r\n");
  EXPECT_EQ(Run("replace k 3 0 2\r\ncc\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("get k\r\n"), "VALUE k 3 2\r\ncc\r\nEND\r\n");
  // add works on an expired key.
  EXPECT_EQ(Run("set e 0 -1 1\r\nx\r\nadd e 0 0 1\r\ny\r\nget e\r\n"),
            "STORED\r\nSTORED\r\nVALUE e 0 1\r\ny\r\nEND\r\n");
}

TEST_F(MemcacheTest, AppendPrependKeepFlagsAndExpiry) {
  EXPECT_EQ(Run("append k 0 0 1\r\na\r\n"), "NOT_STORED\r\n");
  EXPECT_EQ(Run("prepend k 0 0 1\r\na\r\n"), "NOT_STORED\r\n");
  EXPECT_EQ(Run("set k 7 100 3\r\nmid\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("append k 9 0 4\r\n-end\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("prepend k 9 0 6\r\nstart-\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("get k\r\n"), "VALUE k 7 13\r\nstart-mid-end\r\nEND\r\n");
  EXPECT_EQ(Run("mg k t f\r\n"), "HD t100 f7\r\n");
}

TEST_F(MemcacheTest, Cas) {
  EXPECT_EQ(Run("cas k 0 0 1 5\r\nx\r\n"), "NOT_FOUND\r\n");
  EXPECT_EQ(Run("set k 0 0 1\r\nx\r\n"), "STORED\r\n");
  uint64_t cas = Cas("k");
  EXPECT_EQ(Run("cas k 0 0 1 " + std::to_string(cas + 1000) + "\r\ny\r\n"), "EXISTS\r\n");
  EXPECT_EQ(Run("cas k 0 0 1 0\r\ny\r\n"), "EXISTS\r\n");
  EXPECT_EQ(Run("cas k 4 0 1 " + std::to_string(cas) + "\r\ny\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("get k\r\n"), "VALUE k 4 1\r\ny\r\nEND\r\n");
  // The old cas unique is stale now.
  EXPECT_EQ(Run("cas k 0 0 1 " + std::to_string(cas) + "\r\nz\r\n"), "EXISTS\r\n");
  EXPECT_EQ(Run("cas k 0 0 1 " + std::to_string(Cas("k")) + " noreply\r\nz\r\nget k\r\n"),
            "VALUE k 0 1\r\nz\r\nEND\r\n");
  // cas with an expired exptime removes the item.
  EXPECT_EQ(Run("cas k 0 -1 1 " + std::to_string(Cas("k")) + "\r\nq\r\nget k\r\n"),
            "STORED\r\nEND\r\n");
  EXPECT_EQ(Run("cas k 0 0 1 abc\r\nx\r\nmn\r\n"),
            "CLIENT_ERROR bad command line format\r\nMN\r\n");
  EXPECT_EQ(Run("cas k 0 0 1\r\nmn\r\n"), "ERROR\r\nMN\r\n");  // too few tokens
}

TEST_F(MemcacheTest, CasRaceBetweenConnections) {
  std::unique_ptr<ProtocolHandler> other = NewMemcachedHandler(&ctx_, &client_);
  EXPECT_EQ(Run("set k 0 0 1\r\n0\r\n"), "STORED\r\n");
  uint64_t cas = Cas("k");
  const std::string a = "cas k 0 0 1 " + std::to_string(cas) + "\r\n1\r\n";
  const std::string b = "cas k 0 0 1 " + std::to_string(cas) + "\r\n2\r\n";
  EXPECT_EQ(Run(a), "STORED\r\n");
  EXPECT_EQ(Run(b, other.get()), "EXISTS\r\n");
  EXPECT_EQ(Run("get k\r\n", other.get()), "VALUE k 0 1\r\n1\r\nEND\r\n");
}

TEST_F(MemcacheTest, ConcurrentCasIncrementsAreExact) {
  EXPECT_EQ(Run("set n 0 0 1\r\n0\r\n"), "STORED\r\n");
  constexpr int kThreads = 4, kIncrements = 150;
  std::vector<std::thread> threads;
  std::atomic<int> conflicts{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::unique_ptr<ProtocolHandler> h = NewMemcachedHandler(&ctx_, &client_);
      for (int i = 0; i < kIncrements;) {
        std::string out;
        bool close = false;
        Disconnect why;
        h->Process("gets n\r\n", &out, &close, &why);
        // VALUE n 0 <len> <cas>\r\n<value>\r\nEND\r\n
        size_t eol = out.find("\r\n");
        std::string head = out.substr(0, eol);
        uint64_t cas = std::stoull(head.substr(head.rfind(' ') + 1));
        size_t vend = out.find("\r\n", eol + 2);
        uint64_t value = std::stoull(out.substr(eol + 2, vend - eol - 2));
        std::string next = std::to_string(value + 1);
        std::string req = "cas n 0 0 " + std::to_string(next.size()) + " " + std::to_string(cas) +
                          "\r\n" + next + "\r\n";
        out.clear();
        h->Process(req, &out, &close, &why);
        if (out == "STORED\r\n") {
          ++i;
        } else {
          ASSERT_EQ(out, "EXISTS\r\n");
          ++conflicts;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Run("get n\r\n"), "VALUE n 0 3\r\n600\r\nEND\r\n");
}

TEST_F(MemcacheTest, ConcurrentIncrIsExact) {
  EXPECT_EQ(Run("set n 0 0 1\r\n0\r\n"), "STORED\r\n");
  constexpr int kThreads = 4, kIncrements = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::unique_ptr<ProtocolHandler> h = NewMemcachedHandler(&ctx_, &client_);
      std::string batch;
      for (int i = 0; i < kIncrements; ++i) batch += i % 2 ? "incr n 1\r\n" : "ma n q\r\n";
      std::string out;
      bool close = false;
      Disconnect why;
      EXPECT_EQ(h->Process(batch, &out, &close, &why), batch.size());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Run("get n\r\n"), "VALUE n 0 3\r\n800\r\nEND\r\n");
}

TEST_F(MemcacheTest, Delete) {
  EXPECT_EQ(Run("set k 0 0 1\r\nx\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("delete k\r\n"), "DELETED\r\n");
  EXPECT_EQ(Run("delete k\r\n"), "NOT_FOUND\r\n");
  EXPECT_EQ(Run("delete k 0\r\n"), "NOT_FOUND\r\n");
  EXPECT_EQ(Run("delete k 5\r\n"),
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
  EXPECT_EQ(Run("delete a b c\r\n"),
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
  EXPECT_EQ(Run("delete\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("set k 0 0 1\r\nx\r\ndelete k noreply\r\nget k\r\n"), "STORED\r\nEND\r\n");
  EXPECT_EQ(Run("set k 0 0 1\r\nx\r\ndelete k 0 noreply\r\nget k\r\n"), "STORED\r\nEND\r\n");
}

TEST_F(MemcacheTest, IncrDecr) {
  EXPECT_EQ(Run("incr n 1\r\n"), "NOT_FOUND\r\n");
  EXPECT_EQ(Run("decr n 1\r\n"), "NOT_FOUND\r\n");
  EXPECT_EQ(Run("set n 3 100 2\r\n10\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("incr n 5\r\n"), "15\r\n");
  EXPECT_EQ(Run("decr n 100\r\n"), "0\r\n");  // floors at 0
  EXPECT_EQ(Run("incr n 18446744073709551615\r\n"), "18446744073709551615\r\n");
  EXPECT_EQ(Run("incr n 2\r\n"), "1\r\n");  // wraps at 2^64
  EXPECT_EQ(Run("set n 3 100 3\r\n100\r\ndecr n 1\r\n"), "STORED\r\n99\r\n");
  // No space padding: the value is exactly the new number; flags and TTL are kept.
  EXPECT_EQ(Run("get n\r\n"), "VALUE n 3 2\r\n99\r\nEND\r\n");
  EXPECT_EQ(Run("mg n t f\r\n"), "HD t100 f3\r\n");
  EXPECT_EQ(Run("incr n abc\r\n"), "CLIENT_ERROR invalid numeric delta argument\r\n");
  EXPECT_EQ(Run("incr n -1\r\n"), "CLIENT_ERROR invalid numeric delta argument\r\n");
  EXPECT_EQ(Run("incr n 18446744073709551616\r\n"),
            "CLIENT_ERROR invalid numeric delta argument\r\n");
  EXPECT_EQ(Run("set s 0 0 3\r\nabc\r\nincr s 1\r\n"),
            "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  EXPECT_EQ(Run("set s 0 0 0\r\n\r\ndecr s 1\r\n"),
            "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  EXPECT_EQ(Run("set s 0 0 21\r\n184467440737095516150\r\nincr s 1\r\n"),
            "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  // Surrounding spaces (memcached's padding) are accepted.
  EXPECT_EQ(Run("set s 0 0 4\r\n 7  \r\nincr s 1\r\n"), "STORED\r\n8\r\n");
  EXPECT_EQ(Run("incr n 1 noreply\r\ndecr n 1 noreply\r\nget n\r\n"),
            "VALUE n 3 2\r\n99\r\nEND\r\n");
  EXPECT_EQ(Run("incr n\r\n"), "ERROR\r\n");
}

TEST_F(MemcacheTest, TouchAndGat) {
  EXPECT_EQ(Run("touch k 10\r\n"), "NOT_FOUND\r\n");
  EXPECT_EQ(Run("set k 3 0 1\r\nx\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("mg k t\r\n"), "HD t-1\r\n");
  EXPECT_EQ(Run("touch k 100\r\n"), "TOUCHED\r\n");
  EXPECT_EQ(Run("mg k t f v\r\n"), "VA 1 t100 f3\r\nx\r\n");
  EXPECT_EQ(Run("touch k x\r\n"), "CLIENT_ERROR invalid exptime argument\r\n");
  EXPECT_EQ(Run("touch k\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("touch k 0 noreply\r\nmg k t\r\n"), "HD t-1\r\n");
  EXPECT_EQ(Run("gat 200 k nope k\r\n"), "VALUE k 3 1\r\nx\r\nVALUE k 3 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(Run("mg k t\r\n"), "HD t200\r\n");
  uint64_t before = Cas("k");
  std::string r = Run("gats 0 k\r\n");
  uint64_t after = Cas("k");
  EXPECT_GT(after, before);  // touching writes a new version
  EXPECT_EQ(r, "VALUE k 3 1 " + std::to_string(after) + "\r\nx\r\nEND\r\n");
  EXPECT_EQ(Run("mg k t\r\n"), "HD t-1\r\n");
  EXPECT_EQ(Run("gat x k\r\n"), "CLIENT_ERROR invalid exptime argument\r\n");
  EXPECT_EQ(Run("gat 10\r\n"), "ERROR\r\n");
  // An expired exptime returns the item one last time and removes it.
  EXPECT_EQ(Run("gat -1 k\r\nget k\r\n"), "VALUE k 3 1\r\nx\r\nEND\r\nEND\r\n");
  EXPECT_EQ(Run("set k 0 0 1\r\nx\r\ntouch k -1\r\nget k\r\n"), "STORED\r\nTOUCHED\r\nEND\r\n");
}

TEST_F(MemcacheTest, ExptimeForms) {
  const uint64_t now_s = NowUnixMs() / 1000;
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nmg a t\r\n"), "STORED\r\nHD t-1\r\n");
  EXPECT_EQ(Run("set a 0 100 1\r\nx\r\nmg a t\r\n"), "STORED\r\nHD t100\r\n");
  EXPECT_EQ(Run("set a 0 2592000 1\r\nx\r\nmg a t\r\n"), "STORED\r\nHD t2592000\r\n");
  // Above 30 days: an absolute Unix time.
  std::string r = Run("set a 0 " + std::to_string(now_s + 1000) + " 1\r\nx\r\nmg a t\r\n");
  EXPECT_TRUE(r == "STORED\r\nHD t1000\r\n" || r == "STORED\r\nHD t999\r\n" ||
              r == "STORED\r\nHD t1001\r\n")
      << r;
  // An absolute time in the past, or a negative exptime: stored already expired, i.e. gone,
  // and an older value under the key is gone too.
  EXPECT_EQ(Run("set a 0 2592001 1\r\nx\r\nget a\r\n"), "STORED\r\nEND\r\n");
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nset a 0 -1 1\r\ny\r\nget a\r\n"),
            "STORED\r\nSTORED\r\nEND\r\n");
  EXPECT_EQ(Run("add a 0 -1 1\r\ny\r\nget a\r\n"), "STORED\r\nEND\r\n");
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nadd a 0 -1 1\r\ny\r\nget a\r\n"),
            "STORED\r\nNOT_STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(Run("replace a 0 -1 1\r\ny\r\nget a\r\nreplace a 0 -1 1\r\ny\r\n"),
            "STORED\r\nEND\r\nNOT_STORED\r\n");
  EXPECT_EQ(Run("set a 0 x 1\r\ny\r\nmn\r\n"), "CLIENT_ERROR bad command line format\r\nMN\r\n");
}

TEST_F(MemcacheTest, ItemsExpire) {
  const uint64_t now_s = NowUnixMs() / 1000;
  EXPECT_EQ(Run("set a 0 " + std::to_string(now_s + 1) + " 1\r\nx\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("set b 0 1 1\r\nx\r\n"), "STORED\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_EQ(Run("get a b\r\n"), "END\r\n");
  EXPECT_EQ(Run("mg a\r\nincr b 1\r\ntouch b 10\r\n"), "EN\r\nNOT_FOUND\r\nNOT_FOUND\r\n");
}

TEST_F(MemcacheTest, FlushAll) {
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nset b 0 0 1\r\ny\r\n"), "STORED\r\nSTORED\r\n");
  EXPECT_EQ(Run("flush_all\r\n"), "OK\r\n");
  EXPECT_EQ(Run("get a b\r\n"), "END\r\n");
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nflush_all 0\r\nget a\r\n"), "STORED\r\nOK\r\nEND\r\n");
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nflush_all noreply\r\nget a\r\n"), "STORED\r\nEND\r\n");
  EXPECT_EQ(Run("flush_all 0 noreply\r\nmn\r\n"), "MN\r\n");
  EXPECT_EQ(Run("flush_all -1\r\n"), "OK\r\n");
  EXPECT_EQ(Run("flush_all 10\r\n"),
            "SERVER_ERROR flush_all with a delay is not available here\r\n");
  EXPECT_EQ(Run("flush_all x\r\n"), "CLIENT_ERROR invalid exptime argument\r\n");
  EXPECT_EQ(Run("flush_all 1 2 3\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nget a\r\n"), "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
}

TEST_F(MemcacheTest, FlushAllWithDelay) {
  DelayedTask task([this] {
    EXPECT_TRUE(memcache::ItemStore(db_.get(), options_.max_value_bytes).FlushAll().ok());
  });
  ctx_.delayed_flush = &task;
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nflush_all 600\r\nget a\r\n"),
            "STORED\r\nOK\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
  EXPECT_TRUE(task.pending());
  // A later flush_all replaces the deadline; one without a delay runs now and cancels it.
  EXPECT_EQ(Run("flush_all 0\r\nget a\r\n"), "OK\r\nEND\r\n");
  EXPECT_FALSE(task.pending());

  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nflush_all 1 noreply\r\nmn\r\n"), "STORED\r\nMN\r\n");
  std::string got;
  for (int i = 0; i < 600 && got != "END\r\n"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    got = Run("get a\r\n");
  }
  EXPECT_EQ(got, "END\r\n");
  while (task.pending()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  task.Stop();  // waits for a flush still finishing
  EXPECT_EQ(Run("set b 0 0 1\r\ny\r\nget b\r\n"), "STORED\r\nVALUE b 0 1\r\ny\r\nEND\r\n");
  ctx_.delayed_flush = nullptr;
}

TEST_F(MemcacheTest, VersionVerbosityQuit) {
  EXPECT_EQ(Run("version\r\n"), "VERSION 1.6.0-varve-0.1.0\r\n");
  EXPECT_EQ(Run("verbosity 1\r\n"), "OK\r\n");
  EXPECT_EQ(Run("verbosity 1 noreply\r\nmn\r\n"), "MN\r\n");
  EXPECT_EQ(Run("verbosity x\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(Run("verbosity\r\n"), "ERROR\r\n");
  Fed f = Once("quit\r\nget a\r\n");
  EXPECT_TRUE(f.close);
  EXPECT_EQ(f.why, Disconnect::kClient);
  EXPECT_EQ(f.out, "");
}

TEST_F(MemcacheTest, Stats) {
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nget a nope\r\n"), "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(Run("stats reset\r\n"), "RESET\r\n");
  EXPECT_EQ(Run("get a nope\r\nset b 0 0 1\r\ny\r\n"), "VALUE a 0 1\r\nx\r\nEND\r\nSTORED\r\n");
  std::string s = Run("stats\r\n");
  ASSERT_GE(s.size(), 5u);
  EXPECT_EQ(s.substr(s.size() - 5), "END\r\n");
  for (const char* name : {"pid", "uptime", "time", "version", "curr_items", "total_items", "bytes",
                           "curr_connections", "total_connections", "cmd_get", "cmd_set",
                           "get_hits", "get_misses", "varve_keys", "varve_disk_bytes",
                           "varve_last_sequence", "varve_tables", "varve_table_entries"}) {
    EXPECT_NE(("\n" + s).find(std::string("\nSTAT ") + name + " "), std::string::npos) << name;
  }
  EXPECT_EQ(s.rfind("STAT pid ", 0), 0u);
  EXPECT_NE(s.find("STAT cmd_get 2\r\n"), std::string::npos) << s;
  EXPECT_NE(s.find("STAT get_hits 1\r\n"), std::string::npos) << s;
  EXPECT_NE(s.find("STAT get_misses 1\r\n"), std::string::npos) << s;
  EXPECT_NE(s.find("STAT cmd_set 1\r\n"), std::string::npos) << s;
  EXPECT_NE(s.find("STAT total_items 1\r\n"), std::string::npos) << s;
  EXPECT_NE(s.find("STAT curr_items 2\r\n"), std::string::npos) << s;
  EXPECT_NE(s.find("STAT version 1.6.0-varve-0.1.0\r\n"), std::string::npos) << s;
  std::string settings = Run("stats settings\r\n");
  EXPECT_NE(settings.find("STAT item_size_max 67108864\r\n"), std::string::npos) << settings;
  EXPECT_EQ(settings.substr(settings.size() - 5), "END\r\n");
  EXPECT_EQ(Run("stats foo\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("stats detail on\r\n"), "ERROR\r\n");
}

// ---------------------------------------------------------------------------------------------
// noreply

TEST_F(MemcacheTest, NoreplyEverywhere) {
  const std::string quiet =
      "set a 0 0 1 noreply\r\n1\r\n"
      "add b 0 0 1 noreply\r\n2\r\n"
      "add b 0 0 1 noreply\r\n9\r\n"
      "replace b 0 0 1 noreply\r\n3\r\n"
      "append b 0 0 1 noreply\r\n4\r\n"
      "prepend b 0 0 1 noreply\r\n5\r\n"
      "replace nope 0 0 1 noreply\r\n3\r\n"
      "cas b 0 0 1 0 noreply\r\n6\r\n"
      "cas nope 0 0 1 1 noreply\r\n6\r\n"
      "incr a 1 noreply\r\n"
      "decr a 1 noreply\r\n"
      "incr nope 1 noreply\r\n"
      "touch a 100 noreply\r\n"
      "touch nope 100 noreply\r\n"
      "delete nope noreply\r\n"
      "verbosity 1 noreply\r\n"
      "set big 0 0 99999999999 noreply\r\n"  // refused length, too big to swallow: closes
      ;
  // Everything before the last command answers nothing.
  Fed f = Once(quiet);
  EXPECT_EQ(f.out, "SERVER_ERROR object too large for cache\r\n");
  EXPECT_TRUE(f.close);
  EXPECT_EQ(f.why, Disconnect::kTooLarge);
  handler_ = NewMemcachedHandler(&ctx_, &client_);
  EXPECT_EQ(Run("get a b\r\n"), "VALUE a 0 1\r\n1\r\nVALUE b 0 3\r\n534\r\nEND\r\n");
  EXPECT_EQ(Run("mg a t\r\n"), "HD t100\r\n");
  // Client errors of a noreply command are not answered either (memcached does the same).
  EXPECT_EQ(Run("set a x 0 1 noreply\r\n1\r\nincr b 1 noreply\r\nmn\r\n"), "MN\r\n");
  EXPECT_EQ(Run("flush_all noreply\r\nget a b\r\n"), "END\r\n");
}

// ---------------------------------------------------------------------------------------------
// Errors and limits

TEST_F(MemcacheTest, UnknownAndMalformedCommands) {
  uint64_t malformed = metrics_.malformed(Protocol::kMemcached);
  EXPECT_EQ(Run("foo\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("GET a\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("get\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("set a 0 0\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("mx a\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run(std::string("\0\x01\x02\xff garbage\r\n", 14)), "ERROR\r\n");
  EXPECT_EQ(Run("set a 0 0 -1\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(Run("set a 0 0 abc\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(metrics_.malformed(Protocol::kMemcached), malformed + 9);
  EXPECT_EQ(Run("version\r\n"), "VERSION 1.6.0-varve-0.1.0\r\n");
}

TEST_F(MemcacheTest, KeyLimits) {
  const std::string k250(250, 'k'), k251(251, 'k');
  EXPECT_EQ(Run("set " + k250 + " 0 0 1\r\nx\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("get " + k250 + "\r\n"), "VALUE " + k250 + " 0 1\r\nx\r\nEND\r\n");
  // Refused keys: the data block is swallowed, not run as a command.
  EXPECT_EQ(Run("set " + k251 + " 0 0 9\r\nflush_all\r\nmn\r\n"),
            "CLIENT_ERROR bad command line format\r\nMN\r\n");
  EXPECT_EQ(Run("get a " + k251 + " b\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(Run("get a\x01 b\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(Run("set a\tb 0 0 1\r\nx\r\nmn\r\n"), "CLIENT_ERROR bad command line format\r\nMN\r\n");
  EXPECT_EQ(Run("get a\x7f\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(Run("delete " + k251 + "\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(Run("incr " + k251 + " 1\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(Run("touch " + k251 + " 1\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(Run("mg " + k251 + " v\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(Run("ms " + k251 + " 1\r\nx\r\nmn\r\n"),
            "CLIENT_ERROR bad command line format\r\nMN\r\n");
  // The server's max_key_bytes lowers the limit further.
  options_.max_key_bytes = 10;
  handler_ = NewMemcachedHandler(&ctx_, &client_);
  EXPECT_EQ(Run("get 01234567890\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(Run("get 0123456789\r\n"), "END\r\n");
}

TEST_F(MemcacheTest, BinaryValues) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  all += "\r\nEND\r\n\r\n";
  const std::string n = std::to_string(all.size());
  EXPECT_EQ(Run("set bin 0 0 " + n + "\r\n" + all + "\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("get bin\r\n"), "VALUE bin 0 " + n + "\r\n" + all + "\r\nEND\r\n");
  EXPECT_EQ(Run("mg bin v s\r\n"), "VA " + n + " s" + n + "\r\n" + all + "\r\n");
  EXPECT_EQ(Run("ms bin2 " + n + " T0\r\n" + all + "\r\nmg bin2 v\r\n"),
            "HD\r\nVA " + n + "\r\n" + all + "\r\n");
  Result<std::string> v = db_->Get("bin");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, all);
}

TEST_F(MemcacheTest, BadDataChunkCloses) {
  uint64_t malformed = metrics_.malformed(Protocol::kMemcached);
  Fed f = Once("set a 0 0 3\r\nabcd\r\nget a\r\n");
  EXPECT_EQ(f.out, "CLIENT_ERROR bad data chunk\r\n");
  EXPECT_TRUE(f.close);
  EXPECT_EQ(f.why, Disconnect::kProtocolError);
  EXPECT_EQ(metrics_.malformed(Protocol::kMemcached), malformed + 1);
  handler_ = NewMemcachedHandler(&ctx_, &client_);
  f = Once("ms a 2 q\r\nab\n\n");
  EXPECT_EQ(f.out, "CLIENT_ERROR bad data chunk\r\n");  // errors are returned despite q
  EXPECT_TRUE(f.close);
  handler_ = NewMemcachedHandler(&ctx_, &client_);
  f = Once("set a 0 0 1 noreply\r\nxyz");
  EXPECT_EQ(f.out, "CLIENT_ERROR bad data chunk\r\n");
  EXPECT_TRUE(f.close);
  handler_ = NewMemcachedHandler(&ctx_, &client_);
  EXPECT_EQ(Run("get a\r\n"), "END\r\n");
}

TEST_F(MemcacheTest, TooLargeValueIsSwallowed) {
  options_.max_value_bytes = 10;
  handler_ = NewMemcachedHandler(&ctx_, &client_);
  EXPECT_EQ(Run("set a 0 0 10\r\n0123456789\r\n"), "STORED\r\n");
  const std::string big = "set a 0 0 11\r\nflush_all\r\n\r\nget a\r\n";
  EXPECT_EQ(Run(big),
            "SERVER_ERROR object too large for cache\r\nVALUE a 0 10\r\n0123456789\r\nEND\r\n");
  EXPECT_EQ(Run("ms a 11 T0\r\nflush_all\r\n\r\nmn\r\n"),
            "SERVER_ERROR object too large for cache\r\nMN\r\n");
  // Swallowing works across reads, however the bytes are split.
  for (size_t cut = 1; cut < big.size(); ++cut) {
    Fed f = Chunked(big, {cut});
    EXPECT_EQ(f.out,
              "SERVER_ERROR object too large for cache\r\nVALUE a 0 10\r\n0123456789\r\nEND\r\n")
        << cut;
    EXPECT_FALSE(f.close);
  }
  // A swallowed block is discarded as it arrives; the handler is mid-request until its end.
  Fed f = Once("set a 0 0 100\r\n0123456789");
  EXPECT_EQ(f.out, "SERVER_ERROR object too large for cache\r\n");
  EXPECT_EQ(f.consumed, std::string("set a 0 0 100\r\n0123456789").size());
  EXPECT_TRUE(handler_->MidRequest(""));
  f = Once(std::string(90, 'x') + "\r\nmn\r\n");
  EXPECT_EQ(f.out, "MN\r\n");
  EXPECT_FALSE(handler_->MidRequest(""));
  handler_ = NewMemcachedHandler(&ctx_, &client_);
  // append/prepend may not grow an item past the limit either.
  EXPECT_EQ(Run("stats reset\r\n"), "RESET\r\n");
  EXPECT_EQ(Run("append a 0 0 1\r\nx\r\n"), "SERVER_ERROR object too large for cache\r\n");
  EXPECT_EQ(Run("get a\r\n"), "VALUE a 0 10\r\n0123456789\r\nEND\r\n");
  EXPECT_NE(Run("stats\r\n").find("STAT store_too_large 1\r\n"), std::string::npos);
}

TEST_F(MemcacheTest, AnnouncedLengthBeyondRequestLimitCloses) {
  options_.max_request_bytes = 1000;
  handler_ = NewMemcachedHandler(&ctx_, &client_);
  Fed f = Once("set a 0 0 100000000\r\n");
  EXPECT_EQ(f.out, "SERVER_ERROR object too large for cache\r\n");
  EXPECT_TRUE(f.close);
  EXPECT_EQ(f.why, Disconnect::kTooLarge);
  // Within max_value_bytes but not within max_request_bytes.
  handler_ = NewMemcachedHandler(&ctx_, &client_);
  f = Once("set a 0 0 990\r\n");
  EXPECT_EQ(f.out, "SERVER_ERROR object too large for cache\r\n");
  EXPECT_TRUE(f.close);
  EXPECT_EQ(f.why, Disconnect::kTooLarge);
}

TEST_F(MemcacheTest, LongLines) {
  // A command line over 8 KiB without a newline: refused and closed.
  Fed f = Once("set " + std::string(9000, 'a'));
  EXPECT_EQ(f.out, "SERVER_ERROR object too large for cache\r\n");
  EXPECT_TRUE(f.close);
  EXPECT_EQ(f.why, Disconnect::kTooLarge);
  handler_ = NewMemcachedHandler(&ctx_, &client_);
  f = Once(std::string(9000, 'x') + "\r\n");
  EXPECT_TRUE(f.close);
  // Up to 8 KiB it simply waits for the rest.
  handler_ = NewMemcachedHandler(&ctx_, &client_);
  f = Once(std::string(8000, 'x'));
  EXPECT_EQ(f.consumed, 0u);
  EXPECT_FALSE(f.close);
  // Multigets may be long: 100 keys of 200 bytes.
  EXPECT_EQ(Run("set " + std::string(200, 'k') + " 0 0 1\r\nx\r\n"), "STORED\r\n");
  std::string line = "get";
  for (int i = 0; i < 100; ++i) line += " " + std::string(200, i == 50 ? 'k' : 'm');
  line += "\r\n";
  EXPECT_EQ(Run(line), "VALUE " + std::string(200, 'k') + " 0 1\r\nx\r\nEND\r\n");
  // ... also when they arrive in pieces.
  Fed g = Chunked(line, {1000, 5000, 12000, 20000});
  EXPECT_EQ(g.out, "VALUE " + std::string(200, 'k') + " 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(g.consumed, line.size());
}

TEST_F(MemcacheTest, IncompleteRequestsWait) {
  Fed f = Once("get a");
  EXPECT_EQ(f.consumed, 0u);
  EXPECT_EQ(f.out, "");
  f = Once("set a 0 0 5\r\nab");
  EXPECT_EQ(f.consumed, 0u);
  EXPECT_EQ(f.out, "");
  f = Once("set a 0 0 5\r\nabcde");
  EXPECT_EQ(f.consumed, 0u);
  f = Once("set a 0 0 5\r\nabcde\r");
  EXPECT_EQ(f.consumed, 0u);
  f = Once("set a 0 0 5\r\nabcde\r\nget a");
  EXPECT_EQ(f.consumed, 20u);
  EXPECT_EQ(f.out, "STORED\r\n");
  EXPECT_TRUE(handler_->MidRequest("get a"));
}

TEST_F(MemcacheTest, StopsAtMaxOutputBytes) {
  options_.max_output_bytes = 20;
  EXPECT_EQ(Run("set a 0 0 30\r\n" + std::string(30, 'v') + "\r\n"), "STORED\r\n");
  const std::string in = "get a\r\nget a\r\nmn\r\n";
  Fed f = Once(in);
  EXPECT_EQ(f.consumed, 7u);  // stopped after the first reply crossed 20 bytes
  EXPECT_EQ(f.out, "VALUE a 0 30\r\n" + std::string(30, 'v') + "\r\nEND\r\n");
  const std::string value_reply = "VALUE a 0 30\r\n" + std::string(30, 'v') + "\r\nEND\r\n";
  EXPECT_EQ(Run(in), value_reply + value_reply + "MN\r\n");
}

// ---------------------------------------------------------------------------------------------
// Pipelining: every split point of a buffer gives the same replies as the whole buffer.

TEST_F(MemcacheTest, PipelineAnySplit) {
  std::string bin = std::string("b\r\n\0in", 6);
  const std::string pipeline =
      "flush_all\r\n"
      "set a 1 0 3\r\nabc\r\n"
      "get a nope\r\n"
      "ms m 6 F9 T0 q\r\n" +
      bin +
      "\r\n"
      "mg m v f s k O1\r\n"
      "mg nope q v\r\n"
      "mg nope k\r\n"
      "append a 0 0 2 noreply\r\nde\r\n"
      "incr n 1\r\n"
      "set n 0 0 2\r\n41\r\n"
      "incr n 1\n"
      "ma n v D10\r\n"
      "md a q\r\n"
      "md a\r\n"
      "bogus\r\n"
      "set c 0 0 1 junk\r\nx\r\n"
      "gat 0 c\r\n"
      "touch c 0\r\n"
      "delete c\r\n"
      "mn\r\n";
  const std::string expected =
      "OK\r\nSTORED\r\nVALUE a 1 3\r\nabc\r\nEND\r\n"
      "VA 6 f9 s6 km O1\r\n" +
      bin +
      "\r\n"
      "EN knope\r\n"
      "NOT_FOUND\r\nSTORED\r\n42\r\nVA 2\r\n52\r\n"
      "NF\r\nERROR\r\nSTORED\r\nVALUE c 0 1\r\nx\r\nEND\r\nTOUCHED\r\nDELETED\r\nMN\r\n";
  EXPECT_EQ(Run(pipeline), expected);
  for (size_t cut = 1; cut < pipeline.size(); ++cut) {
    Fed f = Chunked(pipeline, {cut});
    ASSERT_EQ(f.out, expected) << "split at " << cut;
    ASSERT_EQ(f.consumed, pipeline.size());
    ASSERT_FALSE(f.close);
  }
  // And byte by byte.
  std::vector<size_t> cuts;
  for (size_t i = 1; i < pipeline.size(); ++i) cuts.push_back(i);
  Fed f = Chunked(pipeline, cuts);
  EXPECT_EQ(f.out, expected);
}

TEST_F(MemcacheTest, PipelineOfManyRequests) {
  std::string in, expected;
  for (int i = 0; i < 1000; ++i) {
    std::string k = "key" + std::to_string(i), v = "value" + std::to_string(i);
    in += "set " + k + " " + std::to_string(i) + " 0 " + std::to_string(v.size()) + "\r\n" + v +
          "\r\n";
    expected += "STORED\r\n";
  }
  for (int i = 0; i < 1000; ++i) {
    std::string k = "key" + std::to_string(i), v = "value" + std::to_string(i);
    in += "get " + k + "\r\nmg " + k + " v q\r\n";
    expected += "VALUE " + k + " " + std::to_string(i) + " " + std::to_string(v.size()) + "\r\n" +
                v + "\r\nEND\r\nVA " + std::to_string(v.size()) + "\r\n" + v + "\r\n";
  }
  Fed f = Once(in);
  EXPECT_EQ(f.consumed, in.size());
  EXPECT_EQ(f.out, expected);
  EXPECT_GE(metrics_.requests(Protocol::kMemcached), 3000u);
}

// Random mixes of valid fragments, garbage and cut points: the handler must never crash, hang,
// consume more than it was given, or leave a request half-done in a way that breaks the next one.
TEST_F(MemcacheTest, RandomInputIsHandledSafely) {
  const std::vector<std::string> pieces = {"get a b\r\n",
                                           "gets a\r\n",
                                           "gat 10 a\r\n",
                                           "set a 1 0 3\r\nabc\r\n",
                                           "set a 0 0 3 noreply\r\nab",
                                           "cas a 0 0 1 5\r\nx\r\n",
                                           "incr a 1\r\n",
                                           "decr n 5\r\n",
                                           "delete a\r\n",
                                           "touch a 5\r\n",
                                           "append a 0 0 1\r\nz\r\n",
                                           "mg a v k c f t s O1\r\n",
                                           "ms a 2 T0 F1 c k\r\nhi\r\n",
                                           "ms YQ== 1 b q\r\nx\r\n",
                                           "md a q\r\n",
                                           "ma n N0 J5 v\r\n",
                                           "mn\r\n",
                                           "me a\r\n",
                                           "stats\r\n",
                                           "version\r\n",
                                           "verbosity 1\r\n",
                                           "flush_all\r\n",
                                           "set a 0 0 99999999999\r\n",
                                           "ms a 5 MX\r\nhello\r\n",
                                           "\r\n",
                                           "\n",
                                           " ",
                                           "\r",
                                           "noreply",
                                           "set",
                                           "mg",
                                           "\x00\xff\x80",
                                           "set a 0 0 2\r\nabcd\r\n"};
  uint64_t seed = 42;
  auto rnd = [&](uint64_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  options_.max_value_bytes = 1000;
  options_.max_request_bytes = 4000;
  for (int round = 0; round < 300; ++round) {
    std::string in;
    const uint64_t parts = 1 + rnd(12);
    for (uint64_t i = 0; i < parts; ++i) {
      if (rnd(5) == 0) {
        for (uint64_t j = rnd(20); j > 0; --j) in.push_back(static_cast<char>(rnd(256)));
      } else {
        in += pieces[rnd(pieces.size())];
      }
    }
    std::vector<size_t> cuts;
    for (size_t at = rnd(8) + 1; at < in.size(); at += rnd(16) + 1) cuts.push_back(at);
    handler_ = NewMemcachedHandler(&ctx_, &client_);
    Fed f = Chunked(in, cuts);
    ASSERT_LE(f.consumed, in.size());
    // The connection either closed or is still in sync: a no-op gets its answer.
    if (!f.close) {
      Fed g = Once("\r\nmn\r\n");
      if (!g.close && g.consumed > 0) {
        ASSERT_GE(g.out.size(), 4u);
      }
    }
  }
  handler_ = NewMemcachedHandler(&ctx_, &client_);
  EXPECT_EQ(Run("version\r\n"), "VERSION 1.6.0-varve-0.1.0\r\n");
}

// ---------------------------------------------------------------------------------------------
// Meta commands

TEST_F(MemcacheTest, MetaGet) {
  EXPECT_EQ(Run("set a 5 0 3\r\nabc\r\n"), "STORED\r\n");
  const uint64_t cas = Cas("a");
  const std::string c = std::to_string(cas);
  EXPECT_EQ(Run("mg a\r\n"), "HD\r\n");
  EXPECT_EQ(Run("mg a v\r\n"), "VA 3\r\nabc\r\n");
  EXPECT_EQ(Run("mg a k v f c t s O123 q\r\n"), "VA 3 ka f5 c" + c + " t-1 s3 O123\r\nabc\r\n");
  EXPECT_EQ(Run("mg a s k u P/x Lpath\r\n"), "HD s3 ka\r\n");
  EXPECT_EQ(Run("mg a q\r\n"), "HD\r\n");  // q only hides misses
  EXPECT_EQ(Run("mg zz\r\n"), "EN\r\n");
  EXPECT_EQ(Run("mg zz q\r\nmg zz q v k\r\nmn\r\n"), "MN\r\n");
  EXPECT_EQ(Run("mg zz k O1 v\r\n"), "EN kzz O1\r\n");
  EXPECT_EQ(Run("mg a T30 t v\r\n"), "VA 3 t30\r\nabc\r\n");
  EXPECT_EQ(Run("mg a t\r\n"), "HD t30\r\n");
  EXPECT_EQ(Run("mg a T-1 v\r\nmg a\r\n"), "VA 3\r\nabc\r\nEN\r\n");
  EXPECT_EQ(Run("mg\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("mg a Z\r\n"), "CLIENT_ERROR invalid flag\r\n");
  EXPECT_EQ(Run("mg a h\r\n"), "CLIENT_ERROR invalid flag\r\n");
  EXPECT_EQ(Run("mg a v v\r\n"), "CLIENT_ERROR duplicate flag\r\n");
  EXPECT_EQ(Run("mg a Tx\r\n"), "CLIENT_ERROR bad token in command line format\r\n");
  EXPECT_EQ(Run("mg a O" + std::string(32, 'o') + "\r\n"),
            "CLIENT_ERROR opaque token too long\r\n");
  EXPECT_EQ(Run("mg zz O" + std::string(31, 'o') + "\r\n"), "EN O" + std::string(31, 'o') + "\r\n");
  std::string many = "mg a";
  for (char ch : std::string("vkfcstqOPLuTNCF")) {
    many += std::string(" ") + ch + (ch == 'T' || ch == 'N' ? "0" : "");
  }
  many += " J1 D1 M1";
  EXPECT_EQ(Run(many + "\r\n"), "CLIENT_ERROR options flags are too long\r\n");
}

TEST_F(MemcacheTest, MetaGetVivify) {
  std::string r = Run("mg zz N30 v c t s f k\r\n");
  Result<DB::VersionedValue> v = db_->GetVersioned("zz");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(r, "VA 0 c" + std::to_string(v->version) + " t30 s0 f0 kzz W\r\n\r\n");
  EXPECT_EQ(Run("mg zz N30 s\r\n"), "HD s0\r\n");  // no second win (and no Z: not tracked)
  EXPECT_EQ(Run("mg yy N-1 v\r\n"), "EN\r\n");
}

TEST_F(MemcacheTest, MetaGetBase64Key) {
  std::string enc;
  Base64Encode(std::string("bin\0key", 7), &enc);
  EXPECT_EQ(Run("ms " + enc + " 2 b k\r\nhi\r\n"), "HD k" + enc + " b\r\n");
  EXPECT_EQ(Run("mg " + enc + " b k v\r\n"), "VA 2 k" + enc + " b\r\nhi\r\n");
  Result<std::string> v = db_->Get(std::string("bin\0key", 7));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "hi");
  EXPECT_EQ(Run("mg YmJi b v\r\n"), "EN\r\n");
  EXPECT_EQ(Run("mg !!!! b v\r\n"), "CLIENT_ERROR error decoding key\r\n");
  EXPECT_EQ(Run("md " + enc + " b q\r\nmg " + enc + " b v\r\n"), "EN\r\n");
  EXPECT_EQ(Run("me YmJi b\r\n"), "EN\r\n");
}

TEST_F(MemcacheTest, MetaSet) {
  EXPECT_EQ(Run("ms k1 3\r\nxyz\r\n"), "HD\r\n");
  std::string r = Run("ms k1 3 c k O9 F7 T100\r\nxyz\r\n");
  EXPECT_EQ(r, "HD c" + std::to_string(Cas("k1")) + " kk1 O9\r\n");
  EXPECT_EQ(Run("mg k1 f t v\r\n"), "VA 3 f7 t100\r\nxyz\r\n");
  EXPECT_EQ(Run("ms k1 3 q\r\nabc\r\nmg k1 f t v\r\n"), "VA 3 f0 t-1\r\nabc\r\n");
  EXPECT_EQ(Run("ms k1 2 ME\r\nxy\r\n"), "NS\r\n");
  EXPECT_EQ(Run("ms k2 2 ME q\r\nxy\r\nmg k2 v\r\n"), "VA 2\r\nxy\r\n");
  EXPECT_EQ(Run("ms k3 2 MR\r\nxy\r\n"), "NS\r\n");
  EXPECT_EQ(Run("ms k3 2 MA\r\nxy\r\nms k3 2 MP\r\nxy\r\n"), "NS\r\nNS\r\n");
  EXPECT_EQ(Run("ms k1 2 MA\r\nAA\r\n"), "HD\r\n");
  EXPECT_EQ(Run("ms k1 2 MP k\r\nPP\r\n"), "HD kk1\r\n");
  EXPECT_EQ(Run("ms k1 2 MS\r\nSS\r\nms k1 2 MR\r\nRR\r\nmg k1 v\r\n"),
            "HD\r\nHD\r\nVA 2\r\nRR\r\n");
  // Compare-and-set.
  const std::string cas = std::to_string(Cas("k1"));
  EXPECT_EQ(Run("ms k1 2 C999999\r\nzz\r\n"), "EX\r\n");
  EXPECT_EQ(Run("ms k9 2 C999\r\nzz\r\n"), "NF\r\n");
  EXPECT_EQ(Run("ms k9 2 C999 MR O5 k c\r\nzz\r\n"), "NF O5 kk9 c0\r\n");
  EXPECT_EQ(Run("ms k1 2 C999999 O5 k c\r\nzz\r\n"), "EX O5 kk1 c0\r\n");
  EXPECT_EQ(Run("ms k1 2 MA C999999\r\nzz\r\n"), "EX\r\n");
  EXPECT_EQ(Run("ms k1 2 C" + cas + " q\r\nCC\r\nmg k1 v\r\n"), "VA 2\r\nCC\r\n");
  EXPECT_EQ(Run("ms k1 2 ME C1\r\nzz\r\n"), "NS\r\n");  // add ignores C
  // Exptime forms via T.
  EXPECT_EQ(Run("ms k1 1 T-1\r\nx\r\nmg k1 v\r\n"), "HD\r\nEN\r\n");
  EXPECT_EQ(Run("ms k1 1 T0\r\nx\r\nmg k1 t\r\n"), "HD\r\nHD t-1\r\n");
  EXPECT_EQ(Run("ms k1 1 F4294967295\r\nx\r\nmg k1 f\r\n"), "HD\r\nHD f4294967295\r\n");
  // Errors: the data block is swallowed when its length was readable.
  EXPECT_EQ(Run("ms k1 1 Tx\r\nx\r\nmn\r\n"),
            "CLIENT_ERROR bad token in command line format\r\nMN\r\n");
  EXPECT_EQ(Run("ms k1 1 F-1\r\nx\r\nmn\r\n"), "CLIENT_ERROR bad command line format\r\nMN\r\n");
  EXPECT_EQ(Run("ms k1 1 F4294967296\r\nx\r\nmn\r\n"),
            "CLIENT_ERROR bad command line format\r\nMN\r\n");
  EXPECT_EQ(Run("ms k1 3 MX\r\nxyz\r\nmn\r\n"),
            "CLIENT_ERROR invalid mode for ms M token\r\nMN\r\n");
  EXPECT_EQ(Run("ms k1 3 MSS\r\nxyz\r\nmn\r\n"),
            "CLIENT_ERROR incorrect length for M token\r\nMN\r\n");
  EXPECT_EQ(Run("ms k1 3 Z\r\nxyz\r\nmn\r\n"), "CLIENT_ERROR invalid flag\r\nMN\r\n");
  EXPECT_EQ(Run("ms k1 3 I\r\nxyz\r\nmn\r\n"), "CLIENT_ERROR invalid flag\r\nMN\r\n");
  EXPECT_EQ(Run("ms k1 3 q q\r\nxyz\r\nmn\r\n"), "CLIENT_ERROR duplicate flag\r\nMN\r\n");
  EXPECT_EQ(Run("ms k1 3 O" + std::string(40, 'o') + "\r\nxyz\r\nmn\r\n"),
            "CLIENT_ERROR opaque token too long\r\nMN\r\n");
  EXPECT_EQ(Run("ms k1\r\nmn\r\n"), "CLIENT_ERROR bad command line format\r\nMN\r\n");
  EXPECT_EQ(Run("ms k1 abc\r\nmn\r\n"), "CLIENT_ERROR bad command line format\r\nMN\r\n");
  EXPECT_EQ(Run("ms k1 -1\r\nmn\r\n"), "CLIENT_ERROR bad command line format\r\nMN\r\n");
  EXPECT_EQ(Run("ms\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("ms k1 1 b\r\nx\r\nmn\r\n"), "CLIENT_ERROR error decoding key\r\nMN\r\n");
  EXPECT_EQ(Run("ms k1 2 S2\r\nxy\r\nmn\r\n"), "CLIENT_ERROR invalid flag\r\nMN\r\n");
}

TEST_F(MemcacheTest, MetaDelete) {
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("md a q\r\nmd a\r\nmd a q\r\n"), "NF\r\nNF\r\n");  // q hides only HD
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nmd a k O1\r\n"), "STORED\r\nHD ka O1\r\n");
  EXPECT_EQ(Run("md a O2 k\r\n"), "NF O2 ka\r\n");
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nmd a C1 k\r\n"), "STORED\r\nEX ka\r\n");
  EXPECT_EQ(Run("md a C" + std::to_string(Cas("a")) + "\r\nget a\r\n"), "HD\r\nEND\r\n");
  EXPECT_EQ(Run("md\r\n"), "ERROR\r\n");
  EXPECT_EQ(Run("md a Z\r\n"), "CLIENT_ERROR invalid or duplicate flag\r\n");
  EXPECT_EQ(Run("md a q q\r\n"), "CLIENT_ERROR invalid or duplicate flag\r\n");
  EXPECT_EQ(Run("md a I\r\n"), "CLIENT_ERROR invalid or duplicate flag\r\n");
}

TEST_F(MemcacheTest, MetaArithmetic) {
  EXPECT_EQ(Run("ma cnt\r\n"), "NF\r\n");
  EXPECT_EQ(Run("ma cnt q\r\n"), "NF\r\n");  // q hides only success
  EXPECT_EQ(Run("ma cnt O7 k\r\n"), "NF O7 kcnt\r\n");
  EXPECT_EQ(Run("ma cnt N0 J10\r\n"), "HD\r\n");  // created with the initial value
  EXPECT_EQ(Run("ma cnt v\r\n"), "VA 2\r\n11\r\n");
  const std::string r = Run("ma cnt v t c MD D3 k O5\r\n");
  EXPECT_EQ(r, "VA 1 t-1 c" + std::to_string(Cas("cnt")) + " kcnt O5\r\n8\r\n");
  EXPECT_EQ(Run("ma cnt q D2\r\nmg cnt v\r\n"), "VA 2\r\n10\r\n");
  EXPECT_EQ(Run("ma cnt v M-\r\n"), "VA 1\r\n9\r\n");
  EXPECT_EQ(Run("ma cnt v Md\r\n"), "CLIENT_ERROR invalid mode for ma M token\r\n");
  EXPECT_EQ(Run("ma cnt v M+\r\n"), "VA 2\r\n10\r\n");
  EXPECT_EQ(Run("ma cnt v MI\r\n"), "VA 2\r\n11\r\n");
  EXPECT_EQ(Run("ma cnt v MD D1000\r\n"), "VA 1\r\n0\r\n");
  EXPECT_EQ(Run("ma cnt v D18446744073709551615\r\nma cnt v D2\r\n"),
            "VA 20\r\n18446744073709551615\r\nVA 1\r\n1\r\n");
  EXPECT_EQ(Run("ma cnt C1 v\r\n"), "EX\r\n");
  EXPECT_EQ(Run("ma cnt C" + std::to_string(Cas("cnt")) + " v\r\n"), "VA 1\r\n2\r\n");
  EXPECT_EQ(Run("ma cnt T100 t v\r\n"), "VA 1 t100\r\n3\r\n");
  EXPECT_EQ(Run("ma cnt t\r\n"), "HD t100\r\n");  // the TTL is kept
  EXPECT_EQ(Run("ma viv N50 J7 t v q\r\nma viv N50 J7 t v\r\n"), "VA 1 t50\r\n8\r\n");
  EXPECT_EQ(Run("ma cnt MX\r\n"), "CLIENT_ERROR invalid mode for ma M token\r\n");
  EXPECT_EQ(Run("ma cnt Dabc\r\n"), "CLIENT_ERROR invalid or duplicate flag\r\n");
  EXPECT_EQ(Run("ma cnt Jabc N0\r\n"), "CLIENT_ERROR invalid or duplicate flag\r\n");
  EXPECT_EQ(Run("set s 0 0 1\r\nx\r\nma s\r\n"),
            "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  EXPECT_EQ(Run("ma\r\n"), "ERROR\r\n");
}

TEST_F(MemcacheTest, MetaNoopAndDebug) {
  EXPECT_EQ(Run("mn\r\n"), "MN\r\n");
  EXPECT_EQ(Run("me zz\r\n"), "EN\r\n");
  EXPECT_EQ(Run("set a 0 0 3\r\nabc\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("me a\r\n"),
            "ME a exp=-1 la=0 cas=" + std::to_string(Cas("a")) + " fetch=no cls=1 size=4\r\n");
  EXPECT_EQ(Run("set b 0 100 1\r\nx\r\n"), "STORED\r\n");
  EXPECT_EQ(Run("me b\r\n"),
            "ME b exp=100 la=0 cas=" + std::to_string(Cas("b")) + " fetch=no cls=1 size=2\r\n");
  EXPECT_EQ(Run("me\r\n"), "CLIENT_ERROR bad command line format\r\n");
}

// ---------------------------------------------------------------------------------------------
// Metrics, engine errors, persistence

TEST_F(MemcacheTest, RequestsAreCounted) {
  const uint64_t requests = metrics_.requests(Protocol::kMemcached);
  const uint64_t errors = metrics_.errors(Protocol::kMemcached);
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nget a\r\nbogus\r\nmg a v\r\nincr a 1\r\n"),
            "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\nERROR\r\nVA 1\r\nx\r\n"
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  EXPECT_EQ(metrics_.requests(Protocol::kMemcached), requests + 5);
  EXPECT_EQ(metrics_.errors(Protocol::kMemcached), errors + 2);
  std::string prom = metrics_.RenderPrometheus(db_->GetStats());
  EXPECT_NE(prom.find("varve_requests_total{protocol=\"memcached\",command=\"mg\"} 1"),
            std::string::npos);
  EXPECT_NE(prom.find("varve_requests_total{protocol=\"memcached\",command=\"unknown\"} 1"),
            std::string::npos);
}

TEST_F(MemcacheTest, EngineErrorsBecomeServerErrors) {
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\n"), "STORED\r\n");
  ASSERT_TRUE(db_->Close().ok());
  EXPECT_EQ(Run("get a\r\n"), "SERVER_ERROR store is closed\r\n");
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\n"), "SERVER_ERROR store is closed\r\n");
  EXPECT_EQ(Run("mg a v\r\n"), "SERVER_ERROR store is closed\r\n");
  EXPECT_EQ(Run("ms a 1\r\nx\r\n"), "SERVER_ERROR store is closed\r\n");
  EXPECT_EQ(Run("ms a 1 q\r\nx\r\n"), "SERVER_ERROR store is closed\r\n");
  EXPECT_EQ(Run("incr a 1\r\n"), "SERVER_ERROR store is closed\r\n");
  EXPECT_EQ(Run("delete a\r\n"), "SERVER_ERROR store is closed\r\n");
  EXPECT_EQ(Run("set a 0 0 1 noreply\r\nx\r\nmn\r\n"), "MN\r\n");
  // Sets written together as one batch: every reply is rewritten, noreply ones stay silent.
  const std::string closed = "SERVER_ERROR store is closed\r\n";
  EXPECT_EQ(Run("set a 0 0 1\r\nx\r\nset b 0 0 1 noreply\r\ny\r\nms c 1 q\r\nz\r\n"
                "ms d 1 k O1\r\nz\r\nmn\r\nset e 0 0 1\r\nx\r\n"),
            closed + closed + closed + "MN\r\n" + closed);
}

TEST_F(MemcacheTest, ValuesSurviveReopen) {
  EXPECT_EQ(Run("set a 42 0 5\r\nhello\r\nset b 0 1000 1\r\nx\r\n"), "STORED\r\nSTORED\r\n");
  Reopen();
  EXPECT_EQ(Run("get a\r\n"), "VALUE a 42 5\r\nhello\r\nEND\r\n");
  std::string r = Run("mg b t\r\n");
  EXPECT_TRUE(r == "HD t1000\r\n" || r == "HD t999\r\n") << r;
}

}  // namespace
}  // namespace varve::server

namespace varve::server {
namespace {

// In-process throughput of pipelined requests (no network): run with
// --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'.
TEST_F(MemcacheTest, DISABLED_Throughput) {
  constexpr int kKeys = 10000, kBatch = 100, kRounds = 2000;
  const std::string value(32, 'v');
  std::string fill;
  for (int i = 0; i < kKeys; ++i)
    fill += "set key:" + std::to_string(i) + " 0 0 32\r\n" + value + "\r\n";
  Run(fill);
  auto bench = [&](const char* name, auto make) {
    std::vector<std::string> batches;
    for (int b = 0; b < 50; ++b) {
      std::string in;
      for (int i = 0; i < kBatch; ++i) in += make((b * kBatch + i) * 7919 % kKeys);
      batches.push_back(in);
    }
    std::string out;
    // CPU time of this thread, so a busy machine does not skew the figure.
    timespec t0, t1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    for (int r = 0; r < kRounds; ++r) {
      out.clear();
      bool close = false;
      Disconnect why;
      const std::string& in = batches[r % batches.size()];
      ASSERT_EQ(handler_->Process(in, &out, &close, &why), in.size());
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    std::printf("%-4s %8.0f kops/s\n", name, kRounds * kBatch / secs / 1000);
  };
  bench("get", [](int k) { return "get key:" + std::to_string(k) + "\r\n"; });
  bench("mg", [](int k) { return "mg key:" + std::to_string(k) + " v\r\n"; });
  bench("set",
        [&](int k) { return "set key:" + std::to_string(k) + " 0 0 32\r\n" + value + "\r\n"; });
  bench("ms", [&](int k) { return "ms key:" + std::to_string(k) + " 32\r\n" + value + "\r\n"; });
}

}  // namespace
}  // namespace varve::server
