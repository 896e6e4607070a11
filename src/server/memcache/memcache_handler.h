// The memcached front end: the text protocol (get/gets/gat/gats, the storage commands, delete,
// incr/decr, touch, flush_all, stats, version, verbosity, quit) and the meta protocol (mg, ms,
// md, ma, mn, me) of memcached 1.6, as a ProtocolHandler. See docs/protocols/memcached.md.
//
// Requests are parsed in place from the connection's buffer (no copies of keys or values); an
// incomplete request is left unconsumed. One handler per connection; not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/memcache/memcache_parse.h"
#include "server/memcache/memcache_stats.h"
#include "server/memcache/memcache_store.h"
#include "server/protocol.h"
#include "varve/write_batch.h"

namespace varve::server::memcache {

// Commands, in the order of the command table (and of their metric names).
enum class Cmd : uint8_t {
  kGet = 0,
  kGets,
  kGat,
  kGats,
  kSet,
  kAdd,
  kReplace,
  kAppend,
  kPrepend,
  kCas,
  kDelete,
  kIncr,
  kDecr,
  kTouch,
  kFlushAll,
  kVersion,
  kVerbosity,
  kStats,
  kQuit,
  kMg,
  kMs,
  kMd,
  kMa,
  kMn,
  kMe,
  kUnknown,  // anything else ("ERROR")
  kCount,
};
constexpr size_t kCommands = static_cast<size_t>(Cmd::kCount);

// The metric name of each command ("get", ..., "unknown").
std::string_view CommandName(Cmd cmd);

class MemcachedHandler final : public ProtocolHandler {
 public:
  MemcachedHandler(ServerContext* ctx, ClientInfo* client);
  ~MemcachedHandler() override;

  size_t Process(std::string_view in, std::string* out, bool* close,
                 Disconnect* disconnect) override;
  // Also true while the data block of a refused storage command is being discarded.
  bool MidRequest(std::string_view rest) const override { return swallow_ > 0 || !rest.empty(); }

 private:
  enum class Step : uint8_t { kDone, kIncomplete, kClose };

  // Parsed meta flags (mg/ms/md/ma); the tokens stay in tokens_ for building the reply.
  struct MetaFlags {
    bool binary_key = false, value = false, quiet = false;
    bool has_ttl = false, vivify = false, has_cas = false;
    char mode = 0;
    int64_t ttl = 0, vivify_ttl = 0;
    uint32_t client_flags = 0;
    uint64_t cas = 0, delta = 1, initial = 0;
  };

  // A storage command line (text or ms) parsed before its data block arrives.
  struct PendingStore {
    Cmd cmd = Cmd::kSet;
    StoreMode mode = StoreMode::kSet;
    std::string_view key;  // decoded with ms b
    uint32_t flags = 0;
    int64_t exptime = 0;
    uint64_t bytes = 0;
    bool has_cas = false;
    uint64_t cas = 0;
    MetaFlags meta;  // ms only
  };

  // What the return flags of a meta reply show.
  struct ReturnValues {
    uint64_t size = 0;
    int64_t ttl = -1;
    uint64_t cas = 0;
    uint32_t flags = 0;
  };

  enum class Parse : uint8_t { kOk, kReplied, kClose };

  Step ProcessOne(std::string_view in, size_t* used);
  Step LineTooLong();
  void Record(Cmd cmd);
  // Storage commands: the line is parsed (kOk) before the data block is awaited; a refused
  // line is answered at once (kReplied; its data block, if its length was readable, is then
  // swallowed) or closes the connection (kClose).
  Parse ParseStorage(Cmd cmd, PendingStore* p);
  Parse ParseMetaStorage(PendingStore* p);
  Parse RejectStorage(std::string_view error, bool malformed, bool have_bytes, uint64_t bytes);
  void ExecuteStorage(const PendingStore& p, std::string_view data);
  // Consecutive plain sets (text set; ms in set mode without C or c) are gathered into one
  // WriteBatch, written with a single log append once another command needs the store, the
  // batch is large, or the Process call ends. Their replies are queued in order at once and
  // rewritten to SERVER_ERROR if the write fails. False if p is not such a set.
  bool BatchSet(const PendingStore& p, std::string_view data);
  void FlushSets();
  void ExecuteMetaStorage(const PendingStore& p, std::string_view data);
  void Dispatch(Cmd cmd);

  // Text commands.
  void Get(bool with_cas, bool touch);
  void Delete();
  void Arith(bool incr);
  void Touch();
  void FlushAll();
  void Version();
  void Verbosity();
  void StatsCmd();
  // Meta commands.
  void MetaGet();
  void MetaDelete();
  void MetaArith();
  void MetaDebug();
  // Parses the flag tokens tokens_[start..]; returns the error reply, or nullptr.
  const char* ParseMetaFlags(size_t start, MetaFlags* f);
  // The common checks of mg/md/ma: key length, token count, flags, key decoding. Replies the
  // error and returns false on failure.
  bool MetaPrologue(bool generic_flag_error, MetaFlags* f, std::string_view* key);
  // The key of a meta command (b: base64-decoded into meta_key_); nullptr or the error reply.
  const char* MetaKey(bool binary, std::string_view* key);
  // Appends the return flags in request order: those of tokens_[start..] whose flag character
  // is in allowed (O opaque, k key, s size, t ttl, c cas, f client flags).
  void AppendReturnFlags(size_t start, std::string_view allowed, const ReturnValues& v,
                         bool binary_key);

  // Replies. Line appends text + "\r\n" unless the request is quiet (noreply).
  void Line(std::string_view text);
  // ERROR / CLIENT_ERROR / SERVER_ERROR: counted as a request error; malformed ones (the
  // request broke the protocol) also as malformed.
  void Error(std::string_view text, bool malformed);
  // The single mapping of an engine Status to a reply line: "SERVER_ERROR <message>\r\n".
  static std::string ServerErrorLine(const Status& s);
  void ServerError(const Status& s);
  void Count(Counter c, uint64_t n = 1) { counters_.Add(c, n); }

  ServerContext* const ctx_;
  ClientInfo* const client_;
  ItemStore store_;
  const size_t max_key_;
  std::array<int, kCommands> ids_{};
  LocalCounters counters_;

  // Per Process call / request.
  std::string* out_ = nullptr;
  bool* close_ = nullptr;
  Disconnect* disconnect_ = nullptr;
  Tokens tokens_;
  std::string_view line_;
  bool noreply_ = false;  // suppress this request's replies
  bool error_ = false;    // this request was answered with an error
  uint64_t last_us_ = 0;  // steady clock at the end of the previous request

  // Sets gathered for one write (see BatchSet); always empty between Process calls.
  struct BatchedSet {
    size_t reply_start;  // where its reply is in *out_
    size_t reply_size;
    bool errors_hidden;  // noreply: a failure is not answered either
    Cmd cmd;
    uint64_t start_us;
  };
  WriteBatch batch_;
  std::vector<BatchedSet> batched_;

  // Across calls.
  uint64_t swallow_ = 0;  // bytes of a refused data block still to discard
  size_t scanned_ = 0;    // bytes at the front of the input known to hold no newline
  std::string meta_key_;  // decoded base64 key
  DB::VersionedValue item_;
};

}  // namespace varve::server::memcache
