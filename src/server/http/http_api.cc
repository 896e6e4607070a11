#include "server/http/http_api.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <nlohmann/json.hpp>
#include <queue>

#include "server/http/http_util.h"
#include "util/clock.h"

namespace varve::server::http {
namespace {

using Json = nlohmann::ordered_json;

// Longest TTL accepted (100 years), so that now + ttl never overflows.
constexpr uint64_t kMaxTtlMs = 100ull * 365 * 24 * 3600 * 1000;
// Listing: default and largest page.
constexpr uint64_t kDefaultListLimit = 1000;
constexpr uint64_t kMaxListLimit = 10000;
// A PUT or DELETE retries its read-then-compare-and-set this often against concurrent writers
// of the same key before answering 503.
constexpr int kWriteAttempts = 100;
// Nesting accepted in a batch body (the schema needs 3).
constexpr int kMaxJsonDepth = 16;

enum class Resource { kKey, kKeys, kBatch, kStats, kMetrics, kHealth, kNone };

// What a handler gets: the decoded key (key routes) and the query parameters, checked against
// the route's allowed names.
struct Call {
  ServerContext* ctx;
  const ApiRequest& req;
  std::string key;
  std::vector<QueryParam> params;

  const std::string* Param(std::string_view name) const {
    for (const QueryParam& p : params) {
      if (p.first == name) return &p.second;
    }
    return nullptr;
  }
};

using Handler = ApiResponse (*)(const Call&);

struct Route {
  Resource resource;
  std::string_view method;
  std::string_view command;                // metrics name
  std::array<std::string_view, 5> params;  // allowed query parameters (empty = unused slot)
  Handler handler;
};

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

ApiResponse JsonResponse(unsigned status, const Json& j) {
  ApiResponse r;
  r.status = status;
  r.body = Dump(j);
  return r;
}

ApiResponse BadRequest(std::string_view message) {
  return ErrorResponse(400, "InvalidArgument", message);
}

ApiResponse TooLarge(unsigned status, std::string_view message) {
  return ErrorResponse(status, "TooLarge", message);
}

// name or name_base64, whichever represents bytes in JSON.
void PutBytes(Json* obj, const std::string& name, std::string_view bytes) {
  if (IsValidUtf8(bytes)) {
    (*obj)[name] = std::string(bytes);
  } else {
    (*obj)[name + "_base64"] = Base64Encode(bytes);
  }
}

Json ExpiryJson(uint64_t expiry_ms) { return expiry_ms == 0 ? Json(nullptr) : Json(expiry_ms); }

std::string Quoted(uint64_t version) { return "\"" + std::to_string(version) + "\""; }

void AddVersionHeaders(ApiResponse* r, uint64_t version) {
  r->headers.emplace_back("ETag", Quoted(version));
  r->headers.emplace_back("X-Varve-Version", std::to_string(version));
}

// A precondition header: absent, "*", or one version (bare or as a quoted ETag).
struct Precondition {
  enum Kind { kNone, kAny, kVersion } kind = kNone;
  uint64_t version = 0;
};

bool ParsePrecondition(std::string_view value, Precondition* out) {
  value = Trim(value);
  if (value.empty()) return true;
  if (value == "*") {
    out->kind = Precondition::kAny;
    return true;
  }
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  if (!ParseUint64(value, &out->version) || out->version == 0) return false;
  out->kind = Precondition::kVersion;
  return true;
}

bool ParseBool(const std::string* s, bool fallback, bool* out) {
  if (s == nullptr) {
    *out = fallback;
    return true;
  }
  if (*s == "true" || *s == "1") {
    *out = true;
    return true;
  }
  if (*s == "false" || *s == "0") {
    *out = false;
    return true;
  }
  return false;
}

// ?ttl=SECONDS or ?ttl_ms=MS; 0 (or neither) = no expiry.
bool ParseTtl(const Call& c, uint64_t* ttl_ms, std::string* error) {
  const std::string* ttl = c.Param("ttl");
  const std::string* ttl_ms_param = c.Param("ttl_ms");
  *ttl_ms = 0;
  if (ttl != nullptr && ttl_ms_param != nullptr) {
    *error = "give ttl (seconds) or ttl_ms, not both";
    return false;
  }
  uint64_t v = 0;
  if (ttl != nullptr) {
    if (!ParseUint64(*ttl, &v) || v > kMaxTtlMs / 1000) {
      *error = "ttl must be a whole number of seconds up to " + std::to_string(kMaxTtlMs / 1000);
      return false;
    }
    *ttl_ms = v * 1000;
  } else if (ttl_ms_param != nullptr) {
    if (!ParseUint64(*ttl_ms_param, &v) || v > kMaxTtlMs) {
      *error = "ttl_ms must be a whole number of milliseconds up to " + std::to_string(kMaxTtlMs);
      return false;
    }
    *ttl_ms = v;
  }
  return true;
}

ApiResponse KeyTooLong(const Call& c) {
  return TooLarge(414, "key of " + std::to_string(c.key.size()) + " bytes exceeds max_key_bytes (" +
                           std::to_string(c.ctx->options->max_key_bytes) + ")");
}

bool WantsJson(const Call& c, bool* json, std::string* error) {
  const std::string* format = c.Param("format");
  if (format != nullptr) {
    if (*format == "json") {
      *json = true;
    } else if (*format == "raw") {
      *json = false;
    } else {
      *error = "format must be json or raw";
      return false;
    }
    return true;
  }
  std::string accept(c.req.accept);
  std::transform(accept.begin(), accept.end(), accept.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  *json = accept.find("application/json") != std::string::npos;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Routes

ApiResponse GetKey(const Call& c) {
  bool json;
  std::string error;
  if (!WantsJson(c, &json, &error)) return BadRequest(error);
  if (c.key.size() > c.ctx->options->max_key_bytes) return KeyTooLong(c);
  Result<DB::VersionedValue> r = c.ctx->db->GetVersioned(c.key);
  if (!r.ok()) {
    ApiResponse e =
        StatusResponse(r.status().IsNotFound() ? Status::NotFound("key not found") : r.status());
    if (r.status().IsNotFound()) e.error = false;
    return e;
  }
  ApiResponse out;
  AddVersionHeaders(&out, r->version);
  if (r->expiry_ms != 0)
    out.headers.emplace_back("X-Varve-Expires-At", std::to_string(r->expiry_ms));
  if (json) {
    Json j = Json::object();
    PutBytes(&j, "key", c.key);
    PutBytes(&j, "value", r->value);
    j["version"] = r->version;
    j["expires_at_ms"] = ExpiryJson(r->expiry_ms);
    out.body = Dump(j);
  } else {
    out.content_type = "application/octet-stream";
    out.body = std::move(r->value);
  }
  return out;
}

ApiResponse PutKey(const Call& c) {
  const ServerOptions& o = *c.ctx->options;
  std::string error;
  PutOptions opts;
  if (!ParseTtl(c, &opts.ttl_ms, &error)) return BadRequest(error);
  if (c.key.size() > o.max_key_bytes) return KeyTooLong(c);
  if (c.req.body.size() > o.max_value_bytes) {
    return TooLarge(413, "value of " + std::to_string(c.req.body.size()) +
                             " bytes exceeds max_value_bytes (" +
                             std::to_string(o.max_value_bytes) + ")");
  }
  Precondition if_match, if_none_match;
  if (!ParsePrecondition(c.req.if_match, &if_match)) {
    return BadRequest("If-Match must be *, a version or a quoted version");
  }
  if (!ParsePrecondition(c.req.if_none_match, &if_none_match) ||
      if_none_match.kind == Precondition::kVersion) {
    return BadRequest("If-None-Match on PUT must be *");
  }
  if (if_match.kind != Precondition::kNone && if_none_match.kind != Precondition::kNone) {
    return BadRequest("give If-Match or If-None-Match, not both");
  }
  DB* db = c.ctx->db;
  uint64_t new_version = 0;
  bool created = false;
  if (if_none_match.kind == Precondition::kAny || if_match.kind == Precondition::kVersion) {
    uint64_t expected = if_match.kind == Precondition::kVersion ? if_match.version : 0;
    Status s = db->CompareAndSet(c.key, expected, c.req.body, opts, &new_version);
    if (s.IsAborted()) {
      return StatusResponse(
          Status::Aborted(expected == 0 ? "key exists" : "version does not match the key's"));
    }
    if (!s.ok()) return StatusResponse(s);
    created = expected == 0;
  } else {
    // Unconditional (or If-Match: *): compare-and-set against the version just read, so that
    // the reply can say which version was written and whether the key was created.
    int attempt = 0;
    for (;; ++attempt) {
      if (attempt == kWriteAttempts) {
        return StatusResponse(Status::Busy("the key is being written concurrently; retry"));
      }
      Result<DB::VersionedValue> cur = db->GetVersioned(c.key);
      if (!cur.ok() && !cur.status().IsNotFound()) return StatusResponse(cur.status());
      uint64_t expected = cur.ok() ? cur->version : 0;
      if (expected == 0 && if_match.kind == Precondition::kAny) {
        return StatusResponse(Status::Aborted("key does not exist"));
      }
      Status s = db->CompareAndSet(c.key, expected, c.req.body, opts, &new_version);
      if (s.IsAborted()) continue;
      if (!s.ok()) return StatusResponse(s);
      created = expected == 0;
      break;
    }
  }
  ApiResponse out = JsonResponse(created ? 201 : 200, Json{{"version", new_version}});
  AddVersionHeaders(&out, new_version);
  return out;
}

ApiResponse DeleteKey(const Call& c) {
  if (c.key.size() > c.ctx->options->max_key_bytes) return KeyTooLong(c);
  Precondition if_match;
  if (!ParsePrecondition(c.req.if_match, &if_match)) {
    return BadRequest("If-Match must be *, a version or a quoted version");
  }
  if (!c.req.if_none_match.empty()) return BadRequest("If-None-Match is not supported on DELETE");
  DB* db = c.ctx->db;
  if (if_match.kind == Precondition::kVersion) {
    Status s = db->CompareAndDelete(c.key, if_match.version);
    if (s.IsAborted()) return StatusResponse(Status::Aborted("version does not match the key's"));
    if (!s.ok()) return StatusResponse(s);
    return JsonResponse(200, Json{{"deleted", true}});
  }
  for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
    Result<DB::VersionedValue> cur = db->GetVersioned(c.key);
    if (!cur.ok() && !cur.status().IsNotFound()) return StatusResponse(cur.status());
    if (!cur.ok()) {
      if (if_match.kind == Precondition::kAny) {
        return StatusResponse(Status::Aborted("key does not exist"));
      }
      return JsonResponse(200, Json{{"deleted", false}});
    }
    Status s = db->CompareAndDelete(c.key, cur->version);
    if (s.IsAborted()) continue;
    if (!s.ok()) return StatusResponse(s);
    return JsonResponse(200, Json{{"deleted", true}});
  }
  return StatusResponse(Status::Busy("the key is being written concurrently; retry"));
}

// One listed key.
struct Item {
  std::string key;
  std::string value;
  uint64_t version = 0;
  uint64_t expiry_ms = 0;
};

Json ItemJson(const Item& item, bool values) {
  Json j = Json::object();
  PutBytes(&j, "key", item.key);
  if (values) PutBytes(&j, "value", item.value);
  j["version"] = item.version;
  j["expires_at_ms"] = ExpiryJson(item.expiry_ms);
  return j;
}

// Both index kinds return a page of keys in key order, and "next" continues after it: the
// ordered index walks just the page; the hash index filters a full pass, keeping the limit + 1
// smallest matching keys in a heap.
ApiResponse ListKeys(const Call& c) {
  const std::string* prefix = c.Param("prefix");
  const std::string* start = c.Param("start");
  const std::string* end = c.Param("end");
  uint64_t limit = kDefaultListLimit;
  if (const std::string* l = c.Param("limit")) {
    if (!ParseUint64(*l, &limit) || limit == 0)
      return BadRequest("limit must be a positive integer");
    limit = std::min(limit, kMaxListLimit);
  }
  bool values;
  if (!ParseBool(c.Param("values"), true, &values))
    return BadRequest("values must be true or false");
  ReadOptions ro;
  if (prefix != nullptr) ro.prefix = *prefix;
  if (start != nullptr) ro.start = *start;
  if (end != nullptr) ro.end = *end;
  // A page stops early once its keys and values pass this many bytes.
  const uint64_t budget = c.ctx->options->max_output_bytes;

  Json items = Json::array();
  uint64_t bytes = 0;
  std::optional<std::string> next;
  std::unique_ptr<Iterator> it = c.ctx->db->NewIterator(ro);
  if (c.ctx->options->engine.index == IndexKind::kOrdered) {
    for (; it->Valid(); it->Next()) {
      if (items.size() == limit || bytes > budget) {
        next = std::string(it->key());
        break;
      }
      Item item{std::string(it->key()), values ? std::string(it->value()) : std::string(),
                it->version(), it->expiry_ms()};
      bytes += item.key.size() + item.value.size();
      items.push_back(ItemJson(item, values));
    }
    if (!it->status().ok()) return StatusResponse(it->status());
  } else {
    auto by_key = [](const Item& a, const Item& b) { return a.key < b.key; };
    std::priority_queue<Item, std::vector<Item>, decltype(by_key)> heap(by_key);  // max on top
    for (; it->Valid(); it->Next()) {
      if (heap.size() == limit + 1 && it->key() >= heap.top().key) continue;
      heap.push(Item{std::string(it->key()), {}, it->version(), it->expiry_ms()});
      if (heap.size() > limit + 1) heap.pop();
    }
    if (!it->status().ok()) return StatusResponse(it->status());
    std::vector<Item> page(heap.size());
    for (size_t i = page.size(); i-- > 0;) {
      page[i] = std::move(const_cast<Item&>(heap.top()));
      heap.pop();
    }
    for (size_t i = 0; i < page.size(); ++i) {
      if (i == limit || bytes > budget) {
        next = page[i].key;
        break;
      }
      Item& item = page[i];
      if (values) {
        // Read the value now (the pass kept only keys, to bound its memory).
        Result<DB::VersionedValue> r = c.ctx->db->GetVersioned(item.key);
        if (r.status().IsNotFound()) continue;  // deleted or expired since the pass
        if (!r.ok()) return StatusResponse(r.status());
        item.value = std::move(r->value);
        item.version = r->version;
        item.expiry_ms = r->expiry_ms;
      }
      bytes += item.key.size() + item.value.size();
      items.push_back(ItemJson(item, values));
    }
  }
  Json j = Json::object();
  j["items"] = std::move(items);
  if (!next.has_value()) {
    j["next"] = nullptr;
  } else {
    PutBytes(&j, "next", *next);
  }
  return JsonResponse(200, j);
}

// SAX handler building the document, with a nesting bound and the parser's error message kept.
class BoundedDomParser : public nlohmann::detail::json_sax_dom_parser<nlohmann::json> {
 public:
  using Base = nlohmann::detail::json_sax_dom_parser<nlohmann::json>;
  explicit BoundedDomParser(nlohmann::json* doc) : Base(*doc, /*allow_exceptions=*/false) {}

  bool start_object(std::size_t n) { return Deeper() && Base::start_object(n); }
  bool start_array(std::size_t n) { return Deeper() && Base::start_array(n); }
  bool end_object() {
    --depth_;
    return Base::end_object();
  }
  bool end_array() {
    --depth_;
    return Base::end_array();
  }
  template <class Exception>
  bool parse_error(std::size_t position, const std::string& token, const Exception& ex) {
    std::string what = ex.what();
    size_t bracket = what.find("] ");  // drop nlohmann's "[json.exception.parse_error.101] "
    error_ = bracket == std::string::npos ? what : what.substr(bracket + 2);
    return Base::parse_error(position, token, ex);
  }
  const std::string& error() const { return error_; }

 private:
  bool Deeper() {
    if (++depth_ <= kMaxJsonDepth) return true;
    error_ = "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    return false;
  }
  int depth_ = 0;
  std::string error_;
};

// Reads a key or value given as name (a JSON string) or name_base64. Returns false with *error
// if neither, both, or a bad type or encoding.
bool BytesField(const nlohmann::json& op, const std::string& where, const std::string& name,
                bool required, std::string* out, bool* present, std::string* error) {
  auto plain = op.find(name);
  auto b64 = op.find(name + "_base64");
  *present = plain != op.end() || b64 != op.end();
  if (plain != op.end() && b64 != op.end()) {
    *error = where + ": give " + name + " or " + name + "_base64, not both";
    return false;
  }
  if (!*present) {
    if (required) *error = where + ": missing " + name + " (or " + name + "_base64)";
    return !required;
  }
  if (plain != op.end()) {
    if (!plain->is_string()) {
      *error = where + "." + name + " must be a string";
      return false;
    }
    *out = plain->get_ref<const std::string&>();
    return true;
  }
  if (!b64->is_string() || !Base64Decode(b64->get_ref<const std::string&>(), out)) {
    *error = where + "." + name + "_base64 must be a base64 string";
    return false;
  }
  return true;
}

ApiResponse Batch(const Call& c) {
  const ServerOptions& o = *c.ctx->options;
  nlohmann::json doc;
  BoundedDomParser sax(&doc);
  if (!nlohmann::json::sax_parse(c.req.body, &sax)) {
    return BadRequest("request body is not valid JSON: " + sax.error());
  }
  if (!doc.is_object()) return BadRequest("request body must be a JSON object {\"ops\": [...]}");
  for (auto& [name, v] : doc.items()) {
    if (name != "ops" && name != "expect") {
      return BadRequest("unknown field '" + name + "' (expected \"ops\" and \"expect\")");
    }
  }
  auto ops = doc.find("ops");
  if (ops == doc.end()) return BadRequest("missing field \"ops\"");
  if (!ops->is_array()) return BadRequest("\"ops\" must be an array");
  WriteBatch batch;
  // Conditions: the batch applies only if each key has the given version (0 = absent).
  if (auto expect = doc.find("expect"); expect != doc.end()) {
    if (!expect->is_array()) return BadRequest("\"expect\" must be an array");
    for (size_t i = 0; i < expect->size(); ++i) {
      const nlohmann::json& cond = (*expect)[i];
      std::string where = "expect[" + std::to_string(i) + "]";
      if (!cond.is_object()) return BadRequest(where + " must be an object");
      for (auto& [name, v] : cond.items()) {
        if (name != "key" && name != "key_base64" && name != "version") {
          return BadRequest(where + ": unknown field '" + name + "'");
        }
      }
      std::string key, error;
      bool present;
      if (!BytesField(cond, where, "key", true, &key, &present, &error)) return BadRequest(error);
      auto version = cond.find("version");
      if (version == cond.end() || !version->is_number_unsigned()) {
        return BadRequest(where + ".version must be a non-negative integer (0 = key absent)");
      }
      batch.Expect(key, version->get<uint64_t>());
    }
  }
  for (size_t i = 0; i < ops->size(); ++i) {
    const nlohmann::json& op = (*ops)[i];
    std::string where = "ops[" + std::to_string(i) + "]";
    if (!op.is_object()) return BadRequest(where + " must be an object");
    auto kind = op.find("op");
    if (kind == op.end() || !kind->is_string()) {
      return BadRequest(where + ".op must be \"put\" or \"delete\"");
    }
    const std::string& k = kind->get_ref<const std::string&>();
    bool is_put = k == "put";
    if (!is_put && k != "delete") return BadRequest(where + ".op must be \"put\" or \"delete\"");
    for (auto& [name, v] : op.items()) {
      bool known = name == "op" || name == "key" || name == "key_base64" ||
                   (is_put && (name == "value" || name == "value_base64" || name == "ttl_ms"));
      if (!known) return BadRequest(where + ": unknown field '" + name + "' for op " + k);
    }
    std::string key, value, error;
    bool present;
    if (!BytesField(op, where, "key", true, &key, &present, &error)) return BadRequest(error);
    if (key.size() > o.max_key_bytes) {
      return TooLarge(413, where + ".key of " + std::to_string(key.size()) +
                               " bytes exceeds max_key_bytes (" + std::to_string(o.max_key_bytes) +
                               ")");
    }
    if (!is_put) {
      batch.Delete(key);
      continue;
    }
    if (!BytesField(op, where, "value", true, &value, &present, &error)) return BadRequest(error);
    if (value.size() > o.max_value_bytes) {
      return TooLarge(413, where + ".value of " + std::to_string(value.size()) +
                               " bytes exceeds max_value_bytes (" +
                               std::to_string(o.max_value_bytes) + ")");
    }
    uint64_t ttl_ms = 0;
    if (auto t = op.find("ttl_ms"); t != op.end()) {
      if (!t->is_number_unsigned() || t->get<uint64_t>() > kMaxTtlMs) {
        return BadRequest(where + ".ttl_ms must be a whole number of milliseconds up to " +
                          std::to_string(kMaxTtlMs));
      }
      ttl_ms = t->get<uint64_t>();
    }
    batch.Put(key, value, ttl_ms);
  }
  Status s = c.ctx->db->Write(batch);
  if (!s.ok()) return StatusResponse(s);
  return JsonResponse(200, Json{{"applied", batch.Count()}});
}

ApiResponse GetStats(const Call& c) {
  Stats st = c.ctx->db->GetStats();
  Json engine = {
      {"keys", st.keys},
      {"live_bytes", st.live_bytes},
      {"dead_bytes", st.dead_bytes},
      {"segments", st.segments},
      {"sealed_segments", st.sealed_segments},
      {"disk_bytes", st.disk_bytes},
      {"compactions", st.compactions},
      {"compaction_bytes_written", st.compaction_bytes_written},
      {"compaction_bytes_reclaimed", st.compaction_bytes_reclaimed},
      {"user_bytes_written", st.user_bytes_written},
      {"log_bytes_written", st.log_bytes_written},
      {"puts", st.puts},
      {"deletes", st.deletes},
      {"gets", st.gets},
      {"get_misses", st.get_misses},
      {"skipped_unchanged_writes", st.skipped_unchanged_writes},
      {"syncs", st.syncs},
      {"write_groups", st.write_groups},
      {"index_memory_bytes", st.index_memory_bytes},
      {"tables", st.tables},
      {"table_entries", st.table_entries},
      {"last_sequence", st.last_sequence},
      {"durable_sequence", st.durable_sequence},
      {"write_amplification", st.write_amplification},
  };
  Json protocols = Json::object();
  const Metrics& m = *c.ctx->metrics;
  for (size_t i = 0; i < kProtocols; ++i) {
    auto p = static_cast<Protocol>(i);
    protocols[ProtocolName(p)] = {
        {"requests", m.requests(p)},
        {"errors", m.errors(p)},
        {"malformed", m.malformed(p)},
        {"connections_open", m.connections_open(p)},
        {"connections_total", m.connections_total(p)},
    };
  }
  uint64_t now = NowUnixMs();
  Json server = {
      {"uptime_ms", now > c.ctx->start_unix_ms ? now - c.ctx->start_unix_ms : 0},
      {"index", c.ctx->options->engine.index == IndexKind::kOrdered ? "ordered" : "hash"},
      {"protocols", std::move(protocols)},
  };
  return JsonResponse(200, Json{{"engine", std::move(engine)}, {"server", std::move(server)}});
}

ApiResponse GetMetrics(const Call& c) {
  ApiResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = c.ctx->metrics->RenderPrometheus(c.ctx->db->GetStats());
  return r;
}

ApiResponse GetHealth(const Call&) {
  ApiResponse r;
  r.content_type = "text/plain";
  r.body = "ok\n";
  return r;
}

// The route table. HEAD is accepted wherever GET is (same handler, no body sent).
const std::array<Route, 8> kRoutes = {{
    {Resource::kKey, "GET", "GET /v1/kv/{key}", {"format"}, GetKey},
    {Resource::kKey, "PUT", "PUT /v1/kv/{key}", {"ttl", "ttl_ms"}, PutKey},
    {Resource::kKey, "DELETE", "DELETE /v1/kv/{key}", {}, DeleteKey},
    {Resource::kKeys, "GET", "GET /v1/kv", {"prefix", "start", "end", "limit", "values"}, ListKeys},
    {Resource::kBatch, "POST", "POST /v1/batch", {}, Batch},
    {Resource::kStats, "GET", "GET /v1/stats", {}, GetStats},
    {Resource::kMetrics, "GET", "GET /metrics", {}, GetMetrics},
    {Resource::kHealth, "GET", "GET /healthz", {}, GetHealth},
}};
constexpr size_t kUnmatched = kRoutes.size();

// Splits the request-target into resource, raw key (percent-encoded) and raw query. Accepts
// origin-form ("/v1/kv/k?x=1") and absolute-form ("http://host/v1/kv/k").
bool ParseTarget(std::string_view target, Resource* resource, std::string_view* raw_key,
                 std::string_view* query, std::string* error) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() &&
        EqualsIgnoreCase(target.substr(0, scheme.size()), scheme)) {
      target.remove_prefix(scheme.size());
      size_t slash = target.find_first_of("/?");
      target = slash == std::string_view::npos ? "/" : target.substr(slash);
      break;
    }
  }
  if (target.empty() || target.front() != '/') {
    *error = "request target must be a path starting with /";
    return false;
  }
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  *query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  if (size_t hash = query->find('#'); hash != std::string_view::npos)
    *query = query->substr(0, hash);
  constexpr std::string_view kKeyPrefix = "/v1/kv/";
  *resource = Resource::kNone;
  if (path.starts_with(kKeyPrefix)) {
    *raw_key = path.substr(kKeyPrefix.size());
    if (raw_key->find('/') != std::string_view::npos) {
      *error = "a '/' in a key must be percent-encoded as %2F";
      return false;
    }
    *resource = Resource::kKey;
  } else if (path == "/v1/kv") {
    *resource = Resource::kKeys;
  } else if (path == "/v1/batch") {
    *resource = Resource::kBatch;
  } else if (path == "/v1/stats") {
    *resource = Resource::kStats;
  } else if (path == "/metrics") {
    *resource = Resource::kMetrics;
  } else if (path == "/healthz") {
    *resource = Resource::kHealth;
  }
  return true;
}

