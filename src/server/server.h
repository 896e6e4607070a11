// Server: opens the store, listens on every configured TCP port and Unix socket, and serves
// Redis RESP, memcached and HTTP clients from a pool of I/O threads until stopped.
#pragma once

#include <memory>
#include <string>

#include "server/server_options.h"
#include "varve/result.h"

namespace varve::server {

class Server {
 public:
  // Opens the store and binds every listener (logging one line per listener); serving starts
  // at once on the server's own threads.
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options);
  virtual ~Server() = default;

  // Blocks until SIGTERM / SIGINT or Stop(), then stops gracefully: no new connections,
  // in-flight requests finish (up to shutdown_timeout_ms), the store is closed (log synced).
  // Returns the store's close status.
  virtual Status Wait() = 0;
  // Asks Wait() to return. Thread-safe.
  virtual void Stop() = 0;
};

}  // namespace varve::server
