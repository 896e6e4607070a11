// The meta commands of memcached 1.6: mg, ms, md, ma, me (mn is answered by the dispatcher).
// Flags are single characters, some with a token (T30, Oopaque); return flags are written in the
// order the request gave them. Quiet mode (q) hides mg's EN and the HD of ms/md/ma (and ma's
// VA), as memcached does; errors are always returned.
#include <array>
#include <charconv>

#include "server/memcache/memcache_handler.h"
#include "util/clock.h"

namespace varve::server::memcache {
namespace {

constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format";
constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache";

}  // namespace

const char* MemcachedHandler::ParseMetaFlags(size_t start, MetaFlags* f) {
  std::array<bool, 128> seen{};
  for (size_t i = start; i < tokens_.n; ++i) {
    const std::string_view t = tokens_.v[i];
    const unsigned char c = static_cast<unsigned char>(t[0]);
    if (c >= 128) return "CLIENT_ERROR invalid flag";
    if (seen[c]) return "CLIENT_ERROR duplicate flag";
    seen[c] = true;
    const std::string_view arg = t.substr(1);
    switch (c) {
      case 'b':
        f->binary_key = true;
        break;
      case 'v':
        f->value = true;
        break;
      case 'q':
        f->quiet = true;
        break;
      case 'k':
      case 's':
      case 't':
      case 'c':
      case 'f':
      case 'u':  // no LRU to bump
      case 'P':  // proxy hints, ignored
      case 'L':
        break;
      case 'O':
        if (t.size() > kMaxOpaqueBytes) return "CLIENT_ERROR opaque token too long";
        break;
      case 'T':
        if (!ParseI64(arg, &f->ttl)) return "CLIENT_ERROR bad token in command line format";
        f->has_ttl = true;
        break;
      case 'N':
        if (!ParseI64(arg, &f->vivify_ttl)) return "CLIENT_ERROR bad token in command line format";
        f->vivify = true;
        break;
      case 'F':
        if (!ParseU32(arg, &f->client_flags)) return "CLIENT_ERROR bad command line format";
        break;
      case 'C':
        if (!ParseU64(arg, &f->cas)) return "CLIENT_ERROR bad token in command line format";
        f->has_cas = true;
        break;
      case 'M':
        if (t.size() != 2) return "CLIENT_ERROR incorrect length for M token";
        f->mode = t[1];
        break;
      case 'J':
        if (!ParseU64(arg, &f->initial)) return "CLIENT_ERROR invalid numeric initial value";
        break;
      case 'D':
        if (!ParseU64(arg, &f->delta)) return "CLIENT_ERROR invalid numeric delta value";
        break;
      default:  // h, l, R, I, E and anything unknown
        return "CLIENT_ERROR invalid flag";
    }
  }
  return nullptr;
}

const char* MemcachedHandler::MetaKey(bool binary, std::string_view* key) {
  const std::string_view raw = tokens_.v[1];
  if (binary) {
    if (!Base64Decode(raw, &meta_key_) || meta_key_.size() > max_key_) {
      return "CLIENT_ERROR error decoding key";
    }
    *key = meta_key_;
    return nullptr;
  }
  if (!ValidKey(raw, max_key_)) return "CLIENT_ERROR bad command line format";
  *key = raw;
  return nullptr;
}

bool MemcachedHandler::MetaPrologue(bool generic_flag_error, MetaFlags* f, std::string_view* key) {
  Count(Counter::kCmdMeta);
  if (tokens_.v[1].size() > kMaxKeyLength) {
    Error(kBadFormat, true);
    return false;
  }
  if (tokens_.n >= kMaxMetaTokens) {
    Error(tokens_.v[0] == "mg" ? "CLIENT_ERROR options flags are too long"
                               : "CLIENT_ERROR options flags too long",
          true);
    return false;
  }
  if (const char* e = ParseMetaFlags(2, f)) {
    // md and ma answer every flag error alike.
    Error(generic_flag_error && std::string_view(e) != "CLIENT_ERROR opaque token too long"
              ? "CLIENT_ERROR invalid or duplicate flag"
              : e,
          true);
    return false;
  }
  if (const char* e = MetaKey(f->binary_key, key)) {
    Error(e, true);
    return false;
  }
  return true;
}

void MemcachedHandler::AppendReturnFlags(size_t start, std::string_view allowed,
                                         const ReturnValues& v, bool binary_key) {
  for (size_t i = start; i < tokens_.n; ++i) {
    const std::string_view t = tokens_.v[i];
    const char c = t[0];
    if (allowed.find(c) == std::string_view::npos) continue;
    switch (c) {
      case 'O':
        out_->push_back(' ');
        out_->append(t);
        break;
      case 'k':
        out_->append(" k");
        out_->append(tokens_.v[1]);  // as sent: base64 with b, which is then flagged back
        if (binary_key) out_->append(" b");
        break;
      case 's':
        out_->append(" s");
        AppendU64(out_, v.size);
        break;
      case 't':
        out_->append(" t");
        AppendI64(out_, v.ttl);
        break;
      case 'c':
        out_->append(" c");
        AppendU64(out_, v.cas);
        break;
      case 'f':
        out_->append(" f");
        AppendU64(out_, v.flags);
        break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// mg <key> <flags>*

void MemcachedHandler::MetaGet() {
  MetaFlags f;
  std::string_view key;
  if (!MetaPrologue(false, &f, &key)) return;
  Status err;
  Outcome o;
  bool created = false;
  if (f.has_ttl) {
    Count(Counter::kCmdTouch);
    o = store_.Touch(key, ExpiryNow(f.ttl), &item_, &err);
    if (o == Outcome::kStored) Count(Counter::kTouchHits);
    if (o == Outcome::kNotFound) Count(Counter::kTouchMisses);
  } else {
    Count(Counter::kCmdGet);
    Result<DB::VersionedValue> r = ctx_->db->GetVersioned(key);
    if (r.ok()) {
      item_ = std::move(r).value();
      o = Outcome::kStored;
      Count(Counter::kGetHits);
    } else if (r.status().IsNotFound()) {
      o = Outcome::kNotFound;
      Count(Counter::kGetMisses);
    } else {
      o = Outcome::kError;
      err = r.status();
    }
  }
  if (o == Outcome::kNotFound && f.vivify) {
    o = store_.Vivify(key, ExpiryNow(f.vivify_ttl), &item_, &created, &err);
  }
  if (o == Outcome::kError) return ServerError(err);
  if (o == Outcome::kNotFound) {
    if (f.quiet) return;
    out_->append("EN");
    AppendReturnFlags(2, "Ok", ReturnValues{}, f.binary_key);
    out_->append("\r\n");
    return;
  }
  if (f.value) {
    out_->append("VA ");
    AppendU64(out_, item_.value.size());
  } else {
    out_->append("HD");
  }
  ReturnValues v;
  v.size = item_.value.size();
  v.ttl = item_.expiry_ms == 0 ? -1 : RemainingSeconds(item_.expiry_ms, NowUnixMs());
  v.cas = item_.version;
  v.flags = item_.user_flags;
  AppendReturnFlags(2, "stcfOk", v, f.binary_key);
  if (created) out_->append(" W");  // this client won the right to fill the item
  out_->append("\r\n");
  if (f.value) {
    out_->append(item_.value);
    out_->append("\r\n");
  }
}

// ---------------------------------------------------------------------------------------------
// ms <key> <datalen> <flags>* then the data block

MemcachedHandler::Parse MemcachedHandler::ParseMetaStorage(PendingStore* p) {
  p->cmd = Cmd::kMs;
  if (tokens_.n < 3 || !ParseU64(tokens_.v[2], &p->bytes)) {
    Error(kBadFormat, true);
    return Parse::kReplied;
  }
  if (tokens_.v[1].size() > kMaxKeyLength) return RejectStorage(kBadFormat, true, true, p->bytes);
  if (tokens_.n >= kMaxMetaTokens) {
    return RejectStorage("CLIENT_ERROR options flags too long", true, true, p->bytes);
  }
  MetaFlags& f = p->meta;
  if (const char* e = ParseMetaFlags(3, &f)) return RejectStorage(e, true, true, p->bytes);
  switch (f.mode) {
    case 0:
    case 'S':
      p->mode = StoreMode::kSet;
      break;
    case 'E':
      p->mode = StoreMode::kAdd;
      break;
    case 'A':
      p->mode = StoreMode::kAppend;
      break;
    case 'P':
      p->mode = StoreMode::kPrepend;
      break;
    case 'R':
      p->mode = StoreMode::kReplace;
      break;
    default:
      return RejectStorage("CLIENT_ERROR invalid mode for ms M token", true, true, p->bytes);
  }
  if (const char* e = MetaKey(f.binary_key, &p->key)) {
    return RejectStorage(e, true, true, p->bytes);
  }
  if (p->bytes > ctx_->options->max_value_bytes) {
    Count(Counter::kStoreTooLarge);
    return RejectStorage(kTooLarge, false, true, p->bytes);
  }
  p->flags = f.client_flags;
  p->exptime = f.has_ttl ? f.ttl : 0;
  // add ignores a compare value, as in memcached; the other modes honour it.
  p->has_cas = f.has_cas && p->mode != StoreMode::kAdd;
  p->cas = f.cas;
  return Parse::kOk;
}

void MemcachedHandler::ExecuteMetaStorage(const PendingStore& p, std::string_view data) {
  Count(Counter::kCmdSet);
  Count(Counter::kCmdMeta);
  const MetaFlags& f = p.meta;
  bool wants_cas = false;
  for (size_t i = 3; i < tokens_.n; ++i) wants_cas |= tokens_.v[i][0] == 'c';
  StoreRequest req;
  req.mode = p.mode;
  req.key = p.key;
  req.data = data;
  req.flags = p.flags;
  req.expiry = ExpiryNow(p.exptime);
  req.has_cas = p.has_cas;
  req.cas = p.cas;
  req.want_cas = wants_cas;
  uint64_t new_cas = 0;
  Status err;
  const char* code;
  switch (store_.Store(req, &new_cas, &err)) {
    case Outcome::kStored:
      Count(Counter::kTotalItems);
      if (f.quiet) return;
      code = "HD";
      break;
    case Outcome::kNotStored:
      code = "NS";
      break;
    case Outcome::kExists:
      code = "EX";
      break;
    case Outcome::kNotFound:
      code = "NF";
      break;
    case Outcome::kTooLarge:
      Count(Counter::kStoreTooLarge);
      return Error(kTooLarge, false);
    default:
      return ServerError(err);
  }
  out_->append(code);
  ReturnValues v;
  v.cas = code[0] == 'H' ? new_cas : 0;
  AppendReturnFlags(3, "Okc", v, f.binary_key);
  out_->append("\r\n");
}

// ---------------------------------------------------------------------------------------------
// md <key> <flags>*

void MemcachedHandler::MetaDelete() {
  MetaFlags f;
  std::string_view key;
  if (!MetaPrologue(true, &f, &key)) return;
  Status err;
  const char* code;
  switch (store_.Delete(key, f.has_cas, f.cas, &err)) {
    case Outcome::kStored:
      Count(Counter::kDeleteHits);
      if (f.quiet) return;
      code = "HD";
      break;
    case Outcome::kNotFound:
      Count(Counter::kDeleteMisses);
      code = "NF";
      break;
    case Outcome::kExists:
      Count(Counter::kDeleteMisses);
      code = "EX";
      break;
    default:
      return ServerError(err);
  }
  out_->append(code);
  AppendReturnFlags(2, "Ok", ReturnValues{}, f.binary_key);
  out_->append("\r\n");
}

// ---------------------------------------------------------------------------------------------
// ma <key> <flags>*

void MemcachedHandler::MetaArith() {
  MetaFlags f;
  std::string_view key;
  if (!MetaPrologue(true, &f, &key)) return;
  ArithRequest req;
  req.key = key;
  switch (f.mode) {
    case 0:
    case 'I':
    case '+':
      req.incr = true;
      break;
    case 'D':
    case '-':
      req.incr = false;
      break;
    default:
      return Error("CLIENT_ERROR invalid mode for ma M token", true);
  }
  req.delta = f.delta;
  req.has_cas = f.has_cas;
  req.cas = f.cas;
  req.has_expiry = f.has_ttl;
  req.expiry = ExpiryNow(f.ttl);
  req.vivify = f.vivify;
  req.vivify_expiry = ExpiryNow(f.vivify_ttl);
  req.initial = f.initial;
  ArithResult result;
  Status err;
  const char* code;
  switch (store_.Arith(req, &result, &err)) {
    case Outcome::kStored: {
      if (!result.created) Count(req.incr ? Counter::kIncrHits : Counter::kDecrHits);
      if (f.quiet) return;
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof(buf), result.value);
      const std::string_view number(buf, static_cast<size_t>(r.ptr - buf));
      if (f.value) {
        out_->append("VA ");
        AppendU64(out_, number.size());
      } else {
        out_->append("HD");
      }
      ReturnValues v;
      v.cas = result.cas;
      v.ttl = result.expiry_ms == 0 ? -1 : RemainingSeconds(result.expiry_ms, NowUnixMs());
      AppendReturnFlags(2, "ctOk", v, f.binary_key);
      out_->append("\r\n");
      if (f.value) {
        out_->append(number);
        out_->append("\r\n");
      }
      return;
    }
    case Outcome::kNotFound:
      Count(req.incr ? Counter::kIncrMisses : Counter::kDecrMisses);
      code = "NF";
      break;
    case Outcome::kExists:
      code = "EX";
      break;
    case Outcome::kNonNumeric:
      return Error("CLIENT_ERROR cannot increment or decrement non-numeric value", false);
    default:
      return ServerError(err);
  }
  out_->append(code);
  AppendReturnFlags(2, "Ok", ReturnValues{}, f.binary_key);
  out_->append("\r\n");
}

// ---------------------------------------------------------------------------------------------
// me <key> [b]: a human-readable line about an item. exp is the remaining TTL in seconds (-1:
// never); there is no LRU, slab class or fetch tracking, so la=0, fetch=no, cls=1; size is key
// plus value bytes.

void MemcachedHandler::MetaDebug() {
  Count(Counter::kCmdMeta);
  if (tokens_.n < 2 || tokens_.v[1].size() > kMaxKeyLength) return Error(kBadFormat, true);
  const bool binary = tokens_.n >= 3 && tokens_.v[2] == "b";
  std::string_view key;
  if (MetaKey(binary, &key) != nullptr) return Error(kBadFormat, true);
  Result<DB::VersionedValue> r = ctx_->db->GetVersioned(key);
  if (!r.ok()) {
    if (r.status().IsNotFound()) return Line("EN");
    return ServerError(r.status());
  }
  out_->append("ME ");
  out_->append(tokens_.v[1]);
  out_->append(" exp=");
  AppendI64(out_, r->expiry_ms == 0 ? -1 : RemainingSeconds(r->expiry_ms, NowUnixMs()));
  out_->append(" la=0 cas=");
  AppendU64(out_, r->version);
  out_->append(" fetch=no cls=1 size=");
  AppendU64(out_, key.size() + r->value.size());
  out_->append("\r\n");
}

}  // namespace varve::server::memcache