// The route for resource and method (HEAD as GET), or nullptr with *allow listing the methods
// the resource takes.
const Route* FindRoute(Resource resource, std::string_view method, std::string* allow) {
  std::string_view m = method == "HEAD" ? "GET" : method;
  allow->clear();
  for (const Route& r : kRoutes) {
    if (r.resource != resource) continue;
    if (r.method == m) return &r;
    if (!allow->empty()) *allow += ", ";
    *allow += r.method;
    if (r.method == "GET") *allow += ", HEAD";
  }
  return nullptr;
}

}  // namespace

const std::vector<std::string_view>& CommandNames() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (const Route& r : kRoutes) v.push_back(r.command);
    v.push_back("unmatched");
    return v;
  }();
  return names;
}

ApiResponse ErrorResponse(unsigned status, std::string_view code, std::string_view message) {
  ApiResponse r;
  r.status = status;
  r.error = true;
  r.body = Dump(Json{{"error", std::string(message)}, {"code", std::string(code)}});
  return r;
}

ApiResponse StatusResponse(const Status& s) {
  unsigned http;
  const char* code;
  switch (s.code()) {
    case Status::Code::kOk:
      return JsonResponse(200, Json::object());
    case Status::Code::kNotFound:
      http = 404, code = "NotFound";
      break;
    case Status::Code::kInvalidArgument:
      http = 400, code = "InvalidArgument";
      break;
    case Status::Code::kAborted:
      http = 412, code = "Aborted";
      break;
    case Status::Code::kBusy:
      http = 503, code = "Busy";
      break;
    case Status::Code::kNotSupported:
      http = 501, code = "NotSupported";
      break;
    case Status::Code::kCorruption:
      http = 500, code = "Corruption";
      break;
    case Status::Code::kIOError:
    default:
      http = 500, code = "IOError";
      break;
  }
  return ErrorResponse(http, code, s.message().empty() ? s.ToString() : s.message());
}

