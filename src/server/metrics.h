// Server metrics: request counts and errors per protocol and command, malformed requests,
// disconnects by reason, bytes, connections, latency histograms per protocol. Lock-free on the
// request path (atomics); rendered as Prometheus text for /metrics and as INFO / stats fields.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "varve/db.h"

namespace varve::server {

enum class Protocol : uint8_t { kRedis = 0, kMemcached, kHttp };
constexpr size_t kProtocols = 3;
const char* ProtocolName(Protocol p);  // "redis", "memcached", "http"

enum class Disconnect : uint8_t {
  kClient = 0,     // the client closed or sent QUIT
  kProtocolError,  // malformed request
  kTooLarge,       // a request over max_request_bytes
  kTimeout,        // stalled inside a request for request_timeout_ms
  kShutdown,       // the server stopped
  kIoError,
};
constexpr size_t kDisconnectReasons = 6;

class Metrics {
 public:
  // Latency bucket upper bounds in microseconds (the last bucket is +Inf).
  static constexpr std::array<uint64_t, 14> kLatencyBucketsUs = {
      50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};

  // Registers a command name for a protocol before the server starts; returns its id for
  // CountRequest. Registering the same name twice returns the same id. Not thread-safe.
  int RegisterCommand(Protocol p, std::string_view name);

  void CountRequest(Protocol p, int command, uint64_t latency_us, bool error);
  void CountMalformed(Protocol p) { At(p).malformed.fetch_add(1, std::memory_order_relaxed); }
  void CountBytes(Protocol p, uint64_t in, uint64_t out) {
    At(p).bytes_in.fetch_add(in, std::memory_order_relaxed);
    At(p).bytes_out.fetch_add(out, std::memory_order_relaxed);
  }
  void ConnectionOpened(Protocol p) {
    At(p).connections_total.fetch_add(1, std::memory_order_relaxed);
    At(p).connections_open.fetch_add(1, std::memory_order_relaxed);
  }
  void ConnectionClosed(Protocol p, Disconnect why) {
    At(p).connections_open.fetch_sub(1, std::memory_order_relaxed);
    At(p).disconnects[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
  }
  void CountRejectedConnection(Protocol p) {
    At(p).connections_rejected.fetch_add(1, std::memory_order_relaxed);
  }

  uint64_t requests(Protocol p) const;
  uint64_t errors(Protocol p) const;
  uint64_t malformed(Protocol p) const { return At(p).malformed.load(); }
  uint64_t connections_open(Protocol p) const { return At(p).connections_open.load(); }
  uint64_t connections_total(Protocol p) const { return At(p).connections_total.load(); }

  // The Prometheus text exposition (version 0.0.4) of everything above plus the engine's stats.
  std::string RenderPrometheus(const Stats& engine) const;

 private:
  struct Command {
    std::string name;
    std::atomic<uint64_t> calls{0};
    std::atomic<uint64_t> errors{0};
  };
  struct PerProtocol {
    std::deque<Command> commands;  // stable addresses; ids index it
    std::atomic<uint64_t> malformed{0}, bytes_in{0}, bytes_out{0};
    std::atomic<uint64_t> connections_open{0}, connections_total{0}, connections_rejected{0};
    std::array<std::atomic<uint64_t>, kDisconnectReasons> disconnects{};
    std::array<std::atomic<uint64_t>, kLatencyBucketsUs.size() + 1> latency{};
    std::atomic<uint64_t> latency_sum_us{0};
  };
  PerProtocol& At(Protocol p) { return protocols_[static_cast<size_t>(p)]; }
  const PerProtocol& At(Protocol p) const { return protocols_[static_cast<size_t>(p)]; }

  std::array<PerProtocol, kProtocols> protocols_;
};

}  // namespace varve::server
