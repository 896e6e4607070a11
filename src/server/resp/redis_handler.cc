// The Redis RESP2 front end: parses requests incrementally (request_parser.h), checks each against
// the command table (arity, key sizes) and dispatches it, appending replies to the connection's
// output. Pipelining is just "more requests in the buffer".
#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "server/protocol.h"
#include "server/resp/commands.h"
#include "server/resp/reply.h"
#include "server/resp/request_parser.h"
#include "server/resp/text.h"
#include "util/clock.h"

namespace varve::server {
namespace resp {
namespace {

// Inline commands (telnet, redis-cli) are single lines; Redis allows 64 KiB.
constexpr uint64_t kMaxInlineBytes = 64 << 10;
// Metric name of commands not in the table.
constexpr std::string_view kUnknownCommand = "unknown";

std::mutex register_mu;

// Registers every command name (and "unknown") with metrics and returns their ids: the table's
// order, then "unknown". Registering again returns the same ids.
std::vector<int> RegisterAll(Metrics* metrics) {
  std::lock_guard lock(register_mu);
  std::vector<int> ids;
  for (const CommandSpec& spec : CommandTable()) {
    ids.push_back(metrics->RegisterCommand(Protocol::kRedis, spec.name));
  }
  ids.push_back(metrics->RegisterCommand(Protocol::kRedis, kUnknownCommand));
  return ids;
}

class RedisHandler final : public ProtocolHandler {
 public:
  RedisHandler(ServerContext* ctx, ClientInfo* client)
      : ctx_(ctx),
        client_(client),
        parser_(ctx->options->max_request_bytes,
                std::min(kMaxInlineBytes, ctx->options->max_request_bytes)),
        metric_ids_(RegisterAll(ctx->metrics)),
        set_metric_(metric_ids_[static_cast<size_t>(FindCommand("set") - CommandTable().data())]),
        connected_unix_ms_(NowUnixMs()) {}

  size_t Process(std::string_view in, std::string* out, bool* close,
                 Disconnect* disconnect) override {
    size_t consumed = 0;
    // One clock read per request: each request's latency runs from the end of the previous one
    // (parsing a request costs next to nothing next to executing it).
    uint64_t now_us = NowSteadyUs();
    while (consumed < in.size()) {
      size_t used = 0;
      RequestParser::Outcome outcome = parser_.Parse(in.substr(consumed), &used);
      if (outcome == RequestParser::Outcome::kIncomplete) break;
      if (outcome == RequestParser::Outcome::kError) {
        FlushSets(out, &now_us);
        AppendError(out, "ERR " + parser_.error());
        ctx_->metrics->CountMalformed(Protocol::kRedis);
        *close = true;
        *disconnect = parser_.too_large() ? Disconnect::kTooLarge : Disconnect::kProtocolError;
        return in.size();
      }
      consumed += used;
      if (outcome == RequestParser::Outcome::kEmpty) continue;
      const std::vector<std::string_view>& argv = parser_.args();
      if (IsPlainSet(argv)) {
        DeferSet(argv, out, &now_us);
      } else {
        FlushSets(out, &now_us);
        if (Execute(argv, out, &now_us)) {
          *close = true;
          *disconnect = Disconnect::kClient;
          return consumed;
        }
      }
      if (out->size() > ctx_->options->max_output_bytes) break;
    }
    FlushSets(out, &now_us);
    return consumed;
  }

 private:
  // Runs one request; true if the connection should close after its reply (QUIT). *clock_us is
  // when it started; it is set to when it ended.
  bool Execute(const std::vector<std::string_view>& argv, std::string* out, uint64_t* clock_us) {
    size_t reply_at = out->size();
    const CommandSpec* spec = FindCommand(argv[0]);
    Call call{ctx_, client_, spec, argv, out, connected_unix_ms_};
    int metric = metric_ids_.back();
    if (spec == nullptr) {
      ReplyUnknownCommand(argv, out);
    } else {
      metric = metric_ids_[static_cast<size_t>(spec - CommandTable().data())];
      int argc = static_cast<int>(argv.size());
      if ((spec->arity > 0 && argc != spec->arity) || (spec->arity < 0 && argc < -spec->arity)) {
        ReplyArityError(call, spec->name);
      } else if (CheckKeys(*spec, argv, out)) {
        spec->handler(call);
      }
    }
    bool error = out->size() > reply_at && (*out)[reply_at] == '-';
    uint64_t end_us = NowSteadyUs();
    ctx_->metrics->CountRequest(Protocol::kRedis, metric, end_us - *clock_us, error);
    *clock_us = end_us;
    return call.quit;
  }

