// The HTTP front end driven in-process: raw request bytes into ProtocolHandler::Process, exact
// response bytes out. Covers every route, errors and limits, percent-encoding, pipelining (also
// split at every byte), chunked bodies, Expect: 100-continue, keep-alive and HTTP/1.0.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "server/http/http_util.h"
#include "server/protocol.h"
#include "testutil/temp_dir.h"
#include "varve/db.h"

namespace varve::server {
namespace {

using nlohmann::json;
using testing::TempDir;

// An expected response: status line, our framing headers, extra headers, body.
std::string Reply(std::string_view status, std::string_view type, std::string_view body,
                  std::string_view extra = "") {
  return "HTTP/1.1 " + std::string(status) + "\r\nContent-Type: " + std::string(type) +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + std::string(extra) +
         "\r\n" + std::string(body);
}
std::string JsonReply(std::string_view status, std::string_view json_text,
                      std::string_view extra = "") {
  return Reply(status, "application/json", std::string(json_text) + "\n", extra);
}
std::string Error(std::string_view status, std::string_view code, std::string_view message,
                  std::string_view extra = "") {
  return JsonReply(
      status,
      R"({"error":")" + std::string(message) + R"(","code":")" + std::string(code) + R"("})",
      extra);
}
std::string Versioned(uint64_t v) {
  return "ETag: \"" + std::to_string(v) + "\"\r\nX-Varve-Version: " + std::to_string(v) + "\r\n";
}

std::string Get(std::string_view target, std::string_view headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n" + std::string(headers) + "\r\n";
}
std::string Req(std::string_view method, std::string_view target, std::string_view body,
                std::string_view headers = "") {
  return std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n" +
         std::string(headers) + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

// A response split into parts, for the checks that are not byte-exact.
struct Parsed {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string body;
};
Parsed ParseResponse(const std::string& r) {
  Parsed p;
  size_t end = r.find("\r\n\r\n");
  EXPECT_NE(end, std::string::npos) << r;
  p.status = std::stoi(r.substr(9, 3));
  size_t pos = r.find("\r\n") + 2;
  while (pos < end) {
    size_t eol = r.find("\r\n", pos);
    std::string line = r.substr(pos, eol - pos);
    size_t colon = line.find(": ");
    p.headers[line.substr(0, colon)] = line.substr(colon + 2);
    pos = eol + 2;
  }
  p.body = r.substr(end + 4);
  return p;
}

// One client connection: keeps unconsumed bytes and calls Process as the network layer does.
class Conn {
 public:
  Conn(ServerContext* ctx) : handler_(NewHttpHandler(ctx, &client_)) {}

  // Appends bytes, runs Process until it makes no progress, returns everything produced.
  std::string Send(std::string_view bytes) {
    in_.append(bytes);
    std::string all;
    while (!closed_) {
      std::string out;
      size_t n = handler_->Process(in_, &out, &closed_, &why_);
      ++calls_;
      EXPECT_LE(n, in_.size());
      in_.erase(0, n);
      all += out;
      if (n == 0 || in_.empty()) break;
    }
    return all;
  }
  bool closed() const { return closed_; }
  Disconnect why() const { return why_; }
  const std::string& pending() const { return in_; }
  bool MidRequest() const { return handler_->MidRequest(in_); }
  ProtocolHandler* handler() { return handler_.get(); }
  int calls() const { return calls_; }

 private:
  ClientInfo client_;
  std::unique_ptr<ProtocolHandler> handler_;
  std::string in_;
  bool closed_ = false;
  Disconnect why_ = Disconnect::kClient;
  int calls_ = 0;
};

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(IndexKind::kHash); }

  void Open(IndexKind index, ServerOptions opts = {}) {
    ctx_.reset();
    db_.reset();
    options_ = opts;
    options_.engine.index = index;
    Result<std::unique_ptr<DB>> db =
        DB::Open(options_.engine, tmp_.Sub("db" + std::to_string(++opens_)));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    metrics_ = std::make_unique<Metrics>();
    RegisterHttpCommands(metrics_.get());
    ctx_ = std::make_unique<ServerContext>();
    ctx_->db = db_.get();
    ctx_->options = &options_;
    ctx_->metrics = metrics_.get();
    ctx_->cursors = &cursors_;
    ctx_->start_unix_ms = 1;
  }

  // One request on a fresh connection.
  std::string Do(std::string_view bytes) {
    Conn c(ctx_.get());
    return c.Send(bytes);
  }

