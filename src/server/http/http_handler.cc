// The HTTP/1.1 front end's framing: an incremental, bounded request parser (Boost.Beast's
// request_parser, fed with put() as bytes arrive), keep-alive and pipelining, Expect:
// 100-continue, and the response serializer. What a request does is in http_api.cc.
//
// Bounds: the request line and the header fields are each limited to
// min(max_request_bytes, 64 KiB + 3 * max_key_bytes) (a percent-encoded key of max_key_bytes
// fits); more is answered 431 and the connection closed. A body (Content-Length or chunked) is
// limited to max_request_bytes; more is answered 413 and the connection closed, as soon as the
// header announces it. Bytes that cannot begin a request line get 400 at once.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>

#include "server/http/http_api.h"
#include "server/http/http_util.h"
#include "server/protocol.h"
#include "util/clock.h"

namespace varve::server {
namespace http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

constexpr uint64_t kHeaderSlackBytes = 64 << 10;
// Longest method token accepted (the longest registered method is 17 bytes).
constexpr size_t kMaxMethodBytes = 32;
// Body bytes reserved up front at most; the rest grows as bytes arrive.
constexpr uint64_t kMaxBodyReserveBytes = 1 << 20;

// A request body kept in a std::string that grows as bytes arrive. (Beast's string_body
// reserves the announced Content-Length at once, so a header alone could claim
// max_request_bytes of memory.)
struct GrowingStringBody {
  using value_type = std::string;

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(bhttp::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>& content_length, beast::error_code& ec) {
      if (content_length) body_.reserve(std::min(*content_length, kMaxBodyReserveBytes));
      ec = {};
    }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      size_t n = 0;
      for (auto it = boost::asio::buffer_sequence_begin(buffers);
           it != boost::asio::buffer_sequence_end(buffers); ++it) {
        boost::asio::const_buffer b = *it;
        body_.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      ec = {};
      return n;
    }
    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

using Parser = bhttp::request_parser<GrowingStringBody>;

// RFC 9110 token characters.
bool IsTchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != '\0' && std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// True if in can be (the beginning of) a request line: a method token and a space.
bool MayStartRequest(std::string_view in) {
  size_t n = std::min(in.size(), kMaxMethodBytes + 1);
  for (size_t i = 0; i < n; ++i) {
    if (in[i] == ' ') return i > 0;
    if (!IsTchar(in[i])) return false;
  }
  return n <= kMaxMethodBytes;
}

// Appends the status line, framing headers, extra headers and (unless head) the body.
void WriteResponse(const ApiResponse& r, bool head, bool keep_alive, unsigned version,
                   std::string* out) {
  out->append("HTTP/1.1 ");
  out->append(std::to_string(r.status));
  out->push_back(' ');
  std::string_view reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
  out->append(reason.empty() ? "Unknown" : reason);
  out->append("\r\nContent-Type: ");
  out->append(r.content_type);
  out->append("\r\nContent-Length: ");
  out->append(std::to_string(r.body.size()));
  out->append("\r\n");
  for (const auto& [name, value] : r.headers) {
    out->append(name);
    out->append(": ");
    out->append(value);
    out->append("\r\n");
  }
  if (!keep_alive) {
    out->append("Connection: close\r\n");
  } else if (version < 11) {
    out->append("Connection: keep-alive\r\n");
  }
  out->append("\r\n");
  if (!head) out->append(r.body);
}

class HttpHandler final : public ProtocolHandler {
 public:
  HttpHandler(ServerContext* ctx, ClientInfo* client) : ctx_(ctx) {
    for (std::string_view name : CommandNames()) {
      command_ids_.push_back(ctx->metrics->RegisterCommand(Protocol::kHttp, name));
    }
    const ServerOptions& o = *ctx->options;
    header_limit_ = static_cast<uint32_t>(std::min<uint64_t>(
        {o.max_request_bytes, kHeaderSlackBytes + 3 * o.max_key_bytes, UINT32_MAX}));
  }

  size_t Process(std::string_view in, std::string* out, bool* close,
                 Disconnect* disconnect) override {
    size_t used = 0;
    while (!*close) {
      if (parser_ == nullptr) {
        // Between requests. Empty lines before a request line are ignored (RFC 9112 2.2).
        while (used < in.size() && (in[used] == '\r' || in[used] == '\n')) ++used;
        if (used == in.size() || out->size() > ctx_->options->max_output_bytes) break;
        parser_ = std::make_unique<Parser>();
        parser_->header_limit(header_limit_);
        parser_->body_limit(ctx_->options->max_request_bytes);
        header_seen_ = false;
        request_bytes_ = 0;
      }
      // Until the request line is complete, check that it can be one: garbage (TLS, RESP,
      // binary) is refused at once instead of waiting for a line end or the header limit.
      if (request_bytes_ == 0 && !MayStartRequest(in.substr(used))) {
        Refuse(400, "InvalidArgument", "malformed HTTP request: not a request line",
               Disconnect::kProtocolError, out, close, disconnect);
        return in.size();
      }
      size_t n = 0;
      if (!parser_->is_done()) {
        beast::error_code ec;
        n = parser_->put(boost::asio::buffer(in.data() + used, in.size() - used), ec);
        used += n;
        request_bytes_ += n;
        if (ec == bhttp::error::need_more) break;
        if (ec) {
          ParseError(ec, out, close, disconnect);
          return in.size();
        }
      }
      if (!header_seen_ && parser_->is_header_done()) {
        header_seen_ = true;
        if (!OnHeader(out, close, disconnect)) return in.size();
        parser_->eager(true);
      }
      if (parser_->is_done()) {
        Respond(out, close, disconnect);
        parser_.reset();
        continue;
      }
      if (n == 0) break;
    }
    return used;
  }