std::optional<ApiResponse> CheckBeforeBody(ServerContext* ctx, std::string_view method,
                                           std::string_view target, uint64_t content_length,
                                           size_t* command) {
  Resource resource;
  std::string_view raw_key, query;
  std::string error;
  if (method != "PUT" || !ParseTarget(target, &resource, &raw_key, &query, &error) ||
      resource != Resource::kKey || content_length <= ctx->options->max_value_bytes) {
    return std::nullopt;
  }
  std::string allow;
  *command = static_cast<size_t>(FindRoute(resource, method, &allow) - kRoutes.data());
  return TooLarge(413, "value of " + std::to_string(content_length) +
                           " bytes exceeds max_value_bytes (" +
                           std::to_string(ctx->options->max_value_bytes) + ")");
}

ApiResponse Handle(ServerContext* ctx, const ApiRequest& req, size_t* command) {
  *command = kUnmatched;
  Resource resource;
  std::string_view raw_key, query;
  std::string error;
  if (!ParseTarget(req.target, &resource, &raw_key, &query, &error)) return BadRequest(error);
  if (resource == Resource::kNone) {
    return ErrorResponse(404, "NotFound", "no such resource; see docs/protocols/http.md");
  }
  std::string allow;
  const Route* route = FindRoute(resource, req.method, &allow);
  if (route == nullptr) {
    ApiResponse r =
        ErrorResponse(405, "MethodNotAllowed",
                      "method " + std::string(req.method) + " not allowed; allowed: " + allow);
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  *command = static_cast<size_t>(route - kRoutes.data());
  Call call{ctx, req, {}, {}};
  if (resource == Resource::kKey && !PercentDecode(raw_key, false, &call.key)) {
    return BadRequest("invalid percent-encoding in key");
  }
  if (!ParseQuery(query, &call.params, &error)) return BadRequest(error);
  for (size_t i = 0; i < call.params.size(); ++i) {
    const std::string& name = call.params[i].first;
    if (std::find(route->params.begin(), route->params.end(), name) == route->params.end() ||
        name.empty()) {
      std::string allowed;
      for (std::string_view p : route->params) {
        if (p.empty()) continue;
        allowed += allowed.empty() ? "" : ", ";
        allowed += p;
      }
      return BadRequest("unknown query parameter '" + name + "' for " +
                        std::string(route->command) +
                        (allowed.empty() ? " (it takes none)" : " (allowed: " + allowed + ")"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (call.params[j].first == name) {
        return BadRequest("query parameter '" + name + "' given twice");
      }
    }
  }
  return route->handler(call);
}

}  // namespace varve::server::http
