// The HTTP/1.1 JSON API of varved (docs/protocols/http.md), independent of how requests are
// parsed: a table of routes (resource, method, metrics command name, allowed query parameters,
// handler) and one function that routes a parsed request and returns the complete response.
// http_handler.cc does the HTTP framing around it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/protocol.h"
#include "varve/status.h"

namespace varve::server::http {

// A request as the routes see it. Views point into the parser's message; valid during Handle.
struct ApiRequest {
  std::string_view method;  // as sent, e.g. "GET"; HEAD is routed as GET
  std::string_view target;  // request-target: "/v1/kv/a%2Fb?format=json"
  std::string_view accept;  // header values, empty if absent
  std::string_view if_match;
  std::string_view if_none_match;
  std::string_view body;
};

struct ApiResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // beyond the framing ones
  std::string body;
  // Counted in the error metrics. Every 4xx/5xx is, except 404 for an absent key (a miss).
  bool error = false;
};

// The command names the routes count requests under, in table order; the last one,
// "unmatched", counts requests no route took (404 unknown path, 405, 400 bad target).
const std::vector<std::string_view>& CommandNames();

// Routes and runs one request. *command is the request's index in CommandNames().
ApiResponse Handle(ServerContext* ctx, const ApiRequest& req, size_t* command);

// Checks that can be made from the request line and Content-Length alone, before the body is
// read (used to answer "Expect: 100-continue"): a PUT whose value is over max_value_bytes.
// Returns the final response if the request is refused.
std::optional<ApiResponse> CheckBeforeBody(ServerContext* ctx, std::string_view method,
                                           std::string_view target, uint64_t content_length,
                                           size_t* command);

// A JSON error response: {"error": message, "code": code}.
ApiResponse ErrorResponse(unsigned status, std::string_view code, std::string_view message);

// The one place an engine Status becomes an HTTP status and JSON error: NotFound 404,
// InvalidArgument 400, Aborted 412, Busy 503, NotSupported 501, Corruption and IOError 500.
ApiResponse StatusResponse(const Status& s);

}  // namespace varve::server::http