  // Consecutive plain SETs of one pipeline are written with one WriteBatch (one write(2), one
  // group commit) instead of one each; their +OK replies are queued at once and replaced by the
  // error if the write fails. Anything else flushes them first, so replies and effects keep
  // request order.
  bool IsPlainSet(const std::vector<std::string_view>& argv) const {
    return argv.size() == 3 && argv[0].size() == 3 && EqualsLower(argv[0], "set") &&
           argv[1].size() <= ctx_->options->max_key_bytes &&
           argv[2].size() <= ctx_->options->max_value_bytes;
  }

  void DeferSet(const std::vector<std::string_view>& argv, std::string* out, uint64_t* clock_us) {
    if (pending_sets_ == 0) pending_replies_at_ = out->size();
    batch_.Put(argv[1], argv[2]);
    AppendOk(out);
    ++pending_sets_;
    if (pending_sets_ >= 1024 || batch_.ByteSize() >= (4u << 20)) FlushSets(out, clock_us);
  }

  void FlushSets(std::string* out, uint64_t* clock_us) {
    if (pending_sets_ == 0) return;
    Status s = ctx_->db->Write(batch_);
    if (!s.ok()) {
      out->resize(pending_replies_at_);
      for (size_t i = 0; i < pending_sets_; ++i) AppendStatusError(out, s);
    }
    uint64_t end_us = NowSteadyUs();
    uint64_t each_us = (end_us - *clock_us) / pending_sets_;
    for (size_t i = 0; i < pending_sets_; ++i) {
      ctx_->metrics->CountRequest(Protocol::kRedis, set_metric_, each_us, !s.ok());
    }
    *clock_us = end_us;
    batch_.Clear();
    pending_sets_ = 0;
  }

  // "-ERR unknown command 'foo', with args beginning with: 'a' 'b' " as Redis words it.
  static void ReplyUnknownCommand(const std::vector<std::string_view>& argv, std::string* out) {
    std::string args;
    for (size_t i = 1; i < argv.size() && args.size() < 128; ++i) {
      size_t room = 128 - args.size();
      args += '\'';
      args += argv[i].substr(0, room);
      args += "' ";
    }
    AppendError(out, "ERR unknown command '" + std::string(argv[0].substr(0, 128)) +
                         "', with args beginning with: " + args);
  }

  // Every key argument within max_key_bytes; false after replying an error.
  bool CheckKeys(const CommandSpec& spec, const std::vector<std::string_view>& argv,
                 std::string* out) const {
    if (spec.first_key <= 0) return true;
    int argc = static_cast<int>(argv.size());
    int last = spec.last_key < 0 ? argc + spec.last_key : spec.last_key;
    for (int i = spec.first_key; i <= last && i < argc; i += spec.key_step) {
      if (argv[static_cast<size_t>(i)].size() > ctx_->options->max_key_bytes) {
        AppendError(out, "ERR key exceeds maximum allowed size (max_key_bytes)");
        return false;
      }
    }
    return true;
  }

  ServerContext* const ctx_;
  ClientInfo* const client_;
  RequestParser parser_;
  const std::vector<int> metric_ids_;  // by table index; the last is "unknown"
  const int set_metric_;
  const uint64_t connected_unix_ms_;
  WriteBatch batch_;  // plain SETs waiting for FlushSets
  size_t pending_sets_ = 0;
  size_t pending_replies_at_ = 0;
};

}  // namespace
}  // namespace resp

void RegisterRedisCommands(Metrics* metrics) { resp::RegisterAll(metrics); }

std::unique_ptr<ProtocolHandler> NewRedisHandler(ServerContext* ctx, ClientInfo* client) {
  return std::make_unique<resp::RedisHandler>(ctx, client);
}

}  // namespace varve::server
