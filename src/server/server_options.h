// Options of the varved server. Every field documents its default; varved --help shows the same.
#pragma once

#include <cstdint>
#include <string>

#include "varve/options.h"

namespace varve::server {

struct ServerOptions {
  // Store directory. Default: "data".
  std::string data_dir = "data";
  // Engine options (index kind, durability, segment size, ...). Default: varved uses
  // Durability::kInterval with a 1 s interval.
  Options engine;
  // Address the TCP listeners bind to. Default: 127.0.0.1.
  std::string bind = "127.0.0.1";
  // TCP ports; 0 turns a protocol's TCP listener off. Defaults: 6379, 11211, 8080.
  uint16_t redis_port = 6379;
  uint16_t memcached_port = 11211;
  uint16_t http_port = 8080;
  // Unix socket paths; empty = none. Default: none.
  std::string redis_socket;
  std::string memcached_socket;
  std::string http_socket;
  // I/O threads. 0 = number of CPUs. Default: 0.
  uint32_t threads = 0;
  // Largest key and value accepted by any protocol. Defaults: 64 KiB, 64 MiB.
  uint64_t max_key_bytes = 64 << 10;
  uint64_t max_value_bytes = 64 << 20;
  // Largest single request (command line, bulk strings, HTTP headers and body). Default: 128 MiB.
  uint64_t max_request_bytes = 128ull << 20;
  // Replies a connection may have queued before it stops reading (pipelining back-pressure).
  // Default: 64 MiB.
  uint64_t max_output_bytes = 64ull << 20;
  // A connection that stays inside one incomplete request this long is closed. Default: 30 s.
  uint32_t request_timeout_ms = 30000;
  // Connections beyond this are refused. Default: 10000.
  uint32_t max_connections = 10000;
  // On SIGTERM, how long in-flight requests may take before connections are cut. Default: 5 s.
  uint32_t shutdown_timeout_ms = 5000;
};

}  // namespace varve::server
