// The contract between the network layer (connection.h) and a protocol front end (RESP,
// memcached, HTTP). A front end is a byte-in, byte-out state machine: the connection feeds it
// whatever arrived and writes back whatever it produced, so pipelining needs nothing special.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "server/cursor_registry.h"
#include "server/delayed_task.h"
#include "server/metrics.h"
#include "server/server_options.h"
#include "varve/db.h"

namespace varve::server {

// Shared by every connection; outlives them.
struct ServerContext {
  DB* db = nullptr;
  const ServerOptions* options = nullptr;
  Metrics* metrics = nullptr;
  CursorRegistry* cursors = nullptr;
  DelayedTask* delayed_flush = nullptr;  // memcached flush_all <delay>; null: refused
  uint64_t start_unix_ms = 0;
  std::atomic<uint64_t> next_client_id{1};
};

// What a connection knows about its peer.
struct ClientInfo {
  uint64_t id = 0;       // unique per connection (CLIENT ID)
  std::string peer;      // "127.0.0.1:54321" or "unix"
  std::string name;      // CLIENT SETNAME
  int resp_version = 2;  // RESP2, or RESP3 after HELLO 3
};

class ProtocolHandler {
 public:
  virtual ~ProtocolHandler() = default;

  // Parses and executes every complete request at the front of in, in order, appending each reply
  // to *out. Returns how many bytes of in were consumed; a trailing incomplete request is left
  // for the next call (the connection keeps it and appends what arrives next).
  // - Must stop early, after a whole request, once out->size() exceeds the server's
  //   max_output_bytes (the connection writes and calls again).
  // - A request that is malformed, or that cannot fit in max_request_bytes, gets the protocol's
  //   error reply, metrics->CountMalformed, and *close = true (the connection flushes *out and
  //   closes; set *disconnect to kProtocolError or kTooLarge).
  // - QUIT-like commands set *close = true with *disconnect = kClient.
  // Counts every executed request with metrics->CountRequest.
  virtual size_t Process(std::string_view in, std::string* out, bool* close,
                         Disconnect* disconnect) = 0;

  // True while in holds an incomplete request (the connection then arms the request timeout).
  // Called after Process with the unconsumed rest.
  virtual bool MidRequest(std::string_view rest) const { return !rest.empty(); }
};

// Factories, one per front end; each registers its command names with the metrics on first use.
void RegisterRedisCommands(Metrics* metrics);
void RegisterMemcachedCommands(Metrics* metrics);
void RegisterHttpCommands(Metrics* metrics);
std::unique_ptr<ProtocolHandler> NewRedisHandler(ServerContext* ctx, ClientInfo* client);
std::unique_ptr<ProtocolHandler> NewMemcachedHandler(ServerContext* ctx, ClientInfo* client);
std::unique_ptr<ProtocolHandler> NewHttpHandler(ServerContext* ctx, ClientInfo* client);

}  // namespace varve::server