  TempDir tmp_;
  int opens_ = 0;
  ServerOptions options_;
  std::unique_ptr<DB> db_;
  std::unique_ptr<Metrics> metrics_;
  CursorRegistry cursors_;
  std::unique_ptr<ServerContext> ctx_;
};

// ---------------------------------------------------------------------------------------------
// Codecs

TEST(HttpUtilTest, PercentDecode) {
  std::string out;
  EXPECT_TRUE(http::PercentDecode("a%2Fb%20c%25%00%ff+", false, &out));
  EXPECT_EQ(out, std::string("a/b c%\0\xff+", 9));
  EXPECT_TRUE(http::PercentDecode("a+b", true, &out));
  EXPECT_EQ(out, "a b");
  EXPECT_FALSE(http::PercentDecode("%", false, &out));
  EXPECT_FALSE(http::PercentDecode("%4", false, &out));
  EXPECT_FALSE(http::PercentDecode("%G1", false, &out));
  EXPECT_FALSE(http::PercentDecode("ab%1", false, &out));
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  ASSERT_TRUE(http::PercentDecode(http::PercentEncode(all), false, &out));
  EXPECT_EQ(out, all);
}

TEST(HttpUtilTest, Base64AndUtf8) {
  EXPECT_EQ(http::Base64Encode(""), "");
  EXPECT_EQ(http::Base64Encode("f"), "Zg==");
  EXPECT_EQ(http::Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(http::Base64Encode("foo"), "Zm9v");
  std::string out;
  EXPECT_TRUE(http::Base64Decode("Zm8=", &out));
  EXPECT_EQ(out, "fo");
  EXPECT_TRUE(http::Base64Decode("Zm8", &out));
  EXPECT_EQ(out, "fo");
  EXPECT_FALSE(http::Base64Decode("Zm9=", &out));  // non-zero leftover bits
  EXPECT_FALSE(http::Base64Decode("Z", &out));
  EXPECT_FALSE(http::Base64Decode("Zm!v", &out));
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  ASSERT_TRUE(http::Base64Decode(http::Base64Encode(all), &out));
  EXPECT_EQ(out, all);

  EXPECT_TRUE(http::IsValidUtf8("plain \x7f"));
  EXPECT_TRUE(http::IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(http::IsValidUtf8("\xff"));
  EXPECT_FALSE(http::IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(http::IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(http::IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(http::IsValidUtf8("\xe2\x82"));          // truncated
}

TEST(HttpUtilTest, ParseUint64) {
  uint64_t v;
  EXPECT_TRUE(http::ParseUint64("18446744073709551615", &v));
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_FALSE(http::ParseUint64("18446744073709551616", &v));
  EXPECT_FALSE(http::ParseUint64("", &v));
  EXPECT_FALSE(http::ParseUint64("-1", &v));
  EXPECT_FALSE(http::ParseUint64(" 1", &v));
}

// ---------------------------------------------------------------------------------------------
// Routes

TEST_F(HttpTest, Healthz) {
  EXPECT_EQ(Do(Get("/healthz")), Reply("200 OK", "text/plain", "ok\n"));
  std::string full = Reply("200 OK", "text/plain", "ok\n");
  EXPECT_EQ(Do("HEAD /healthz HTTP/1.1\r\n\r\n"), full.substr(0, full.size() - 3));
}

TEST_F(HttpTest, PutGetDelete) {
  EXPECT_EQ(Do(Req("PUT", "/v1/kv/hello", "world")),
            JsonReply("201 Created", R"({"version":1})", Versioned(1)));
  EXPECT_EQ(Do(Get("/v1/kv/hello")),
            Reply("200 OK", "application/octet-stream", "world", Versioned(1)));
  EXPECT_EQ(Do(Req("PUT", "/v1/kv/hello", "world2")),
            JsonReply("200 OK", R"({"version":2})", Versioned(2)));
  std::string json_body = R"({"key":"hello","value":"world2","version":2,"expires_at_ms":null})";
  EXPECT_EQ(Do(Get("/v1/kv/hello?format=json")), JsonReply("200 OK", json_body, Versioned(2)));
  EXPECT_EQ(Do(Get("/v1/kv/hello", "Accept: text/html, application/json;q=0.9\r\n")),
            JsonReply("200 OK", json_body, Versioned(2)));
  EXPECT_EQ(Do(Get("/v1/kv/hello?format=raw", "Accept: application/json\r\n")),
            Reply("200 OK", "application/octet-stream", "world2", Versioned(2)));
  std::string head = Reply("200 OK", "application/octet-stream", "world2", Versioned(2));
  EXPECT_EQ(Do("HEAD /v1/kv/hello HTTP/1.1\r\n\r\n"), head.substr(0, head.size() - 6));
  EXPECT_EQ(Do(Req("DELETE", "/v1/kv/hello", "")), JsonReply("200 OK", R"({"deleted":true})"));
  EXPECT_EQ(Do(Req("DELETE", "/v1/kv/hello", "")), JsonReply("200 OK", R"({"deleted":false})"));
  EXPECT_EQ(Do(Get("/v1/kv/hello")), Error("404 Not Found", "NotFound", "key not found"));
  EXPECT_EQ(Do(Get("/v1/kv/hello?format=xml")),
            Error("400 Bad Request", "InvalidArgument", "format must be json or raw"));
  // An empty body is an empty value; the empty key is a key like any other.
  EXPECT_EQ(Do(Req("PUT", "/v1/kv/", "")),
            JsonReply("201 Created", R"({"version":4})", Versioned(4)));
  EXPECT_EQ(Do(Get("/v1/kv/")), Reply("200 OK", "application/octet-stream", "", Versioned(4)));
}

TEST_F(HttpTest, Ttl) {
  std::string r = Do(Req("PUT", "/v1/kv/t?ttl=100", "v"));
  EXPECT_EQ(r, JsonReply("201 Created", R"({"version":1})", Versioned(1)));
  uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  Parsed p = ParseResponse(Do(Get("/v1/kv/t")));
  ASSERT_EQ(p.status, 200);
  uint64_t at = std::stoull(p.headers["X-Varve-Expires-At"]);
  EXPECT_GT(at, now + 98'000);
  EXPECT_LE(at, now + 100'000);
  json j = json::parse(ParseResponse(Do(Get("/v1/kv/t?format=json"))).body);
  EXPECT_EQ(j["expires_at_ms"].get<uint64_t>(), at);

  EXPECT_EQ(ParseResponse(Do(Req("PUT", "/v1/kv/short?ttl_ms=30", "v"))).status, 201);
  EXPECT_EQ(ParseResponse(Do(Req("PUT", "/v1/kv/never?ttl=0", "v"))).status, 201);
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_EQ(ParseResponse(Do(Get("/v1/kv/short"))).status, 404);
  EXPECT_EQ(ParseResponse(Do(Get("/v1/kv/never"))).headers.count("X-Varve-Expires-At"), 0u);

  EXPECT_EQ(Do(Req("PUT", "/v1/kv/t?ttl=1&ttl_ms=1", "v")),
            Error("400 Bad Request", "InvalidArgument", "give ttl (seconds) or ttl_ms, not both"));
  EXPECT_EQ(ParseResponse(Do(Req("PUT", "/v1/kv/t?ttl=-1", "v"))).status, 400);
  EXPECT_EQ(ParseResponse(Do(Req("PUT", "/v1/kv/t?ttl=1.5", "v"))).status, 400);
  EXPECT_EQ(ParseResponse(Do(Req("PUT", "/v1/kv/t?ttl=99999999999999", "v"))).status, 400);
}

TEST_F(HttpTest, ConditionalWrites) {
  EXPECT_EQ(Do(Req("PUT", "/v1/kv/c", "1", "If-None-Match: *\r\n")),
            JsonReply("201 Created", R"({"version":1})", Versioned(1)));
  EXPECT_EQ(Do(Req("PUT", "/v1/kv/c", "2", "If-None-Match: *\r\n")),
            Error("412 Precondition Failed", "Aborted", "key exists"));
  EXPECT_EQ(Do(Req("PUT", "/v1/kv/c", "2", "If-Match: 7\r\n")),
            Error("412 Precondition Failed", "Aborted", "version does not match the key's"));
  EXPECT_EQ(Do(Req("PUT", "/v1/kv/c", "2", "If-Match: \"1\"\r\n")),
            JsonReply("200 OK", R"({"version":2})", Versioned(2)));
  EXPECT_EQ(Do(Req("PUT", "/v1/kv/c", "3", "If-Match: *\r\n")),
            JsonReply("200 OK", R"({"version":3})", Versioned(3)));
  EXPECT_EQ(Do(Req("PUT", "/v1/kv/absent", "3", "If-Match: *\r\n")),
            Error("412 Precondition Failed", "Aborted", "key does not exist"));
  EXPECT_EQ(Do(Req("PUT", "/v1/kv/c", "3", "If-Match: abc\r\n")),
            Error("400 Bad Request", "InvalidArgument",
                  "If-Match must be *, a version or a quoted version"));
  EXPECT_EQ(Do(Req("PUT", "/v1/kv/c", "3", "If-None-Match: 3\r\n")),
            Error("400 Bad Request", "InvalidArgument", "If-None-Match on PUT must be *"));
  EXPECT_EQ(Do(Req("DELETE", "/v1/kv/c", "", "If-Match: 2\r\n")),
            Error("412 Precondition Failed", "Aborted", "version does not match the key's"));
  EXPECT_EQ(Do(Req("DELETE", "/v1/kv/absent", "", "If-Match: *\r\n")),
            Error("412 Precondition Failed", "Aborted", "key does not exist"));
  EXPECT_EQ(Do(Req("DELETE", "/v1/kv/c", "", "If-Match: 3\r\n")),
            JsonReply("200 OK", R"({"deleted":true})"));
  EXPECT_TRUE(db_->Get("c").status().IsNotFound());
}

TEST_F(HttpTest, PercentEncodedKeys) {
  EXPECT_EQ(ParseResponse(Do(Req("PUT", "/v1/kv/a%2Fb%20c%25+d", "v"))).status, 201);
  Result<std::string> v = db_->Get("a/b c%+d");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "v");
  EXPECT_EQ(
      Do(Get("/v1/kv/a%2fb%20c%25+d?format=json")),
      JsonReply("200 OK", R"({"key":"a/b c%+d","value":"v","version":1,"expires_at_ms":null})",
                Versioned(1)));
  EXPECT_EQ(Do(Get("/v1/kv/a/b")), Error("400 Bad Request", "InvalidArgument",
                                         "a '/' in a key must be percent-encoded as %2F"));
  EXPECT_EQ(Do(Get("/v1/kv/%zz")),
            Error("400 Bad Request", "InvalidArgument", "invalid percent-encoding in key"));
  EXPECT_EQ(ParseResponse(Do(Get("/v1/kv/ab%4"))).status, 400);
  // Binary keys: every byte value, through PUT, GET and the JSON forms.
  std::string key;
  for (int i = 0; i < 256; ++i) key.push_back(static_cast<char>(i));
  EXPECT_EQ(ParseResponse(Do(Req("PUT", "/v1/kv/" + http::PercentEncode(key), "bin"))).status, 201);
  v = db_->Get(key);
  ASSERT_TRUE(v.ok());
  json j = json::parse(
      ParseResponse(Do(Get("/v1/kv/" + http::PercentEncode(key) + "?format=json"))).body);
  EXPECT_EQ(j["key_base64"], http::Base64Encode(key));
  EXPECT_EQ(j["value"], "bin");
  // Absolute-form targets.
  EXPECT_EQ(Do("GET http://example.com/healthz HTTP/1.1\r\n\r\n"),
            Reply("200 OK", "text/plain", "ok\n"));
}

TEST_F(HttpTest, BinaryValues) {
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  value += value;
  EXPECT_EQ(ParseResponse(Do(Req("PUT", "/v1/kv/bin", value))).status, 201);
  EXPECT_EQ(Do(Get("/v1/kv/bin")),
            Reply("200 OK", "application/octet-stream", value, Versioned(1)));
  json j = json::parse(ParseResponse(Do(Get("/v1/kv/bin?format=json"))).body);
  EXPECT_EQ(j["value_base64"], http::Base64Encode(value));
  EXPECT_FALSE(j.contains("value"));
  // Valid UTF-8 with control characters stays a JSON string.
  EXPECT_EQ(ParseResponse(Do(Req("PUT", "/v1/kv/ctl", std::string("a\0\n\"\xc3\xa9", 6)))).status,
            201);
  j = json::parse(ParseResponse(Do(Get("/v1/kv/ctl?format=json"))).body);
  EXPECT_EQ(j["value"], std::string("a\0\n\"\xc3\xa9", 6));
}

TEST_F(HttpTest, Batch) {
  std::string body =
      R"({"ops":[{"op":"put","key":"a","value":"1"},{"op":"put","key":"b","value_base64":"/wA=","ttl_ms":100000},)"
      R"({"op":"delete","key":"x"},{"op":"put","key_base64":"AP8=","value":""}]})";
  ASSERT_TRUE(db_->Put("x", "gone").ok());
  EXPECT_EQ(Do(Req("POST", "/v1/batch", body, "Content-Type: application/json\r\n")),
            JsonReply("200 OK", R"({"applied":4})"));
  EXPECT_EQ(*db_->Get("a"), "1");
  EXPECT_EQ(*db_->Get("b"), std::string("\xff\0", 2));
  EXPECT_NE(db_->GetVersioned("b")->expiry_ms, 0u);
  EXPECT_TRUE(db_->Get("x").status().IsNotFound());
  EXPECT_EQ(*db_->Get(std::string("\0\xff", 2)), "");
  EXPECT_EQ(Do(Req("POST", "/v1/batch", R"({"ops":[]})")), JsonReply("200 OK", R"({"applied":0})"));

  auto bad = [&](std::string_view b, std::string_view message) {
    EXPECT_EQ(Do(Req("POST", "/v1/batch", b)), Error("400 Bad Request", "InvalidArgument", message))
        << b;
  };
  bad(R"([1])", R"(request body must be a JSON object {\"ops\": [...]})");
  bad(R"({"ops":{}})", R"(\"ops\" must be an array)");
  bad(R"({})", R"(missing field \"ops\")");
  bad(R"({"ops":[],"x":1})", R"(unknown field 'x' (expected \"ops\" and \"expect\"))");
  bad(R"({"ops":[],"expect":{}})", R"(\"expect\" must be an array)");
  bad(R"({"ops":[],"expect":[{"key":"a"}]})",
      "expect[0].version must be a non-negative integer (0 = key absent)");
  bad(R"({"ops":[],"expect":[{"key":"a","version":-1}]})",
      "expect[0].version must be a non-negative integer (0 = key absent)");
  bad(R"({"ops":[],"expect":[{"version":1}]})", "expect[0]: missing key (or key_base64)");
  bad(R"({"ops":[],"expect":[{"key":"a","version":1,"x":2}]})", "expect[0]: unknown field 'x'");
  bad(R"({"ops":[1]})", "ops[0] must be an object");
  bad(R"({"ops":[{"op":"put","key":"k","value":"v"},{"op":"get","key":"k"}]})",
      R"(ops[1].op must be \"put\" or \"delete\")");
  bad(R"({"ops":[{"op":"put","key":"k"}]})", "ops[0]: missing value (or value_base64)");
  bad(R"({"ops":[{"op":"put","value":"v"}]})", "ops[0]: missing key (or key_base64)");
  bad(R"({"ops":[{"op":"put","key":"k","value":"v","value_base64":""}]})",
      "ops[0]: give value or value_base64, not both");
  bad(R"({"ops":[{"op":"put","key":"k","value":1}]})", "ops[0].value must be a string");
  bad(R"({"ops":[{"op":"put","key":"k","value_base64":"!!"}]})",
      "ops[0].value_base64 must be a base64 string");
  bad(R"({"ops":[{"op":"put","key":"k","vaule":"v"}]})",
      "ops[0]: unknown field 'vaule' for op put");
  bad(R"({"ops":[{"op":"delete","key":"k","value":"v"}]})",
      "ops[0]: unknown field 'value' for op delete");
  bad(R"({"ops":[{"op":"put","key":"k","value":"v","ttl_ms":-5}]})",
      "ops[0].ttl_ms must be a whole number of milliseconds up to 3153600000000");
  bad(R"({"ops":[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]})",
      "request body is not valid JSON: JSON nested deeper than 16 levels");
  // Nothing of a refused batch is applied.
  EXPECT_TRUE(db_->Get("k").status().IsNotFound());
  Parsed p = ParseResponse(Do(Req("POST", "/v1/batch", R"({"ops":[{"op":"put",)")));
  EXPECT_EQ(p.status, 400);
  EXPECT_EQ(json::parse(p.body)["error"],
            "request body is not valid JSON: parse error at line 1, column 21: syntax error while "
            "parsing object key - unexpected end of input; expected string literal");
  p = ParseResponse(Do(Req("POST", "/v1/batch", "\xff")));
  EXPECT_EQ(p.status, 400);
}

TEST_F(HttpTest, BatchWithConditions) {
  ASSERT_TRUE(db_->Put("a", "1").ok());
  uint64_t va = db_->GetVersioned("a")->version;
  auto batch = [&](uint64_t version_of_a) {
    return Do(Req(
        "POST", "/v1/batch",
        R"({"expect":[{"key":"a","version":)" + std::to_string(version_of_a) +
            R"(},{"key":"new","version":0}],)"
            R"("ops":[{"op":"put","key":"a","value":"2"},{"op":"put","key":"new","value":"n"}]})"));
  };
  Parsed p = ParseResponse(batch(va + 1000));
  EXPECT_EQ(p.status, 412);
  EXPECT_EQ(json::parse(p.body)["code"], "Aborted");
  EXPECT_EQ(*db_->Get("a"), "1");
  EXPECT_TRUE(db_->Get("new").status().IsNotFound());
  EXPECT_EQ(batch(va), JsonReply("200 OK", R"({"applied":2})"));
  EXPECT_EQ(*db_->Get("a"), "2");
  EXPECT_EQ(*db_->Get("new"), "n");
  // "new" exists now: the same conditions fail.
  EXPECT_EQ(ParseResponse(batch(db_->GetVersioned("a")->version)).status, 412);
}

TEST_F(HttpTest, StatsAndMetrics) {
  ASSERT_TRUE(db_->Put("k", "v").ok());
  Do(Get("/healthz"));
  Parsed p = ParseResponse(Do(Get("/v1/stats")));
  ASSERT_EQ(p.status, 200);
  EXPECT_EQ(p.headers["Content-Type"], "application/json");
  json j = json::parse(p.body);
  for (const char* f : {"keys",
                        "live_bytes",
                        "dead_bytes",
                        "segments",
                        "sealed_segments",
                        "disk_bytes",
                        "compactions",
                        "compaction_bytes_written",
                        "compaction_bytes_reclaimed",
                        "user_bytes_written",
                        "log_bytes_written",
                        "puts",
                        "deletes",
                        "gets",
                        "get_misses",
                        "skipped_unchanged_writes",
                        "syncs",
                        "write_groups",
                        "index_memory_bytes",
                        "tables",
                        "table_entries",
                        "last_sequence",
                        "durable_sequence",
                        "write_amplification"}) {
    EXPECT_TRUE(j["engine"].contains(f)) << f;
  }
  EXPECT_EQ(j["engine"]["keys"], 1);
  EXPECT_EQ(j["server"]["index"], "hash");
  EXPECT_EQ(j["server"]["protocols"]["http"]["requests"], 1);  // the healthz before
  EXPECT_TRUE(j["server"]["protocols"].contains("redis"));
  EXPECT_TRUE(j["server"]["protocols"].contains("memcached"));

  p = ParseResponse(Do(Get("/metrics")));
  ASSERT_EQ(p.status, 200);
  EXPECT_EQ(p.headers["Content-Type"], "text/plain; version=0.0.4");
  EXPECT_NE(p.body.find("varve_requests_total{protocol=\"http\",command=\"GET /healthz\"} 1\n"),
            std::string::npos)
      << p.body;
  EXPECT_NE(p.body.find("varve_requests_total{protocol=\"http\",command=\"GET /v1/stats\"} 1\n"),
            std::string::npos);
  EXPECT_NE(p.body.find("varve_keys 1\n"), std::string::npos);
  EXPECT_NE(p.body.find("varve_tables 0\n"), std::string::npos);
  EXPECT_NE(p.body.find("varve_table_entries 0\n"), std::string::npos);
}

TEST_F(HttpTest, RequestAndErrorCounting) {
  Do(Get("/v1/kv/missing"));  // a miss, not an error
  Do(Get("/nope"));           // an error
  Do(Req("PUT", "/v1/kv/k", "v"));
  EXPECT_EQ(metrics_->requests(Protocol::kHttp), 3u);
  EXPECT_EQ(metrics_->errors(Protocol::kHttp), 1u);
  EXPECT_EQ(metrics_->malformed(Protocol::kHttp), 0u);
  std::string text = metrics_->RenderPrometheus(db_->GetStats());
  EXPECT_NE(text.find("varve_requests_total{protocol=\"http\",command=\"unmatched\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("varve_requests_total{protocol=\"http\",command=\"PUT /v1/kv/{key}\"} 1\n"),
            std::string::npos);
  EXPECT_NE(
      text.find("varve_request_errors_total{protocol=\"http\",command=\"GET /v1/kv/{key}\"} 0\n"),
      std::string::npos);
}

TEST_F(HttpTest, UnknownPathsAndMethods) {
  EXPECT_EQ(Do(Get("/nope")),
            Error("404 Not Found", "NotFound", "no such resource; see docs/protocols/http.md"));
  EXPECT_EQ(Do(Get("/v1/kvx")),
            Error("404 Not Found", "NotFound", "no such resource; see docs/protocols/http.md"));
  EXPECT_EQ(Do(Req("POST", "/v1/kv/x", "")),
            Error("405 Method Not Allowed", "MethodNotAllowed",
                  "method POST not allowed; allowed: GET, HEAD, PUT, DELETE",
                  "Allow: GET, HEAD, PUT, DELETE\r\n"));
  EXPECT_EQ(Do(Req("PATCH", "/healthz", "")),
            Error("405 Method Not Allowed", "MethodNotAllowed",
                  "method PATCH not allowed; allowed: GET, HEAD", "Allow: GET, HEAD\r\n"));
  EXPECT_EQ(Do(Get("/v1/batch")),
            Error("405 Method Not Allowed", "MethodNotAllowed",
                  "method GET not allowed; allowed: POST", "Allow: POST\r\n"));
  EXPECT_EQ(Do(Get("/v1/kv/x?ttl=5")),
            Error("400 Bad Request", "InvalidArgument",
                  "unknown query parameter 'ttl' for GET /v1/kv/{key} (allowed: format)"));
  EXPECT_EQ(Do(Get("/healthz?x")),
            Error("400 Bad Request", "InvalidArgument",
                  "unknown query parameter 'x' for GET /healthz (it takes none)"));
  EXPECT_EQ(Do(Get("/v1/kv?limit=1&limit=2")),
            Error("400 Bad Request", "InvalidArgument", "query parameter 'limit' given twice"));
  EXPECT_EQ(Do(Get("/v1/kv?prefix=%zz")),
            Error("400 Bad Request", "InvalidArgument",
                  "invalid percent-encoding in query parameter 'prefix'"));
  EXPECT_EQ(
      Do("OPTIONS * HTTP/1.1\r\n\r\n"),
      Error("400 Bad Request", "InvalidArgument", "request target must be a path starting with /"));
}

// ---------------------------------------------------------------------------------------------
// Listing: the same behaviour with both index kinds.

class HttpListTest : public HttpTest, public ::testing::WithParamInterface<IndexKind> {
 protected:
  void SetUp() override {
    Open(GetParam());
    for (std::string k : {"b1", "a3", "a1", "a5", "a2", "a4"}) {
      ASSERT_TRUE(db_->Put(k, "v" + k).ok());
    }
  }
};

TEST_P(HttpListTest, PagesInKeyOrder) {
  // Versions follow the insertion order above: b1=1 a3=2 a1=3 a5=4 a2=5 a4=6.
  EXPECT_EQ(
      Do(Get("/v1/kv?prefix=a&limit=2")),
      JsonReply("200 OK",
                R"({"items":[{"key":"a1","value":"va1","version":3,"expires_at_ms":null},)"
                R"({"key":"a2","value":"va2","version":5,"expires_at_ms":null}],"next":"a3"})"));
  EXPECT_EQ(Do(Get("/v1/kv?prefix=a&limit=2&start=a3&values=false")),
            JsonReply("200 OK", R"({"items":[{"key":"a3","version":2,"expires_at_ms":null},)"
                                R"({"key":"a4","version":6,"expires_at_ms":null}],"next":"a5"})"));
  EXPECT_EQ(Do(Get("/v1/kv?prefix=a&limit=2&start=a5&values=0")),
            JsonReply("200 OK",
                      R"({"items":[{"key":"a5","version":4,"expires_at_ms":null}],"next":null})"));
  EXPECT_EQ(Do(Get("/v1/kv?start=a2&end=a4&values=false")),
            JsonReply("200 OK", R"({"items":[{"key":"a2","version":5,"expires_at_ms":null},)"
                                R"({"key":"a3","version":2,"expires_at_ms":null}],"next":null})"));
  EXPECT_EQ(Do(Get("/v1/kv?prefix=zz")), JsonReply("200 OK", R"({"items":[],"next":null})"));
  // Walking all pages of one returns every key once, in order.
  std::vector<std::string> keys;
  std::string start;
  for (int pages = 0; pages < 10; ++pages) {
    json j = json::parse(
        ParseResponse(Do(Get("/v1/kv?limit=1&values=false&start=" + http::PercentEncode(start))))
            .body);
    for (auto& item : j["items"]) keys.push_back(item["key"]);
    if (j["next"].is_null()) break;
    start = j["next"];
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"a1", "a2", "a3", "a4", "a5", "b1"}));
  // Binary keys are listed as key_base64, and next too.
  ASSERT_TRUE(db_->Put(std::string("c\xff", 2), "x").ok());
  ASSERT_TRUE(db_->Put(std::string("c\xff\x01", 3), "x").ok());
  EXPECT_EQ(
      Do(Get("/v1/kv?prefix=c&limit=1&values=false")),
      JsonReply("200 OK", R"({"items":[{"key_base64":"Y/8=","version":7,"expires_at_ms":null}],)"
                          R"("next_base64":"Y/8B"})"));
  EXPECT_EQ(ParseResponse(Do(Get("/v1/kv?limit=0"))).status, 400);
  EXPECT_EQ(ParseResponse(Do(Get("/v1/kv?limit=x"))).status, 400);
  EXPECT_EQ(ParseResponse(Do(Get("/v1/kv?values=maybe"))).status, 400);
  // limit is capped at 10000.
  EXPECT_EQ(json::parse(ParseResponse(Do(Get("/v1/kv?limit=99999"))).body)["items"].size(), 8u);
}

INSTANTIATE_TEST_SUITE_P(Index, HttpListTest,
                         ::testing::Values(IndexKind::kHash, IndexKind::kOrdered),
                         [](const auto& info) {
                           return info.param == IndexKind::kHash ? "Hash" : "Ordered";
                         });

TEST_F(HttpTest, ListStopsAtTheOutputBudget) {
  ServerOptions o;
  o.max_output_bytes = 250;
  Open(IndexKind::kOrdered, o);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(db_->Put("k" + std::to_string(i), std::string(100, 'x')).ok());
  json j = json::parse(ParseResponse(Do(Get("/v1/kv"))).body);
  EXPECT_EQ(j["items"].size(), 3u);  // stops once past 250 bytes
  EXPECT_EQ(j["next"], "k3");
}

// ---------------------------------------------------------------------------------------------
// Framing: pipelining, keep-alive, HTTP/1.0, chunked bodies, Expect: 100-continue.

TEST_F(HttpTest, PipelinedRequestsInOneBuffer) {
  ASSERT_TRUE(db_->Put("k", "value").ok());
  Conn c(ctx_.get());
  std::string pipeline = Get("/v1/kv/k") + Req("PUT", "/v1/kv/k", "new", "If-None-Match: *\r\n") +
                         "\r\n" + Get("/healthz") + Get("/v1/kv/missing");
  EXPECT_EQ(c.Send(pipeline), Reply("200 OK", "application/octet-stream", "value", Versioned(1)) +
                                  Error("412 Precondition Failed", "Aborted", "key exists") +
                                  Reply("200 OK", "text/plain", "ok\n") +
                                  Error("404 Not Found", "NotFound", "key not found"));
  EXPECT_FALSE(c.closed());
  EXPECT_EQ(c.pending(), "");
  EXPECT_FALSE(c.MidRequest());
}

// Feeding a pipeline in two pieces split at every byte, or one byte at a time, gives the same
// bytes out as feeding it whole.
TEST_F(HttpTest, SplitAtEveryByteGivesTheSameOutput) {
  ASSERT_TRUE(db_->Put("k", "value").ok());
  std::string pipeline =
      Get("/v1/kv/k?format=json") + Req("PUT", "/v1/kv/k", "new", "If-None-Match: *\r\n") +
      "POST /v1/batch HTTP/1.1\r\nTransfer-Encoding: "
      "chunked\r\n\r\n4\r\n{\"op\r\n7;ext=1\r\ns\":[]}\n\r\n0\r\n\r\n" +
      Req("DELETE", "/v1/kv/absent", "") +
      "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + Get("/healthz");
  std::string whole = Conn(ctx_.get()).Send(pipeline);
  EXPECT_EQ(ParseResponse(whole).status, 200);
  EXPECT_NE(whole.find("{\"applied\":0}"), std::string::npos) << whole;
  EXPECT_NE(whole.find("Connection: keep-alive\r\n"), std::string::npos);
  for (size_t split = 0; split <= pipeline.size(); ++split) {
    Conn c(ctx_.get());
    std::string out = c.Send(pipeline.substr(0, split));
    out += c.Send(pipeline.substr(split));
    ASSERT_EQ(out, whole) << "split at " << split;
    ASSERT_FALSE(c.closed());
  }
  Conn c(ctx_.get());
  std::string out;
  for (char ch : pipeline) {
    out += c.Send(std::string_view(&ch, 1));
    ASSERT_FALSE(c.closed());
  }
  EXPECT_EQ(out, whole);
}

TEST_F(HttpTest, ChunkedPut) {
  std::string req =
      "PUT /v1/kv/ch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1;name=val\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\n";
  EXPECT_EQ(Do(req), JsonReply("201 Created", R"({"version":1})", Versioned(1)));
  EXPECT_EQ(*db_->Get("ch"), "hello world");
  // Chunked with a bad chunk size is a protocol error.
  Conn c(ctx_.get());
  EXPECT_EQ(ParseResponse(c.Send("PUT /v1/kv/ch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "zz\r\nhello\r\n0\r\n\r\n"))
                .status,
            400);
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.why(), Disconnect::kProtocolError);
}

TEST_F(HttpTest, ConnectionCloseAndHttp10) {
  Conn c(ctx_.get());
  std::string first = Get("/healthz", "Connection: close\r\n");
  EXPECT_EQ(c.Send(first + Get("/healthz")),
            Reply("200 OK", "text/plain", "ok\n", "Connection: close\r\n"));
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.why(), Disconnect::kClient);
  EXPECT_EQ(c.pending(), Get("/healthz"));  // not consumed: the connection closes

  Conn c10(ctx_.get());
  EXPECT_EQ(c10.Send("GET /healthz HTTP/1.0\r\n\r\n"),
            Reply("200 OK", "text/plain", "ok\n", "Connection: close\r\n"));
  EXPECT_TRUE(c10.closed());

  Conn ka(ctx_.get());
  EXPECT_EQ(ka.Send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            Reply("200 OK", "text/plain", "ok\n", "Connection: keep-alive\r\n"));
  EXPECT_FALSE(ka.closed());
  // HTTP/1.0 PUT with a body.
  EXPECT_EQ(
      ka.Send("PUT /v1/kv/old HTTP/1.0\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"),
      JsonReply("201 Created", R"({"version":1})", Versioned(1) + "Connection: keep-alive\r\n"));
}

TEST_F(HttpTest, ExpectContinue) {
  Conn c(ctx_.get());
  EXPECT_EQ(c.Send("PUT /v1/kv/e HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
            "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_TRUE(c.MidRequest());
  EXPECT_EQ(c.Send("hel"), "");
  EXPECT_TRUE(c.MidRequest());  // body bytes consumed, the request still open
  EXPECT_EQ(c.Send("lo"), JsonReply("201 Created", R"({"version":1})", Versioned(1)));
  EXPECT_FALSE(c.MidRequest());
  EXPECT_EQ(*db_->Get("e"), "hello");
}

TEST_F(HttpTest, MidRequest) {
  Conn c(ctx_.get());
  EXPECT_FALSE(c.MidRequest());
  EXPECT_EQ(c.Send("GET /heal"), "");
  EXPECT_TRUE(c.MidRequest());
  EXPECT_EQ(c.Send("thz HTTP/1.1\r\n"), "");
  EXPECT_TRUE(c.MidRequest());
  EXPECT_EQ(c.Send("\r\n"), Reply("200 OK", "text/plain", "ok\n"));
  EXPECT_FALSE(c.MidRequest());
}

TEST_F(HttpTest, StopsAtMaxOutputBytesBetweenRequests) {
  ServerOptions o;
  o.max_output_bytes = 100;
  Open(IndexKind::kHash, o);
  ASSERT_TRUE(db_->Put("big", std::string(200, 'x')).ok());
  std::string one = Get("/v1/kv/big");
  std::string in = one + one + one;
  auto handler = NewHttpHandler(ctx_.get(), nullptr);
  std::string out;
  bool close = false;
  Disconnect why;
  EXPECT_EQ(handler->Process(in, &out, &close, &why), one.size());
  EXPECT_EQ(ParseResponse(out).body, std::string(200, 'x'));
  out.clear();
  EXPECT_EQ(handler->Process(std::string_view(in).substr(one.size()), &out, &close, &why),
            one.size());
  EXPECT_FALSE(close);
}

// ---------------------------------------------------------------------------------------------
// Limits and hostile input

class HttpLimitsTest : public HttpTest {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.max_key_bytes = 16;
    o.max_value_bytes = 100;
    o.max_request_bytes = 1000;
    Open(IndexKind::kHash, o);
  }
};

TEST_F(HttpLimitsTest, KeyAndValueLimits) {
  Conn c(ctx_.get());
  EXPECT_EQ(c.Send(Get("/v1/kv/" + std::string(17, 'k'))),
            Error("414 URI Too Long", "TooLarge", "key of 17 bytes exceeds max_key_bytes (16)"));
  EXPECT_EQ(ParseResponse(c.Send(Req("PUT", "/v1/kv/" + std::string(16, 'k'), "v"))).status, 201);
  // A value over the limit is read and refused; the connection stays usable.
  EXPECT_EQ(c.Send(Req("PUT", "/v1/kv/k", std::string(101, 'v')) + Get("/healthz")),
            Error("413 Payload Too Large", "TooLarge",
                  "value of 101 bytes exceeds max_value_bytes (100)") +
                Reply("200 OK", "text/plain", "ok\n"));
  EXPECT_FALSE(c.closed());
  std::string batch =
      R"({"ops":[{"op":"put","key":"k","value":"v"},{"op":"put","key":"kkkkkkkkkkkkkkkkk","value":"v"}]})";
  EXPECT_EQ(c.Send(Req("POST", "/v1/batch", batch)),
            Error("413 Payload Too Large", "TooLarge",
                  "ops[1].key of 17 bytes exceeds max_key_bytes (16)"));
  EXPECT_EQ(metrics_->malformed(Protocol::kHttp), 0u);
}

TEST_F(HttpLimitsTest, ExpectContinueRefusedEarly) {
  Conn c(ctx_.get());
  EXPECT_EQ(c.Send("PUT /v1/kv/k HTTP/1.1\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n"),
            Error("413 Payload Too Large", "TooLarge",
                  "value of 500 bytes exceeds max_value_bytes (100)", "Connection: close\r\n"));
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.why(), Disconnect::kTooLarge);
}

TEST_F(HttpLimitsTest, BodyOverMaxRequestBytes) {
  Conn c(ctx_.get());
  EXPECT_EQ(c.Send("PUT /v1/kv/k HTTP/1.1\r\nContent-Length: 10000000000\r\n\r\nabc"),
            Error("413 Payload Too Large", "TooLarge", "request body over max_request_bytes (1000)",
                  "Connection: close\r\n"));
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.why(), Disconnect::kTooLarge);
  EXPECT_EQ(metrics_->malformed(Protocol::kHttp), 1u);

  Conn chunked(ctx_.get());
  std::string req = "POST /v1/batch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) req += "64\r\n" + std::string(100, ' ') + "\r\n";
  EXPECT_EQ(ParseResponse(chunked.Send(req)).status, 413);
  EXPECT_EQ(chunked.why(), Disconnect::kTooLarge);
}

TEST_F(HttpLimitsTest, HeaderOverLimit) {
  Conn c(ctx_.get());
  std::string r = c.Send("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(2000, 'x') + "\r\n\r\n");
  EXPECT_EQ(r, Error("431 Request Header Fields Too Large", "TooLarge",
                     "request line or header fields over 1000 bytes", "Connection: close\r\n"));
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.why(), Disconnect::kTooLarge);
  // Also when the bytes trickle in without an end of header.
  Conn slow(ctx_.get());
  std::string partial = "GET /healthz HTTP/1.1\r\nX-Big: ";
  EXPECT_EQ(slow.Send(partial), "");
  for (int i = 0; i < 20 && !slow.closed(); ++i) slow.Send(std::string(100, 'x'));
  EXPECT_TRUE(slow.closed());
  EXPECT_EQ(slow.why(), Disconnect::kTooLarge);
}

TEST_F(HttpTest, Garbage) {
  for (std::string garbage :
       {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
        std::string("*1\r\n$4\r\nPING\r\n"), std::string("get foo\r\n"),
        std::string("GET / HTP/1.1\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n"),
        std::string("PUT /v1/kv/k HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        std::string("PUT /v1/kv/k HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), std::string(64, 'A')}) {
    Conn c(ctx_.get());
    Parsed p = ParseResponse(c.Send(garbage));
    EXPECT_EQ(p.status, 400) << garbage;
    EXPECT_EQ(p.headers["Connection"], "close");
    EXPECT_TRUE(c.closed()) << garbage;
    EXPECT_EQ(c.why(), Disconnect::kProtocolError);
  }
  // Garbage after a plausible start is refused as soon as it arrives.
  Conn c(ctx_.get());
  EXPECT_EQ(c.Send("GE"), "");
  EXPECT_EQ(ParseResponse(c.Send(std::string("\0\1\2", 3))).status, 400);
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(metrics_->malformed(Protocol::kHttp), 9u);
  EXPECT_EQ(metrics_->requests(Protocol::kHttp), 0u);
}

// Mutated pipelines fed in random pieces: every reply is well-formed, a closed connection stays
// closed, and nothing is left half-parsed in a way that breaks the next request.
TEST_F(HttpTest, RandomMutationsAndSplits) {
  ASSERT_TRUE(db_->Put("k", "value").ok());
  const std::string pipeline =
      Get("/v1/kv/k?format=json") + Req("PUT", "/v1/kv/m%20n?ttl=5", "body") +
      "POST /v1/batch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "b\r\n{\"ops\":[]}\n\r\n0\r\n\r\n" +
      Req("DELETE", "/v1/kv/absent", "", "If-Match: 3\r\n") + Get("/v1/kv?prefix=k&limit=2");
  std::mt19937 rng(20261123);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string in = pipeline;
    int mutations = static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations; ++m) {
      size_t pos = rng() % in.size();
      switch (rng() % 3) {
        case 0:
          in[pos] = static_cast<char>(rng());
          break;
        case 1:
          in.erase(pos, 1 + rng() % 8);
          break;
        default:
          in.insert(pos, std::string(1 + rng() % 8, static_cast<char>(rng())));
          break;
      }
      if (in.empty()) in = "x";
    }
    Conn c(ctx_.get());
    std::string out;
    for (size_t pos = 0; pos < in.size() && !c.closed();) {
      size_t n = std::min<size_t>(in.size() - pos, 1 + rng() % 40);
      out += c.Send(std::string_view(in).substr(pos, n));
      pos += n;
    }
    // Every reply starts with a status line and has the length it announces.
    std::string_view rest = out;
    while (!rest.empty()) {
      ASSERT_TRUE(rest.starts_with("HTTP/1.1 ")) << rest;
      size_t end = rest.find("\r\n\r\n");
      ASSERT_NE(end, std::string_view::npos);
      std::string_view head = rest.substr(0, end);
      if (head.starts_with("HTTP/1.1 100 ")) {
        rest.remove_prefix(end + 4);
        continue;
      }
      size_t cl = head.find("Content-Length: ");
      ASSERT_NE(cl, std::string_view::npos);
      size_t len = std::stoul(std::string(head.substr(cl + 16, head.find("\r\n", cl) - cl - 16)));
      ASSERT_LE(end + 4 + len, rest.size());  // (no HEAD in the pipeline: bodies are whole)
      rest.remove_prefix(end + 4 + len);
    }
    if (!c.closed()) {
      // The connection still works: a complete request after the leftovers gets a reply, or the
      // leftovers form a request the handler is waiting to complete.
      std::string more = c.Send("\r\n" + Get("/healthz"));
      if (!c.closed() && c.pending().empty() && !c.MidRequest()) {
        EXPECT_NE(more.find("ok\n"), std::string::npos) << in;
      }
    }
  }
}

}  // namespace
}  // namespace varve::server
