// The memcached front end: framing (lines, data blocks, limits), the command table, and the
// text-protocol commands. The meta commands are in memcache_meta.cc.
#include "server/memcache/memcache_handler.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>
#include <mutex>

#include "util/clock.h"

namespace varve::server::memcache {
namespace {

enum class Kind : uint8_t { kPlain, kStorage, kMetaStorage };

// The command table: name, token counts (command name included; more than kAnyTokens means
// unbounded) and kind. Token counts outside the range answer "ERROR", as memcached does.
struct CommandSpec {
  std::string_view name;
  Cmd cmd;
  uint8_t min_tokens;
  uint8_t max_tokens;
  Kind kind;
};
constexpr uint8_t kAnyTokens = 255;

constexpr CommandSpec kCommandTable[] = {
    {"get", Cmd::kGet, 2, kAnyTokens, Kind::kPlain},
    {"gets", Cmd::kGets, 2, kAnyTokens, Kind::kPlain},
    {"gat", Cmd::kGat, 3, kAnyTokens, Kind::kPlain},
    {"gats", Cmd::kGats, 3, kAnyTokens, Kind::kPlain},
    {"set", Cmd::kSet, 5, 6, Kind::kStorage},
    {"add", Cmd::kAdd, 5, 6, Kind::kStorage},
    {"replace", Cmd::kReplace, 5, 6, Kind::kStorage},
    {"append", Cmd::kAppend, 5, 6, Kind::kStorage},
    {"prepend", Cmd::kPrepend, 5, 6, Kind::kStorage},
    {"cas", Cmd::kCas, 6, 7, Kind::kStorage},
    {"delete", Cmd::kDelete, 2, 4, Kind::kPlain},
    {"incr", Cmd::kIncr, 3, 4, Kind::kPlain},
    {"decr", Cmd::kDecr, 3, 4, Kind::kPlain},
    {"touch", Cmd::kTouch, 3, 4, Kind::kPlain},
    {"flush_all", Cmd::kFlushAll, 1, 3, Kind::kPlain},
    {"version", Cmd::kVersion, 1, kAnyTokens, Kind::kPlain},
    {"verbosity", Cmd::kVerbosity, 2, 3, Kind::kPlain},
    {"stats", Cmd::kStats, 1, kAnyTokens, Kind::kPlain},
    {"quit", Cmd::kQuit, 1, kAnyTokens, Kind::kPlain},
    {"mg", Cmd::kMg, 2, kAnyTokens, Kind::kPlain},
    {"ms", Cmd::kMs, 2, kAnyTokens, Kind::kMetaStorage},
    {"md", Cmd::kMd, 2, kAnyTokens, Kind::kPlain},
    {"ma", Cmd::kMa, 2, kAnyTokens, Kind::kPlain},
    {"mn", Cmd::kMn, 1, kAnyTokens, Kind::kPlain},
    {"me", Cmd::kMe, 1, kAnyTokens, Kind::kPlain},
};
static_assert(std::size(kCommandTable) == kCommands - 1, "one table row per command");

constexpr bool TableMatchesEnum() {
  for (size_t i = 0; i < std::size(kCommandTable); ++i) {
    if (static_cast<size_t>(kCommandTable[i].cmd) != i) return false;
  }
  return true;
}
static_assert(TableMatchesEnum(), "kCommandTable rows must follow the Cmd order");

const CommandSpec* Lookup(std::string_view name) {
  for (const CommandSpec& spec : kCommandTable) {
    if (spec.name.size() == name.size() &&
        std::memcmp(spec.name.data(), name.data(), name.size()) == 0) {
      return &spec;
    }
  }
  return nullptr;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::memcmp(s.data(), prefix.data(), prefix.size()) == 0;
}

std::mutex g_register_mu;

constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache";
constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format";

}  // namespace

std::string_view CommandName(Cmd cmd) {
  if (cmd == Cmd::kUnknown) return "unknown";
  return kCommandTable[static_cast<size_t>(cmd)].name;
}

MemcachedHandler::MemcachedHandler(ServerContext* ctx, ClientInfo* client)
    : ctx_(ctx),
      client_(client),
      store_(ctx->db, ctx->options->max_value_bytes),
      max_key_(
          static_cast<size_t>(std::min<uint64_t>(ctx->options->max_key_bytes, kMaxKeyLength))) {
  // Registration only reads once RegisterMemcachedCommands has run at server start.
  std::lock_guard lock(g_register_mu);
  for (size_t i = 0; i < kCommands; ++i) {
    ids_[i] =
        ctx_->metrics->RegisterCommand(Protocol::kMemcached, CommandName(static_cast<Cmd>(i)));
  }
}

MemcachedHandler::~MemcachedHandler() { counters_.Flush(); }

size_t MemcachedHandler::Process(std::string_view in, std::string* out, bool* close,
                                 Disconnect* disconnect) {
  out_ = out;
  close_ = close;
  disconnect_ = disconnect;
  if (scanned_ > in.size()) scanned_ = 0;
  last_us_ = NowSteadyUs();
  const uint64_t max_output = ctx_->options->max_output_bytes;
  size_t pos = 0;
  while (pos < in.size()) {
    size_t used = 0;
    Step step = ProcessOne(in.substr(pos), &used);
    pos += used;
    if (step == Step::kClose) {
      pos = in.size();
      break;
    }
    if (step == Step::kIncomplete || out->size() > max_output) break;
  }
  FlushSets();
  counters_.Flush();
  return pos;
}

MemcachedHandler::Step MemcachedHandler::ProcessOne(std::string_view in, size_t* used) {
  *used = 0;
  if (swallow_ > 0) {
    // The data block of a refused storage command: discard it as it arrives.
    if (in.size() >= swallow_) {
      *used = static_cast<size_t>(swallow_);
      swallow_ = 0;
      return Step::kDone;
    }
    // Still inside that request (MidRequest says so, for the request timeout).
    *used = in.size();
    swallow_ -= *used;
    return Step::kIncomplete;
  }

  const bool retrieval = StartsWith(in, "get ") || StartsWith(in, "gets ") ||
                         StartsWith(in, "gat ") || StartsWith(in, "gats ");
  const uint64_t line_limit = retrieval ? ctx_->options->max_request_bytes : kMaxLineBytes;
  const void* nl = std::memchr(in.data() + scanned_, '\n', in.size() - scanned_);
  if (nl == nullptr) {
    if (in.size() > line_limit) return LineTooLong();
    scanned_ = in.size();
    return Step::kIncomplete;
  }
  scanned_ = 0;
  const size_t line_bytes = static_cast<size_t>(static_cast<const char*>(nl) - in.data()) + 1;
  if (line_bytes - 1 > line_limit) return LineTooLong();
  std::string_view line = in.substr(0, line_bytes - 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  line_ = line;
  noreply_ = false;
  error_ = false;
  Tokenize(line, &tokens_);

  const CommandSpec* spec = tokens_.n > 0 ? Lookup(tokens_.v[0]) : nullptr;
  if (spec == nullptr) {
    Error("ERROR", true);
    Record(Cmd::kUnknown);
    *used = line_bytes;
    return Step::kDone;
  }
  if (tokens_.n < spec->min_tokens ||
      (spec->max_tokens != kAnyTokens && (tokens_.truncated || tokens_.n > spec->max_tokens))) {
    Error("ERROR", true);
    Record(spec->cmd);
    *used = line_bytes;
    return Step::kDone;
  }

  if (spec->kind == Kind::kPlain) {
    FlushSets();
    Dispatch(spec->cmd);
    Record(spec->cmd);
    *used = line_bytes;
    return *close_ ? Step::kClose : Step::kDone;
  }

  PendingStore p;
  Parse parse = spec->kind == Kind::kStorage ? ParseStorage(spec->cmd, &p) : ParseMetaStorage(&p);
  if (parse != Parse::kOk) {
    Record(spec->cmd);
    *used = line_bytes;
    return parse == Parse::kClose ? Step::kClose : Step::kDone;
  }
  if (line_bytes + p.bytes + 2 > ctx_->options->max_request_bytes) {
    noreply_ = false;
    Error(kTooLarge, true);
    Record(spec->cmd);
    *close_ = true;
    *disconnect_ = Disconnect::kTooLarge;
    return Step::kClose;
  }
  if (in.size() - line_bytes < p.bytes + 2) return Step::kIncomplete;  // data block not all here
  std::string_view block = in.substr(line_bytes, static_cast<size_t>(p.bytes) + 2);
  if (block[p.bytes] != '\r' || block[p.bytes + 1] != '\n') {
    // memcached answers this and goes on reading garbage; we stop at the first framing error.
    noreply_ = false;
    Error("CLIENT_ERROR bad data chunk", true);
    Record(spec->cmd);
    *close_ = true;
    *disconnect_ = Disconnect::kProtocolError;
    return Step::kClose;
  }
  std::string_view data = block.substr(0, static_cast<size_t>(p.bytes));
  *used = line_bytes + block.size();
  if (BatchSet(p, data)) return Step::kDone;
  FlushSets();
  if (spec->kind == Kind::kStorage) {
    ExecuteStorage(p, data);
  } else {
    ExecuteMetaStorage(p, data);
  }
  Record(spec->cmd);
  return Step::kDone;
}

MemcachedHandler::Step MemcachedHandler::LineTooLong() {
  noreply_ = false;
  error_ = false;
  Error(kTooLarge, true);
  Record(Cmd::kUnknown);
  *close_ = true;
  *disconnect_ = Disconnect::kTooLarge;
  return Step::kClose;
}

void MemcachedHandler::Record(Cmd cmd) {
  uint64_t now = NowSteadyUs();
  ctx_->metrics->CountRequest(Protocol::kMemcached, ids_[static_cast<size_t>(cmd)], now - last_us_,
                              error_);
  last_us_ = now;
}

void MemcachedHandler::Dispatch(Cmd cmd) {
  switch (cmd) {
    case Cmd::kGet:
      return Get(false, false);
    case Cmd::kGets:
      return Get(true, false);
    case Cmd::kGat:
      return Get(false, true);
    case Cmd::kGats:
      return Get(true, true);
    case Cmd::kDelete:
      return Delete();
    case Cmd::kIncr:
      return Arith(true);
    case Cmd::kDecr:
      return Arith(false);
    case Cmd::kTouch:
      return Touch();
    case Cmd::kFlushAll:
      return FlushAll();
    case Cmd::kVersion:
      return Version();
    case Cmd::kVerbosity:
      return Verbosity();
    case Cmd::kStats:
      return StatsCmd();
    case Cmd::kQuit:
      *close_ = true;
      *disconnect_ = Disconnect::kClient;
      return;
    case Cmd::kMg:
      return MetaGet();
    case Cmd::kMd:
      return MetaDelete();
    case Cmd::kMa:
      return MetaArith();
    case Cmd::kMn:
      return Line("MN");
    case Cmd::kMe:
      return MetaDebug();
    default:
      return Error("ERROR", true);  // storage commands never get here
  }
}

// ---------------------------------------------------------------------------------------------
// Replies

void MemcachedHandler::Line(std::string_view text) {
  if (noreply_) return;
  out_->append(text);
  out_->append("\r\n");
}

void MemcachedHandler::Error(std::string_view text, bool malformed) {
  error_ = true;
  if (malformed) ctx_->metrics->CountMalformed(Protocol::kMemcached);
  Line(text);
}

std::string MemcachedHandler::ServerErrorLine(const Status& s) {
  std::string line = "SERVER_ERROR ";
  line += s.message().empty() ? s.ToString() : s.message();
  for (size_t i = 13; i < line.size(); ++i) {
    if (line[i] == '\r' || line[i] == '\n') line[i] = ' ';
  }
  line += "\r\n";
  return line;
}

void MemcachedHandler::ServerError(const Status& s) {
  error_ = true;
  if (!noreply_) out_->append(ServerErrorLine(s));
}

// ---------------------------------------------------------------------------------------------
// Batched sets

bool MemcachedHandler::BatchSet(const PendingStore& p, std::string_view data) {
  if (p.mode != StoreMode::kSet || p.has_cas) return false;
  if (p.cmd == Cmd::kMs) {
    for (size_t i = 3; i < tokens_.n; ++i) {
      if (tokens_.v[i][0] == 'c') return false;  // wants the new cas: written on its own
    }
  } else if (p.cmd != Cmd::kSet) {
    return false;
  }
  const Expiry expiry = ExpiryNow(p.exptime);
  if (expiry.expired) {
    batch_.Delete(p.key);
  } else {
    batch_.Put(p.key, data, expiry.ttl_ms, p.flags);
  }
  Count(Counter::kCmdSet);
  BatchedSet b{out_->size(), 0, noreply_, p.cmd, last_us_};
  if (p.cmd == Cmd::kSet) {
    Line("STORED");
  } else {
    Count(Counter::kCmdMeta);
    if (!p.meta.quiet) {
      out_->append("HD");
      AppendReturnFlags(3, "Ok", ReturnValues{}, p.meta.binary_key);
      out_->append("\r\n");
    }
  }
  b.reply_size = out_->size() - b.reply_start;
  batched_.push_back(b);
  last_us_ = NowSteadyUs();
  if (batched_.size() >= 256 || batch_.ByteSize() >= (1u << 20)) FlushSets();
  return true;
}

void MemcachedHandler::FlushSets() {
  if (batched_.empty()) return;
  const Status s = ctx_->db->Write(batch_);
  const uint64_t now = NowSteadyUs();
  if (s.ok()) {
    Count(Counter::kTotalItems, batched_.size());
  } else {
    // Replace the queued replies, last first so earlier offsets stay valid.
    const std::string line = ServerErrorLine(s);
    for (auto b = batched_.rbegin(); b != batched_.rend(); ++b) {
      out_->replace(b->reply_start, b->reply_size, b->errors_hidden ? std::string() : line);
    }
  }
  for (const BatchedSet& b : batched_) {
    ctx_->metrics->CountRequest(Protocol::kMemcached, ids_[static_cast<size_t>(b.cmd)],
                                now - b.start_us, !s.ok());
  }
  batch_.Clear();
  batched_.clear();
}

// ---------------------------------------------------------------------------------------------
// Storage commands: set/add/replace/append/prepend <key> <flags> <exptime> <bytes> [noreply]
// and cas <key> <flags> <exptime> <bytes> <cas unique> [noreply].

MemcachedHandler::Parse MemcachedHandler::RejectStorage(std::string_view error, bool malformed,
                                                        bool have_bytes, uint64_t bytes) {
  if (have_bytes && line_.size() + 2 + bytes + 2 > ctx_->options->max_request_bytes) {
    // Too big even to swallow: answer and disconnect.
    noreply_ = false;
    Error(error, true);
    *close_ = true;
    *disconnect_ = Disconnect::kTooLarge;
    return Parse::kClose;
  }
  Error(error, malformed);
  // Unlike memcached (which swallows only oversized blocks), discard the data block of any
  // refused storage command whose length was readable, so it is never run as commands.
  if (have_bytes) swallow_ = bytes + 2;
  return Parse::kReplied;
}

MemcachedHandler::Parse MemcachedHandler::ParseStorage(Cmd cmd, PendingStore* p) {
  const bool is_cas = cmd == Cmd::kCas;
  const size_t max_tokens = is_cas ? 7 : 6;
  noreply_ = tokens_.n == max_tokens && tokens_.v[tokens_.n - 1] == "noreply";
  const bool have_bytes = ParseU64(tokens_.v[4], &p->bytes);
  p->cmd = cmd;
  p->key = tokens_.v[1];
  if (!ValidKey(p->key, max_key_)) return RejectStorage(kBadFormat, true, have_bytes, p->bytes);
  if (!ParseU32(tokens_.v[2], &p->flags) || !ParseI64(tokens_.v[3], &p->exptime) || !have_bytes ||
      (is_cas && !ParseU64(tokens_.v[5], &p->cas))) {
    return RejectStorage(kBadFormat, true, have_bytes, p->bytes);
  }
  if (p->bytes > ctx_->options->max_value_bytes) {
    Count(Counter::kStoreTooLarge);
    return RejectStorage(kTooLarge, false, true, p->bytes);
  }
  p->has_cas = is_cas;
  switch (cmd) {
    case Cmd::kAdd:
      p->mode = StoreMode::kAdd;
      break;
    case Cmd::kReplace:
      p->mode = StoreMode::kReplace;
      break;
    case Cmd::kAppend:
      p->mode = StoreMode::kAppend;
      break;
    case Cmd::kPrepend:
      p->mode = StoreMode::kPrepend;
      break;
    default:
      p->mode = StoreMode::kSet;
      break;
  }
  return Parse::kOk;
}

void MemcachedHandler::ExecuteStorage(const PendingStore& p, std::string_view data) {
  Count(Counter::kCmdSet);
  StoreRequest req;
  req.mode = p.mode;
  req.key = p.key;
  req.data = data;
  req.flags = p.flags;
  req.expiry = ExpiryNow(p.exptime);
  req.has_cas = p.has_cas;
  req.cas = p.cas;
  Status err;
  switch (store_.Store(req, nullptr, &err)) {
    case Outcome::kStored:
      Count(Counter::kTotalItems);
      if (p.has_cas) Count(Counter::kCasHits);
      return Line("STORED");
    case Outcome::kNotStored:
      return Line("NOT_STORED");
    case Outcome::kExists:
      Count(Counter::kCasBadval);
      return Line("EXISTS");
    case Outcome::kNotFound:
      Count(Counter::kCasMisses);
      return Line("NOT_FOUND");
    case Outcome::kTooLarge:
      Count(Counter::kStoreTooLarge);
      return Error(kTooLarge, false);
    case Outcome::kNonNumeric:
    case Outcome::kError:
      return ServerError(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Retrieval: get|gets <key>* and gat|gats <exptime> <key>*.

void MemcachedHandler::Get(bool with_cas, bool touch) {
  // Keys are walked straight from the line: a multiget may hold any number of them.
  const std::string_view after = tokens_.v[touch ? 1 : 0];
  const std::string_view keys =
      line_.substr(static_cast<size_t>(after.data() + after.size() - line_.data()));
  Expiry expiry;
  if (touch) {
    int64_t exptime;
    if (!ParseI64(tokens_.v[1], &exptime)) {
      return Error("CLIENT_ERROR invalid exptime argument", true);
    }
    expiry = ExpiryNow(exptime);
  }
  std::string_view key;
  for (TokenCursor c(keys); c.Next(&key);) {
    if (!ValidKey(key, max_key_)) return Error(kBadFormat, true);
  }
  const size_t reply_start = out_->size();
  DB* db = ctx_->db;
  for (TokenCursor c(keys); c.Next(&key);) {
    Status err;
    Outcome o;
    if (touch) {
      Count(Counter::kCmdTouch);
      o = store_.Touch(key, expiry, &item_, &err);
      if (o == Outcome::kStored) Count(Counter::kTouchHits);
      if (o == Outcome::kNotFound) Count(Counter::kTouchMisses);
    } else {
      Count(Counter::kCmdGet);
      Result<DB::VersionedValue> r = db->GetVersioned(key);
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
    if (o == Outcome::kError) {
      out_->resize(reply_start);  // no half multiget reply
      return ServerError(err);
    }
    if (o != Outcome::kStored) continue;
    out_->append("VALUE ");
    out_->append(key);
    out_->push_back(' ');
    AppendU64(out_, item_.user_flags);
    out_->push_back(' ');
    AppendU64(out_, item_.value.size());
    if (with_cas) {
      out_->push_back(' ');
      AppendU64(out_, item_.version);
    }
    out_->append("\r\n");
    out_->append(item_.value);
    out_->append("\r\n");
  }
  out_->append("END\r\n");
}

// ---------------------------------------------------------------------------------------------
// delete <key> [0] [noreply]

void MemcachedHandler::Delete() {
  const size_t n = tokens_.n;
  if (n > 2) {
    const bool hold_is_zero = tokens_.v[2] == "0";  // a legacy "hold time" of 0 is accepted
    noreply_ = tokens_.v[n - 1] == "noreply";
    const bool valid =
        (n == 3 && (hold_is_zero || noreply_)) || (n == 4 && hold_is_zero && noreply_);
    if (!valid) {
      return Error("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]", true);
    }
  }
  const std::string_view key = tokens_.v[1];
  if (!ValidKey(key, max_key_)) return Error(kBadFormat, true);
  Status err;
  switch (store_.Delete(key, false, 0, &err)) {
    case Outcome::kStored:
      Count(Counter::kDeleteHits);
      return Line("DELETED");
    case Outcome::kNotFound:
      Count(Counter::kDeleteMisses);
      return Line("NOT_FOUND");
    default:
      return ServerError(err);
  }
}

// ---------------------------------------------------------------------------------------------
// incr|decr <key> <delta> [noreply]

void MemcachedHandler::Arith(bool incr) {
  noreply_ = tokens_.n == 4 && tokens_.v[3] == "noreply";
  ArithRequest req;
  req.key = tokens_.v[1];
  req.incr = incr;
  if (!ValidKey(req.key, max_key_)) return Error(kBadFormat, true);
  if (!ParseU64(tokens_.v[2], &req.delta)) {
    return Error("CLIENT_ERROR invalid numeric delta argument", true);
  }
  ArithResult result;
  Status err;
  switch (store_.Arith(req, &result, &err)) {
    case Outcome::kStored: {
      Count(incr ? Counter::kIncrHits : Counter::kDecrHits);
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof(buf), result.value);
      return Line(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
    }
    case Outcome::kNotFound:
      Count(incr ? Counter::kIncrMisses : Counter::kDecrMisses);
      return Line("NOT_FOUND");
    case Outcome::kNonNumeric:
      return Error("CLIENT_ERROR cannot increment or decrement non-numeric value", false);
    default:
      return ServerError(err);
  }
}

// ---------------------------------------------------------------------------------------------
// touch <key> <exptime> [noreply]

void MemcachedHandler::Touch() {
  noreply_ = tokens_.n == 4 && tokens_.v[3] == "noreply";
  const std::string_view key = tokens_.v[1];
  if (!ValidKey(key, max_key_)) return Error(kBadFormat, true);
  int64_t exptime;
  if (!ParseI64(tokens_.v[2], &exptime)) {
    return Error("CLIENT_ERROR invalid exptime argument", true);
  }
  Count(Counter::kCmdTouch);
  Status err;
  switch (store_.Touch(key, ExpiryNow(exptime), &item_, &err)) {
    case Outcome::kStored:
      Count(Counter::kTouchHits);
      return Line("TOUCHED");
    case Outcome::kNotFound:
      Count(Counter::kTouchMisses);
      return Line("NOT_FOUND");
    default:
      return ServerError(err);
  }
}

// ---------------------------------------------------------------------------------------------
// flush_all [delay] [noreply], version, verbosity <level> [noreply], stats [settings|reset]

void MemcachedHandler::FlushAll() {
  const size_t n = tokens_.n;
  noreply_ = tokens_.v[n - 1] == "noreply";
  Count(Counter::kCmdFlush);
  int64_t delay = 0;
  if (n != (noreply_ ? 2u : 1u) && !ParseI64(tokens_.v[1], &delay)) {
    return Error("CLIENT_ERROR invalid exptime argument", true);
  }
  // Like memcached: a later flush_all replaces a pending deadline; 0 or a past time is now.
  const uint64_t now_ms = NowUnixMs();
  const Expiry when = ExpiryFromExptime(delay, now_ms);
  if (!when.expired && when.ttl_ms > 0) {
    if (ctx_->delayed_flush == nullptr) {
      return Error("SERVER_ERROR flush_all with a delay is not available here", false);
    }
    ctx_->delayed_flush->Schedule(DelayedTask::Clock::now() +
                                  std::chrono::milliseconds(when.ttl_ms));
    return Line("OK");
  }
  if (ctx_->delayed_flush != nullptr) ctx_->delayed_flush->Cancel();
  Status s = store_.FlushAll();
  if (!s.ok()) return ServerError(s);
  Line("OK");
}

void MemcachedHandler::Version() {
  out_->append("VERSION ");
  out_->append(kVersion);
  out_->append("\r\n");
}

void MemcachedHandler::Verbosity() {
  noreply_ = tokens_.n == 3 && tokens_.v[2] == "noreply";
  uint32_t level;
  if (!ParseU32(tokens_.v[1], &level)) return Error(kBadFormat, true);
  Line("OK");  // there is no log level to change; accepted for compatibility
}

void MemcachedHandler::StatsCmd() {
  if (tokens_.n == 1) {
    counters_.Flush();
    AppendGeneralStats(ctx_, out_);
    out_->append("END\r\n");
  } else if (tokens_.v[1] == "settings") {
    AppendSettingsStats(ctx_, out_);
    out_->append("END\r\n");
  } else if (tokens_.v[1] == "reset") {
    counters_.Flush();
    ResetCounters();
    Line("RESET");
  } else {
    Error("ERROR", false);  // memcached's answer to an unknown stats group
  }
}

}  // namespace varve::server::memcache

namespace varve::server {

// ---------------------------------------------------------------------------------------------
// Factory and command registration (protocol.h).

void RegisterMemcachedCommands(Metrics* metrics) {
  std::lock_guard lock(memcache::g_register_mu);
  for (size_t i = 0; i < memcache::kCommands; ++i) {
    metrics->RegisterCommand(Protocol::kMemcached,
                             memcache::CommandName(static_cast<memcache::Cmd>(i)));
  }
}

std::unique_ptr<ProtocolHandler> NewMemcachedHandler(ServerContext* ctx, ClientInfo* client) {
  return std::make_unique<memcache::MemcachedHandler>(ctx, client);
}

}  // namespace varve::server