  bool MidRequest(std::string_view rest) const override {
    return !rest.empty() || (parser_ != nullptr && parser_->got_some());
  }

 private:
  // After the header: answers "Expect: 100-continue", or refuses the request before its body
  // is sent (then closes, as the body will not be read). Returns false if it closed.
  bool OnHeader(std::string* out, bool* close, Disconnect* disconnect) {
    const auto& msg = parser_->get();
    if (parser_->is_done() || msg.version() < 11) return true;
    std::string_view expect = Trim(msg[bhttp::field::expect]);
    if (!EqualsIgnoreCase(expect, "100-continue")) return true;
    uint64_t start_us = NowSteadyUs();
    size_t command;
    std::optional<ApiResponse> refused = CheckBeforeBody(
        ctx_, msg.method_string(), msg.target(), parser_->content_length().value_or(0), &command);
    if (!refused.has_value()) {
      out->append("HTTP/1.1 100 Continue\r\n\r\n");
      return true;
    }
    WriteResponse(*refused, false, /*keep_alive=*/false, msg.version(), out);
    ctx_->metrics->CountRequest(Protocol::kHttp, command_ids_[command], NowSteadyUs() - start_us,
                                true);
    *close = true;
    *disconnect = Disconnect::kTooLarge;
    return false;
  }

  void Respond(std::string* out, bool* close, Disconnect* disconnect) {
    uint64_t start_us = NowSteadyUs();
    const auto& msg = parser_->get();
    ApiRequest req;
    req.method = msg.method_string();
    req.target = msg.target();
    req.accept = msg[bhttp::field::accept];
    req.if_match = msg[bhttp::field::if_match];
    req.if_none_match = msg[bhttp::field::if_none_match];
    req.body = msg.body();
    size_t command;
    ApiResponse res = Handle(ctx_, req, &command);
    bool keep_alive = msg.keep_alive();
    WriteResponse(res, msg.method() == bhttp::verb::head, keep_alive, msg.version(), out);
    ctx_->metrics->CountRequest(Protocol::kHttp, command_ids_[command], NowSteadyUs() - start_us,
                                res.error);
    if (!keep_alive) {
      *close = true;
      *disconnect = Disconnect::kClient;
    }
  }

  void ParseError(const beast::error_code& ec, std::string* out, bool* close,
                  Disconnect* disconnect) {
    if (ec == bhttp::error::header_limit) {
      Refuse(431, "TooLarge",
             "request line or header fields over " + std::to_string(header_limit_) + " bytes",
             Disconnect::kTooLarge, out, close, disconnect);
    } else if (ec == bhttp::error::body_limit) {
      Refuse(413, "TooLarge",
             "request body over max_request_bytes (" +
                 std::to_string(ctx_->options->max_request_bytes) + ")",
             Disconnect::kTooLarge, out, close, disconnect);
    } else {
      Refuse(400, "InvalidArgument", "malformed HTTP request: " + ec.message(),
             Disconnect::kProtocolError, out, close, disconnect);
    }
  }

  // A protocol error: the reply, then the connection closes.
  void Refuse(unsigned status, std::string_view code, const std::string& message, Disconnect why,
              std::string* out, bool* close, Disconnect* disconnect) {
    ctx_->metrics->CountMalformed(Protocol::kHttp);
    WriteResponse(ErrorResponse(status, code, message), false, /*keep_alive=*/false, 11, out);
    parser_.reset();
    *close = true;
    *disconnect = why;
  }

  ServerContext* const ctx_;
  std::vector<int> command_ids_;  // metrics ids, indexed like CommandNames()
  uint32_t header_limit_;
  std::unique_ptr<Parser> parser_;  // the request being parsed; null between requests
  bool header_seen_ = false;
  uint64_t request_bytes_ = 0;  // bytes of the current request the parser has consumed
};

}  // namespace
}  // namespace http

void RegisterHttpCommands(Metrics* metrics) {
  for (std::string_view name : http::CommandNames()) {
    metrics->RegisterCommand(Protocol::kHttp, name);
  }
}

std::unique_ptr<ProtocolHandler> NewHttpHandler(ServerContext* ctx, ClientInfo* client) {
  return std::make_unique<http::HttpHandler>(ctx, client);
}

}  // namespace varve::server
